//! Responses of the partition machine and the typed helpers that decode them.
//!
//! Command-level errors travel inside the response (they are the same on
//! every replica); the helpers turn them back into [`PartitionError`].

use bytes::Bytes;
use prost::Message;

use crate::error::{CorruptReason, InvalidRecordReason, PartitionError};

/// The response to one applied partition command.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PartitionResponse {
    /// What happened.
    #[prost(oneof = "PartitionOutcome", tags = "1, 2, 3, 4")]
    pub outcome: Option<PartitionOutcome>,
}

/// The outcomes of a partition command.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum PartitionOutcome {
    /// The batch was appended (or was a retry of an appended batch).
    #[prost(message, tag = "1")]
    Append(AppendResult),
    /// DeleteRecords applied.
    #[prost(message, tag = "2")]
    DeleteRecords(DeleteRecordsResult),
    /// Retention applied.
    #[prost(message, tag = "3")]
    Retention(RetentionResult),
    /// The command was rejected.
    #[prost(message, tag = "4")]
    Error(ErrorResult),
}

/// Where an appended batch landed.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct AppendResult {
    /// Offset of the batch's first record.
    #[prost(uint64, tag = "1")]
    pub base_offset: u64,
    /// Offset of the batch's last record.
    #[prost(uint64, tag = "2")]
    pub last_offset: u64,
    /// The batch's append time (ms).
    #[prost(int64, tag = "3")]
    pub log_append_time: i64,
    /// The log start offset after the append.
    #[prost(uint64, tag = "4")]
    pub log_start_offset: u64,
    /// True when this was a retry answered with the original offsets.
    #[prost(bool, tag = "5")]
    pub duplicate: bool,
}

/// The outcome of DeleteRecords.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct DeleteRecordsResult {
    /// The new log start offset (Kafka's low watermark).
    #[prost(uint64, tag = "1")]
    pub low_watermark: u64,
}

/// The outcome of a retention pass.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct RetentionResult {
    /// The log start offset after the pass.
    #[prost(uint64, tag = "1")]
    pub log_start_offset: u64,
    /// Segments removed.
    #[prost(uint64, tag = "2")]
    pub segments_deleted: u64,
    /// Producers forgotten.
    #[prost(uint64, tag = "3")]
    pub producers_expired: u64,
}

/// A rejected command: a [`PartitionError`] in wire form.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct ErrorResult {
    /// Which error (see `to_wire`); the Kafka code is derived from it.
    #[prost(uint32, tag = "1")]
    pub kind: u32,
    /// First numeric detail (producer id, offset, size...).
    #[prost(int64, tag = "2")]
    pub a: i64,
    /// Second numeric detail.
    #[prost(int64, tag = "3")]
    pub b: i64,
    /// Third numeric detail.
    #[prost(int64, tag = "4")]
    pub c: i64,
}

impl ErrorResult {
    /// The wire form of `error`.
    pub fn from_error(error: &PartitionError) -> Self {
        let (kind, a, b, c) = match *error {
            PartitionError::OutOfOrderSequence {
                producer_id,
                expected,
                got,
            } => (1, producer_id, i64::from(expected), i64::from(got)),
            PartitionError::ProducerFenced {
                producer_id,
                current,
                got,
            } => (2, producer_id, i64::from(current), i64::from(got)),
            PartitionError::DuplicateSequence {
                producer_id,
                sequence,
            } => (3, producer_id, i64::from(sequence), 0),
            PartitionError::OffsetOutOfRange {
                offset,
                log_start_offset,
                high_watermark,
            } => (
                4,
                offset as i64,
                log_start_offset as i64,
                high_watermark as i64,
            ),
            PartitionError::CorruptMessage { reason } => match reason {
                CorruptReason::Undecodable => (5, 0, 0, 0),
                CorruptReason::UnsupportedVersion(v) => (5, 1, i64::from(v), 0),
                CorruptReason::MissingOperation => (5, 2, 0, 0),
            },
            PartitionError::InvalidRecord { reason } => match reason {
                InvalidRecordReason::Empty => (6, 0, 0, 0),
                InvalidRecordReason::BadSequence => (6, 1, 0, 0),
                InvalidRecordReason::DeleteBeyondHighWatermark => (6, 2, 0, 0),
            },
            PartitionError::MessageTooLarge { size, max } => (7, size as i64, max as i64, 0),
            _ => (0, 0, 0, 0),
        };
        ErrorResult { kind, a, b, c }
    }

