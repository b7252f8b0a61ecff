//! Commands and responses of the metadata machine: versioned prost messages.
//!
//! The controller (the metadata group's leader) decides replica placement
//! and raft group ids and puts them in the command; apply only validates,
//! deterministically.

use std::collections::BTreeMap;

use bytes::Bytes;
use prost::Message;

use super::catalog::{NodeInfo, PartitionInfo};
use crate::entry::NodeId;
use crate::error::{CorruptReason, MetadataError};

/// The metadata command format version this code writes and understands.
pub const METADATA_COMMAND_VERSION: u32 = 1;

/// A replicated metadata command.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetadataCommand {
    /// Format version; newer versions are rejected as corrupt.
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// The operation.
    #[prost(oneof = "MetadataOp", tags = "2, 3, 4, 5, 6, 7")]
    pub op: Option<MetadataOp>,
}

/// The operations of a metadata command.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum MetadataOp {
    /// Register (or update) a node.
    #[prost(message, tag = "2")]
    RegisterNode(NodeInfo),
    /// Create a topic with its assignment.
    #[prost(message, tag = "3")]
    CreateTopic(CreateTopic),
    /// Delete a topic.
    #[prost(message, tag = "4")]
    DeleteTopic(DeleteTopic),
    /// Change one partition's replica set.
    #[prost(message, tag = "5")]
    AlterReplicas(AlterReplicas),
    /// Set or remove topic configs.
    #[prost(message, tag = "6")]
    UpdateConfigs(UpdateConfigs),
    /// Commit consumer-group offsets.
    #[prost(message, tag = "7")]
    CommitOffsets(CommitOffsets),
}

/// Create a topic.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateTopic {
    /// The name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The topic id chosen by the controller.
    #[prost(bytes = "vec", tag = "2")]
    pub topic_id: Vec<u8>,
    /// The replication factor every partition's replica list must match.
    #[prost(uint32, tag = "3")]
    pub replication_factor: u32,
    /// Partitions 0..n with their raft group ids and replicas.
    #[prost(message, repeated, tag = "4")]
    pub partitions: Vec<PartitionInfo>,
    /// Config overrides.
    #[prost(btree_map = "string, string", tag = "5")]
    pub configs: BTreeMap<String, String>,
}

/// Delete a topic (and its committed offsets).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct DeleteTopic {
    /// The name.
    #[prost(string, tag = "1")]
    pub name: String,
}

/// Replace a partition's replica set.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct AlterReplicas {
    /// The topic.
    #[prost(string, tag = "1")]
    pub topic: String,
    /// The partition.
    #[prost(uint32, tag = "2")]
    pub partition: u32,
    /// The new replicas.
    #[prost(uint64, repeated, tag = "3")]
    pub replicas: Vec<NodeId>,
}

/// Set and delete config keys of a topic.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateConfigs {
    /// The topic.
    #[prost(string, tag = "1")]
    pub topic: String,
    /// Keys to set.
    #[prost(btree_map = "string, string", tag = "2")]
    pub set: BTreeMap<String, String>,
    /// Keys to remove.
    #[prost(string, repeated, tag = "3")]
    pub delete: Vec<String>,
}

/// One offset to commit.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct OffsetCommit {
    /// The topic.
    #[prost(string, tag = "1")]
    pub topic: String,
    /// The partition.
    #[prost(uint32, tag = "2")]
    pub partition: u32,
    /// The offset.
    #[prost(int64, tag = "3")]
    pub offset: i64,
    /// The leader epoch the consumer saw.
    #[prost(int32, optional, tag = "4")]
    pub leader_epoch: Option<i32>,
    /// Client metadata.
    #[prost(string, tag = "5")]
    pub metadata: String,
}

/// Commit offsets of a consumer group, all or nothing.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CommitOffsets {
    /// The consumer group.
    #[prost(string, tag = "1")]
    pub group: String,
    /// The offsets.
    #[prost(message, repeated, tag = "2")]
    pub offsets: Vec<OffsetCommit>,
    /// The proposer's clock (ms), stored with each offset.
    #[prost(int64, tag = "3")]
    pub commit_timestamp_ms: i64,
}

impl MetadataCommand {
    /// A command for `op` in the current version.
    pub fn new(op: MetadataOp) -> Self {
        MetadataCommand {
            version: METADATA_COMMAND_VERSION,
            op: Some(op),
        }
    }

    /// Registers a node.
    pub fn register_node(node: NodeInfo) -> Self {
        Self::new(MetadataOp::RegisterNode(node))
    }

    /// Creates a topic.
    pub fn create_topic(topic: CreateTopic) -> Self {
        Self::new(MetadataOp::CreateTopic(topic))
    }

    /// Deletes a topic.
    pub fn delete_topic(name: impl Into<String>) -> Self {
        Self::new(MetadataOp::DeleteTopic(DeleteTopic { name: name.into() }))
    }

    /// Replaces a partition's replicas.
    pub fn alter_replicas(topic: impl Into<String>, partition: u32, replicas: Vec<NodeId>) -> Self {
        Self::new(MetadataOp::AlterReplicas(AlterReplicas {
            topic: topic.into(),
            partition,
            replicas,
        }))
    }

