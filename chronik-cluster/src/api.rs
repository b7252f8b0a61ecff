//! The values of the cluster API: plain Rust types, no protocol types.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

use crate::{GroupId, NodeId};

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Its name (letters, digits, `.`, `_`, `-`; at most 249).
    pub name: String,
    /// Number of partitions (at least 1).
    pub partitions: u32,
    /// Replicas per partition (at most the number of nodes).
    pub replication_factor: u32,
    /// Topic configs (`retention.ms`, `min.insync.replicas`, ...).
    pub configs: BTreeMap<String, String>,
}

impl TopicSpec {
    /// A topic with `partitions` partitions of `replication_factor` replicas each.
    pub fn new(name: impl Into<String>, partitions: u32, replication_factor: u32) -> Self {
        TopicSpec {
            name: name.into(),
            partitions,
            replication_factor,
            configs: BTreeMap::new(),
        }
    }

    /// Sets one config.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.insert(key.into(), value.into());
        self
    }
}

/// A topic as the catalogue holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// Its name.
    pub name: String,
    /// Its 16-byte id.
    pub topic_id: Vec<u8>,
    /// Replicas per partition.
    pub replication_factor: u32,
    /// Its partitions, by index.
    pub partitions: Vec<PartitionDescription>,
    /// Its configs.
    pub configs: BTreeMap<String, String>,
}

/// One partition: its raft group, replicas and leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    /// The topic.
    pub topic: String,
    /// The partition index.
    pub partition: u32,
    /// Its raft group.
    pub group_id: GroupId,
    /// Its replicas; the first is the preferred leader.
    pub replicas: Vec<NodeId>,
    /// Its leader as this node last saw it.
    pub leader: Option<NodeId>,
}

/// How many replicas must have a record before a produce is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// Answer at once, without waiting (the record may be lost).
    None,
    /// Kafka's `acks=1`. Raft commits on a quorum in any case, so this waits like `All`.
    Leader,
    /// Answer once the record is committed on a quorum and applied, with at least
    /// `min.insync.replicas` replicas in sync.
    All,
}

/// An idempotent producer's identity for one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    /// The producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i32,
    /// Sequence number of the batch's first record.
    pub base_sequence: i32,
}

/// Records for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceRequest {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// The record batch, opaque here (Kafka RecordBatch v2 bytes from Chronik's protocol layer).
    pub records: Bytes,
    /// Records in the batch.
    pub record_count: u32,
    /// Largest record timestamp in the batch (ms).
    pub max_timestamp: i64,
    /// Acknowledgement level.
    pub acks: Acks,
    /// Idempotent producer identity, if any.
    pub producer: Option<ProducerIdentity>,
    /// How long to wait for the answer.
    pub timeout: Duration,
}

impl ProduceRequest {
    /// A plain (non-idempotent) `acks=all` produce of `record_count` records.
    pub fn new(
        topic: impl Into<String>,
        partition: u32,
        records: Bytes,
        record_count: u32,
    ) -> Self {
        ProduceRequest {
            topic: topic.into(),
            partition,
            records,
            record_count,
            max_timestamp: 0,
            acks: Acks::All,
            producer: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Where a produced batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceResponse {
    /// Offset of the batch's first record (-1 with `Acks::None`).
    pub base_offset: i64,
    /// Offset of its last record (-1 with `Acks::None`).
    pub last_offset: i64,
    /// The log append time the leader assigned (ms).
    pub log_append_time: i64,
}

/// A read of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// First offset wanted.
    pub offset: u64,
    /// Byte budget (the first batch is returned whole even if larger).
    pub max_bytes: usize,
    /// How long to wait for data past `offset` when there is none yet.
    pub max_wait: Duration,
}

/// One record batch as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    /// Offset of its first record.
    pub base_offset: u64,
    /// Offset of its last record.
    pub last_offset: u64,
    /// Largest record timestamp (ms).
    pub max_timestamp: i64,
    /// The leader epoch it was written in.
    pub leader_epoch: u64,
    /// The batch bytes as produced.
    pub records: Bytes,
}

/// What a fetch returned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchResponse {
    /// Batches from the requested offset, never past the high watermark.
    pub batches: Vec<RecordBatch>,
    /// The partition's high watermark.
    pub high_watermark: u64,
    /// The partition's first offset.
    pub log_start_offset: u64,
}

/// Which offset `list_offsets` looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetQuery {
    /// The log start offset.
    Earliest,
    /// The high watermark.
    Latest,
    /// The first offset whose timestamp is at or after this (ms).
    Timestamp(i64),
}

/// A node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDescription {
    /// Its id.
    pub id: NodeId,
    /// Its raft transport address.
    pub raft_address: String,
    /// Its client service address.
    pub client_address: String,
    /// Its rack, if configured.
    pub rack: Option<String>,
}

/// One step of a change of a partition's replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaChange {
    /// Add a voting replica (or promote a learner).
    AddVoter(NodeId),
    /// Add a learner: it receives the log but does not vote.
    AddLearner(NodeId),
    /// Remove a replica.
    Remove(NodeId),
}

/// A partition's raft group as its leader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRaftStatus {
    /// Voters of the current configuration.
    pub voters: Vec<NodeId>,
    /// Learners.
    pub learners: Vec<NodeId>,
    /// The commit index.
    pub commit: u64,
    /// The highest index known replicated on each replica.
    pub matched: Vec<(NodeId, u64)>,
}

/// A summary of the cluster as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    /// The node answering.
    pub node_id: NodeId,
    /// The controller (metadata leader), if known.
    pub controller: Option<NodeId>,
    /// Registered nodes.
    pub nodes: Vec<NodeDescription>,
    /// Every partition with its leader.
    pub partitions: Vec<PartitionDescription>,
    /// Raft groups hosted on the answering node.
    pub local_groups: u64,
    /// Of those, groups it leads.
    pub local_leaders: u64,
    /// Of those, groups asleep.
    pub local_hibernated: u64,
    /// The partition replicas on the answering node.
    pub local_partitions: Vec<LocalPartitionStatus>,
    /// Write-ahead-log syncs on the answering node since it started.
    pub wal_syncs: u64,
    /// Write-ahead-log bytes written on the answering node since it started.
    pub wal_bytes_written: u64,
    /// The slowest write-ahead-log sync on the answering node since it started, in
    /// microseconds.
    pub wal_sync_max_micros: u64,
    /// Write-ahead-log syncs of 100 ms or more on the answering node since it started
    /// (`raft_storage::SLOW_SYNC`).
    pub wal_slow_syncs: u64,
}

/// One partition replica on the answering node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPartitionStatus {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// Its raft group.
    pub group_id: GroupId,
    /// True when this replica leads.
    pub leader: bool,
    /// Its high watermark (applied here).
    pub high_watermark: u64,
    /// Its log start offset.
    pub log_start_offset: u64,
}
