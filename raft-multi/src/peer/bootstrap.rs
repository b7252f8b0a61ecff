//! Bootstrapping a new group's configuration into its log.

use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, EntryType};
use raft_storage::{LogBatch, LogEngine};
use raft_transport::NodeId;

use crate::error::Result;
use crate::types::MembershipChange;
use crate::GroupId;

/// Writes a new group's initial configuration the way every replica, including ones
/// that join later, can replay it: one committed single-node change per member at
/// indexes 1..=n of term 1 (as etcd bootstraps), plus the resulting configuration
/// recorded at index n. Every bootstrapping replica writes identical entries.
pub(super) fn bootstrap(
    engine: &LogEngine,
    group: GroupId,
    voters: &[NodeId],
    learners: &[NodeId],
) -> Result<()> {
    let members = voters
        .iter()
        .map(|&n| MembershipChange::AddVoter(n))
        .chain(learners.iter().map(|&n| MembershipChange::AddLearner(n)));
    let mut entries = Vec::new();
    for (i, change) in members.enumerate() {
        let cc = MembershipChange::to_conf_change(&[change]);
        let mut entry = Entry::default();
        entry.set_entry_type(EntryType::EntryConfChangeV2);
        entry.index = i as u64 + 1;
        entry.term = 1;
        entry.data = cc.write_to_bytes().map_err(raft::Error::CodecError)?.into();
        entries.push(entry);
    }
    let last = entries.len() as u64;
    let mut cs = ConfState::default();
    cs.set_voters(voters.to_vec());
    cs.set_learners(learners.to_vec());
    let hs = raft::eraftpb::HardState {
        term: 1,
        commit: last,
        ..Default::default()
    };
    let mut batch = LogBatch::new();
    batch.append(group, &entries);
    batch.set_hard_state(group, &hs);
    batch.set_conf_state_at(group, &cs, last);
    // Visible at once; durable with the worker's next synced write, before the creator
    // is answered.
    engine.write(&mut batch, false)?;
    Ok(())
}
