//! The leader-epoch history of a partition: `(epoch, start offset)` pairs,
//! enough to answer Kafka's OffsetForLeaderEpoch. Kafka's leader epoch is
//! the raft term here: the first entry applied with a higher term opens a
//! new epoch at the partition's next offset.

use super::fetch::EpochEndOffset;

/// One epoch and the first offset written in it.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct EpochEntry {
    /// The leader epoch (raft term).
    #[prost(uint64, tag = "1")]
    pub epoch: u64,
    /// The first offset of the epoch.
    #[prost(uint64, tag = "2")]
    pub start_offset: u64,
}

/// The epoch history, epochs and start offsets strictly increasing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LeaderEpochs {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochs {
    /// Rebuilds the history from entries (checkpoint or snapshot).
    pub(crate) fn from_entries(entries: Vec<EpochEntry>) -> Self {
        LeaderEpochs { entries }
    }

    /// The entries, oldest first.
    pub(crate) fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The latest epoch, if any was opened.
    pub(crate) fn current(&self) -> Option<u64> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Opens `epoch` at `start_offset` if it is newer than the current one.
    /// Epochs that wrote nothing (same start offset) are replaced, as Kafka
    /// does, so start offsets stay strictly increasing.
    pub(crate) fn observe(&mut self, epoch: u64, start_offset: u64) -> bool {
        if self.current().is_some_and(|current| epoch <= current) {
            return false;
        }
        while self
            .entries
            .last()
            .is_some_and(|e| e.start_offset >= start_offset)
        {
            self.entries.pop();
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// Kafka's OffsetForLeaderEpoch: the largest epoch `<= epoch` and the
    /// offset where it ended (the next epoch's start, or `log_end`).
    pub(crate) fn end_offset_for(&self, epoch: u64, log_end: u64) -> Option<EpochEndOffset> {
        let slot = self.entries.partition_point(|e| e.epoch <= epoch);
        let found = self.entries.get(slot.checked_sub(1)?)?;
        let end_offset = self
            .entries
            .get(slot)
            .map_or(log_end, |next| next.start_offset);
        Some(EpochEndOffset {
            leader_epoch: found.epoch,
            end_offset,
        })
    }

    /// Drops history before `log_start`: the epoch covering it now starts there.
    pub(crate) fn trim_to(&mut self, log_start: u64) {
        let covering = self
            .entries
            .partition_point(|e| e.start_offset <= log_start);
        if covering > 1 {
            self.entries.drain(..covering - 1);
        }
        if let Some(first) = self.entries.first_mut() {
            if first.start_offset < log_start {
                first.start_offset = log_start;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_answer_offset_for_leader_epoch() {
        let mut e = LeaderEpochs::default();
        assert!(e.observe(1, 0));
        assert!(!e.observe(1, 5));
        assert!(e.observe(3, 10));
        assert!(e.observe(4, 25));
        assert_eq!(e.end_offset_for(0, 40), None);
        assert_eq!(
            e.end_offset_for(1, 40),
            Some(EpochEndOffset {
                leader_epoch: 1,
                end_offset: 10
            })
        );
        assert_eq!(
            e.end_offset_for(2, 40),
            Some(EpochEndOffset {
                leader_epoch: 1,
                end_offset: 10
            })
        );
        assert_eq!(
            e.end_offset_for(4, 40),
            Some(EpochEndOffset {
                leader_epoch: 4,
                end_offset: 40
            })
        );
        assert_eq!(
            e.end_offset_for(9, 40),
            Some(EpochEndOffset {
                leader_epoch: 4,
                end_offset: 40
            })
        );
    }

    #[test]
    fn empty_epochs_are_replaced() {
        let mut e = LeaderEpochs::default();
        e.observe(1, 0);
        e.observe(2, 0);
        e.observe(3, 7);
        e.observe(5, 7);
        let starts: Vec<_> = e
            .entries()
            .iter()
            .map(|x| (x.epoch, x.start_offset))
            .collect();
        assert_eq!(starts, vec![(2, 0), (5, 7)]);
    }

    #[test]
    fn trimming_keeps_the_covering_epoch() {
        let mut e = LeaderEpochs::default();
        e.observe(1, 0);
        e.observe(2, 10);
        e.observe(3, 20);
        e.trim_to(15);
        let starts: Vec<_> = e
            .entries()
            .iter()
            .map(|x| (x.epoch, x.start_offset))
            .collect();
        assert_eq!(starts, vec![(2, 15), (3, 20)]);
        e.trim_to(20);
        assert_eq!(e.entries().len(), 1);
    }
}
