//! [`Violation`]: what the checker found wrong, and where.

use bytes::Bytes;

use super::{OpId, PartitionId, ReplicaId};

/// One broken guarantee, with the partition, replica and offset where it was seen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// The history touches a partition for which no replica log was given.
    #[error("{partition}: no final log was given")]
    NoFinalLog {
        /// The partition.
        partition: PartitionId,
    },
    /// A batch whose offset range does not match its record count.
    #[error("{partition} replica {replica}: batch {base_offset}..={last_offset} holds {records} records")]
    MalformedBatch {
        /// The partition.
        partition: PartitionId,
        /// The replica.
        replica: ReplicaId,
        /// The batch's first offset.
        base_offset: u64,
        /// The batch's last offset.
        last_offset: u64,
        /// Records it holds.
        records: usize,
    },
    /// Offsets are not contiguous: a gap or an overlap before `found`.
    #[error("{partition} replica {replica}: expected offset {expected}, found {found}")]
    Gap {
        /// The partition.
        partition: PartitionId,
        /// The replica.
        replica: ReplicaId,
        /// The next offset expected (the log start for the first batch).
        expected: u64,
        /// The offset found.
        found: u64,
    },
    /// The log does not end at the replica's high watermark.
    #[error(
        "{partition} replica {replica}: log ends at {log_end}, high watermark {high_watermark}"
    )]
    HighWatermarkMismatch {
        /// The partition.
        partition: PartitionId,
        /// The replica.
        replica: ReplicaId,
        /// One past the last offset read.
        log_end: u64,
        /// The replica's high watermark.
        high_watermark: u64,
    },
    /// Two replicas differ from `offset` on (another record, or one log is longer).
    #[error("{partition}: replica {replica} differs from replica {reference} at offset {offset}")]
    ReplicasDiverge {
        /// The partition.
        partition: PartitionId,
        /// The replica that differs.
        replica: ReplicaId,
        /// The replica it was compared with.
        reference: ReplicaId,
        /// The first offset where they differ.
        offset: u64,
    },
    /// An acknowledged record (or one said to be written already) is not in the log.
    #[error(
        "{partition} replica {replica}: acknowledged record {record:?} (offset {offset:?}) is lost"
    )]
    LostAcknowledged {
        /// The partition.
        partition: PartitionId,
        /// The replica.
        replica: ReplicaId,
        /// The record.
        record: Bytes,
        /// Its acknowledged offset (`None` for `AlreadyWritten`).
        offset: Option<u64>,
    },
    /// An acknowledged record sits at another offset than the one acknowledged.
    #[error("{partition} replica {replica}: record {record:?} acknowledged at {acknowledged}, found at {found}")]
    WrongOffset {
        /// The partition.
        partition: PartitionId,
        /// The replica.
        replica: ReplicaId,
        /// The record.
        record: Bytes,
        /// The acknowledged offset.
        acknowledged: u64,
        /// Where it is.
        found: u64,
    },
    /// An acknowledgement whose offset range does not match the batch's record count.
    #[error("{partition}: attempt {op:?} of {records} records acknowledged as {base_offset}..={last_offset}")]
    AcknowledgedRangeMismatch {
        /// The partition.
        partition: PartitionId,
        /// The attempt.
        op: OpId,
        /// Records in the batch.
        records: usize,
        /// Acknowledged first offset.
        base_offset: u64,
        /// Acknowledged last offset.
        last_offset: u64,
    },
    /// A record appears more than once (a retry written twice).
    #[error("{partition} replica {replica}: record {record:?} appears at offsets {offsets:?}")]
    Duplicate {
        /// The partition.
        partition: PartitionId,
        /// The replica.
        replica: ReplicaId,
        /// The record.
        record: Bytes,
        /// Every offset holding it.
        offsets: Vec<u64>,
    },
    /// A record whose every attempt failed definitely is in the log.
    #[error("{partition} replica {replica}: failed record {record:?} present at offset {offset}")]
    FailedRecordPresent {
        /// The partition.
        partition: PartitionId,
        /// The replica.
        replica: ReplicaId,
        /// The record.
        record: Bytes,
        /// Where it is.
        offset: u64,
    },
    /// A record nobody produced to this partition is in its log.
    #[error("{partition} replica {replica}: unknown record {record:?} at offset {offset}")]
    UnknownRecord {
        /// The partition.
        partition: PartitionId,
        /// The replica.
        replica: ReplicaId,
        /// The record.
        record: Bytes,
        /// Where it is.
        offset: u64,
    },
    /// Two attempts that are not retries of one batch carry the same record: the
    /// history is ambiguous (a mistake of the test, not of the system).
    #[error(
        "{partition}: record {record:?} produced by unrelated attempts {first:?} and {second:?}"
    )]
    RecordReused {
        /// The partition.
        partition: PartitionId,
        /// The record.
        record: Bytes,
        /// One attempt.
        first: OpId,
        /// Another, not a retry of the first.
        second: OpId,
    },
    /// A fetch returned a batch whose offset range does not match its record count.
    #[error("{partition}: fetch {fetch} returned batch {base_offset}..={last_offset} of {records} records")]
    FetchMalformed {
        /// The partition.
        partition: PartitionId,
        /// Index of the fetch in the history.
        fetch: usize,
        /// The batch's first offset.
        base_offset: u64,
        /// The batch's last offset.
        last_offset: u64,
        /// Records it holds.
        records: usize,
    },
    /// A fetch's batches are not contiguous, or do not start at the offset asked.
    #[error("{partition}: fetch {fetch} expected offset {expected}, got {found}")]
    FetchGap {
        /// The partition.
        partition: PartitionId,
        /// Index of the fetch in the history.
        fetch: usize,
        /// The offset expected next.
        expected: u64,
        /// The offset returned.
        found: u64,
    },
    /// A fetch returned a record at or past the high watermark it reported itself.
    #[error("{partition}: fetch {fetch} returned offset {offset} past its high watermark {high_watermark}")]
    FetchPastHighWatermark {
        /// The partition.
        partition: PartitionId,
        /// Index of the fetch in the history.
        fetch: usize,
        /// The offset returned.
        offset: u64,
        /// The high watermark reported.
        high_watermark: u64,
    },
    /// A fetch returned a record at an offset the final log does not reach.
    #[error("{partition} replica {replica}: fetch {fetch} returned offset {offset}, final log ends at {log_end}")]
    FetchBeyondFinalLog {
        /// The partition.
        partition: PartitionId,
        /// The replica compared with.
        replica: ReplicaId,
        /// Index of the fetch in the history.
        fetch: usize,
        /// The offset returned.
        offset: u64,
        /// One past the final log's last offset.
        log_end: u64,
    },
    /// A fetch returned another record than the final log holds at that offset.
    #[error("{partition} replica {replica}: fetch {fetch} returned {fetched:?} at offset {offset}, final log holds {final_record:?}")]
    FetchMismatch {
        /// The partition.
        partition: PartitionId,
        /// The replica compared with.
        replica: ReplicaId,
        /// Index of the fetch in the history.
        fetch: usize,
        /// The offset.
        offset: u64,
        /// What the fetch returned.
        fetched: Bytes,
        /// What the final log holds.
        final_record: Bytes,
    },
}
