use std::time::Duration;

use raft_multi::{Error, MultiConfig};

use crate::harness::{block, default_config, wait_until, Cluster, Engine};

#[test]
fn a_stale_minority_leader_never_acknowledges() {
    let mut c = Cluster::new(3, Engine::Memory);
    c.create_group(1, &[1, 2, 3]);
    let old = c.wait_leader(1);
    c.propose(1, b"committed-before");
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|&n| n != old).collect();
    tracing::info!("--- isolate leader {old} of group 1");
    c.net.partition(&[old], &others);
    // A proposal to the isolated leader: it may accept it into its log, but it can never
    // commit it.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stale = runtime.spawn({
        let multi = c.multi(old).clone();
        async move { multi.propose(1, b"stale".to_vec()).await }
    });
    // The majority elects a new leader and commits.
    let new = wait_until("a new leader on the majority side", || {
        others.iter().copied().find(|&n| {
            block(c.multi(n).status(1)).is_ok_and(|s| s.role == raft_multi::Role::Leader)
        })
    })
    .unwrap();
    let fresh = wait_until("a commit on the majority", || {
        let r = crate::harness::block_timeout(
            c.multi(new).propose(1, b"fresh".to_vec()),
            Duration::from_secs(5),
        )?;
        r.ok()
    })
    .unwrap();
    assert!(!fresh.is_empty());
    tracing::info!("--- heal");
    c.net.heal();
    let outcome =
        runtime.block_on(async { tokio::time::timeout(Duration::from_secs(30), stale).await });
    match outcome {
        Ok(Ok(Ok(response))) => panic!("stale leader acknowledged a write: {response:?}"),
        Ok(Ok(Err(e))) => assert!(
            matches!(
                e,
                Error::NotLeader { .. }
                    | Error::Superseded { .. }
                    | Error::ProposalDropped { .. }
                    | Error::Unknown { .. }
            ),
            "unexpected error {e:?}"
        ),
        Ok(Err(join)) => panic!("proposal task failed: {join}"),
        Err(_) => panic!("the stale proposal was never answered"),
    }
    let log = c.wait_converged(1, 2);
    assert!(
        log.iter().all(|(_, d)| &d[..] != b"stale"),
        "a stale write reached the log"
    );
    assert!(log.iter().any(|(_, d)| &d[..] == b"fresh"));
}

#[test]
fn a_far_behind_follower_is_caught_up_by_snapshot() {
    let config = |id| default_config(id).compact_after_entries(10);
    let mut c = Cluster::with_config(3, Engine::Wal, config);
    c.create_group(2, &[1, 2, 3]);
    let leader = c.wait_leader(2);
    let lagger = [1, 2, 3].into_iter().find(|&n| n != leader).unwrap();
    let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|&n| n != lagger).collect();
    tracing::info!("--- cut follower {lagger} off");
    c.net.partition(&[lagger], &rest);
    for i in 0..120u32 {
        c.propose(2, format!("s{i}").as_bytes());
    }
    // The leader compacted past what the lagger has.
    let leader = c.wait_leader(2);
    wait_until("the leader to compact", || {
        let s = block(c.multi(leader).status(2)).ok()?;
        (s.first_index > 50).then_some(())
    })
    .unwrap();
    tracing::info!("--- heal: the follower needs a snapshot");
    c.net.heal();
    let log = c.wait_converged(2, 120);
    assert_eq!(log.len(), 120);
    // The restore fills the machine (which `wait_converged` reads) on its own thread
    // before the worker takes it back and counts the snapshot: wait for the count.
    let counted = wait_until("the lagger to count its snapshot", || {
        (c.multi(lagger).metrics().snapshots_received >= 1).then_some(())
    });
    assert!(
        counted.is_ok(),
        "caught up without a snapshot: lagger {lagger} leader {leader} statuses {:?}",
        (1..=3)
            .map(|n| block(c.multi(n).status(2)).unwrap())
            .collect::<Vec<_>>(),
    );
    // And it keeps replicating normally afterwards.
    c.propose(2, b"after-snapshot");
    c.wait_converged(2, 121);
}

