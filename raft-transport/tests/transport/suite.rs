//! The transport conformance suite: one set of checks run against every
//! implementation through a [`Harness`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use raft_transport::{GroupMessage, OutgoingSnapshot, PeerState, Transport, TransportError};

use crate::support::{
    done_channel, numbered, send_reliably, seq_of, wait_until, MeteredSource, Recorder,
};

/// Generous deadline for conditions in debug builds on a loaded machine.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running set of nodes `1..=n`, all peered, each with a [`Recorder`].
#[async_trait::async_trait]
pub trait Harness: Send {
    fn node(&self, id: u64) -> Arc<dyn Transport>;
    fn recorder(&self, id: u64) -> Arc<Recorder>;
    /// Makes `id` unreachable to the others (crash or network cut).
    async fn take_down(&mut self, id: u64);
    /// Brings `id` back after [`take_down`](Self::take_down).
    async fn bring_back(&mut self, id: u64);
    /// Most snapshot bytes the implementation may hold between source and handler.
    fn snapshot_bound(&self) -> u64;
    async fn finish(self);
}

/// Builds a harness of `n` nodes.
#[async_trait::async_trait]
pub trait Factory: Sync {
    type H: Harness;
    async fn start(&self, nodes: u64) -> Self::H;
}

/// Batches to each peer arrive in the order they were sent, and a batch's
/// messages stay together and in order.
pub async fn order_per_peer<F: Factory>(factory: &F) {
    let harness = factory.start(3).await;
    let sender = harness.node(1);
    for seq in 0..600u64 {
        for to in [2, 3] {
            let batch = vec![
                numbered(seq % 7, seq * 2, 32),
                numbered(seq % 5, seq * 2 + 1, 32),
            ];
            send_reliably(sender.as_ref(), to, batch, WAIT).await;
        }
    }
    for to in [2u64, 3] {
        let recorder = harness.recorder(to);
        wait_until("all 1200 messages", WAIT, || {
            recorder.messages_from(1).len() == 1200
        })
        .await;
        let seqs: Vec<u64> = recorder.messages_from(1).iter().map(seq_of).collect();
        let expected: Vec<u64> = (0..1200).collect();
        assert_eq!(seqs, expected, "node {to} got messages out of order");
    }
    // Retries after `QueueFull` count as drops; what was accepted all arrived.
    let stats = sender.stats();
    assert_eq!(stats.peer(2).messages_sent, 1200);
    assert_eq!(harness.node(2).stats().peer(1).messages_delivered, 1200);
    harness.finish().await;
}

/// One batch of many groups arrives as one batch, whole.
pub async fn many_groups_in_one_batch<F: Factory>(factory: &F) {
    let harness = factory.start(2).await;
    let batch: Vec<GroupMessage> = (0..500u64)
        .map(|group| numbered(group, group, 40))
        .collect();
    send_reliably(harness.node(1).as_ref(), 2, batch.clone(), WAIT).await;
    let recorder = harness.recorder(2);
    wait_until("the batch", WAIT, || recorder.message_count() == 500).await;
    assert_eq!(recorder.messages_from(1), batch);
    assert_eq!(recorder.received.lock().batch_sizes, vec![500]);
    let receiver_stats = harness.node(2).stats().peer(1);
    assert_eq!(receiver_stats.frames_delivered, 1);
    assert_eq!(receiver_stats.messages_delivered, 500);
    assert!(harness.node(1).stats().peer(2).frames_sent >= 1);
    harness.finish().await;
}

/// With a stalled receiver, `send` returns at once, drops are counted, and
/// what was accepted arrives in order once the receiver resumes.
pub async fn backpressure<F: Factory>(factory: &F) {
    let harness = factory.start(2).await;
    let sender = harness.node(1);
    // Make sure the link is up before stalling.
    send_reliably(sender.as_ref(), 2, vec![numbered(1, 0, 16)], WAIT).await;
    let recorder = harness.recorder(2);
    wait_until("the first message", WAIT, || recorder.message_count() == 1).await;
    recorder.stall();
    let (mut accepted, mut full) = (vec![0u64], 0u64);
    let mut slowest = Duration::ZERO;
    for seq in 1..=20_000u64 {
        let started = Instant::now();
        let result = sender.send(2, vec![numbered(seq % 3, seq, 1024)]);
        slowest = slowest.max(started.elapsed());
        match result {
            Ok(()) => accepted.push(seq),
            Err(TransportError::QueueFull { to: 2 }) => full += 1,
            Err(other) => panic!("unexpected send error: {other}"),
        }
    }
    assert!(full > 0, "a stalled peer must fill the bounded queue");
    assert!(
        slowest < Duration::from_millis(250),
        "send blocked for {slowest:?}"
    );
    let stats = sender.stats().peer(2);
    assert_eq!(stats.batches_dropped, full);
    assert_eq!(stats.messages_dropped, full);
    assert_eq!(stats.batches_sent, accepted.len() as u64);
    recorder.unstall();
    let expected = accepted.len();
    wait_until("accepted messages", WAIT, || {
        recorder.message_count() == expected
    })
    .await;
    let seqs: Vec<u64> = recorder.messages_from(1).iter().map(seq_of).collect();
    assert_eq!(seqs, accepted, "accepted batches arrive, in order");
    harness.finish().await;
}

