//! What reads of a partition return.

use bytes::Bytes;

/// One record batch as stored, returned by a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedBatch {
    /// Offset of the batch's first record.
    pub base_offset: u64,
    /// Offset of the batch's last record.
    pub last_offset: u64,
    /// Greatest record timestamp of the batch (ms).
    pub max_timestamp: i64,
    /// The append time carried by the command that wrote it (ms).
    pub log_append_time: i64,
    /// Kafka leader epoch (raft term) the batch was written in.
    pub leader_epoch: u64,
    /// The records, exactly as the producer sent them.
    pub records: Bytes,
}

/// The answer to a fetch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchResult {
    /// The batches, in offset order; empty at the high watermark.
    pub batches: Vec<FetchedBatch>,
    /// The high watermark when the fetch was served.
    pub high_watermark: u64,
    /// The log start offset when the fetch was served.
    pub log_start_offset: u64,
}

impl FetchResult {
    /// Total bytes of records returned.
    pub fn records_bytes(&self) -> usize {
        self.batches.iter().map(|b| b.records.len()).sum()
    }
}

/// Which offset ListOffsets asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The high watermark.
    Latest,
    /// The first batch whose greatest timestamp is at or after this (ms).
    Timestamp(i64),
}

/// The answer to ListOffsets by timestamp or position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset, or `None` when no batch has a timestamp that late.
    pub offset: Option<u64>,
    /// The timestamp of the match (the batch's greatest timestamp), or -1.
    pub timestamp: i64,
    /// The leader epoch of the batch found, if any.
    pub leader_epoch: Option<u64>,
}

/// The answer to OffsetForLeaderEpoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEndOffset {
    /// The largest epoch not greater than the one asked.
    pub leader_epoch: u64,
    /// The start offset of the next epoch, or the high watermark.
    pub end_offset: u64,
}
