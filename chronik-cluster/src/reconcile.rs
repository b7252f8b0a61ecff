//! Every node makes its local raft groups match the catalogue: it creates the
//! partition replicas it should host, destroys those it should not, and hands
//! leadership back to each partition's preferred replica.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use raft_fsm::{PartitionConfig, PartitionStateMachine};
use raft_multi::GroupSpec;

use crate::node::{LocalPartition, NodeInner};
use crate::{GroupId, NodeId};

/// Reconciles on every catalogue change, and balances leadership every few seconds.
pub(crate) async fn run(inner: Arc<NodeInner>) {
    let mut catalog_changes = inner.metadata.subscribe();
    let mut balance = tokio::time::interval(Duration::from_secs(2));
    let mut stop = inner.stop.subscribe();
    loop {
        crate::join::learn_peers(&inner);
        reconcile(&inner).await;
        tokio::select! {
            changed = catalog_changes.changed() => if changed.is_err() { return },
            _ = balance.tick() => balance_leaders(&inner).await,
            _ = stop.changed() => return,
        }
    }
}

struct Wanted {
    topic: String,
    partition: u32,
    replicas: Vec<NodeId>,
    /// The replica set changed since creation: a new replica joins the group.
    altered: bool,
}

async fn reconcile(inner: &Arc<NodeInner>) {
    let catalog = inner.metadata.catalog();
    let me = inner.node_id();
    let wanted: BTreeMap<GroupId, Wanted> = catalog
        .partitions_on(me)
        .into_iter()
        .map(|(topic, p)| {
            (
                p.group_id,
                Wanted {
                    topic: topic.to_owned(),
                    partition: p.partition,
                    replicas: p.replicas.clone(),
                    altered: p.altered,
                },
            )
        })
        .collect();
    let hosted: BTreeSet<GroupId> = inner.partitions.read().keys().copied().collect();
    for (&group, want) in wanted.iter().filter(|(g, _)| !hosted.contains(g)) {
        if let Err(error) = host(inner, group, want).await {
            tracing::warn!(group, topic = %want.topic, partition = want.partition, %error, "cannot host partition");
        }
    }
    for &group in hosted.iter().filter(|g| !wanted.contains_key(g)) {
        let _ = inner.multi.remove_group(group).await;
        inner.partitions.write().remove(&group);
        if !inner.in_memory {
            if let Err(error) = tokio::fs::remove_dir_all(inner.partition_dir(group)).await {
                tracing::warn!(group, %error, "removing the partition's files failed");
            }
        }
        tracing::info!(group, "partition replica removed");
    }
}

async fn host(inner: &Arc<NodeInner>, group: GroupId, want: &Wanted) -> crate::Result<()> {
    let config = PartitionConfig::default();
    let machine = if inner.in_memory {
        PartitionStateMachine::in_memory(config)
    } else {
        let dir = inner.partition_dir(group);
        tokio::task::spawn_blocking(move || PartitionStateMachine::open(&dir, config))
            .await
            .map_err(|_| crate::ClusterError::ShuttingDown)??
    };
    let reader = machine.reader();
    // A partition created with this replica bootstraps its group (every original replica
    // writes the same initial configuration); one added later joins the running group.
    let spec = if want.altered {
        GroupSpec::joining(group, Box::new(machine))
    } else {
        GroupSpec::new(group, want.replicas.clone(), Box::new(machine))
    };
    match inner.multi.create_group(spec).await {
        Ok(()) | Err(raft_multi::Error::GroupExists(_)) => {}
        Err(error) => return Err(crate::ClusterError::Replication(error)),
    }
    inner.partitions.write().insert(
        group,
        LocalPartition {
            topic: want.topic.clone(),
            partition: want.partition,
            reader,
        },
    );
    if want.replicas.first() == Some(&inner.node_id()) {
        // The preferred leader asks for the first election at once.
        let _ = inner.multi.campaign(group).await;
    }
    tracing::debug!(group, topic = %want.topic, partition = want.partition, "partition replica hosted");
    Ok(())
}

/// Hands leadership of the partitions this node leads back to their preferred replica
/// (the first in the list) when that replica keeps up: leadership ends up spread as
/// evenly as placement spread the preferred replicas. A few transfers per pass.
async fn balance_leaders(inner: &Arc<NodeInner>) {
    const TRANSFERS_PER_PASS: usize = 16;
    let me = inner.node_id();
    let catalog = inner.metadata.catalog();
    let mut moved = 0;
    for (_, p) in catalog.partitions_on(me) {
        if moved >= TRANSFERS_PER_PASS {
            break;
        }
        let Some(&preferred) = p.replicas.first() else {
            continue;
        };
        if preferred == me || !inner.multi.is_leader(p.group_id) {
            continue;
        }
        let Ok(status) = inner.multi.status(p.group_id).await else {
            continue;
        };
        if status.in_sync.contains(&preferred)
            && inner
                .multi
                .transfer_leader(p.group_id, preferred)
                .await
                .is_ok()
        {
            moved += 1;
        }
    }
}