    /// Updates topic configs.
    pub fn update_configs(
        topic: impl Into<String>,
        set: BTreeMap<String, String>,
        delete: Vec<String>,
    ) -> Self {
        Self::new(MetadataOp::UpdateConfigs(UpdateConfigs {
            topic: topic.into(),
            set,
            delete,
        }))
    }

    /// Commits consumer offsets.
    pub fn commit_offsets(
        group: impl Into<String>,
        offsets: Vec<OffsetCommit>,
        now_ms: i64,
    ) -> Self {
        Self::new(MetadataOp::CommitOffsets(CommitOffsets {
            group: group.into(),
            offsets,
            commit_timestamp_ms: now_ms,
        }))
    }

    /// The bytes to propose.
    pub fn encode(&self) -> Bytes {
        Bytes::from(self.encode_to_vec())
    }

    /// Decodes and checks the version.
    ///
    /// # Errors
    /// [`MetadataError::CorruptMessage`].
    pub fn decode_checked(data: &[u8]) -> Result<MetadataOp, MetadataError> {
        let command = MetadataCommand::decode(data)
            .map_err(|_| MetadataError::CorruptMessage(CorruptReason::Undecodable))?;
        if command.version == 0 || command.version > METADATA_COMMAND_VERSION {
            return Err(MetadataError::CorruptMessage(
                CorruptReason::UnsupportedVersion(command.version),
            ));
        }
        command.op.ok_or(MetadataError::CorruptMessage(
            CorruptReason::MissingOperation,
        ))
    }
}

/// The response to a metadata command.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct MetadataResponse {
    /// Catalogue version after the command (unchanged if rejected).
    #[prost(uint64, tag = "1")]
    pub version: u64,
    /// The rejection, if any.
    #[prost(message, optional, tag = "2")]
    pub error: Option<MetadataErrorWire>,
}

/// A [`MetadataError`] in wire form.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct MetadataErrorWire {
    /// Which error.
    #[prost(uint32, tag = "1")]
    pub kind: u32,
    /// A name (topic) involved.
    #[prost(string, tag = "2")]
    pub name: String,
    /// A number involved (partition, node, group id, factor).
    #[prost(uint64, optional, tag = "3")]
    pub value: Option<u64>,
}

impl MetadataErrorWire {
    /// The wire form of `error`.
    pub fn from_error(error: &MetadataError) -> Self {
        let (kind, name, value) = match error {
            MetadataError::TopicAlreadyExists(name) => (1, name.clone(), None),
            MetadataError::UnknownTopicOrPartition { topic, partition } => {
                (2, topic.clone(), partition.map(u64::from))
            }
            MetadataError::InvalidReplicationFactor(rf) => (3, String::new(), Some(u64::from(*rf))),
            MetadataError::InvalidPartitions => (4, String::new(), None),
            MetadataError::InvalidReplicaAssignment => (5, String::new(), None),
            MetadataError::UnknownNode(node) => (6, String::new(), Some(*node)),
            MetadataError::DuplicateGroupId(group) => (7, String::new(), Some(*group)),
            MetadataError::InvalidTopicName(name) => (8, name.clone(), None),
            MetadataError::CorruptMessage(reason) => match reason {
                CorruptReason::Undecodable => (9, String::new(), Some(0)),
                CorruptReason::UnsupportedVersion(v) => (10, String::new(), Some(u64::from(*v))),
                CorruptReason::MissingOperation => (9, String::new(), Some(2)),
            },
            MetadataError::UnexpectedResponse => (0, String::new(), None),
        };
        MetadataErrorWire { kind, name, value }
    }

    /// The [`MetadataError`] this stands for.
    pub fn to_error(&self) -> MetadataError {
        let value = self.value.unwrap_or(0);
        match self.kind {
            1 => MetadataError::TopicAlreadyExists(self.name.clone()),
            2 => MetadataError::UnknownTopicOrPartition {
                topic: self.name.clone(),
                partition: self.value.map(|p| p as u32),
            },
            3 => MetadataError::InvalidReplicationFactor(value as u32),
            4 => MetadataError::InvalidPartitions,
            5 => MetadataError::InvalidReplicaAssignment,
            6 => MetadataError::UnknownNode(value),
            7 => MetadataError::DuplicateGroupId(value),
            8 => MetadataError::InvalidTopicName(self.name.clone()),
            9 if value == 2 => MetadataError::CorruptMessage(CorruptReason::MissingOperation),
            9 => MetadataError::CorruptMessage(CorruptReason::Undecodable),
            10 => MetadataError::CorruptMessage(CorruptReason::UnsupportedVersion(value as u32)),
            _ => MetadataError::UnexpectedResponse,
        }
    }
}

/// Decodes a metadata response: the catalogue version after the command.
///
/// # Errors
/// The rejection carried in the response, or a corrupt-message error.
pub fn decode_metadata_response(response: &[u8]) -> Result<u64, MetadataError> {
    let decoded = MetadataResponse::decode(response)
        .map_err(|_| MetadataError::CorruptMessage(CorruptReason::Undecodable))?;
    match decoded.error {
        Some(error) => Err(error.to_error()),
        None => Ok(decoded.version),
    }
}
