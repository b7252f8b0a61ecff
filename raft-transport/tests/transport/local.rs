//! The conformance suite on the in-process network, and its own checks:
//! faults, manual stepping, replay from a seed.

use std::sync::Arc;

use raft_transport::local::{LocalNetwork, LocalTransport};
use raft_transport::{PeerState, Transport, TransportError};

use crate::suite::{Factory, Harness};
use crate::support::{numbered, seq_of, Recorder};

pub struct LocalFactory;

pub struct LocalHarness {
    net: LocalNetwork,
    nodes: Vec<(Arc<LocalTransport>, Arc<Recorder>)>,
}

#[async_trait::async_trait]
impl Factory for LocalFactory {
    type H = LocalHarness;
    async fn start(&self, nodes: u64) -> LocalHarness {
        let net = LocalNetwork::builder()
            .seed(1)
            .queue_capacity(256)
            .auto_deliver(true)
            .build();
        let nodes = (1..=nodes)
            .map(|id| {
                let endpoint = net.endpoint(id);
                let recorder = Recorder::new();
                endpoint.set_handler(recorder.clone());
                (endpoint, recorder)
            })
            .collect();
        LocalHarness { net, nodes }
    }
}

#[async_trait::async_trait]
impl Harness for LocalHarness {
    fn node(&self, id: u64) -> Arc<dyn Transport> {
        self.nodes[id as usize - 1].0.clone()
    }
    fn recorder(&self, id: u64) -> Arc<Recorder> {
        self.nodes[id as usize - 1].1.clone()
    }
    async fn take_down(&mut self, id: u64) {
        self.net.isolate(id);
    }
    async fn bring_back(&mut self, _id: u64) {
        self.net.heal();
    }
    fn snapshot_bound(&self) -> u64 {
        // Window of 4 chunks, one in the producer's hand, one in the handler's.
        6 << 20
    }
    async fn finish(self) {}
}

crate::conformance!(crate::local::LocalFactory);

/// Manual mode: nothing moves until stepped; delays are counted in steps
/// and keep order per pair.
#[test]
fn manual_stepping_and_delays() {
    let net = LocalNetwork::new(3);
    let (a, b) = (net.endpoint(1), net.endpoint(2));
    let inbox = Recorder::new();
    b.set_handler(inbox.clone());
    net.set_delay(2..=4);
    for seq in 0..50 {
        a.send(2, vec![numbered(1, seq, 8)]).unwrap();
    }
    assert_eq!(net.deliver(usize::MAX), 0, "nothing is due before a step");
    assert_eq!(net.step(), 0, "the shortest delay is two steps");
    let delivered = net.run_until_idle(100);
    assert_eq!(delivered, 50);
    let seqs: Vec<u64> = inbox.messages_from(1).iter().map(seq_of).collect();
    assert_eq!(
        seqs,
        (0..50).collect::<Vec<_>>(),
        "delays never reorder a pair"
    );
    assert!(net.clock() >= 4);
}

/// Drops, duplicates and reorders come from the seed: the same seed and the
/// same calls give the same deliveries; the counters add up.
#[test]
fn faults_replay_from_the_seed() {
    fn run(seed: u64) -> (Vec<u64>, raft_transport::local::PairStats) {
        let net = LocalNetwork::new(seed);
        let (a, b) = (net.endpoint(1), net.endpoint(2));
        let inbox = Recorder::new();
        b.set_handler(inbox.clone());
        net.set_drop_rate(0.2);
        net.set_duplicate_rate(0.1);
        net.set_reorder_rate(0.2);
        net.set_delay(0..=3);
        for seq in 0..500 {
            a.send(2, vec![numbered(1, seq, 8)]).unwrap();
            if seq % 10 == 0 {
                net.step();
            }
        }
        net.run_until_idle(1_000);
        let seqs = inbox.messages_from(1).iter().map(seq_of).collect();
        (seqs, net.pair_stats(1, 2))
    }
    let (first, stats) = run(11);
    let (again, stats_again) = run(11);
    assert_eq!(first, again, "same seed, same run");
    assert_eq!(stats, stats_again);
    let (other, _) = run(12);
    assert_ne!(first, other, "another seed, another run");
    assert_eq!(stats.frames_sent, 500);
    assert!(
        stats.frames_dropped > 50 && stats.frames_dropped < 150,
        "{stats:?}"
    );
    // Every frame sent is dropped or delivered; duplicates are delivered twice.
    let duplicates = stats.frames_delivered + stats.frames_dropped - stats.frames_sent;
    assert!(duplicates > 10, "{stats:?}");
    assert_eq!(first.len() as u64, stats.frames_delivered);
    let reordered = first.windows(2).filter(|pair| pair[0] > pair[1]).count();
    assert!(reordered > 10, "reorder rate shows: {reordered}");
}

