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
    let change = |changes: Vec<MembershipChange>| {
        wait_until("a membership change", || {
            let leader = c.leader(3)?;
            match block_timeout(
                c.multi(leader).change_membership(3, changes.clone()),
                Duration::from_secs(5),
            )? {
                Ok(cs) => Some(cs),
                Err(e) if e.is_retriable() => None,
                Err(e) => panic!("membership change failed: {e}"),
            }
        })
        .unwrap()
    };
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
