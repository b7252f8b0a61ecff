//! [`LogBatch`]: the unit of writing, for any number of groups.

use raft::eraftpb::{ConfState, Entry, HardState, SnapshotMetadata};

use crate::codec::Checkpoint;
use crate::GroupId;

/// One staged change of one group, in batch order.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Entries with contiguous indexes; replaces everything from `entries[0].index` on.
    Append(GroupId, Vec<Entry>),
    /// A new hard state.
    HardState(GroupId, HardState),
    /// A new conf state.
    /// The conf state and the raft index it reflects.
    ConfState(GroupId, ConfState, u64),
    /// Installs a snapshot's metadata as the new base of the group's log.
    ApplySnapshot(GroupId, SnapshotMetadata),
    /// Drops entries below the index. The engine clamps the index and fills in the term of
    /// the entry before it when the batch is validated, so the record stands alone.
    Compact(GroupId, u64, u64),
    /// Removes every trace of the group.
    Remove(GroupId),
    /// A saved snapshot file now serves the group (engine internal).
    SnapshotRef(GroupId, u64, u64),
    /// Everything but the entries of a group, rewritten forward by purge (engine internal).
    Checkpoint(GroupId, Box<Checkpoint>),
}

impl Op {
    pub(crate) fn group(&self) -> GroupId {
        match self {
            Op::Append(group, _)
            | Op::HardState(group, _)
            | Op::ConfState(group, _, _)
            | Op::ApplySnapshot(group, _)
            | Op::Compact(group, _, _)
            | Op::Remove(group)
            | Op::SnapshotRef(group, _, _)
            | Op::Checkpoint(group, _) => *group,
        }
    }
}

/// A reusable set of changes for any number of groups, written by
/// [`LogEngine::write`](crate::LogEngine::write) atomically, with one write and at most one
/// `fdatasync`.
///
/// Changes apply in the order they were staged. Writing clears the batch but keeps its
/// allocations, so one batch can serve every round of a scheduler.
#[derive(Debug, Default)]
pub struct LogBatch {
    ops: Vec<Op>,
    size: usize,
    groups: Vec<GroupId>,
}

impl LogBatch {
    /// An empty batch.
    pub fn new() -> Self {
        LogBatch::default()
    }

    fn push(&mut self, op: Op, size: usize) {
        let group = op.group();
        if !self.groups.contains(&group) {
            self.groups.push(group);
        }
        self.size += size + crate::codec::RECORD_HEADER;
        self.ops.push(op);
    }

    /// Appends entries with contiguous indexes. Everything the group holds from
    /// `entries[0].index` on is replaced (raft-rs semantics: a conflicting suffix is
    /// truncated). Entries at or below the group's compaction point are ignored, like
    /// `MemStorage` does for a snapshot-covered prefix. An empty slice does nothing.
    pub fn append(&mut self, group: GroupId, entries: &[Entry]) {
        self.append_owned(group, entries.to_vec());
    }

    /// Like [`LogBatch::append`], taking the entries instead of cloning them (for a
    /// caller done with them, such as a `Ready`'s entries taken with `take_entries`).
    pub fn append_owned(&mut self, group: GroupId, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let size = entries
            .iter()
            .map(|e| e.data.len() + e.context.len() + 24)
            .sum();
        self.push(Op::Append(group, entries), size);
    }

    /// Stores the group's hard state (term, vote, commit).
    pub fn set_hard_state(&mut self, group: GroupId, hs: &HardState) {
        self.push(Op::HardState(group, hs.clone()), 24);
    }

    /// Stores the group's conf state (voters, learners, ...), recording index 0 as the
    /// index it reflects (see [`LogBatch::set_conf_state_at`]).
    pub fn set_conf_state(&mut self, group: GroupId, cs: &ConfState) {
        self.set_conf_state_at(group, cs, 0);
    }

    /// Stores the group's conf state together with the raft log index it reflects, so
    /// that after a restart the owner knows which conf-change entries are already
    /// folded into it ([`crate::GroupStorage::conf_state_index`]).
    pub fn set_conf_state_at(&mut self, group: GroupId, cs: &ConfState, index: u64) {
        let size = 8 * (cs.voters.len() + cs.learners.len() + cs.voters_outgoing.len());
        self.push(Op::ConfState(group, cs.clone(), index), size + 16);
    }

    /// Installs a snapshot's metadata as the group's new base, like
    /// `MemStorage::apply_snapshot`: drops all entries, `first_index = meta.index + 1`, the
    /// term at `meta.index` is `meta.term`, the conf state is the snapshot's, the hard state's
    /// commit becomes `meta.index` and its term at least `meta.term`. Atomic with the rest of
    /// the batch. The write fails with
    /// [`Error::SnapshotOutOfDate`](crate::Error::SnapshotOutOfDate) if `meta.index` is below
    /// the group's first index.
    pub fn apply_snapshot(&mut self, group: GroupId, meta: &SnapshotMetadata) {
        self.push(Op::ApplySnapshot(group, meta.clone()), 64);
    }

    /// Drops the group's entries below `compact_index`, like `MemStorage::compact`:
    /// afterwards `first_index == compact_index`. An index at or below the first index does
    /// nothing; one past `last_index + 1` is clamped to `last_index + 1`. The term of the entry
    /// just before the new first index stays known (`term(first_index - 1)` answers).
    pub fn compact(&mut self, group: GroupId, compact_index: u64) {
        self.push(Op::Compact(group, compact_index, 0), 16);
    }

    /// Removes every trace of the group (its replica was destroyed), its snapshot files too.
    pub fn remove_group(&mut self, group: GroupId) {
        self.push(Op::Remove(group), 0);
    }

    /// True if nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Number of distinct groups touched.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Approximate encoded size in bytes.
    pub fn approximate_size(&self) -> usize {
        self.size
    }

    /// Drops everything staged, keeping allocations.
    pub fn clear(&mut self) {
        self.ops.clear();
        self.groups.clear();
        self.size = 0;
    }

    pub(crate) fn push_internal(&mut self, op: Op) {
        self.push(op, 64);
    }

    pub(crate) fn ops_mut(&mut self) -> &mut [Op] {
        &mut self.ops
    }

    pub(crate) fn ops(&self) -> &[Op] {
        &self.ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_groups_and_clears() {
        let mut batch = LogBatch::new();
        assert!(batch.is_empty());
        let entry = Entry {
            index: 1,
            term: 1,
            data: vec![0; 100].into(),
            ..Default::default()
        };
        batch.append(7, &[entry]);
        batch.set_hard_state(7, &HardState::default());
        batch.compact(9, 3);
        batch.append(9, &[]);
        assert_eq!(batch.group_count(), 2);
        assert_eq!(batch.ops().len(), 3);
        assert!(batch.approximate_size() >= 100);
        batch.clear();
        assert!(batch.is_empty());
        assert_eq!(batch.group_count(), 0);
        assert_eq!(batch.approximate_size(), 0);
    }
}
