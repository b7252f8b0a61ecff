//! Network faults other than reordering: isolation, cut links both ways and one
//! way, loss, duplication. (Reordering: `t30_reordered_messages`.)

use std::time::Duration;

use crate::harness::{seed_or, SeedGuard};
use crate::scenario::Scenario;
use crate::schedule::Fault;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_mixed_network_faults() {
    let seed = seed_or(20);
    let _guard = SeedGuard {
        seed,
        test: "t20_mixed_network_faults",
    };
    let scenario = Scenario {
        partitions: 3,
        plain_producers: 1,
        idempotent_producers: 1,
        fetchers: 2,
        faults: &[
            Fault::IsolateLeader,
            Fault::IsolateNode,
            Fault::CutLink,
            Fault::OneWay,
            Fault::Drop,
            Fault::Duplicate,
        ],
        duration: Duration::from_secs(4),
    };
    scenario.run(seed).await;
}
