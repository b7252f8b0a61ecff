//! Structural properties, checked with counters: how many syncs and frames a round
//! costs, and what idle groups cost.

use std::sync::atomic::Ordering;
use std::time::Duration;

use raft_multi::testing::MemoryStateMachine;
use raft_multi::{GroupSpec, MultiConfig};

use crate::harness::{block, block_timeout, wait_until, Cluster, Engine};

#[test]
fn one_sync_per_round_and_one_frame_per_peer_per_round() {
    let mut c = Cluster::new(3, Engine::Wal);
    for g in 1..=64u64 {
        c.create_group(g, &[1, 2, 3]);
    }
    for g in 1..=64u64 {
        c.wait_leader(g);
    }
    // Many groups proposing at once on every leader.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut tasks = Vec::new();
    for round in 0..5u32 {
        for g in 1..=64u64 {
            // Leadership may move under load: wait for the current leader.
            let leader = c.wait_leader(g);
            let multi = c.multi(leader).clone();
            tasks.push(
                runtime
                    .spawn(async move { multi.propose(g, format!("{round}").into_bytes()).await }),
            );
        }
    }
    let ok = runtime.block_on(async {
        let mut ok = 0;
        for t in tasks {
            if matches!(t.await, Ok(Ok(_))) {
                ok += 1;
            }
        }
        ok
    });
    assert!(ok >= 300, "only {ok} of 320 proposals succeeded");
    for n in 1..=3u64 {
        let m = c.multi(n).metrics();
        // Every write is one batch, synced by at most one sync (a sync covers every
        // write made while the one before it ran), and there is at most one per round.
        assert!(m.syncs > 0 && m.syncs <= m.writes, "node {n}: {m:?}");
        assert!(m.writes <= m.rounds, "node {n}: {m:?}");
        // Batches carry many groups: fewer syncs than group-writes, and bursts share one.
        assert!(
            m.groups_written > m.writes,
            "node {n}: no batching across groups: {m:?}"
        );
        // One frame per peer per round at most, and frames carry many messages.
        assert!(m.frames_sent <= m.rounds * 2, "node {n}: {m:?}");
        assert!(
            m.messages_sent > m.frames_sent * 2,
            "node {n}: no batching of messages: {m:?}"
        );
        for peer in (1..=3u64).filter(|&p| p != n) {
            let pair = c.net.pair_stats(n, peer);
            assert!(
                pair.frames_sent <= m.rounds,
                "node {n} -> {peer}: {pair:?} in {} rounds",
                m.rounds
            );
        }
    }
}

/// Polls a call once, which queues its command (the send happens before its first
/// await); the returned future then waits for the answer.
fn queued<F: std::future::Future>(future: F) -> std::pin::Pin<Box<F>> {
    let mut future = Box::pin(future);
    block(async {
        let _ = futures::poll!(future.as_mut());
    });
    future
}

#[test]
fn a_burst_of_many_groups_shares_one_write_and_one_sync() {
    let config = |id| {
        MultiConfig::new(id)
            .workers(1)
            .ticks(1, 10)
            .hibernate_after_ticks(0)
    };
    let engine = raft_storage::LogEngine::open(raft_storage::EngineConfig::new(
        tempfile::tempdir().unwrap().keep(),
    ))
    .unwrap();
    let net = raft_transport::local::LocalNetwork::new(1);
    let multi = raft_multi::MultiRaft::start(config(1), engine, net.endpoint(1)).unwrap();
    let mut gate = None;
    for g in 0..65u64 {
        let fsm = MemoryStateMachine::new();
        if g == 0 {
            gate = Some(fsm.gate());
        }
        block(multi.create_group(GroupSpec::new(g, vec![1], Box::new(fsm)))).unwrap();
        block(multi.campaign(g)).unwrap();
    }
    let gate = gate.unwrap();
    wait_until("every group to lead", || {
        (0..65u64).all(|g| multi.is_leader(g)).then_some(())
    })
    .unwrap();
    // Stall the only worker inside group 0's apply, queue one proposal for each of the
    // 64 other groups, then let it go: the next round takes all of them.
    gate.close();
    let stalled = queued(multi.propose(0, b"stall".to_vec()));
    wait_until("the worker to stall", || gate.has_waiter().then_some(())).unwrap();
    let burst: Vec<_> = (1..65u64)
        .map(|g| queued(multi.propose(g, b"burst".to_vec())))
        .collect();
    gate.open();
    assert!(block(stalled).is_ok());
    for answer in burst {
        assert!(block(answer).is_ok());
    }
    let m = multi.metrics();
    assert!(m.syncs > 0 && m.syncs <= m.writes, "{m:?}");
    assert!(
        m.max_groups_per_write >= 64,
        "the burst did not share one write: {m:?}"
    );
    multi.shutdown();
}