/// Partitions cut both ways, one-way cuts one way, isolation all ways;
/// liveness follows and heal restores everything.
#[test]
fn partitions_and_liveness() {
    let net = LocalNetwork::new(5);
    let nodes: Vec<_> = (1..=3).map(|id| net.endpoint(id)).collect();
    let inboxes: Vec<_> = nodes
        .iter()
        .map(|node| {
            let inbox = Recorder::new();
            node.set_handler(inbox.clone());
            inbox
        })
        .collect();

    net.partition(&[1], &[2, 3]);
    assert!(matches!(
        nodes[0].send(2, vec![numbered(1, 1, 8)]),
        Err(TransportError::Unreachable { to: 2 })
    ));
    assert!(matches!(
        nodes[2].send(1, vec![numbered(1, 1, 8)]),
        Err(TransportError::Unreachable { to: 1 })
    ));
    nodes[1].send(3, vec![numbered(1, 1, 8)]).unwrap();
    net.step();
    assert_eq!(inboxes[2].message_count(), 1);
    assert_eq!(inboxes[0].last_state(2), Some(PeerState::Unreachable));
    assert_eq!(inboxes[1].last_state(1), Some(PeerState::Unreachable));
    assert_eq!(
        inboxes[1].last_state(3),
        None,
        "nothing said about a peer that stays reachable"
    );

    net.heal();
    net.step();
    assert_eq!(inboxes[0].last_state(2), Some(PeerState::Reachable));

    net.partition_one_way(1, 2);
    net.step();
    assert!(nodes[0].send(2, vec![numbered(1, 2, 8)]).is_err());
    nodes[1].send(1, vec![numbered(1, 3, 8)]).unwrap();
    net.step();
    assert_eq!(
        inboxes[0].messages_from(2).len(),
        1,
        "the other way still works"
    );
    assert_eq!(
        inboxes[1].last_state(1),
        Some(PeerState::Unreachable),
        "2 stops hearing 1"
    );
    assert_eq!(
        inboxes[0].last_state(2),
        Some(PeerState::Reachable),
        "1 still hears 2"
    );

    net.heal();
    net.isolate(3);
    net.step();
    assert_eq!(inboxes[2].last_state(1), Some(PeerState::Unreachable));
    assert_eq!(inboxes[2].last_state(2), Some(PeerState::Unreachable));
    assert_eq!(inboxes[0].last_state(3), Some(PeerState::Unreachable));
    assert!(nodes[2].send(1, vec![numbered(1, 4, 8)]).is_err());
    assert_eq!(nodes[2].stats().peer(1).batches_dropped, 2);
}

/// A frame cut while in flight is dropped and counted; a frame for a node
/// without a handler is counted as unhandled.
#[test]
fn in_flight_cuts_and_missing_handlers() {
    let net = LocalNetwork::new(9);
    let (a, b) = (net.endpoint(1), net.endpoint(2));
    a.send(2, vec![numbered(1, 1, 8)]).unwrap();
    net.step();
    assert_eq!(net.pair_stats(1, 2).frames_unhandled, 1);
    assert_eq!(b.stats().rejected.no_handler, 1);
    b.set_handler(Recorder::new());
    a.send(2, vec![numbered(1, 2, 8)]).unwrap();
    net.isolate(2);
    net.step();
    let stats = net.pair_stats(1, 2);
    assert_eq!(
        (
            stats.frames_sent,
            stats.frames_dropped,
            stats.frames_delivered
        ),
        (2, 1, 0)
    );
}