/// 100 MiB streams through with bounded memory and the sender learns the outcome.
pub async fn snapshot_100_mib<F: Factory>(factory: &F) {
    let harness = factory.start(2).await;
    send_reliably(harness.node(1).as_ref(), 2, vec![numbered(1, 0, 16)], WAIT).await;
    let recorder = harness.recorder(2);
    wait_until("the link", WAIT, || recorder.message_count() == 1).await;
    let chunk = 1 << 20;
    let source = MeteredSource::new(chunk, 100, Arc::clone(&recorder.snapshot_consumed));
    let max_in_flight = Arc::clone(&source.max_in_flight);
    let (done, outcome) = done_channel();
    let snapshot = OutgoingSnapshot {
        group_id: 42,
        header: bytes::Bytes::from_static(b"raft MsgSnapshot"),
        chunks: Box::new(source),
    };
    harness.node(1).send_snapshot(2, snapshot, done);
    let result = tokio::time::timeout(Duration::from_secs(60), outcome)
        .await
        .expect("snapshot finished in time")
        .expect("done called");
    result.expect("snapshot accepted");
    let snapshots = recorder.received.lock().snapshots.clone();
    assert_eq!(snapshots.len(), 1);
    assert_eq!(snapshots[0].0, 1);
    assert_eq!(snapshots[0].1, 42);
    assert_eq!(&snapshots[0].2[..], b"raft MsgSnapshot");
    assert_eq!(snapshots[0].3, 100 << 20);
    let peak = max_in_flight.load(Ordering::SeqCst);
    println!(
        "snapshot: peak bytes in flight {peak} (bound {})",
        harness.snapshot_bound()
    );
    assert!(
        peak <= harness.snapshot_bound(),
        "peak in flight {peak} bytes"
    );
    assert_eq!(harness.node(1).stats().peer(2).snapshots_sent, 1);
    harness.finish().await;
}

/// A refused snapshot and a failing source both reach `done` as errors.
pub async fn snapshot_failures<F: Factory>(factory: &F) {
    let harness = factory.start(2).await;
    send_reliably(harness.node(1).as_ref(), 2, vec![numbered(1, 0, 16)], WAIT).await;
    let recorder = harness.recorder(2);
    wait_until("the link", WAIT, || recorder.message_count() == 1).await;

    recorder.refuse_snapshots.store(true, Ordering::SeqCst);
    let source = MeteredSource::new(4096, 4, Arc::clone(&recorder.snapshot_consumed));
    let (done, outcome) = done_channel();
    let snapshot = OutgoingSnapshot {
        group_id: 7,
        header: bytes::Bytes::new(),
        chunks: Box::new(source),
    };
    harness.node(1).send_snapshot(2, snapshot, done);
    match tokio::time::timeout(WAIT, outcome)
        .await
        .expect("in time")
        .expect("done")
    {
        Err(TransportError::Remote { peer: 2, reason }) => {
            assert!(reason.contains("refused"), "{reason}")
        }
        other => panic!("expected Remote, got {other:?}"),
    }

    recorder.refuse_snapshots.store(false, Ordering::SeqCst);
    let mut source = MeteredSource::new(4096, 10, Arc::clone(&recorder.snapshot_consumed));
    source.fail_at = Some(3);
    let (done, outcome) = done_channel();
    let snapshot = OutgoingSnapshot {
        group_id: 8,
        header: bytes::Bytes::new(),
        chunks: Box::new(source),
    };
    harness.node(1).send_snapshot(2, snapshot, done);
    match tokio::time::timeout(WAIT, outcome)
        .await
        .expect("in time")
        .expect("done")
    {
        Err(TransportError::SnapshotSource(_)) => {}
        other => panic!("expected SnapshotSource, got {other:?}"),
    }
    assert!(
        recorder.received.lock().snapshots.is_empty(),
        "no snapshot accepted"
    );
    assert_eq!(harness.node(1).stats().peer(2).snapshots_failed, 2);
    harness.finish().await;
}

/// A peer that goes away is reported unreachable, and reachable when it returns.
pub async fn liveness<F: Factory>(factory: &F) {
    let mut harness = factory.start(3).await;
    let observer = harness.recorder(1);
    harness.take_down(3).await;
    wait_until("3 unreachable", WAIT, || {
        observer.last_state(3) == Some(PeerState::Unreachable)
    })
    .await;
    // Node 2 stays reachable throughout.
    assert_ne!(observer.last_state(2), Some(PeerState::Unreachable));
    harness.bring_back(3).await;
    wait_until("3 reachable again", WAIT, || {
        observer.last_state(3) == Some(PeerState::Reachable)
    })
    .await;
    let changes: Vec<PeerState> = observer
        .peer_states()
        .into_iter()
        .filter(|(peer, _)| *peer == 3)
        .map(|(_, state)| state)
        .collect();
    let down = changes
        .iter()
        .position(|state| *state == PeerState::Unreachable)
        .expect("went down");
    assert!(
        changes[down..].contains(&PeerState::Reachable),
        "{changes:?}"
    );
    send_reliably(harness.node(1).as_ref(), 3, vec![numbered(1, 99, 8)], WAIT).await;
    let recorder = harness.recorder(3);
    wait_until("traffic to 3 again", WAIT, || {
        recorder
            .messages_from(1)
            .iter()
            .any(|message| seq_of(message) == 99)
    })
    .await;
    harness.finish().await;
}

/// Generates one `#[tokio::test]` per conformance check for a factory.
#[macro_export]
macro_rules! conformance {
    ($factory:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn conformance_order_per_peer() {
            $crate::suite::order_per_peer(&$factory).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn conformance_many_groups_in_one_batch() {
            $crate::suite::many_groups_in_one_batch(&$factory).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn conformance_backpressure() {
            $crate::suite::backpressure(&$factory).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn conformance_snapshot_100_mib() {
            $crate::suite::snapshot_100_mib(&$factory).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn conformance_snapshot_failures() {
            $crate::suite::snapshot_failures(&$factory).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn conformance_liveness() {
            $crate::suite::liveness(&$factory).await;
        }
    };
}