#[test]
fn a_thousand_hibernated_groups_exchange_no_messages() {
    let config = |id| {
        MultiConfig::new(id)
            .workers(2)
            .ticks(1, 10)
            .hibernate_after_ticks(3)
    };
    let mut c = Cluster::with_config(3, Engine::Memory, config);
    for g in 1..=1000u64 {
        c.create_group(g, &[1, 2, 3]);
    }
    for g in (1..=1000u64).step_by(97) {
        c.wait_leader(g);
    }
    // Asleep everywhere, and quiet: the gauge moves while a worker's round runs, before
    // that round's last sends (a sleeping follower still answers a heartbeat that was
    // in flight). So wait until two ticks pass with all asleep and nothing sent, each
    // reading taken after a round trip through every worker.
    let sent = |c: &Cluster| -> Vec<u64> {
        (1..=3)
            .map(|n| {
                block(c.multi(n).statuses());
                c.multi(n).metrics().messages_sent
            })
            .collect()
    };
    wait_until("all 1000 groups asleep on every node, and quiet", || {
        let first = sent(&c);
        let ticks = c.ticks.load(Ordering::SeqCst);
        wait_until("2 ticks", || {
            (c.ticks.load(Ordering::SeqCst) >= ticks + 2).then_some(())
        })
        .ok()?;
        let asleep = (1..=3).all(|n| c.multi(n).metrics().hibernated == 1000);
        (asleep && sent(&c) == first).then_some(())
    })
    .unwrap();
    let before: Vec<_> = pairs().map(|(a, b)| c.net.pair_stats(a, b)).collect();
    let sent_before: Vec<u64> = (1..=3)
        .map(|n| c.multi(n).metrics().messages_sent)
        .collect();
    // Let 30 ticks pass on every node.
    let ticks = c.ticks.load(Ordering::SeqCst);
    wait_until("30 ticks", || {
        (c.ticks.load(Ordering::SeqCst) >= ticks + 30).then_some(())
    })
    .unwrap();
    let after: Vec<_> = pairs().map(|(a, b)| c.net.pair_stats(a, b)).collect();
    let sent_after: Vec<u64> = (1..=3)
        .map(|n| c.multi(n).metrics().messages_sent)
        .collect();
    assert_eq!(
        sent_before, sent_after,
        "hibernated groups sent raft messages"
    );
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(
            b.messages_sent, a.messages_sent,
            "group messages crossed the network while idle"
        );
    }
    // A proposal wakes its group (on every replica) and commits; the group may fall
    // asleep again right after, so the wake-ups are counted rather than observed.
    let woken: Vec<u64> = (1..=3).map(|n| c.multi(n).metrics().wakeups).collect();
    c.propose(500, b"wake up");
    c.wait_converged(500, 1);
    for n in 1..=3u64 {
        assert!(
            c.multi(n).metrics().wakeups > woken[n as usize - 1],
            "node {n} never woke group 500"
        );
    }
}

/// Proposals that reach a leader in one round go to raft as one proposal: each
/// follower gets them in one append and answers once (not once per proposal), and
/// they take consecutive log indexes in the order they came.
#[test]
fn proposals_of_one_round_travel_in_one_append() {
    // One worker per node and no ticks: only the proposals make messages.
    let config = |id| {
        MultiConfig::new(id)
            .workers(1)
            .ticks(1, 10)
            .hibernate_after_ticks(0)
    };
    let net = raft_transport::local::LocalNetwork::builder()
        .auto_deliver(true)
        .direct_delivery(true)
        .build();
    let nodes: Vec<_> = (1..=3u64)
        .map(|id| {
            let engine = raft_storage::LogEngine::in_memory();
            raft_multi::MultiRaft::start(config(id), engine, net.endpoint(id)).unwrap()
        })
        .collect();
    let mut gate = None;
    for (i, multi) in nodes.iter().enumerate() {
        for g in 0..2u64 {
            let fsm = MemoryStateMachine::new();
            if i == 0 && g == 0 {
                gate = Some(fsm.gate());
            }
            block(multi.create_group(GroupSpec::new(g, vec![1, 2, 3], Box::new(fsm)))).unwrap();
        }
    }
    let (leader, gate) = (&nodes[0], gate.unwrap());
    for g in 0..2u64 {
        block(leader.campaign(g)).unwrap();
        wait_until("node 1 to lead", || leader.is_leader(g).then_some(())).unwrap();
        // Commits of this term: the followers' progress is past probing.
        block(leader.propose(g, b"first".to_vec())).unwrap();
    }
    // Stall the leader's only worker inside group 0's apply, queue a burst for
    // group 1, then let it go.
    gate.close();
    let stalled = queued(leader.propose(0, b"stall".to_vec()));
    wait_until("the worker to stall", || gate.has_waiter().then_some(())).unwrap();
    let sent: Vec<u64> = nodes.iter().map(|n| n.metrics().messages_sent).collect();
    const BURST: usize = 100;
    let burst: Vec<_> = (0..BURST)
        .map(|i| queued(leader.propose(1, format!("burst-{i}").into_bytes())))
        .collect();
    gate.open();
    assert!(block(stalled).is_ok());
    let indexes: Vec<u64> = burst
        .into_iter()
        .map(|answer| {
            let response = block(answer).unwrap();
            MemoryStateMachine::decode_response(&response).unwrap()
        })
        .collect();
    let first = indexes[0];
    assert_eq!(
        indexes,
        (first..first + BURST as u64).collect::<Vec<_>>(),
        "consecutive indexes in the order proposed"
    );
    // One proposal per message would be 2 x 100 appends from the leader and 100
    // answers from each follower; one append per follower per round, plus the few
    // that carry commit indexes and group 0's stalled proposal, is far fewer.
    for (n, multi) in nodes.iter().enumerate() {
        let delta = multi.metrics().messages_sent - sent[n];
        assert!(
            delta <= 16,
            "node {}: {delta} messages for a burst of {BURST}",
            n + 1
        );
    }
    for multi in &nodes {
        multi.shutdown();
    }
}