/// The scheduler's tests count frames per peer per round.
#[test]
fn counters_per_pair() {
    let net = LocalNetwork::new(1);
    let nodes: Vec<_> = (1..=3).map(|id| net.endpoint(id)).collect();
    for node in &nodes {
        node.set_handler(Recorder::new());
    }
    nodes[0]
        .send(2, (0..10).map(|g| numbered(g, g, 8)).collect())
        .unwrap();
    nodes[0]
        .send(3, (0..4).map(|g| numbered(g, g, 8)).collect())
        .unwrap();
    net.step();
    let to_2 = net.pair_stats(1, 2);
    assert_eq!(
        (
            to_2.frames_sent,
            to_2.messages_sent,
            to_2.frames_delivered,
            to_2.messages_delivered
        ),
        (1, 10, 1, 10)
    );
    assert_eq!(net.pair_stats(1, 3).messages_delivered, 4);
    assert_eq!(
        net.pair_stats(2, 3),
        Default::default(),
        "no traffic between 2 and 3"
    );
    let stats = nodes[0].stats();
    assert_eq!(stats.total().messages_sent, 14);
    assert_eq!(nodes[1].stats().peer(1).messages_delivered, 10);
}

/// Snapshots move with the steps, on the stepping thread (no runtime
/// needed, nothing moves between steps), and a cut aborts one in progress.
#[test]
fn snapshots_move_with_steps_and_a_cut_aborts_them() {
    use raft_transport::OutgoingSnapshot;
    use std::sync::mpsc;

    let net = LocalNetwork::new(2);
    let (a, b) = (net.endpoint(1), net.endpoint(2));
    let inbox = Recorder::new();
    b.set_handler(inbox.clone());
    let stepping_thread = std::thread::current().id();
    let send = |chunks: Box<dyn raft_transport::SnapshotChunks>| {
        let (sender, receiver) = mpsc::channel();
        let snapshot = OutgoingSnapshot {
            group_id: 3,
            header: bytes::Bytes::from_static(b"h"),
            chunks,
        };
        a.send_snapshot(
            2,
            snapshot,
            Box::new(move |result| {
                assert_eq!(
                    std::thread::current().id(),
                    stepping_thread,
                    "done runs on the stepping thread"
                );
                sender.send(result).unwrap();
            }),
        );
        receiver
    };
    let run = |receiver: mpsc::Receiver<Result<(), TransportError>>| {
        for _ in 0..1_000 {
            if let Ok(result) = receiver.try_recv() {
                return result;
            }
            net.step();
        }
        panic!("snapshot did not finish in 1000 steps");
    };
    let source =
        crate::support::MeteredSource::new(1 << 16, 64, Arc::clone(&inbox.snapshot_consumed));
    let peak = Arc::clone(&source.max_in_flight);
    let receiver = send(Box::new(source));
    assert!(receiver.try_recv().is_err(), "nothing moves before a step");
    assert_eq!(
        inbox
            .snapshot_consumed
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    run(receiver).expect("accepted");
    assert_eq!(inbox.received.lock().snapshots[0].3, 64 << 16);
    assert!(
        peak.load(std::sync::atomic::Ordering::SeqCst) <= 6 << 16,
        "window bounds memory"
    );

    /// A source that cuts the network after its second chunk.
    struct CuttingSource {
        net: LocalNetwork,
        next: u64,
    }
    impl raft_transport::SnapshotChunks for CuttingSource {
        fn next_chunk(&mut self) -> std::io::Result<Option<bytes::Bytes>> {
            if self.next == 2 {
                self.net.isolate(2);
            }
            self.next += 1;
            Ok(Some(bytes::Bytes::from(
                (self.next - 1).to_be_bytes().to_vec(),
            )))
        }
    }
    let result = run(send(Box::new(CuttingSource {
        net: net.clone(),
        next: 0,
    })));
    assert!(
        matches!(result, Err(TransportError::Unreachable { to: 2 })),
        "{result:?}"
    );
    assert_eq!(
        inbox.received.lock().snapshots.len(),
        1,
        "the cut snapshot was not accepted"
    );
    // To a cut-off node: refused at the next step, not inside the call.
    let receiver = send(Box::new(std::iter::empty::<bytes::Bytes>()));
    assert!(receiver.try_recv().is_err());
    assert!(matches!(
        run(receiver),
        Err(TransportError::Unreachable { to: 2 })
    ));
    assert_eq!(a.stats().peer(2).snapshots_failed, 2);
    assert_eq!(b.stats().peer(1).snapshots_received, 1);
}

/// The same seed and the same calls replay a snapshot transfer step by step.
#[test]
fn snapshot_progress_replays() {
    fn run() -> Vec<u64> {
        let net = LocalNetwork::builder().seed(4).snapshot_window(2).build();
        let (a, b) = (net.endpoint(1), net.endpoint(2));
        let inbox = Recorder::new();
        b.set_handler(inbox.clone());
        let source =
            crate::support::MeteredSource::new(1024, 40, Arc::clone(&inbox.snapshot_consumed));
        let snapshot = raft_transport::OutgoingSnapshot {
            group_id: 1,
            header: bytes::Bytes::new(),
            chunks: Box::new(source),
        };
        a.send_snapshot(2, snapshot, Box::new(|result| result.unwrap()));
        (0..5)
            .map(|_| {
                net.step();
                inbox
                    .snapshot_consumed
                    .load(std::sync::atomic::Ordering::SeqCst)
            })
            .collect()
    }
    let first = run();
    assert_eq!(first, run());
    assert_eq!(*first.last().unwrap(), 40 * 1024);
}

/// Waits (up to 10 s, checking every millisecond) until `condition` holds.
fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Direct delivery: with a pump and no fault, a frame reaches the handler
/// on the sender's thread before `send` returns; while a fault is set,
/// frames go through the pump; a pair's frames stay in order across the
/// switch both ways.
#[test]
fn direct_delivery_while_fault_free() {
    let net = LocalNetwork::builder()
        .seed(6)
        .auto_deliver(true)
        .direct_delivery(true)
        .build();
    let (a, b) = (net.endpoint(1), net.endpoint(2));
    let inbox = Recorder::new();
    b.set_handler(inbox.clone());
    let me = std::thread::current().id();

    a.send(2, vec![numbered(1, 0, 8)]).unwrap();
    assert_eq!(inbox.message_count(), 1, "delivered before send returned");
    assert_eq!(inbox.received.lock().delivered_on, vec![me]);

    net.set_delay(1..=3);
    for seq in 1..=50 {
        a.send(2, vec![numbered(1, seq, 8)]).unwrap();
    }
    assert!(inbox.message_count() < 51, "a delay queues every frame");
    net.set_delay(0..=0);
    for seq in 51..=100 {
        a.send(2, vec![numbered(1, seq, 8)]).unwrap();
    }
    wait_for("all 101 frames", || inbox.message_count() == 101);
    let seqs: Vec<u64> = inbox.messages_from(1).iter().map(seq_of).collect();
    assert_eq!(
        seqs,
        (0..=100).collect::<Vec<_>>(),
        "in order across the switch"
    );
    let on_pump = inbox
        .received
        .lock()
        .delivered_on
        .iter()
        .filter(|thread| **thread != me)
        .count();
    assert!(on_pump >= 50, "the delayed frames went through the pump");

    // Once the queue has drained and the pump has returned from the last
    // handler call, frames are direct again (the pump may still be finishing
    // that call when the recorder has seen the frame: then a frame queues).
    let mut next = 101;
    wait_for("a direct frame again", || {
        a.send(2, vec![numbered(1, next, 8)]).unwrap();
        next += 1;
        let received = inbox.received.lock();
        received.delivered_on.len() == next as usize && received.delivered_on.last() == Some(&me)
    });
    wait_for("every frame", || inbox.message_count() == next as usize);
    let seqs: Vec<u64> = inbox.messages_from(1).iter().map(seq_of).collect();
    assert_eq!(seqs, (0..next).collect::<Vec<_>>(), "still in order");
    let stats = net.pair_stats(1, 2);
    assert_eq!((stats.frames_sent, stats.frames_delivered), (next, next));

    // A cut link refuses at once, as without direct delivery.
    net.partition(&[1], &[2]);
    assert!(a.send(2, vec![numbered(1, next, 8)]).is_err());
    assert_eq!(inbox.message_count(), next as usize);
}

/// One delivery a [`Rendezvous`] saw: the sender, the thread it ran on, and
/// whether the expected number of deliveries were inside the handler at once.
type Visit = (u64, std::thread::ThreadId, bool);

/// What a [`Rendezvous`] has seen: deliveries inside so far, and each visit.
#[derive(Default)]
struct Inside {
    count: usize,
    visits: Vec<Visit>,
}

/// A handler that holds each delivery until `expected` deliveries are inside
/// it at once (or a deadline passes), and records the thread of each.
struct Rendezvous {
    expected: usize,
    inside: parking_lot::Mutex<Inside>,
    arrived: parking_lot::Condvar,
}

#[async_trait::async_trait]
impl raft_transport::MessageHandler for Rendezvous {
    fn on_messages(&self, from: u64, _batch: Vec<raft_transport::GroupMessage>) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut inside = self.inside.lock();
        inside.count += 1;
        self.arrived.notify_all();
        while inside.count < self.expected && std::time::Instant::now() < deadline {
            self.arrived.wait_until(&mut inside, deadline);
        }
        let met = inside.count >= self.expected;
        inside.visits.push((from, std::thread::current().id(), met));
    }

    fn on_peer_state(&self, _peer: u64, _state: PeerState) {}

    async fn on_snapshot(&self, _snapshot: raft_transport::IncomingSnapshot) -> Result<(), String> {
        Err("no snapshots here".into())
    }
}

