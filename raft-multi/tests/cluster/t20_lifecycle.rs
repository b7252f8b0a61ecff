use raft_multi::MembershipChange;

use crate::harness::{block, block_timeout, wait_until, Cluster, Engine};
use std::time::Duration;

#[test]
fn a_node_restarts_from_its_wal_and_catches_up() {
    let mut c = Cluster::new(3, Engine::Wal);
    c.create_group(1, &[1, 2, 3]);
    for i in 0..10u32 {
        c.propose(1, format!("a{i}").as_bytes());
    }
    c.wait_converged(1, 10);
    let leader = c.wait_leader(1);
    let victim = [1, 2, 3].into_iter().find(|&n| n != leader).unwrap();
    tracing::info!("--- stop node {victim}");
    c.stop_node(victim);
    for i in 0..10u32 {
        c.propose(1, format!("b{i}").as_bytes());
    }
    tracing::info!("--- restart node {victim}");
    c.start_node(victim);
    let all = c.wait_converged(1, 20);
    assert_eq!(all.len(), 20);
    // Its raft term and vote survived: the restarted node knows the current term.
    let status = block(c.multi(victim).status(1)).unwrap();
    assert!(status.term >= 1);
}

#[test]
fn every_node_restarts_and_the_group_keeps_its_log() {
    let mut c = Cluster::new(3, Engine::Wal);
    c.create_group(5, &[1, 2, 3]);
    for i in 0..15u32 {
        c.propose(5, format!("x{i}").as_bytes());
    }
    let before = c.wait_converged(5, 15);
    for n in 1..=3 {
        c.stop_node(n);
    }
    for n in 1..=3 {
        c.start_node(n);
    }
    c.propose(5, b"after");
    let after = c.wait_converged(5, 16);
    assert_eq!(&after[..15], &before[..]);
}

#[test]
fn add_a_learner_promote_it_and_remove_an_old_voter() {
    let mut c = Cluster::new(4, Engine::Memory);
    c.create_group(3, &[1, 2, 3]);
    for i in 0..5u32 {
        c.propose(3, format!("p{i}").as_bytes());
    }
    c.add_joining_replica(4, 3);
    let change = |changes: Vec<MembershipChange>| c.change_membership(3, changes);
    let cs = change(vec![MembershipChange::AddLearner(4)]);
    assert_eq!(cs.learners, vec![4]);
    c.wait_converged(3, 5);
    let cs = change(vec![MembershipChange::AddVoter(4)]);
    assert!(cs.voters.contains(&4));
    assert!(cs.learners.is_empty());
    // Replace voter 1 by joint consensus in one step.
    let leader = c.wait_leader(3);
    let target = if leader == 1 { 2 } else { 1 };
    let cs = change(vec![MembershipChange::Remove(target)]);
    assert!(!cs.voters.contains(&target));
    c.propose(3, b"after-change");
    let status = wait_until("the new node to apply", || {
        let s = block(c.multi(4).status(3)).ok()?;
        (s.applied >= s.commit && s.voters.contains(&4) && !s.voters.contains(&target)).then_some(s)
    })
    .unwrap();
    assert_eq!(status.voters.len(), 3, "{status:?}");
}

#[test]
fn leadership_transfers_on_request() {
    let mut c = Cluster::new(3, Engine::Memory);
    c.create_group(9, &[1, 2, 3]);
    let leader = c.wait_leader(9);
    c.propose(9, b"x");
    let target = [1, 2, 3].into_iter().find(|&n| n != leader).unwrap();
    block(c.multi(leader).transfer_leader(9, target)).unwrap();
    wait_until("the transfer", || {
        (c.leader(9) == Some(target)).then_some(())
    })
    .unwrap();
    c.propose(9, b"y");
}

#[test]
fn a_removed_group_is_gone_and_its_waiters_answered() {
    let mut c = Cluster::new(3, Engine::Memory);
    c.create_group(4, &[1, 2, 3]);
    c.propose(4, b"x");
    for n in 1..=3 {
        block(c.multi(n).remove_group(4)).unwrap();
        assert!(matches!(
            block(c.multi(n).status(4)),
            Err(raft_multi::Error::GroupNotFound(4))
        ));
        assert!(
            !c.nodes[&n].engine.group_ids().contains(&4),
            "node {n} still stores group 4"
        );
    }
}

