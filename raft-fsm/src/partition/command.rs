//! Commands of the partition machine: versioned prost messages.
//!
//! The proposer (the partition leader's request path) builds a command with
//! the typed constructors, proposes its [`PartitionCommand::encode`] bytes
//! through raft, and decodes the response with the helpers in
//! [`super::response`]. Everything that must be deterministic at apply
//! time (the append time, the retention clock) travels in the command.

use bytes::Bytes;
use prost::Message;

use crate::error::{CorruptReason, PartitionError};

/// The command format version this code writes and understands.
pub const COMMAND_VERSION: u32 = 1;

/// A replicated partition command.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PartitionCommand {
    /// Format version; newer versions are rejected as corrupt.
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// The operation.
    #[prost(oneof = "PartitionOp", tags = "2, 3, 4")]
    pub op: Option<PartitionOp>,
}

/// The operations of a partition command.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum PartitionOp {
    /// Append a record batch.
    #[prost(message, tag = "2")]
    Append(AppendCommand),
    /// Advance the log start offset (Kafka DeleteRecords).
    #[prost(message, tag = "3")]
    DeleteRecords(DeleteRecordsCommand),
    /// Enforce retention by time and size, and expire idle producers.
    #[prost(message, tag = "4")]
    ApplyRetention(RetentionCommand),
}

/// Append one record batch.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AppendCommand {
    /// The records, opaque (Kafka RecordBatch v2 bytes).
    #[prost(bytes = "bytes", tag = "1")]
    pub records: Bytes,
    /// Number of records (offsets the batch takes).
    #[prost(uint32, tag = "2")]
    pub record_count: u32,
    /// Greatest record timestamp of the batch (ms).
    #[prost(int64, tag = "3")]
    pub max_timestamp: i64,
    /// Append time chosen by the proposer (ms); the same on every replica.
    #[prost(int64, tag = "4")]
    pub append_time_ms: i64,
    /// Idempotent producer identity, if the producer is idempotent.
    #[prost(message, optional, tag = "5")]
    pub producer: Option<ProducerInfo>,
}

/// An idempotent producer's identity and the batch's first sequence.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct ProducerInfo {
    /// The producer id.
    #[prost(int64, tag = "1")]
    pub producer_id: i64,
    /// The producer epoch.
    #[prost(int32, tag = "2")]
    pub producer_epoch: i32,
    /// Sequence of the batch's first record.
    #[prost(int32, tag = "3")]
    pub base_sequence: i32,
}

/// Advance the log start offset to `offset` (records before it disappear).
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct DeleteRecordsCommand {
    /// The new log start offset; at most the high watermark.
    #[prost(uint64, tag = "1")]
    pub offset: u64,
}

/// Enforce retention with a clock value carried in the command.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct RetentionCommand {
    /// The proposer's clock (ms): apply never reads a clock.
    #[prost(int64, tag = "1")]
    pub now_ms: i64,
    /// Delete segments whose newest record is older than this (ms).
    #[prost(int64, optional, tag = "2")]
    pub retention_ms: Option<i64>,
    /// Delete oldest segments while the log is larger than this.
    #[prost(uint64, optional, tag = "3")]
    pub retention_bytes: Option<u64>,
    /// Forget producers idle for longer than this (ms).
    #[prost(int64, optional, tag = "4")]
    pub producer_expiration_ms: Option<i64>,
}

impl PartitionCommand {
    fn new(op: PartitionOp) -> Self {
        PartitionCommand {
            version: COMMAND_VERSION,
            op: Some(op),
        }
    }

    /// Appends a batch of `record_count` records from a non-idempotent producer.
    pub fn append(
        records: Bytes,
        record_count: u32,
        max_timestamp: i64,
        append_time_ms: i64,
    ) -> Self {
        Self::new(PartitionOp::Append(AppendCommand {
            records,
            record_count,
            max_timestamp,
            append_time_ms,
            producer: None,
        }))
    }

    /// Appends a batch from an idempotent producer.
    pub fn append_idempotent(
        records: Bytes,
        record_count: u32,
        max_timestamp: i64,
        append_time_ms: i64,
        producer: ProducerInfo,
    ) -> Self {
        Self::new(PartitionOp::Append(AppendCommand {
            records,
            record_count,
            max_timestamp,
            append_time_ms,
            producer: Some(producer),
        }))
    }

    /// Moves the log start offset to `offset` (Kafka DeleteRecords).
    pub fn delete_records(offset: u64) -> Self {
        Self::new(PartitionOp::DeleteRecords(DeleteRecordsCommand { offset }))
    }

    /// Enforces retention at the proposer's time `now_ms`.
    pub fn apply_retention(
        now_ms: i64,
        retention_ms: Option<i64>,
        retention_bytes: Option<u64>,
        producer_expiration_ms: Option<i64>,
    ) -> Self {
        Self::new(PartitionOp::ApplyRetention(RetentionCommand {
            now_ms,
            retention_ms,
            retention_bytes,
            producer_expiration_ms,
        }))
    }

    /// The bytes to propose.
    pub fn encode(&self) -> Bytes {
        Bytes::from(self.encode_to_vec())
    }

    /// Decodes and checks the version.
    ///
    /// # Errors
    /// [`PartitionError::CorruptMessage`] for undecodable bytes, an unknown
    /// version or a missing operation.
    pub fn decode_checked(data: &[u8]) -> Result<PartitionOp, PartitionError> {
        let corrupt = |reason| PartitionError::CorruptMessage { reason };
        let command =
            PartitionCommand::decode(data).map_err(|_| corrupt(CorruptReason::Undecodable))?;
        if command.version == 0 || command.version > COMMAND_VERSION {
            return Err(corrupt(CorruptReason::UnsupportedVersion(command.version)));
        }
        command.op.ok_or(corrupt(CorruptReason::MissingOperation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip() {
        let cmd = PartitionCommand::append_idempotent(
            Bytes::from_static(b"abc"),
            3,
            10,
            20,
            ProducerInfo {
                producer_id: 0,
                producer_epoch: 1,
                base_sequence: 2,
            },
        );
        match PartitionCommand::decode_checked(&cmd.encode()).unwrap() {
            PartitionOp::Append(a) => {
                assert_eq!(a.records.as_ref(), b"abc");
                assert_eq!(a.producer.unwrap().producer_id, 0);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bad_commands_are_typed() {
        let future = PartitionCommand {
            version: 99,
            op: None,
        }
        .encode();
        assert_eq!(
            PartitionCommand::decode_checked(&future),
            Err(PartitionError::CorruptMessage {
                reason: CorruptReason::UnsupportedVersion(99)
            })
        );
        assert!(matches!(
            PartitionCommand::decode_checked(&[0xff, 0xff, 0xff]),
            Err(PartitionError::CorruptMessage {
                reason: CorruptReason::Undecodable
            })
        ));
        let empty = PartitionCommand {
            version: 1,
            op: None,
        }
        .encode();
        assert!(matches!(
            PartitionCommand::decode_checked(&empty),
            Err(PartitionError::CorruptMessage {
                reason: CorruptReason::MissingOperation
            })
        ));
    }
}