/// Direct sends of different pairs do not wait for each other: two senders'
/// frames to one node are inside its handler at the same time, each on its
/// sender's thread (neither was queued for the pump).
#[test]
fn direct_sends_of_different_pairs_run_side_by_side() {
    let net = LocalNetwork::builder()
        .seed(9)
        .auto_deliver(true)
        .direct_delivery(true)
        .build();
    let (a, b, c) = (net.endpoint(1), net.endpoint(2), net.endpoint(3));
    let handler = Arc::new(Rendezvous {
        expected: 2,
        inside: parking_lot::Mutex::new(Inside::default()),
        arrived: parking_lot::Condvar::new(),
    });
    c.set_handler(handler.clone());
    let senders = std::thread::scope(|scope| {
        let one = scope.spawn(|| {
            a.send(3, vec![numbered(1, 0, 8)]).unwrap();
            std::thread::current().id()
        });
        let two = scope.spawn(|| {
            b.send(3, vec![numbered(2, 0, 8)]).unwrap();
            std::thread::current().id()
        });
        [one.join().unwrap(), two.join().unwrap()]
    });
    let mut seen = handler.inside.lock().visits.clone();
    seen.sort_by_key(|(from, _, _)| *from);
    assert_eq!(
        seen,
        vec![(1, senders[0], true), (2, senders[1], true)],
        "both inside the handler at once, each on its sender's thread"
    );
}

