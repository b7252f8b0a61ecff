//! Frames held back so later ones overtake them. This test found a follower panic
//! (`to_commit N is out of range [last_index N-1]` in raft-rs's `handle_heartbeat`):
//! raft-rs's `batch_append` merged new entries into an earlier empty MsgAppend with a
//! later index, the follower acknowledged an index it did not hold, and the leader's
//! next heartbeat committed past the follower's log. raft-multi now leaves
//! `batch_append` off.

use std::time::Duration;

use crate::harness::{seed_or, SeedGuard};
use crate::scenario::Scenario;
use crate::schedule::Fault;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_reordered_messages() {
    let seed = seed_or(30);
    let _guard = SeedGuard {
        seed,
        test: "t30_reordered_messages",
    };
    let scenario = Scenario {
        partitions: 3,
        plain_producers: 1,
        idempotent_producers: 1,
        fetchers: 2,
        faults: &[
            Fault::Reorder,
            Fault::DuplicateReorder,
            Fault::IsolateLeader,
        ],
        duration: Duration::from_secs(4),
    };
    scenario.run(seed).await;
}
