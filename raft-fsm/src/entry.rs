//! The committed entries a state machine applies, and snapshot metadata.

/// Identifies one raft group (one partition, or the metadata group).
pub type GroupId = u64;

/// Identifies one node of the cluster.
pub type NodeId = u64;

/// What kind of raft entry is being applied.
///
/// The scheduler passes *every* committed entry, in order, so that the
/// machine's applied index follows the raft log exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A command proposed by a client: its data is a machine command.
    Normal,
    /// A new leader's empty entry: a term starts. Opens a leader epoch.
    Empty,
    /// A membership change; its data is opaque to the machine.
    ConfChange,
}

/// One committed raft entry, borrowed from the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEntry<'a> {
    /// The raft index; must be `applied_index() + 1`.
    pub index: u64,
    /// The raft term the entry was proposed in (Kafka's leader epoch).
    pub term: u64,
    /// What kind of entry this is.
    pub kind: EntryKind,
    /// The payload: an encoded command for [`EntryKind::Normal`].
    pub data: &'a [u8],
}

impl<'a> LogEntry<'a> {
    /// A normal entry carrying a command.
    pub fn normal(index: u64, term: u64, data: &'a [u8]) -> Self {
        LogEntry {
            index,
            term,
            kind: EntryKind::Normal,
            data,
        }
    }

    /// A new leader's empty entry.
    pub fn empty(index: u64, term: u64) -> Self {
        LogEntry {
            index,
            term,
            kind: EntryKind::Empty,
            data: &[],
        }
    }
}

/// Where a snapshot sits in the raft log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SnapshotMeta {
    /// The raft index of the last entry the snapshot includes.
    pub index: u64,
    /// The term of that entry.
    pub term: u64,
}