fn pairs() -> impl Iterator<Item = (u64, u64)> {
    (1..=3u64).flat_map(|a| (1..=3u64).filter(move |&b| b != a).map(move |b| (a, b)))
}

/// Polls `driver` until `future` (a call on a manually driven scheduler) answers.
fn drive<F: std::future::Future>(driver: &mut raft_multi::Driver, future: F) -> F::Output {
    let mut future = queued(future);
    for _ in 0..1_000 {
        if let std::task::Poll::Ready(out) = block(async { futures::poll!(future.as_mut()) }) {
            return out;
        }
        driver.poll();
    }
    panic!("no answer after 1000 polls");
}

/// A memory state machine whose `flush` takes a few milliseconds, like a partition
/// syncing its files and writing a checkpoint.
struct SlowFlush(MemoryStateMachine);

impl raft_fsm::StateMachine for SlowFlush {
    fn apply(
        &mut self,
        entry: &raft_fsm::LogEntry<'_>,
    ) -> Result<bytes::Bytes, raft_fsm::FsmError> {
        self.0.apply(entry)
    }
    fn applied_index(&self) -> u64 {
        self.0.applied_index()
    }
    fn durable_index(&self) -> u64 {
        self.0.durable_index()
    }
    fn flush(&mut self) -> Result<u64, raft_fsm::FsmError> {
        std::thread::sleep(std::time::Duration::from_millis(4));
        self.0.flush()
    }
    fn snapshot(&self) -> Result<Box<dyn raft_fsm::SnapshotSource>, raft_fsm::FsmError> {
        self.0.snapshot()
    }
    fn restore(
        &mut self,
        meta: raft_fsm::SnapshotMeta,
        chunks: &mut dyn Iterator<Item = Result<bytes::Bytes, raft_fsm::FsmError>>,
    ) -> Result<(), raft_fsm::FsmError> {
        self.0.restore(meta, chunks)
    }
}

/// When a purge asks every group holding the log back to compact at once, the
/// worker spreads those compactions (each flushes a state machine) over its turns
/// instead of running them all in one and stalling every group behind it.
#[test]
fn a_purge_spreads_the_compactions_it_asks_for_over_turns() {
    const GROUPS: u64 = 12;
    let dir = tempfile::tempdir().unwrap();
    let engine = raft_storage::LogEngine::open(
        raft_storage::EngineConfig::new(dir.path())
            .segment_size(16 << 10)
            .purge_lag_segments(1)
            .rewrite_threshold(0),
    )
    .unwrap();
    let net = raft_transport::local::LocalNetwork::new(1);
    let config = MultiConfig::new(1)
        .workers(1)
        .ticks(1, 10)
        .hibernate_after_ticks(0)
        .maintenance_ticks(1);
    let (multi, mut driver) =
        raft_multi::MultiRaft::start_manual(config, engine, net.endpoint(1)).unwrap();
    for g in 0..GROUPS {
        let fsm = SlowFlush(MemoryStateMachine::new());
        drive(
            &mut driver,
            multi.create_group(GroupSpec::new(g, vec![1], Box::new(fsm))),
        )
        .unwrap();
        drive(&mut driver, multi.campaign(g)).unwrap();
    }
    // Every group writes into the first segments: each holds back their purge.
    for round in 0..4 {
        for g in 0..GROUPS {
            let data = vec![round as u8; 2 << 10];
            drive(&mut driver, multi.propose(g, data)).unwrap();
        }
    }
    let before = multi.metrics().compactions;
    // One tick runs maintenance: the purge asks every group to compact.
    multi.tick();
    let mut per_turn = Vec::new();
    for _ in 0..100 {
        let seen = multi.metrics().compactions;
        if !driver.poll() {
            break;
        }
        per_turn.push(multi.metrics().compactions - seen);
    }
    let done: u64 = per_turn.iter().sum();
    assert_eq!(
        multi.metrics().compactions - before,
        done,
        "compactions outside the polls"
    );
    assert!(done >= GROUPS, "only {done} compactions: {per_turn:?}");
    // Each flush takes longer than a turn's budget: one per turn.
    assert!(
        per_turn.iter().all(|&n| n <= 1),
        "several slow compactions in one turn: {per_turn:?}"
    );
    multi.shutdown();
    driver.poll();
}