    /// The [`PartitionError`] this wire form stands for.
    pub fn to_error(&self) -> PartitionError {
        let (a, b, c) = (self.a, self.b, self.c);
        match (self.kind, a) {
            (1, _) => PartitionError::OutOfOrderSequence {
                producer_id: a,
                expected: b as i32,
                got: c as i32,
            },
            (2, _) => PartitionError::ProducerFenced {
                producer_id: a,
                current: b as i32,
                got: c as i32,
            },
            (3, _) => PartitionError::DuplicateSequence {
                producer_id: a,
                sequence: b as i32,
            },
            (4, _) => PartitionError::OffsetOutOfRange {
                offset: a as u64,
                log_start_offset: b as u64,
                high_watermark: c as u64,
            },
            (5, 0) => PartitionError::CorruptMessage {
                reason: CorruptReason::Undecodable,
            },
            (5, 1) => PartitionError::CorruptMessage {
                reason: CorruptReason::UnsupportedVersion(b as u32),
            },
            (5, _) => PartitionError::CorruptMessage {
                reason: CorruptReason::MissingOperation,
            },
            (6, 0) => PartitionError::InvalidRecord {
                reason: InvalidRecordReason::Empty,
            },
            (6, 1) => PartitionError::InvalidRecord {
                reason: InvalidRecordReason::BadSequence,
            },
            (6, _) => PartitionError::InvalidRecord {
                reason: InvalidRecordReason::DeleteBeyondHighWatermark,
            },
            (7, _) => PartitionError::MessageTooLarge {
                size: a as u64,
                max: b as u64,
            },
            _ => PartitionError::UnexpectedResponse,
        }
    }
}

impl PartitionResponse {
    /// Encodes an outcome.
    pub(crate) fn encode_outcome(outcome: PartitionOutcome) -> Bytes {
        Bytes::from(
            PartitionResponse {
                outcome: Some(outcome),
            }
            .encode_to_vec(),
        )
    }

    /// Encodes a rejection.
    pub(crate) fn encode_error(error: &PartitionError) -> Bytes {
        Self::encode_outcome(PartitionOutcome::Error(ErrorResult::from_error(error)))
    }
}

/// Decodes any partition response into its outcome, errors as `Err`.
///
/// # Errors
/// The rejection carried in the response, or
/// [`PartitionError::CorruptMessage`] if the bytes do not decode.
pub fn decode_response(response: &[u8]) -> Result<PartitionOutcome, PartitionError> {
    let decoded =
        PartitionResponse::decode(response).map_err(|_| PartitionError::CorruptMessage {
            reason: CorruptReason::Undecodable,
        })?;
    match decoded.outcome {
        Some(PartitionOutcome::Error(e)) => Err(e.to_error()),
        Some(outcome) => Ok(outcome),
        None => Err(PartitionError::CorruptMessage {
            reason: CorruptReason::MissingOperation,
        }),
    }
}

/// Decodes the response to an append.
///
/// # Errors
/// The rejection (`OutOfOrderSequence`, `ProducerFenced`, ...), or
/// [`PartitionError::UnexpectedResponse`] for another command's response.
pub fn decode_append_response(response: &[u8]) -> Result<AppendResult, PartitionError> {
    match decode_response(response)? {
        PartitionOutcome::Append(result) => Ok(result),
        _ => Err(PartitionError::UnexpectedResponse),
    }
}

/// Decodes the response to DeleteRecords.
///
/// # Errors
/// As [`decode_append_response`].
pub fn decode_delete_records_response(
    response: &[u8],
) -> Result<DeleteRecordsResult, PartitionError> {
    match decode_response(response)? {
        PartitionOutcome::DeleteRecords(result) => Ok(result),
        _ => Err(PartitionError::UnexpectedResponse),
    }
}

/// Decodes the response to a retention pass.
///
/// # Errors
/// As [`decode_append_response`].
pub fn decode_retention_response(response: &[u8]) -> Result<RetentionResult, PartitionError> {
    match decode_response(response)? {
        PartitionOutcome::Retention(result) => Ok(result),
        _ => Err(PartitionError::UnexpectedResponse),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wire_error_round_trips() {
        let errors = [
            PartitionError::OutOfOrderSequence {
                producer_id: 7,
                expected: 3,
                got: 9,
            },
            PartitionError::ProducerFenced {
                producer_id: 7,
                current: 2,
                got: 1,
            },
            PartitionError::DuplicateSequence {
                producer_id: 7,
                sequence: 4,
            },
            PartitionError::OffsetOutOfRange {
                offset: 10,
                log_start_offset: 2,
                high_watermark: 5,
            },
            PartitionError::CorruptMessage {
                reason: CorruptReason::Undecodable,
            },
            PartitionError::CorruptMessage {
                reason: CorruptReason::UnsupportedVersion(3),
            },
            PartitionError::CorruptMessage {
                reason: CorruptReason::MissingOperation,
            },
            PartitionError::InvalidRecord {
                reason: InvalidRecordReason::Empty,
            },
            PartitionError::InvalidRecord {
                reason: InvalidRecordReason::BadSequence,
            },
            PartitionError::InvalidRecord {
                reason: InvalidRecordReason::DeleteBeyondHighWatermark,
            },
            PartitionError::MessageTooLarge { size: 10, max: 5 },
        ];
        for error in errors {
            let bytes = PartitionResponse::encode_error(&error);
            assert_eq!(decode_append_response(&bytes), Err(error));
        }
    }

    #[test]
    fn wrong_kind_of_response_is_typed() {
        let bytes = PartitionResponse::encode_outcome(PartitionOutcome::DeleteRecords(
            DeleteRecordsResult { low_watermark: 3 },
        ));
        assert_eq!(
            decode_append_response(&bytes),
            Err(PartitionError::UnexpectedResponse)
        );
        assert_eq!(
            decode_delete_records_response(&bytes)
                .unwrap()
                .low_watermark,
            3
        );
        assert!(decode_append_response(&[0xff]).is_err());
    }
}