#[test]
fn hibernated_groups_wake_and_elect_when_their_leaders_node_is_lost() {
    let config = |id| {
        MultiConfig::new(id)
            .workers(2)
            .ticks(1, 10)
            .hibernate_after_ticks(5)
    };
    let mut c = Cluster::with_config(3, Engine::Memory, config);
    for g in 1..=30u64 {
        c.create_group(g, &[1, 2, 3]);
    }
    for g in 1..=30u64 {
        c.wait_leader(g);
    }
    wait_until("every replica to hibernate", || {
        (1..=3)
            .all(|n| c.multi(n).metrics().hibernated == 30)
            .then_some(())
    })
    .unwrap();
    // Pick the node leading the most groups and cut it off.
    let mut led = std::collections::BTreeMap::<u64, Vec<u64>>::new();
    for g in 1..=30u64 {
        led.entry(c.wait_leader(g)).or_default().push(g);
    }
    let (&lost, groups) = led.iter().max_by_key(|(_, gs)| gs.len()).unwrap();
    let groups = groups.clone();
    tracing::info!(
        "--- isolate node {lost}, leader of {} hibernated groups",
        groups.len()
    );
    c.net.isolate(lost);
    let survivors: Vec<u64> = [1, 2, 3].into_iter().filter(|&n| n != lost).collect();
    for &g in &groups {
        wait_until("a new leader among the survivors", || {
            survivors.iter().copied().find(|&n| {
                block(c.multi(n).status(g)).is_ok_and(|s| s.role == raft_multi::Role::Leader)
            })
        })
        .unwrap();
    }
    assert!(survivors.iter().all(|&n| c.multi(n).metrics().wakeups > 0));
}

/// A follower whose write-ahead log is small comes back far behind: the leader catches it
/// up with appends of up to `max_size_per_msg` (1 MiB) and many in one round, more than
/// its log can take at once. It takes what fits (cutting an append to a prefix, dropping
/// one when nothing fits), compacts and purges, and catches up; it never writes past its
/// limit, which would stop its worker.
#[test]
fn a_follower_with_a_small_log_catches_up_from_far_behind() {
    const LIMIT: u64 = 1 << 20;
    let mut c = Cluster::with_engines(3, Engine::Wal, default_config, |id, dir| {
        let config = raft_storage::EngineConfig::new(dir);
        if id == 3 {
            config.segment_size(64 * 1024).max_log_bytes(LIMIT)
        } else {
            // Large segments: the leader keeps its whole log (no purge forcing a
            // compaction), so node 3 catches up by appends, not by a snapshot.
            config.segment_size(64 << 20)
        }
    });
    c.net.isolate(3);
    c.create_group(1, &[1, 2, 3]);
    let leader = c.wait_leader(1);
    assert_ne!(leader, 3, "an isolated node cannot lead");
    // Three times node 3's limit, committed by nodes 1 and 2 while it is away.
    let entries = 768;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for chunk in 0..entries / 64 {
        let multi = c.multi(leader).clone();
        let results = runtime.block_on(futures::future::join_all((0..64).map(|i| {
            let data = format!("{:04}-{}", chunk * 64 + i, "x".repeat(4000)).into_bytes();
            multi.propose(1, data)
        })));
        for result in results {
            result.expect("nodes 1 and 2 commit without node 3");
        }
    }
    c.net.heal();
    let log = c.wait_converged(1, entries);
    assert_eq!(log.len(), entries);
    let status = block(c.multi(3).status(1)).expect("node 3's worker still runs");
    assert!(status.applied >= entries as u64, "{status:?}");
    let metrics = c.multi(3).metrics();
    assert!(
        metrics.appends_trimmed + metrics.inbound_dropped > 0,
        "the limit was never reached: {metrics:?}"
    );
    let usage = c.nodes[&3].engine.usage();
    assert!(usage.used <= LIMIT, "{usage:?}");
}
