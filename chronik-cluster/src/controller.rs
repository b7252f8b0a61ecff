//! The controller: the node that leads the metadata group places new topics' replicas
//! and registers the nodes it knows of.

use std::sync::Arc;
use std::time::Duration;

use raft_fsm::{Catalog, CreateTopic, MetadataCommand, NodeInfo, PartitionInfo};

use crate::api::TopicSpec;
use crate::cluster::{now_ms, Cluster};
use crate::error::{ClusterError, InvalidRequest, Result};
use crate::node::NodeInner;
use crate::placement::{assign, Candidate};
use crate::METADATA_GROUP;

/// Group ids of a topic's partitions: unique per catalogue change (never reused after
/// a delete, so a replica being destroyed cannot be confused with a new one).
fn group_id(version: u64, partition: u32) -> u64 {
    ((version + 1) << 20) | u64::from(partition)
}

/// The command that creates `spec` with replicas placed evenly across the catalogue's
/// nodes. Validation of names, counts and duplicates happens again at apply, on every
/// replica.
///
/// # Errors
/// `InvalidRequest` when the topic cannot be placed (no partitions, too few nodes).
pub(crate) fn plan_topic(catalog: &Catalog, spec: &TopicSpec) -> Result<MetadataCommand> {
    if spec.partitions == 0 || spec.partitions >= 1 << 20 {
        return Err(ClusterError::InvalidRequest(InvalidRequest::NoPartitions));
    }
    let nodes: Vec<Candidate> = catalog
        .nodes
        .values()
        .map(|n| Candidate {
            id: n.node_id,
            rack: n.rack.clone(),
        })
        .collect();
    let existing: usize = catalog.topics.values().map(|t| t.partitions.len()).sum();
    let plan = assign(&nodes, spec.partitions, spec.replication_factor, existing)
        .ok_or(ClusterError::InvalidRequest(InvalidRequest::NotEnoughNodes))?;
    let partitions = plan
        .into_iter()
        .enumerate()
        .map(|(p, replicas)| PartitionInfo {
            partition: p as u32,
            group_id: group_id(catalog.version, p as u32),
            replicas,
            altered: false,
        })
        .collect();
    let mut topic_id = Vec::with_capacity(16);
    topic_id.extend_from_slice(&catalog.version.to_be_bytes());
    topic_id.extend_from_slice(&now_ms().to_be_bytes());
    Ok(MetadataCommand::create_topic(CreateTopic {
        name: spec.name.clone(),
        topic_id,
        replication_factor: spec.replication_factor,
        partitions,
        configs: spec.configs.clone(),
    }))
}

/// The nodes this node's configuration knows, as catalogue entries.
fn configured_nodes(inner: &NodeInner) -> Vec<NodeInfo> {
    let config = &inner.config;
    let mut nodes = vec![NodeInfo {
        node_id: config.node_id,
        raft_address: config.advertised_raft(),
        client_address: config.advertised_client(),
        rack: config.rack.clone(),
    }];
    nodes.extend(config.peers.iter().map(|p| NodeInfo {
        node_id: p.id,
        raft_address: p.raft_addr.clone(),
        client_address: p.client_addr.clone(),
        rack: None,
    }));
    nodes
}

/// While this node is the controller: register the configured nodes missing from the
/// catalogue (this node with its rack).
pub(crate) async fn run(inner: Arc<NodeInner>) {
    let cluster = Cluster::new(Arc::clone(&inner));
    let mut interval = tokio::time::interval(Duration::from_millis(200));
    let mut stop = inner.stop.subscribe();
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.changed() => return,
        }
        if !inner.multi.is_leader(METADATA_GROUP) {
            continue;
        }
        if let Err(error) = register_configured(&inner, &cluster).await {
            tracing::debug!(%error, "registering nodes failed; will retry");
        }
    }
}

/// Registers the configured nodes the catalogue lacks (and this node, when its entry
/// changed). Idempotent; the controller runs it periodically and before placing a topic.
pub(crate) async fn register_configured(inner: &NodeInner, cluster: &Cluster) -> Result<()> {
    let catalog = inner.metadata.catalog();
    for node in configured_nodes(inner) {
        let known = catalog.nodes.get(&node.node_id);
        let is_me = node.node_id == inner.node_id();
        if known.is_none() || is_me && known != Some(&node) {
            cluster
                .propose_metadata(MetadataCommand::register_node(node))
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_never_repeat_across_catalogue_versions() {
        let ids: std::collections::BTreeSet<u64> = (0..50u64)
            .flat_map(|v| (0..8u32).map(move |p| group_id(v, p)))
            .collect();
        assert_eq!(ids.len(), 400);
        assert!(!ids.contains(&METADATA_GROUP));
    }

    #[test]
    fn a_topic_needs_enough_nodes() {
        let mut catalog = Catalog::default();
        let spec = TopicSpec::new("t", 3, 2);
        assert!(matches!(
            plan_topic(&catalog, &spec),
            Err(ClusterError::InvalidRequest(InvalidRequest::NotEnoughNodes))
        ));
        for id in 1..=2 {
            catalog.nodes.insert(
                id,
                NodeInfo {
                    node_id: id,
                    ..Default::default()
                },
            );
        }
        let command = plan_topic(&catalog, &spec).unwrap();
        let Some(raft_fsm::MetadataOp::CreateTopic(topic)) = command.op else {
            panic!("not a create")
        };
        assert_eq!(topic.partitions.len(), 3);
        assert!(topic.partitions.iter().all(|p| p.replicas.len() == 2));
    }
}
