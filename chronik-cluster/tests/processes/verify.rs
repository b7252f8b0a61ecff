//! After the faults: a barrier write per partition, every replica's high watermark
//! equal, and the final log of every replica, each read from its node while it leads.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use chronik_cluster::client::ChronikClient;
use chronik_cluster::{ClusterStatus, FetchRequest, OffsetQuery};
use chronik_cluster_tests::history::{PartitionId, ProduceOutcome, ReplicaLog};

use crate::procs::{status_of, Processes};
use crate::workload::{to_batch, Route, Shared, TOPIC};

/// Upper bound of every wait for the cluster to reach a state.
pub const WAIT: Duration = Duration::from_secs(30);
/// Rounds of moving leadership to replicas not read yet.
const ROUNDS: usize = 6;

/// Polls `probe` every 50 ms until it answers, for at most `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every node's own status (None for a node that does not answer).
pub async fn statuses(procs: &Processes) -> Vec<(u64, Option<ClusterStatus>)> {
    let mut all = Vec::new();
    for id in procs.ids() {
        all.push((id, status_of(&procs.client_address(id), id).await));
    }
    all
}

/// The nodes that say they lead `partition`.
pub fn leaders_of(statuses: &[(u64, Option<ClusterStatus>)], partition: u32) -> Vec<u64> {
    statuses
        .iter()
        .filter(|(_, s)| {
            s.as_ref().is_some_and(|s| {
                s.local_partitions
                    .iter()
                    .any(|p| p.topic == TOPIC && p.partition == partition && p.leader)
            })
        })
        .map(|(id, _)| *id)
        .collect()
}

/// The replicas of `partition` in the catalogue, as the first node that answers sees it.
fn replicas_of(statuses: &[(u64, Option<ClusterStatus>)], partition: u32) -> Vec<u64> {
    statuses
        .iter()
        .filter_map(|(_, s)| s.as_ref())
        .flat_map(|s| &s.partitions)
        .find(|p| p.topic == TOPIC && p.partition == partition)
        .map(|p| p.replicas.clone())
        .unwrap_or_default()
}

