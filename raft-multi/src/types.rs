//! Public value types of the scheduler API.

use raft::eraftpb::{ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2};
use raft::StateRole;
use raft_fsm::StateMachine;
use raft_transport::NodeId;

use crate::GroupId;

/// Everything needed to host one replica of a group on this node.
pub struct GroupSpec {
    /// The group.
    pub group_id: GroupId,
    /// The initial voters when the group is new (bootstrap). Every replica created at
    /// bootstrap must be given the same set. Empty for a replica that joins an existing
    /// group later: it waits, silent, for the leader to reach it (after the leader added
    /// it with [`MembershipChange::AddLearner`] or `AddVoter`).
    pub voters: Vec<NodeId>,
    /// The initial learners when the group is new.
    pub learners: Vec<NodeId>,
    /// The state machine this replica applies committed entries to. After a restart
    /// it must be reopened from its own files: the scheduler replays the raft log from
    /// its durable index.
    pub state_machine: Box<dyn StateMachine>,
}

impl GroupSpec {
    /// A replica of a new group with `voters`.
    pub fn new(
        group_id: GroupId,
        voters: Vec<NodeId>,
        state_machine: Box<dyn StateMachine>,
    ) -> Self {
        GroupSpec {
            group_id,
            voters,
            learners: Vec::new(),
            state_machine,
        }
    }

    /// A replica that joins an existing group (no initial configuration).
    pub fn joining(group_id: GroupId, state_machine: Box<dyn StateMachine>) -> Self {
        GroupSpec {
            group_id,
            voters: Vec::new(),
            learners: Vec::new(),
            state_machine,
        }
    }
}

impl std::fmt::Debug for GroupSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupSpec")
            .field("group_id", &self.group_id)
            .field("voters", &self.voters)
            .field("learners", &self.learners)
            .finish_non_exhaustive()
    }
}

/// One step of a membership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipChange {
    /// Add a node as a voter (or promote a learner to voter).
    AddVoter(NodeId),
    /// Add a node as a learner: it receives the log but does not vote.
    AddLearner(NodeId),
    /// Remove a node from the group.
    Remove(NodeId),
}

impl MembershipChange {
    fn to_single(self) -> ConfChangeSingle {
        let (change_type, node) = match self {
            MembershipChange::AddVoter(n) => (ConfChangeType::AddNode, n),
            MembershipChange::AddLearner(n) => (ConfChangeType::AddLearnerNode, n),
            MembershipChange::Remove(n) => (ConfChangeType::RemoveNode, n),
        };
        let mut single = ConfChangeSingle::default();
        single.set_change_type(change_type);
        single.node_id = node;
        single
    }

    /// The raft-rs change for `changes`: a simple change for one step, joint consensus
    /// (entered and left automatically) for several.
    pub(crate) fn to_conf_change(changes: &[MembershipChange]) -> ConfChangeV2 {
        let mut cc = ConfChangeV2::default();
        cc.set_changes(
            changes
                .iter()
                .map(|c| c.to_single())
                .collect::<Vec<_>>()
                .into(),
        );
        if changes.len() > 1 {
            cc.set_transition(ConfChangeTransition::Implicit);
        }
        cc
    }
}

/// The role of a replica in its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asking for pre-votes.
    PreCandidate,
    /// Asking for votes.
    Candidate,
    /// Leads the group.
    Leader,
}

impl From<StateRole> for Role {
    fn from(role: StateRole) -> Self {
        match role {
            StateRole::Follower => Role::Follower,
            StateRole::PreCandidate => Role::PreCandidate,
            StateRole::Candidate => Role::Candidate,
            StateRole::Leader => Role::Leader,
        }
    }
}

/// A point-in-time view of one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStatus {
    /// The group.
    pub group_id: GroupId,
    /// This replica's role.
    pub role: Role,
    /// The leader this replica knows of.
    pub leader: Option<NodeId>,
    /// Current term.
    pub term: u64,
    /// Highest index known committed.
    pub commit: u64,
    /// Highest index applied to the state machine.
    pub applied: u64,
    /// Last index of the raft log.
    pub last_index: u64,
    /// First index still in the raft log (older entries are compacted).
    pub first_index: u64,
    /// The group is asleep (no ticks, no heartbeats).
    pub hibernated: bool,
    /// Voters of the current configuration (incoming side when joint).
    pub voters: Vec<NodeId>,
    /// Learners of the current configuration.
    pub learners: Vec<NodeId>,
    /// On the leader, the voters keeping up with its log (itself included); empty on
    /// other replicas. Kafka's in-sync replica set, for `min.insync.replicas`.
    pub in_sync: Vec<NodeId>,
    /// On the leader, the highest log index known replicated on each replica (voters
    /// and learners, itself included); empty on other replicas.
    pub matched: Vec<(NodeId, u64)>,
}
