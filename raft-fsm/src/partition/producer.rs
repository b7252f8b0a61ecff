//! Idempotent-producer state: per producer id its epoch and the last five
//! batches' sequence ranges and offsets (Kafka's `ProducerStateManager`).
//!
//! Part of the snapshot and of the checkpoint, so a retry is recognised on
//! every replica and after a restart, not only on the leader that saw it.

use std::collections::BTreeMap;

use crate::error::{InvalidRecordReason, PartitionError};

/// How many recent batches are remembered per producer (Kafka's value).
pub(crate) const CACHED_BATCHES: usize = 5;

/// One remembered batch of a producer.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ProducerBatch {
    /// First sequence of the batch.
    #[prost(int32, tag = "1")]
    pub first_sequence: i32,
    /// Last sequence of the batch.
    #[prost(int32, tag = "2")]
    pub last_sequence: i32,
    /// Offset given to the batch's first record.
    #[prost(uint64, tag = "3")]
    pub base_offset: u64,
    /// Offset given to the batch's last record.
    #[prost(uint64, tag = "4")]
    pub last_offset: u64,
    /// Append time of the batch (ms).
    #[prost(int64, tag = "5")]
    pub log_append_time: i64,
}

/// The state of one producer id.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ProducerEntry {
    /// The producer id.
    #[prost(int64, tag = "1")]
    pub producer_id: i64,
    /// The producer's current epoch.
    #[prost(int32, tag = "2")]
    pub epoch: i32,
    /// The last batches, oldest first, at most five.
    #[prost(message, repeated, tag = "3")]
    pub batches: Vec<ProducerBatch>,
}

/// What the table decided for an incoming idempotent batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// A new batch: append it, then [`ProducerTable::record`] it.
    Append,
    /// A retry of a remembered batch: answer with its original offsets.
    Duplicate(ProducerBatch),
}

/// The last sequence of a batch of `count` records starting at `first`;
/// sequences wrap from `i32::MAX` to 0 as in Kafka.
pub(crate) fn last_sequence(first: i32, count: u32) -> i32 {
    let span = i64::from(first) + i64::from(count) - 1;
    (span % (i64::from(i32::MAX) + 1)) as i32
}

fn next_sequence(last: i32) -> i32 {
    if last == i32::MAX {
        0
    } else {
        last + 1
    }
}

/// Every known producer, ordered by id (deterministic iteration).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProducerTable {
    producers: BTreeMap<i64, ProducerEntry>,
}

impl ProducerTable {
    /// Rebuilds a table from its entries (checkpoint or snapshot).
    pub(crate) fn from_entries(entries: Vec<ProducerEntry>) -> Self {
        ProducerTable {
            producers: entries.into_iter().map(|e| (e.producer_id, e)).collect(),
        }
    }

    /// The entries in producer-id order.
    pub(crate) fn entries(&self) -> Vec<ProducerEntry> {
        self.producers.values().cloned().collect()
    }

    /// Number of producers known.
    pub(crate) fn len(&self) -> usize {
        self.producers.len()
    }

