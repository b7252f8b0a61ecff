//! The cluster catalogue: nodes, topics, partitions with their raft groups
//! and replica sets, committed consumer offsets. Prost messages with
//! `BTreeMap`s, so the encoding (the snapshot) is deterministic.

use std::collections::{BTreeMap, BTreeSet};

use crate::entry::{GroupId, NodeId};
use crate::error::MetadataError;

/// A registered node.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct NodeInfo {
    /// The node id.
    #[prost(uint64, tag = "1")]
    pub node_id: NodeId,
    /// Address peers reach the node's raft transport on.
    #[prost(string, tag = "2")]
    pub raft_address: String,
    /// Address clients reach the node on.
    #[prost(string, tag = "3")]
    pub client_address: String,
    /// The rack, if configured.
    #[prost(string, optional, tag = "4")]
    pub rack: Option<String>,
}

/// One partition of a topic.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PartitionInfo {
    /// The partition number.
    #[prost(uint32, tag = "1")]
    pub partition: u32,
    /// The raft group that replicates the partition.
    #[prost(uint64, tag = "2")]
    pub group_id: GroupId,
    /// The nodes holding a replica; the first is the preferred leader.
    #[prost(uint64, repeated, tag = "3")]
    pub replicas: Vec<NodeId>,
    /// True once the replica set was changed after creation: replicas added from then
    /// on join the existing raft group instead of bootstrapping it.
    #[prost(bool, tag = "4")]
    pub altered: bool,
}

/// A topic.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct TopicInfo {
    /// The topic name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The topic id chosen by the controller (Kafka's 16-byte UUID).
    #[prost(bytes = "vec", tag = "2")]
    pub topic_id: Vec<u8>,
    /// The configured replication factor.
    #[prost(uint32, tag = "3")]
    pub replication_factor: u32,
    /// The partitions, numbered 0..n.
    #[prost(message, repeated, tag = "4")]
    pub partitions: Vec<PartitionInfo>,
    /// Topic configuration overrides.
    #[prost(btree_map = "string, string", tag = "5")]
    pub configs: BTreeMap<String, String>,
}

/// A committed consumer offset.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CommittedOffset {
    /// The committed offset.
    #[prost(int64, tag = "1")]
    pub offset: i64,
    /// The leader epoch the consumer saw, if known.
    #[prost(int32, optional, tag = "2")]
    pub leader_epoch: Option<i32>,
    /// Client metadata string.
    #[prost(string, tag = "3")]
    pub metadata: String,
    /// Commit time carried by the command (ms).
    #[prost(int64, tag = "4")]
    pub commit_timestamp: i64,
}

/// The committed offsets of one topic in one consumer group.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct TopicOffsets {
    /// Per partition.
    #[prost(btree_map = "uint32, message", tag = "1")]
    pub partitions: BTreeMap<u32, CommittedOffset>,
}

/// The committed offsets of one consumer group.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct GroupOffsets {
    /// Per topic.
    #[prost(btree_map = "string, message", tag = "1")]
    pub topics: BTreeMap<String, TopicOffsets>,
}

/// The whole catalogue, as of one applied raft index.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Catalog {
    /// Raft index of the last applied entry.
    #[prost(uint64, tag = "1")]
    pub applied_index: u64,
    /// Raft term of that entry.
    #[prost(uint64, tag = "2")]
    pub applied_term: u64,
    /// Incremented by every accepted command: a cheap change detector.
    #[prost(uint64, tag = "3")]
    pub version: u64,
    /// Registered nodes.
    #[prost(btree_map = "uint64, message", tag = "4")]
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    /// Topics by name.
    #[prost(btree_map = "string, message", tag = "5")]
    pub topics: BTreeMap<String, TopicInfo>,
    /// Committed offsets by consumer group.
    #[prost(btree_map = "string, message", tag = "6")]
    pub consumer_offsets: BTreeMap<String, GroupOffsets>,
}

impl Catalog {
    /// A partition of a topic.
    pub fn partition(&self, topic: &str, partition: u32) -> Option<&PartitionInfo> {
        self.topics.get(topic)?.partitions.get(partition as usize)
    }

    /// Every partition replicated on `node`, with its topic name.
    pub fn partitions_on(&self, node: NodeId) -> Vec<(&str, &PartitionInfo)> {
        self.topics
            .values()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.name.as_str(), p)))
            .filter(|(_, p)| p.replicas.contains(&node))
            .collect()
    }

    /// Every raft group id in use by a partition.
    pub fn group_ids(&self) -> BTreeSet<GroupId> {
        self.topics
            .values()
            .flat_map(|t| t.partitions.iter().map(|p| p.group_id))
            .collect()
    }

    /// A consumer group's committed offset for a partition.
    pub fn committed_offset(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Option<&CommittedOffset> {
        self.consumer_offsets
            .get(group)?
            .topics
            .get(topic)?
            .partitions
            .get(&partition)
    }

    pub(crate) fn unknown(topic: &str, partition: Option<u32>) -> MetadataError {
        MetadataError::UnknownTopicOrPartition {
            topic: topic.to_owned(),
            partition,
        }
    }

    /// Checks a replica list: non-empty, distinct, registered nodes.
    pub(crate) fn check_replicas(&self, replicas: &[NodeId]) -> Result<(), MetadataError> {
        let distinct: BTreeSet<_> = replicas.iter().collect();
        if replicas.is_empty() || distinct.len() != replicas.len() {
            return Err(MetadataError::InvalidReplicaAssignment);
        }
        match replicas.iter().find(|n| !self.nodes.contains_key(n)) {
            Some(&unknown) => Err(MetadataError::UnknownNode(unknown)),
            None => Ok(()),
        }
    }
}

/// Kafka's rule for topic names.
pub(crate) fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}