/// Produces one record to `partition` until it is acknowledged (each attempt a new
/// record in the history). Once a leader commits an entry of its term, every earlier
/// entry of its log is committed. Returns the high watermark every replica must reach.
pub async fn barrier(shared: &Shared, partition: u32) -> Result<u64, String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut route = Route::default();
    for attempt in 0..1_000 {
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        let record = vec![Bytes::from(format!("p{partition}-barrier-{attempt}"))];
        let op = shared
            .history()
            .produce_invoked(PartitionId::new(TOPIC, partition), record.clone());
        if let ProduceOutcome::Acknowledged { last_offset, .. } = shared
            .produce(&mut route, op, partition, &record, None)
            .await
        {
            return Ok(last_offset + 1);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last = crate::workload::lock(&shared.last_error).clone();
    Err(format!(
        "no barrier acknowledged on p{partition}; last answer: {last}"
    ))
}

/// Every node's view of `partition` (for failure messages).
pub async fn describe(procs: &Processes, partition: u32) -> String {
    let mut lines = Vec::new();
    for (id, status) in statuses(procs).await {
        let line = match status {
            None => format!("node {id}: no answer"),
            Some(s) => {
                let local = s
                    .local_partitions
                    .iter()
                    .find(|p| p.topic == TOPIC && p.partition == partition);
                let catalog = s
                    .partitions
                    .iter()
                    .find(|p| p.topic == TOPIC && p.partition == partition);
                format!("node {id}: local {local:?}; catalogue {catalog:?}")
            }
        };
        lines.push(line);
    }
    lines.join("\n")
}

/// Waits until the `replicas` nodes hosting each partition report the same high
/// watermark, at least `at_least[p]`.
pub async fn converge(procs: &Processes, replicas: usize, at_least: &[u64]) -> Result<(), String> {
    wait_for("every replica's high watermark equal", WAIT, || async {
        let all = statuses(procs).await;
        at_least
            .iter()
            .enumerate()
            .all(|(p, &min)| {
                let hws: Vec<u64> = all
                    .iter()
                    .filter_map(|(_, s)| s.as_ref())
                    .flat_map(|s| &s.local_partitions)
                    .filter(|l| l.topic == TOPIC && l.partition == p as u32)
                    .map(|l| l.high_watermark)
                    .collect();
                hws.len() == replicas && hws.iter().all(|&hw| hw == hws[0] && hw >= min)
            })
            .then_some(())
    })
    .await
}

/// Reads the whole log of `partition` from node `id`, which must lead it: a client that
/// knows only that node routes to it while it says it leads.
async fn read_log(procs: &Processes, id: u64, partition: u32) -> Result<ReplicaLog, String> {
    let failed = |e: &dyn std::fmt::Display| format!("read p{partition} on {id}: {e}");
    let client = ChronikClient::connect(&[procs.client_address(id)])
        .await
        .map_err(|e| failed(&e))?
        .with_timeout(Duration::from_millis(1));
    let leads = |s: &ClusterStatus| {
        s.local_partitions
            .iter()
            .any(|p| p.topic == TOPIC && p.partition == partition && p.leader)
    };
    let status = client.status(Some(id)).await.map_err(|e| failed(&e))?;
    if !leads(&status) {
        return Err(failed(&"no longer the leader"));
    }
    let start = client
        .list_offsets(TOPIC, partition, OffsetQuery::Earliest)
        .await
        .map_err(|e| failed(&e))?
        .unwrap_or(0);
    let mut log = ReplicaLog {
        partition: PartitionId::new(TOPIC, partition),
        replica: id,
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
        let response = client.fetch(request).await.map_err(|e| failed(&e))?;
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
    let status = client.status(Some(id)).await.map_err(|e| failed(&e))?;
    if !leads(&status) {
        return Err(failed(&"lost leadership while read"));
    }
    Ok(log)
}

/// The log of every partition, read from a node that leads it.
pub async fn read_leaders(procs: &Processes, partitions: u32) -> Result<Vec<ReplicaLog>, String> {
    let mut logs = Vec::new();
    for p in 0..partitions {
        let log = wait_for("a readable leader", WAIT, || async {
            let all = statuses(procs).await;
            for leader in leaders_of(&all, p) {
                if let Ok(log) = read_log(procs, leader, p).await {
                    return Some(log);
                }
            }
            None
        })
        .await?;
        logs.push(log);
    }
    Ok(logs)
}

/// The final log of every replica. The API reads only from leaders, so leadership is
/// moved: a reassignment to the same replicas in another order makes an unread replica
/// the preferred leader, and the leader hands over to it.
pub async fn read_every_replica(
    procs: &Processes,
    admin: &ChronikClient,
    partitions: u32,
) -> Result<Vec<ReplicaLog>, String> {
    let mut logs = Vec::new();
    let mut read: BTreeMap<u32, BTreeSet<u64>> =
        (0..partitions).map(|p| (p, BTreeSet::new())).collect();
    for _ in 0..ROUNDS {
        let all = statuses(procs).await;
        for p in 0..partitions {
            for leader in leaders_of(&all, p) {
                if !read[&p].contains(&leader) {
                    if let Ok(log) = read_log(procs, leader, p).await {
                        logs.push(log);
                        read.entry(p).or_default().insert(leader);
                    }
                }
            }
        }
        let mut wanted = Vec::new();
        for (&p, done) in &read {
            let replicas = replicas_of(&all, p);
            if replicas.is_empty() {
                continue; // no node answered: try again next round
            }
            let Some(&next) = replicas.iter().find(|n| !done.contains(n)) else {
                continue;
            };
            let mut order = vec![next];
            order.extend(replicas.iter().copied().filter(|&n| n != next));
            admin
                .reassign_partition(TOPIC, p, order)
                .await
                .map_err(|e| format!("reassign p{p}: {e}"))?;
            wanted.push((p, next));
        }
        if wanted.is_empty() {
            return Ok(logs);
        }
        // Leaders hand over to their preferred replica every few seconds.
        let _ = wait_for("preferred leaders", WAIT / 2, || async {
            let all = statuses(procs).await;
            wanted
                .iter()
                .all(|&(p, next)| leaders_of(&all, p) == [next])
                .then_some(())
        })
        .await;
    }
    Err(format!(
        "replicas not read after {ROUNDS} rounds: read {read:?}"
    ))
}
