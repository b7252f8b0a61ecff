//! Structural properties, checked with counters: how many syncs and frames a round
//! costs, and what idle groups cost.

use std::sync::atomic::Ordering;

use raft_multi::testing::MemoryStateMachine;
use raft_multi::{GroupSpec, MultiConfig};

use crate::harness::{block, wait_until, Cluster, Engine};

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
        // Every write is one batch with one sync, and there is at most one per round.
        assert_eq!(m.syncs, m.writes, "node {n}: {m:?}");
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
    // Polling a call once queues its command (the send happens before its first
    // await); the returned future then waits for the answer.
    fn queued<F: std::future::Future>(future: F) -> std::pin::Pin<Box<F>> {
        let mut future = Box::pin(future);
        block(async {
            let _ = futures::poll!(future.as_mut());
        });
        future
    }
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
    assert_eq!(m.syncs, m.writes);
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
    wait_until("all 1000 groups to hibernate on every node", || {
        (1..=3)
            .all(|n| c.multi(n).metrics().hibernated == 1000)
            .then_some(())
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

fn pairs() -> impl Iterator<Item = (u64, u64)> {
    (1..=3u64).flat_map(|a| (1..=3u64).filter(move |&b| b != a).map(move |b| (a, b)))
}
