//! Errors of the cluster API, each with its Kafka error code.

use std::path::PathBuf;

use raft_fsm::{MetadataError, PartitionError};

use crate::NodeId;

/// Result of cluster operations.
pub type Result<T, E = ClusterError> = std::result::Result<T, E>;

/// Why a cluster operation failed. [`ClusterError::kafka_code`] gives the code a Kafka
/// client expects; [`ClusterError::leader_hint`] where to retry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// This node does not lead the partition; `leader` is the last leader it knows.
    #[error("not the leader of {topic}-{partition} (leader hint: {leader:?})")]
    NotLeaderOrFollower {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The leader this node knows of.
        leader: Option<NodeId>,
    },
    /// Administrative requests go to the controller (the metadata group's leader).
    #[error("not the controller (controller hint: {leader:?})")]
    NotController {
        /// The controller this node knows of.
        leader: Option<NodeId>,
    },
    /// The topic or partition does not exist (as this node's catalogue knows).
    #[error("unknown topic or partition {topic}/{partition:?}")]
    UnknownTopicOrPartition {
        /// The topic.
        topic: String,
        /// The partition, if one was named.
        partition: Option<u32>,
    },
    /// Fewer replicas are in sync than the topic's `min.insync.replicas`.
    #[error("not enough in-sync replicas: {in_sync} < {required}")]
    NotEnoughReplicas {
        /// The topic's `min.insync.replicas`.
        required: usize,
        /// Replicas in sync now.
        in_sync: usize,
    },
    /// The request did not complete within its timeout; it may still take effect.
    #[error("request timed out")]
    RequestTimedOut,
    /// The node is overloaded; retry after a short pause.
    #[error("the node is busy, retry later")]
    Busy,
    /// A malformed or out-of-range request.
    #[error("invalid request: {0}")]
    InvalidRequest(InvalidRequest),
    /// The partition's state machine refused the request (Kafka semantics).
    #[error(transparent)]
    Partition(#[from] PartitionError),
    /// The catalogue refused the request.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// The node's write-ahead log is at or near its size limit (`raft.max_log_bytes`):
    /// the write was refused before it reached the log and will never appear. Reads
    /// still work; writes succeed again once compaction and purge free space.
    #[error("the node's write-ahead log is full ({used} of {limit} bytes used): write refused")]
    StorageFull {
        /// Bytes the log's live segments held.
        used: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The node is stopping or stopped.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The replication layer failed.
    #[error("replication: {0}")]
    Replication(raft_multi::Error),
    /// The write-ahead log failed.
    #[error("storage: {0}")]
    Storage(#[from] raft_storage::Error),
    /// The transport failed to start.
    #[error("transport: {0}")]
    Transport(#[from] raft_transport::TransportError),
    /// A state machine could not be opened.
    #[error("state machine: {0}")]
    StateMachine(#[from] raft_fsm::FsmError),
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An I/O error outside the engines (binding a socket, making a directory).
    #[error("I/O error on {path:?}: {source}")]
    Io {
        /// What was being accessed.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// What is wrong with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidRequest {
    /// A produce without records.
    #[error("no records")]
    EmptyRecords,
    /// A topic needs at least one partition.
    #[error("partition count must be at least 1")]
    NoPartitions,
    /// More replicas asked than nodes registered.
    #[error("replication factor larger than the number of nodes")]
    NotEnoughNodes,
    /// A replica set that is empty or names a node twice.
    #[error("a replica set must be non-empty and name each node once")]
    BadReplicaSet,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path:?}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a node configuration.
    #[error("bad config{}: {message}", path.as_ref().map(|p| format!(" {p:?}")).unwrap_or_default())]
    Parse {
        /// The file, when known.
        path: Option<PathBuf>,
        /// The parser's message.
        message: String,
    },
    /// An environment override does not parse.
    #[error("bad value {value:?} for {name}")]
    Env {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
    },
    /// A setting is out of range or inconsistent.
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl ClusterError {
    /// The Kafka protocol error code for this error.
    pub fn kafka_code(&self) -> i16 {
        match self {
            ClusterError::NotLeaderOrFollower { .. } => 6,
            ClusterError::NotController { .. } => 41,
            ClusterError::UnknownTopicOrPartition { .. } => 3,
            ClusterError::NotEnoughReplicas { .. } => 19,
            ClusterError::RequestTimedOut => 7,
            ClusterError::Busy => 7,
            ClusterError::InvalidRequest(InvalidRequest::NoPartitions) => 37,
            ClusterError::InvalidRequest(InvalidRequest::NotEnoughNodes) => 38,
            ClusterError::InvalidRequest(_) => 42,
            ClusterError::Partition(e) => e.kafka_code(),
            ClusterError::Metadata(e) => e.kafka_code(),
            ClusterError::ShuttingDown => 8,
            // KAFKA_STORAGE_ERROR.
            ClusterError::StorageFull { .. } => 56,
            _ => -1,
        }
    }

    /// True when the same request may succeed if retried (perhaps elsewhere).
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            ClusterError::NotLeaderOrFollower { .. }
                | ClusterError::NotController { .. }
                | ClusterError::NotEnoughReplicas { .. }
                | ClusterError::RequestTimedOut
                | ClusterError::Busy
        )
    }

    /// The node to retry on, when the error names one.
    pub fn leader_hint(&self) -> Option<NodeId> {
        match self {
            ClusterError::NotLeaderOrFollower { leader, .. }
            | ClusterError::NotController { leader } => *leader,
            _ => None,
        }
    }

    /// Maps a replication error for a request on `topic`/`partition`.
    pub(crate) fn from_replication(
        error: raft_multi::Error,
        topic: &str,
        partition: u32,
    ) -> ClusterError {
        match error {
            raft_multi::Error::NotLeader { leader, .. } => ClusterError::NotLeaderOrFollower {
                topic: topic.to_owned(),
                partition,
                leader,
            },
            raft_multi::Error::GroupNotFound(_) => ClusterError::NotLeaderOrFollower {
                topic: topic.to_owned(),
                partition,
                leader: None,
            },
            raft_multi::Error::Busy { .. } => ClusterError::Busy,
            raft_multi::Error::ProposalDropped { .. } | raft_multi::Error::Superseded { .. } => {
                ClusterError::NotLeaderOrFollower {
                    topic: topic.to_owned(),
                    partition,
                    leader: None,
                }
            }
            raft_multi::Error::Unknown { .. } => ClusterError::RequestTimedOut,
            raft_multi::Error::Stopped => ClusterError::ShuttingDown,
            raft_multi::Error::StorageFull { used, limit, .. } => {
                ClusterError::StorageFull { used, limit }
            }
            other => ClusterError::Replication(other),
        }
    }

    /// Maps a replication error for a request to the metadata group.
    pub(crate) fn from_metadata_replication(error: raft_multi::Error) -> ClusterError {
        match error {
            raft_multi::Error::NotLeader { leader, .. } => ClusterError::NotController { leader },
            raft_multi::Error::ProposalDropped { .. } | raft_multi::Error::Superseded { .. } => {
                ClusterError::NotController { leader: None }
            }
            raft_multi::Error::Busy { .. } => ClusterError::Busy,
            raft_multi::Error::Unknown { .. } => ClusterError::RequestTimedOut,
            raft_multi::Error::Stopped => ClusterError::ShuttingDown,
            raft_multi::Error::StorageFull { used, limit, .. } => {
                ClusterError::StorageFull { used, limit }
            }
            other => ClusterError::Replication(other),
        }
    }
}