    /// Decides what to do with a batch; changes nothing.
    pub(crate) fn check(
        &self,
        producer_id: i64,
        epoch: i32,
        first_sequence: i32,
        count: u32,
    ) -> Result<SequenceCheck, PartitionError> {
        if first_sequence < 0 || epoch < 0 {
            return Err(PartitionError::InvalidRecord {
                reason: InvalidRecordReason::BadSequence,
            });
        }
        let out_of_order = |expected: i32| PartitionError::OutOfOrderSequence {
            producer_id,
            expected,
            got: first_sequence,
        };
        let Some(entry) = self.producers.get(&producer_id) else {
            return if first_sequence == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(out_of_order(0))
            };
        };
        if epoch < entry.epoch {
            return Err(PartitionError::ProducerFenced {
                producer_id,
                current: entry.epoch,
                got: epoch,
            });
        }
        if epoch > entry.epoch {
            // A bumped epoch restarts the sequence at zero.
            return if first_sequence == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(out_of_order(0))
            };
        }
        let last = last_sequence(first_sequence, count);
        if let Some(batch) = entry
            .batches
            .iter()
            .find(|b| b.first_sequence == first_sequence && b.last_sequence == last)
        {
            return Ok(SequenceCheck::Duplicate(batch.clone()));
        }
        let Some(latest) = entry.batches.last() else {
            return if first_sequence == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(out_of_order(0))
            };
        };
        let expected = next_sequence(latest.last_sequence);
        if first_sequence == expected {
            return Ok(SequenceCheck::Append);
        }
        let oldest = entry.batches.first().map_or(expected, |b| b.first_sequence);
        // Older than the remembered window (and not wrapped): written already.
        if first_sequence < oldest && oldest <= latest.last_sequence {
            return Err(PartitionError::DuplicateSequence {
                producer_id,
                sequence: first_sequence,
            });
        }
        Err(out_of_order(expected))
    }

    /// Records an appended batch (after [`SequenceCheck::Append`]).
    pub(crate) fn record(&mut self, producer_id: i64, epoch: i32, batch: ProducerBatch) {
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry {
                producer_id,
                epoch,
                batches: Vec::new(),
            });
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == CACHED_BATCHES {
            entry.batches.remove(0);
        }
        entry.batches.push(batch);
    }

    /// Forgets producers whose last batch was appended before `cutoff` (ms).
    /// Returns how many were removed.
    pub(crate) fn expire(&mut self, cutoff: i64) -> u64 {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.batches
                .last()
                .is_some_and(|b| b.log_append_time >= cutoff)
        });
        (before - self.producers.len()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(first: i32, count: u32, base: u64) -> ProducerBatch {
        ProducerBatch {
            first_sequence: first,
            last_sequence: last_sequence(first, count),
            base_offset: base,
            last_offset: base + u64::from(count) - 1,
            log_append_time: 0,
        }
    }

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(last_sequence(0, 1), 0);
        assert_eq!(last_sequence(5, 10), 14);
        assert_eq!(last_sequence(i32::MAX, 1), i32::MAX);
        assert_eq!(last_sequence(i32::MAX, 2), 0);
        assert_eq!(next_sequence(i32::MAX), 0);
    }

    #[test]
    fn wrapped_sequence_is_accepted() {
        let mut t = ProducerTable::default();
        t.record(1, 0, batch(0, 1, 0));
        let entry = t.producers.get_mut(&1).unwrap();
        entry.batches[0].last_sequence = i32::MAX;
        assert_eq!(t.check(1, 0, 0, 3), Ok(SequenceCheck::Append));
    }

    #[test]
    fn only_five_batches_are_remembered() {
        let mut t = ProducerTable::default();
        for i in 0..7u32 {
            assert_eq!(t.check(9, 0, (i * 2) as i32, 2), Ok(SequenceCheck::Append));
            t.record(9, 0, batch((i * 2) as i32, 2, u64::from(i) * 2));
        }
        assert_eq!(t.producers[&9].batches.len(), CACHED_BATCHES);
        assert!(
            matches!(t.check(9, 0, 4, 2), Ok(SequenceCheck::Duplicate(b)) if b.base_offset == 4)
        );
        assert_eq!(
            t.check(9, 0, 0, 2),
            Err(PartitionError::DuplicateSequence {
                producer_id: 9,
                sequence: 0
            })
        );
    }

    #[test]
    fn expiry_forgets_idle_producers() {
        let mut t = ProducerTable::default();
        let mut b = batch(0, 1, 0);
        b.log_append_time = 100;
        t.record(1, 0, b.clone());
        b.log_append_time = 300;
        t.record(2, 0, b);
        assert_eq!(t.expire(200), 1);
        assert_eq!(t.len(), 1);
        assert_eq!(
            t.check(1, 0, 5, 1),
            Err(PartitionError::OutOfOrderSequence {
                producer_id: 1,
                expected: 0,
                got: 5
            })
        );
    }
}