#[test]
fn a_worker_goes_on_while_its_sync_runs_and_answers_no_proposal_before_it() {
    // Pipelined whatever this disk's sync time.
    let config = MultiConfig::new(1)
        .workers(1)
        .ticks(1, 10)
        .hibernate_after_ticks(0)
        .inline_sync_below(Duration::ZERO);
    let engine = raft_storage::LogEngine::open(raft_storage::EngineConfig::new(
        tempfile::tempdir().unwrap().keep(),
    ))
    .unwrap();
    let net = raft_transport::local::LocalNetwork::new(1);
    let multi = raft_multi::MultiRaft::start(config, engine.clone(), net.endpoint(1)).unwrap();
    for g in 1..=2u64 {
        let fsm = MemoryStateMachine::new();
        block(multi.create_group(GroupSpec::new(g, vec![1], Box::new(fsm)))).unwrap();
        block(multi.campaign(g)).unwrap();
    }
    wait_until("both groups to lead", || {
        (1..=2u64).all(|g| multi.is_leader(g)).then_some(())
    })
    .unwrap();
    let last = engine.group(1).last_index();
    // A disk that does not finish its syncs: the round writes the proposal (readable at
    // once) and hands the sync over.
    engine.hold_syncs(true);
    let mut proposal = queued(multi.propose(1, b"held".to_vec()));
    wait_until("the proposal's entry to be written", || {
        (engine.group(1).last_index() > last).then_some(())
    })
    .unwrap();
    // The worker takes commands meanwhile: another group's status, and its proposal
    // reaches the log too.
    let status = block_timeout(multi.status(2), Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.is_ok()),
        "the worker waited for the sync"
    );
    let other_last = engine.group(2).last_index();
    let mut other = queued(multi.propose(2, b"also held".to_vec()));
    wait_until("the second proposal's entry to be written", || {
        (engine.group(2).last_index() > other_last).then_some(())
    })
    .unwrap();
    // Neither is answered while its entry is not durable.
    for future in [&mut proposal, &mut other] {
        let polled = block(async { futures::poll!(future.as_mut()) });
        assert!(polled.is_pending(), "answered before the sync");
    }
    engine.hold_syncs(false);
    assert!(block(proposal).is_ok());
    assert!(block(other).is_ok());
    let m = multi.metrics();
    assert!(m.syncs > 0 && m.syncs <= m.writes, "{m:?}");
    multi.shutdown();
}

/// Compactions keep the room a busy log grew (a busy group fills it again); a group
/// falling asleep gives it back on every replica.
#[test]
fn a_group_falling_asleep_gives_back_the_room_its_busy_log_grew() {
    let config = |id| {
        MultiConfig::new(id)
            .workers(1)
            .ticks(1, 10)
            .hibernate_after_ticks(3)
            .compact_after_entries(1)
    };
    let mut c = Cluster::with_config(3, Engine::Memory, config);
    c.create_group(1, &[1, 2, 3]);
    let leader = c.wait_leader(1);
    // A burst: hundreds of entries reach each log before the compaction that follows.
    let multi = c.multi(leader).clone();
    let burst =
        futures::future::join_all((0..600u32).map(|i| multi.propose(1, i.to_le_bytes().to_vec())));
    for answer in block(burst) {
        answer.unwrap();
    }
    c.wait_converged(1, 600);
    wait_until("the group to hibernate on every node", || {
        (1..=3)
            .all(|n| c.multi(n).metrics().hibernated == 1)
            .then_some(())
    })
    .unwrap();
    for (id, node) in &c.nodes {
        let storage = node.engine.group(1);
        let held = (storage.last_index() + 1 - storage.first_index()) as usize;
        let size = node.engine.group_memory_size(1);
        // Room for twice the entries held, their data, and the fixed part.
        let bound = 2048 + held * 2 * (std::mem::size_of::<raft::eraftpb::Entry>() + 64);
        assert!(
            size <= bound,
            "node {id}: {size} bytes for {held} entries held (bound {bound})"
        );
    }
}