#[test]
fn membership_changes_under_load_lose_and_duplicate_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let mut c = Cluster::new(5, Engine::Memory);
    c.create_group(8, &[1, 2, 3]);
    c.wait_leader(8);
    c.add_joining_replica(4, 8);
    c.add_joining_replica(5, 8);
    let multis: Vec<raft_multi::MultiRaft> = (1..=5).map(|n| c.multi(n).clone()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    // A client proposing continuously to whichever node leads, recording what was
    // acknowledged.
    let load = {
        let (stop, acked, multis) = (Arc::clone(&stop), Arc::clone(&acked), multis.clone());
        std::thread::spawn(move || {
            for i in 0..100_000u32 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let value = format!("load-{i}");
                let leader = multis.iter().find(|m| m.is_leader(8)).cloned();
                let Some(multi) = leader else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                if let Some(Ok(_)) = block_timeout(
                    multi.propose(8, value.clone().into_bytes()),
                    Duration::from_secs(2),
                ) {
                    acked.lock().unwrap().push(value);
                }
            }
        })
    };
    let progress = |at_least: usize| {
        wait_until("the load to make progress", || {
            (acked.lock().unwrap().len() >= at_least).then_some(())
        })
        .unwrap();
    };
    let change = |changes: Vec<MembershipChange>| {
        let before = acked.lock().unwrap().len();
        progress(before + 20);
        let cs = c.change_membership(8, changes);
        let after = acked.lock().unwrap().len();
        progress(after + 20);
        cs
    };
    change(vec![MembershipChange::AddLearner(4)]);
    change(vec![MembershipChange::AddVoter(4)]);
    // Swap voter 1 for 5 in one joint-consensus step.
    change(vec![
        MembershipChange::AddVoter(5),
        MembershipChange::Remove(1),
    ]);
    let voters = wait_until("the joint configuration to be left", || {
        let leader = c.leader(8)?;
        let s = block(c.multi(leader).status(8)).ok()?;
        let mut voters = s.voters;
        voters.sort_unstable();
        (!voters.contains(&1) && voters.contains(&5) && s.learners.is_empty()).then_some(voters)
    })
    .unwrap();
    assert_eq!(voters, vec![2, 3, 4, 5]);
    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    let members = [2u64, 3, 4, 5];
    let log = wait_until("the new members to converge", || {
        let states: Vec<_> = members.iter().map(|&n| c.state(n, 8)).collect();
        let first = states[0].commands.clone();
        (first.len() >= acked.len() && states.iter().all(|s| s.commands == first)).then_some(first)
    })
    .unwrap();
    let values: Vec<String> = log
        .iter()
        .map(|(_, d)| String::from_utf8(d.to_vec()).unwrap())
        .collect();
    for v in &acked {
        let copies = values.iter().filter(|x| *x == v).count();
        assert_eq!(
            copies, 1,
            "{v} was acknowledged but is in the log {copies} times"
        );
    }
}

#[test]
fn a_restart_after_membership_changes_replays_none_of_them_twice() {
    let mut c = Cluster::new(5, Engine::Wal);
    c.create_group(6, &[1, 2, 3]);
    c.propose(6, b"before");
    c.add_joining_replica(4, 6);
    c.add_joining_replica(5, 6);
    let change = |c: &Cluster, changes: Vec<MembershipChange>| c.change_membership(6, changes);
    change(&c, vec![MembershipChange::AddLearner(4)]);
    change(&c, vec![MembershipChange::AddVoter(4)]);
    change(
        &c,
        vec![MembershipChange::AddVoter(5), MembershipChange::Remove(1)],
    );
    let settled = |c: &Cluster| {
        wait_until("the configuration [2, 3, 4, 5]", || {
            let leader = c.leader(6)?;
            let s = block(c.multi(leader).status(6)).ok()?;
            let mut voters = s.voters.clone();
            voters.sort_unstable();
            (voters == vec![2, 3, 4, 5] && s.learners.is_empty()).then_some(())
        })
        .unwrap()
    };
    settled(&c);
    c.propose(6, b"after-changes");
    // Every node restarts from its WAL: the stored configuration is used as is, and the
    // changes already folded into it are not applied again on replay.
    for n in 1..=5 {
        c.stop_node(n);
    }
    for n in 2..=5 {
        c.start_node(n);
    }
    settled(&c);
    c.propose(6, b"after-restart");
    for n in 2..=5 {
        assert_eq!(
            c.multi(n).metrics().conf_changes_applied,
            0,
            "node {n} applied a change again"
        );
        let s = block(c.multi(n).status(6)).unwrap();
        let mut voters = s.voters;
        voters.sort_unstable();
        assert_eq!(voters, vec![2, 3, 4, 5], "node {n} after restart");
    }
}
