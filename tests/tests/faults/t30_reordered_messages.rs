//! Frames held back so later ones overtake them. Ignored: it reproduces a follower
//! panic in raft-rs (`to_commit N is out of range [last_index N-1]` in
//! `handle_heartbeat`) within seconds (seeds 1, 7, 8 and the default): a leader's
//! heartbeat carries a commit index one past the follower's log, so the leader's
//! view of what the follower holds (`matched`) is ahead of the follower's log. The
//! worker thread dies and the partition never converges. Run it with
//! `cargo test -p chronik-cluster-tests --test faults t30 -- --ignored`.

use std::time::Duration;

use crate::harness::{seed_or, SeedGuard};
use crate::scenario::Scenario;
use crate::schedule::Fault;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a reordered frame panics a follower (to_commit past last_index): see the module doc"]
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