/// Without the option, or without a pump, every frame goes through the queue.
#[test]
fn direct_delivery_is_opt_in_and_needs_a_pump() {
    let me = std::thread::current().id();
    let queued = LocalNetwork::builder().auto_deliver(true).build();
    let (a, b) = (queued.endpoint(1), queued.endpoint(2));
    let inbox = Recorder::new();
    b.set_handler(inbox.clone());
    a.send(2, vec![numbered(1, 0, 8)]).unwrap();
    wait_for("the frame", || inbox.message_count() == 1);
    assert_ne!(inbox.received.lock().delivered_on, vec![me]);

    let manual = LocalNetwork::builder().direct_delivery(true).build();
    let (a, b) = (manual.endpoint(1), manual.endpoint(2));
    let inbox = Recorder::new();
    b.set_handler(inbox.clone());
    a.send(2, vec![numbered(1, 0, 8)]).unwrap();
    assert_eq!(inbox.message_count(), 0, "manual mode waits for a step");
    assert_eq!(manual.step(), 1);
    assert_eq!(inbox.message_count(), 1);
}

/// Several threads sending on one pair while faults come and go: each
/// sender's frames arrive exactly once and in its order.
#[test]
fn direct_delivery_keeps_each_senders_order_under_concurrency() {
    let net = LocalNetwork::builder()
        .seed(8)
        .queue_capacity(1 << 16)
        .auto_deliver(true)
        .direct_delivery(true)
        .build();
    let (a, b) = (net.endpoint(1), net.endpoint(2));
    let inbox = Recorder::new();
    b.set_handler(inbox.clone());
    const SENDERS: u64 = 4;
    const PER_SENDER: u64 = 2_000;
    std::thread::scope(|scope| {
        for sender in 0..SENDERS {
            let a = Arc::clone(&a);
            scope.spawn(move || {
                for seq in 0..PER_SENDER {
                    // The group id names the sender.
                    a.send(2, vec![numbered(sender, seq, 8)]).unwrap();
                }
            });
        }
        for round in 0..20u64 {
            if round % 2 == 0 {
                net.set_delay(0..=2);
            } else {
                net.set_delay(0..=0);
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        net.set_delay(0..=0);
    });
    wait_for("every frame", || {
        inbox.message_count() == (SENDERS * PER_SENDER) as usize
    });
    let messages = inbox.messages_from(1);
    for sender in 0..SENDERS {
        let seqs: Vec<u64> = messages
            .iter()
            .filter(|message| message.group_id == sender)
            .map(seq_of)
            .collect();
        assert_eq!(seqs, (0..PER_SENDER).collect::<Vec<_>>(), "sender {sender}");
    }
}

/// A pump with nothing in flight sleeps until woken instead of stepping
/// every millisecond (an idle in-process cluster costs no CPU); frames sent
/// later, delayed ones included, still arrive.
#[test]
fn an_idle_pump_sleeps_until_a_frame_is_sent() {
    let net = LocalNetwork::builder().seed(11).auto_deliver(true).build();
    let (a, b) = (net.endpoint(1), net.endpoint(2));
    let inbox = Recorder::new();
    b.set_handler(inbox.clone());
    a.send(2, vec![numbered(1, 0, 8)]).unwrap();
    wait_for("the first frame", || inbox.message_count() == 1);
    let before = net.clock();
    // An observation window, not a wait for an event: a pump stepping every
    // millisecond moves the clock about 50 steps in it.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let idle_steps = net.clock() - before;
    assert!(
        idle_steps <= 2,
        "idle pump took {idle_steps} steps in 50 ms"
    );

    net.set_delay(3..=5);
    for seq in 1..=10 {
        a.send(2, vec![numbered(1, seq, 8)]).unwrap();
    }
    wait_for("the delayed frames", || inbox.message_count() == 11);
    let seqs: Vec<u64> = inbox.messages_from(1).iter().map(seq_of).collect();
    assert_eq!(seqs, (0..=10).collect::<Vec<_>>());
}
