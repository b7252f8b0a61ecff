//! Errors of the scheduler's API.

use raft_transport::NodeId;

use crate::GroupId;

/// Result of scheduler operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a scheduler operation did not succeed.
///
/// Outcomes a caller is expected to handle (`NotLeader`, `Busy`, `Superseded`) are
/// separate variants from fatal ones (`Storage`, `StateMachine`, `Stopped`), so a
/// client can retry the former against the hinted leader and give up on the latter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// This replica is not the group's leader; `leader` is the last leader it knows of.
    #[error("group {group}: not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The group asked.
        group: GroupId,
        /// The leader this replica knows of, if any.
        leader: Option<NodeId>,
    },
    /// The group is not hosted on this node.
    #[error("group {0} is not hosted on this node")]
    GroupNotFound(GroupId),
    /// A group with this id is already hosted on this node.
    #[error("group {0} already exists on this node")]
    GroupExists(GroupId),
    /// The scheduler's mailbox or the group's uncommitted-log budget is full: back off.
    #[error("group {group}: too much pending work, try again later")]
    Busy {
        /// The overloaded group.
        group: GroupId,
    },
    /// Raft refused the proposal (for example while a leader transfer is in progress).
    #[error("group {group}: proposal dropped by raft")]
    ProposalDropped {
        /// The group asked.
        group: GroupId,
    },
    /// The entry proposed at `index` in `term` was replaced by another leader's entry:
    /// it was never committed and never will be.
    #[error("group {group}: entry {index} of term {term} was overwritten by a new leader")]
    Superseded {
        /// The group asked.
        group: GroupId,
        /// Log index the proposal had been given.
        index: u64,
        /// Term the proposal had been given.
        term: u64,
    },
    /// The outcome of the proposal cannot be known any more (its entry was covered by
    /// a snapshot, or the group was removed): it may or may not have been applied.
    #[error("group {group}: outcome of the proposal is unknown")]
    Unknown {
        /// The group asked.
        group: GroupId,
    },
    /// An empty proposal: empty entries are reserved for raft's own use.
    #[error("group {group}: empty proposals are not allowed")]
    EmptyProposal {
        /// The group asked.
        group: GroupId,
    },
    /// A membership change is already in flight for this group (one at a time).
    #[error("group {group}: a membership change is already in progress")]
    ChangeInProgress {
        /// The group asked.
        group: GroupId,
    },
    /// The membership change is not valid for the current configuration.
    #[error("group {group}: invalid membership change: {source}")]
    InvalidChange {
        /// The group asked.
        group: GroupId,
        /// Raft's reason.
        source: raft::Error,
    },
    /// The group's state machine is behind the compacted raft log: it cannot catch up
    /// by replay (its files were lost). The replica must be rebuilt from a snapshot.
    #[error("group {group}: state machine at {applied} is behind the log start {first_index}")]
    StateMachineBehindLog {
        /// The group.
        group: GroupId,
        /// The state machine's applied index.
        applied: u64,
        /// The first index still in the raft log.
        first_index: u64,
    },
    /// Raft-rs rejected the group's configuration or state.
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    /// The write-ahead log failed. The scheduler stops taking writes.
    #[error("storage: {0}")]
    Storage(#[from] raft_storage::Error),
    /// The group's state machine failed fatally; the group is stopped.
    #[error("group {group}: state machine failed: {source}")]
    StateMachine {
        /// The stopped group.
        group: GroupId,
        /// The state machine's error.
        source: raft_fsm::FsmError,
    },
    /// A snapshot could not be received or installed.
    #[error("group {group}: snapshot rejected: {reason}")]
    SnapshotRejected {
        /// The group.
        group: GroupId,
        /// Why.
        reason: SnapshotRejection,
    },
    /// The node's write-ahead log is at or near its size limit
    /// (`max_log_bytes`): the proposal was refused before it reached the log. Nothing
    /// of it will ever be applied. Writes succeed again once compaction and purge have
    /// freed space, or on another node.
    #[error("group {group}: the write-ahead log is full ({used} of {limit} bytes used)")]
    StorageFull {
        /// The group asked.
        group: GroupId,
        /// Bytes the log's live segments held.
        used: u64,
        /// The log's size limit.
        limit: u64,
    },
    /// The scheduler has stopped (shut down, or stopped after a fatal storage error).
    #[error("the scheduler has stopped")]
    Stopped,
}

/// Why an inbound snapshot was not installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotRejection {
    /// The header of the snapshot stream could not be decoded.
    #[error("malformed snapshot header")]
    MalformedHeader,
    /// The replica already has everything the snapshot holds, or is not a follower
    /// that can take it.
    #[error("stale snapshot")]
    Stale,
    /// Another snapshot is being installed for the group.
    #[error("another snapshot is being installed")]
    Busy,
    /// The state machine failed to restore from the chunks.
    #[error("state machine restore failed")]
    RestoreFailed,
}

impl Error {
    /// True for errors after which retrying the same call (perhaps on another node)
    /// makes sense.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            Error::NotLeader { .. }
                | Error::Busy { .. }
                | Error::ProposalDropped { .. }
                | Error::Superseded { .. }
                | Error::ChangeInProgress { .. }
        )
    }
}
