//! Errors of the crate.
//!
//! Two families stay apart (see STYLE §4, "fatal and API errors"):
//! - [`FsmError`] is *fatal* for a group: an I/O failure, a corrupt file, a
//!   gap in the applied indexes. The scheduler stops the group on it.
//! - [`PartitionError`] and [`MetadataError`] are *command-level* outcomes,
//!   decided deterministically at apply time on every replica and encoded in
//!   the response bytes handed back to the proposer (Kafka error codes).

use std::io;
use std::path::PathBuf;

/// Where a corrupt file was detected and what was wrong with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptionKind {
    /// A frame's CRC32C does not match its bytes.
    ChecksumMismatch,
    /// A frame header announces a length that does not fit the file.
    BadLength,
    /// A file is shorter than its checkpoint says it was when made durable.
    Truncated,
    /// A file does not start with the expected magic bytes or version.
    BadHeader,
    /// A protobuf payload does not decode.
    UndecodableState,
    /// Offsets in a segment are not contiguous with the previous batch.
    OffsetGap,
    /// A file the checkpoint lists does not exist.
    MissingFile,
}

/// A fatal error of a state machine: the scheduler stops the group.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsmError {
    /// An entry was applied out of order.
    #[error("entry index {got} applied out of order: expected {expected}")]
    IndexGap {
        /// The index `applied_index() + 1`.
        expected: u64,
        /// The index that was passed.
        got: u64,
    },
    /// A file of the machine is corrupt.
    #[error("corrupt file {path:?} at byte {position}: {kind:?}")]
    Corruption {
        /// The file.
        path: PathBuf,
        /// Byte position inside the file where the problem was found.
        position: u64,
        /// What is wrong.
        kind: CorruptionKind,
    },
    /// A snapshot stream is malformed (bad header, wrong lengths, bad CRC).
    #[error("malformed snapshot at byte {position}: {kind:?}")]
    BadSnapshot {
        /// Byte position inside the snapshot stream.
        position: u64,
        /// What is wrong.
        kind: CorruptionKind,
    },
    /// A snapshot's meta does not match the state in its header.
    #[error("snapshot meta index {meta} does not match header index {header}")]
    SnapshotMismatch {
        /// Index in the [`SnapshotMeta`](crate::SnapshotMeta).
        meta: u64,
        /// Index in the snapshot's header.
        header: u64,
    },
    /// Another machine (in this or another process) has the directory open.
    #[error("directory {path:?} is in use by another state machine")]
    DirectoryLocked {
        /// The directory.
        path: PathBuf,
    },
    /// An earlier I/O failure left the machine in an unknown state; every
    /// later call fails with this until the machine is reopened.
    #[error("state machine poisoned by an earlier I/O failure")]
    Poisoned,
    /// An I/O operation failed.
    #[error("I/O error on {path:?}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl FsmError {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        FsmError::Io {
            path: path.into(),
            source,
        }
    }
}

/// A command-level outcome of the partition machine, with Kafka's meaning.
///
/// Decided at apply time, identically on every replica, and carried in the
/// response bytes; [`PartitionError::kafka_code`] gives the wire error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PartitionError {
    /// A producer sequence is not the next expected one.
    #[error("out of order sequence {got} for producer {producer_id}: expected {expected}")]
    OutOfOrderSequence {
        /// The producer id.
        producer_id: i64,
        /// The sequence that was expected next.
        expected: i32,
        /// The sequence the batch carried.
        got: i32,
    },
    /// A producer with an older epoch than the current one wrote.
    #[error("producer {producer_id} fenced: epoch {got} older than {current}")]
    ProducerFenced {
        /// The producer id.
        producer_id: i64,
        /// The current epoch of the producer.
        current: i32,
        /// The epoch the batch carried.
        got: i32,
    },
    /// A retry older than the cached window of batches: the original offset
    /// is no longer known, but the batch was written once already.
    #[error("duplicate sequence {sequence} for producer {producer_id}")]
    DuplicateSequence {
        /// The producer id.
        producer_id: i64,
        /// The duplicated first sequence.
        sequence: i32,
    },
    /// An offset outside `[log_start_offset, high_watermark]`.
    #[error("offset {offset} out of range [{log_start_offset}, {high_watermark}]")]
    OffsetOutOfRange {
        /// The requested offset.
        offset: u64,
        /// The current log start offset.
        log_start_offset: u64,
        /// The current high watermark.
        high_watermark: u64,
    },
    /// A command or response that does not decode, or an unknown version.
    #[error("corrupt message: {reason:?}")]
    CorruptMessage {
        /// What was wrong.
        reason: CorruptReason,
    },
    /// A record batch that is structurally invalid (no records, bad count).
    #[error("invalid record batch: {reason:?}")]
    InvalidRecord {
        /// What was wrong.
        reason: InvalidRecordReason,
    },
    /// A batch larger than the partition's maximum batch size.
    #[error("record batch of {size} bytes exceeds the maximum of {max}")]
    MessageTooLarge {
        /// The batch's size.
        size: u64,
        /// The configured maximum.
        max: u64,
    },
    /// The wait for the high watermark ended before it passed the offset.
    #[error("timed out waiting for the high watermark to pass {offset}")]
    WaitTimeout {
        /// The offset that was awaited.
        offset: u64,
    },
    /// The response has an unexpected shape for what was decoded.
    #[error("unexpected response kind")]
    UnexpectedResponse,
    /// Reading the partition's files failed (Kafka's KAFKA_STORAGE_ERROR).
    #[error("storage error while reading: {kind:?}")]
    Storage {
        /// The kind of the underlying I/O error.
        kind: std::io::ErrorKind,
    },
    /// A stored batch failed its checksum when read back.
    #[error("corrupt stored batch in segment {segment} at byte {position}")]
    CorruptStorage {
        /// Base offset of the segment.
        segment: u64,
        /// Byte position of the frame inside the segment.
        position: u64,
    },
}

