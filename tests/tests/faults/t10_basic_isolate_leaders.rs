//! Leaders' nodes cut off and healed again and again.

use std::time::Duration;

use crate::harness::{seed_or, SeedGuard};
use crate::scenario::Scenario;
use crate::schedule::Fault;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_isolated_leaders() {
    let seed = seed_or(10);
    let _guard = SeedGuard {
        seed,
        test: "t10_basic_isolate_leaders",
    };
    let scenario = Scenario {
        partitions: 3,
        plain_producers: 2,
        idempotent_producers: 1,
        fetchers: 2,
        faults: &[Fault::IsolateLeader, Fault::IsolateLeader, Fault::Calm],
        duration: Duration::from_secs(4),
    };
    scenario.run(seed).await;
}
