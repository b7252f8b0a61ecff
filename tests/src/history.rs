//! A history of produce and fetch operations against a partitioned log, and a
//! checker of that history against the final log of every replica.
//!
//! A test records every produce attempt when it is invoked and then its outcome
//! (acknowledged with offsets, failed definitely, outcome unknown), and every fetch
//! with the records it returned. Once the cluster is healed and quiet, it reads the
//! final log of each replica and calls [`History::check`]. Records are opaque bytes
//! that the test makes unique (`"p{partition}-c{client}-{n}"`): a record's payload is
//! its identity. An idempotent retry of a batch is recorded with
//! [`History::retry_invoked`], so its attempts share their payloads.
//!
//! What is checked, per partition and per replica:
//! - offsets are contiguous from the log start up to the high watermark, and every
//!   batch holds exactly the records its offset range says;
//! - the replicas hold the same records at the same offsets;
//! - every acknowledged record is present exactly once, at its acknowledged offset;
//! - no record appears twice (so an idempotent retry was never written twice);
//! - a record whose every attempt failed definitely is absent, and no record appears
//!   that nobody produced;
//! - every fetch returned a contiguous slice of the final log starting at the offset
//!   asked for, never past the high watermark it reported, never data that is not in
//!   the final log at that offset.

mod check;
#[cfg(test)]
mod history_test;
mod report;
mod violation;

use std::fmt;

use bytes::Bytes;

pub use report::Report;
pub use violation::Violation;

/// A node id, as chronik-cluster names replicas.
pub type ReplicaId = u64;

/// One topic-partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionId {
    /// The topic.
    pub topic: String,
    /// The partition index.
    pub partition: u32,
}

impl PartitionId {
    /// Partition `partition` of `topic`.
    pub fn new(topic: impl Into<String>, partition: u32) -> Self {
        PartitionId {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Identifies one produce attempt in a [`History`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub usize);

/// What became of a produce attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProduceOutcome {
    /// Invoked, no answer recorded (counts as unknown).
    Pending,
    /// Acknowledged: the batch's records got `base_offset..=last_offset`, in order.
    Acknowledged {
        /// Offset of the first record.
        base_offset: u64,
        /// Offset of the last record.
        last_offset: u64,
    },
    /// Refused definitely: the records were never appended and never will be.
    Failed,
    /// The outcome cannot be known (a timeout): the records may or may not appear.
    Unknown,
    /// The partition said the batch was written already, without its offsets (Kafka's
    /// `DUPLICATE_SEQUENCE_NUMBER`): the records must be present.
    AlreadyWritten,
}

/// One produce attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceOp {
    /// Where it went.
    pub partition: PartitionId,
    /// Its records, in order.
    pub records: Vec<Bytes>,
    /// The first attempt of the batch, when this is an idempotent retry.
    pub retry_of: Option<OpId>,
    /// What became of it.
    pub outcome: ProduceOutcome,
}

/// A record batch as read: offsets `base_offset..=last_offset` hold `records`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Offset of the first record.
    pub base_offset: u64,
    /// Offset of the last record.
    pub last_offset: u64,
    /// The records, in offset order.
    pub records: Vec<Bytes>,
}

/// One fetch and what it returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOp {
    /// What was read.
    pub partition: PartitionId,
    /// The node that answered.
    pub replica: ReplicaId,
    /// The offset asked for.
    pub offset: u64,
    /// The high watermark the answer reported.
    pub high_watermark: u64,
    /// The batches returned.
    pub batches: Vec<Batch>,
}

/// The final log of one replica of a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaLog {
    /// The partition.
    pub partition: PartitionId,
    /// The replica's node.
    pub replica: ReplicaId,
    /// Its log start offset.
    pub log_start_offset: u64,
    /// Its high watermark (one past the last record).
    pub high_watermark: u64,
    /// Every batch from the log start to the high watermark.
    pub batches: Vec<Batch>,
}

/// Every produce attempt and fetch of a test run. Not synchronised: concurrent
/// clients share it behind a mutex, or keep their own and [`merge`](Self::merge).
#[derive(Debug, Clone, Default)]
pub struct History {
    produces: Vec<ProduceOp>,
    fetches: Vec<FetchOp>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a produce of `records` to `partition`, not yet answered.
    pub fn produce_invoked(&mut self, partition: PartitionId, records: Vec<Bytes>) -> OpId {
        self.produces.push(ProduceOp {
            partition,
            records,
            retry_of: None,
            outcome: ProduceOutcome::Pending,
        });
        OpId(self.produces.len() - 1)
    }

    /// Records an idempotent retry of attempt `of` (same partition, same records);
    /// `None` if there is no such attempt.
    pub fn retry_invoked(&mut self, of: OpId) -> Option<OpId> {
        let first = self.produces.get(of.0)?;
        let op = ProduceOp {
            partition: first.partition.clone(),
            records: first.records.clone(),
            retry_of: Some(first.retry_of.unwrap_or(of)),
            outcome: ProduceOutcome::Pending,
        };
        self.produces.push(op);
        Some(OpId(self.produces.len() - 1))
    }

    /// Records what became of attempt `op` (ignored if there is no such attempt).
    pub fn complete(&mut self, op: OpId, outcome: ProduceOutcome) {
        if let Some(p) = self.produces.get_mut(op.0) {
            p.outcome = outcome;
        }
    }

    /// Records an acknowledgement of `op` with its offsets.
    pub fn acknowledged(&mut self, op: OpId, base_offset: u64, last_offset: u64) {
        self.complete(
            op,
            ProduceOutcome::Acknowledged {
                base_offset,
                last_offset,
            },
        );
    }

    /// Records a fetch and its answer.
    pub fn fetched(&mut self, fetch: FetchOp) {
        self.fetches.push(fetch);
    }

    /// Appends another history's operations (their ids are renumbered, retries kept).
    pub fn merge(&mut self, other: History) {
        let shift = self.produces.len();
        self.produces
            .extend(other.produces.into_iter().map(|mut op| {
                op.retry_of = op.retry_of.map(|OpId(i)| OpId(i + shift));
                op
            }));
        self.fetches.extend(other.fetches);
    }

    /// Every produce attempt, by [`OpId`].
    pub fn produces(&self) -> &[ProduceOp] {
        &self.produces
    }

    /// Every fetch.
    pub fn fetches(&self) -> &[FetchOp] {
        &self.fetches
    }

    /// Checks the history against the final log of every replica. `replicas` must
    /// hold at least one log for every partition the history touches.
    pub fn check(&self, replicas: &[ReplicaLog]) -> Report {
        check::check(self, replicas)
    }
}