/// Why a message was judged corrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptReason {
    /// Protobuf decoding failed.
    Undecodable,
    /// The command version is newer than this code understands.
    UnsupportedVersion(u32),
    /// The command carries no operation.
    MissingOperation,
}

/// Why a record batch was judged invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidRecordReason {
    /// The batch carries no bytes or a record count of zero.
    Empty,
    /// A negative base sequence for an idempotent producer, or a sequence
    /// range that would overflow.
    BadSequence,
    /// A DeleteRecords target beyond the high watermark.
    DeleteBeyondHighWatermark,
}

impl PartitionError {
    /// The Kafka protocol error code of this error.
    pub fn kafka_code(&self) -> i16 {
        match self {
            PartitionError::OffsetOutOfRange { .. } => 1,
            PartitionError::CorruptMessage { .. } => 2,
            PartitionError::MessageTooLarge { .. } => 10,
            PartitionError::WaitTimeout { .. } => 7,
            PartitionError::OutOfOrderSequence { .. } => 45,
            PartitionError::DuplicateSequence { .. } => 46,
            PartitionError::InvalidRecord { .. } => 87,
            PartitionError::ProducerFenced { .. } => 90,
            PartitionError::UnexpectedResponse => -1,
            PartitionError::Storage { .. } | PartitionError::CorruptStorage { .. } => 56,
        }
    }
}

/// A command-level outcome of the metadata machine, with Kafka's meaning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// A topic of that name exists already.
    #[error("topic {0:?} already exists")]
    TopicAlreadyExists(String),
    /// A topic or partition that the catalogue does not hold.
    #[error("unknown topic or partition {topic:?}/{partition:?}")]
    UnknownTopicOrPartition {
        /// The topic.
        topic: String,
        /// The partition, when one was named.
        partition: Option<u32>,
    },
    /// Replication factor zero, or replica lists that do not match it.
    #[error("invalid replication factor {0}")]
    InvalidReplicationFactor(u32),
    /// No partitions, or partitions not numbered 0..n.
    #[error("invalid partitions")]
    InvalidPartitions,
    /// A replica list with duplicates or no replicas.
    #[error("invalid replica assignment")]
    InvalidReplicaAssignment,
    /// A node id that is not registered.
    #[error("unknown node {0}")]
    UnknownNode(u64),
    /// A raft group id already used by another partition (or zero).
    #[error("raft group id {0} already in use or reserved")]
    DuplicateGroupId(u64),
    /// A topic name that Kafka would not accept.
    #[error("invalid topic name {0:?}")]
    InvalidTopicName(String),
    /// A command that does not decode or has an unknown version.
    #[error("corrupt message: {0:?}")]
    CorruptMessage(CorruptReason),
    /// The response has an unexpected shape for what was decoded.
    #[error("unexpected response kind")]
    UnexpectedResponse,
}

impl MetadataError {
    /// The Kafka protocol error code of this error.
    pub fn kafka_code(&self) -> i16 {
        match self {
            MetadataError::UnknownTopicOrPartition { .. } => 3,
            MetadataError::CorruptMessage(_) => 2,
            MetadataError::InvalidTopicName(_) => 17,
            MetadataError::InvalidPartitions => 37,
            MetadataError::InvalidReplicationFactor(_) => 38,
            MetadataError::InvalidReplicaAssignment | MetadataError::DuplicateGroupId(_) => 39,
            MetadataError::TopicAlreadyExists(_) => 36,
            MetadataError::UnknownNode(_) => 39,
            MetadataError::UnexpectedResponse => -1,
        }
    }
}

/// Result of fatal state-machine operations.
pub type Result<T, E = FsmError> = std::result::Result<T, E>;
