//! After the faults: a barrier write per partition, convergence of every replica,
//! and the final log of every replica (each read while it leads).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use chronik_cluster::{Cluster, FetchRequest, LocalNetwork, OffsetQuery};
use chronik_cluster_tests::history::{PartitionId, ProduceOutcome, ReplicaLog};

use crate::clients::{send, to_batch, Shared};
use crate::harness::{claimed_leaders, wait_for, NODES, TOPIC, WAIT};

/// Isolations of a leader at most to read the other replicas.
const ROTATIONS: usize = 8;

/// Produces one record to `partition` until it is acknowledged (each attempt a new
/// record, all in the history). Once a leader commits an entry of its own term, every
/// earlier entry of its log is committed, and entries elsewhere can no longer commit.
/// Returns the high watermark every replica must reach.
pub async fn barrier(shared: &Shared, partition: u32) -> Result<u64, String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    for attempt in 0..1_000 {
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("no barrier acknowledged on p{partition}"));
        }
        let Some(leader) = claimed_leaders(&shared.nodes, partition, &[]).pop() else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let record = vec![Bytes::from(format!("p{partition}-barrier-{attempt}"))];
        let op = shared
            .history()
            .produce_invoked(PartitionId::new(TOPIC, partition), record.clone());
        let (outcome, _) = send(&leader, partition, &record, None).await;
        shared.history().complete(op, outcome);
        if let ProduceOutcome::Acknowledged { last_offset, .. } = outcome {
            return Ok(last_offset + 1);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("no barrier acknowledged on p{partition}"))
}

fn high_watermarks(nodes: &[Cluster], partition: u32) -> Vec<u64> {
    nodes
        .iter()
        .flat_map(|n| n.status().local_partitions)
        .filter(|p| p.topic == TOPIC && p.partition == partition)
        .map(|p| p.high_watermark)
        .collect()
}

/// Waits until every replica of every partition has applied up to the same high
/// watermark, at least `at_least[p]`.
pub async fn converge(nodes: &[Cluster], at_least: &[u64]) -> Result<(), String> {
    wait_for("every replica's high watermark equal", WAIT, || {
        at_least
            .iter()
            .enumerate()
            .all(|(p, &min)| {
                let hws = high_watermarks(nodes, p as u32);
                hws.len() == NODES as usize && hws.iter().all(|&hw| hw == hws[0] && hw >= min)
            })
            .then_some(())
    })
    .await
}

/// Reads the whole log of `partition` from `node` (which must lead it).
pub async fn read_log(node: &Cluster, partition: u32) -> Result<ReplicaLog, String> {
    let failed =
        |e: &dyn std::fmt::Display| format!("read p{partition} on {}: {e}", node.node_id());
    let start = node
        .list_offsets(TOPIC, partition, OffsetQuery::Earliest)
        .map_err(|e| failed(&e))?
        .unwrap_or(0);
    let mut log = ReplicaLog {
        partition: PartitionId::new(TOPIC, partition),
        replica: node.node_id(),
        log_start_offset: start,
        high_watermark: start,
        batches: Vec::new(),
    };
    let mut offset = start;
    // Each round reads at least one record; the bound is a guard, not a budget.
    for _ in 0..100_000 {
        let request = FetchRequest {
            topic: TOPIC.into(),
            partition,
            offset,
            max_bytes: 1 << 16,
            max_wait: Duration::ZERO,
        };
        let response = node.fetch(request).await.map_err(|e| failed(&e))?;
        log.high_watermark = response.high_watermark;
        let Some(last) = response.batches.last().map(|b| b.last_offset) else {
            break;
        };
        log.batches
            .extend(response.batches.into_iter().map(to_batch));
        offset = last + 1;
        if offset >= log.high_watermark {
            break;
        }
    }
    Ok(log)
}

/// The final log of every replica: each partition is read from its leader, then
/// leaders are isolated one at a time so that other replicas lead and are read too
/// (the cluster API reads only from a leader). Returns the logs and which replicas of
/// each partition were read; which replicas a bounded number of isolations reaches
/// depends on elections, so coverage may miss one.
pub async fn read_every_replica(
    network: &LocalNetwork,
    nodes: &[Cluster],
    partitions: u32,
) -> Result<(Vec<ReplicaLog>, BTreeMap<u32, BTreeSet<u64>>), String> {
    let mut logs = Vec::new();
    let mut read: BTreeMap<u32, BTreeSet<u64>> =
        (0..partitions).map(|p| (p, BTreeSet::new())).collect();
    let mut victims: Vec<u64> = Vec::new();
    for round in 0..=ROTATIONS {
        let unread: Vec<u32> = (0..partitions)
            .filter(|p| read[p].len() < NODES as usize)
            .collect();
        if unread.is_empty() {
            break;
        }
        if round > 0 {
            // Cut off the leader of a partition with a replica not yet read.
            let Some(victim) = unread
                .iter()
                .find_map(|&p| claimed_leaders(nodes, p, &[]).first().map(Cluster::node_id))
            else {
                break;
            };
            network.isolate(victim);
            victims = vec![victim];
        }
        wait_for("a leader outside the isolated node", WAIT, || {
            unread
                .iter()
                .all(|&p| !claimed_leaders(nodes, p, &victims).is_empty())
                .then_some(())
        })
        .await?;
        for &p in &unread {
            for leader in claimed_leaders(nodes, p, &victims) {
                if read.get_mut(&p).is_some_and(|r| r.insert(leader.node_id())) {
                    logs.push(read_log(&leader, p).await?);
                }
            }
        }
        network.heal();
        victims.clear();
        // Let the cut-off node rejoin as a follower before the next isolation.
        wait_for("one leader per partition", WAIT, || {
            (0..partitions)
                .all(|p| claimed_leaders(nodes, p, &[]).len() == 1)
                .then_some(())
        })
        .await?;
    }
    Ok((logs, read))
}
