//! One replica of one group, owned by a worker: its `RawNode`, its state machine and
//! the callers waiting on it.

use std::collections::VecDeque;

use bytes::Bytes;
use raft::eraftpb::{ConfState, Message, MessageType};
use raft::{RawNode, StateRole, Storage as _};
use raft_fsm::StateMachine;
use raft_storage::{GroupStorage, LogBatch, LogEngine};
use raft_transport::NodeId;

use crate::command::{answer, Reply};
use crate::config::MultiConfig;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::types::{GroupSpec, GroupStatus, MembershipChange};
use crate::GroupId;

mod bootstrap;
mod ready;

/// What a round lends a peer: where its writes and messages go.
pub(crate) struct Ctx<'a> {
    pub config: &'a MultiConfig,
    pub leaders: &'a crate::leaders::LeaderTable,
    pub batch: &'a mut LogBatch,
    pub outbox: &'a mut Outbox,
    pub metrics: &'a Metrics,
}

enum Waiting {
    Proposal(Reply<Bytes>),
    Change(Reply<ConfState>),
}

/// A caller waiting for the entry it proposed at (index, term).
struct Waiter {
    index: u64,
    term: u64,
    waiting: Waiting,
}

impl Waiter {
    fn fail(self, error: Error) {
        match self.waiting {
            Waiting::Proposal(reply) => answer(reply, Err(error)),
            Waiting::Change(reply) => answer(reply, Err(error)),
        }
    }
}

pub(crate) struct Peer {
    pub id: GroupId,
    pub node: RawNode<GroupStorage>,
    /// `None` while a snapshot is being restored on another thread.
    pub fsm: Option<Box<dyn StateMachine>>,
    /// Proposals in log order (see `register`).
    waiters: VecDeque<Waiter>,
    /// Proposals asked this round, not yet handed to raft: one `MsgPropose` per round
    /// carries them all (see `submit_proposals`).
    proposals_new: Vec<(Vec<u8>, Reply<Bytes>)>,
    /// Reads asked this round, not yet handed to raft.
    reads_new: Vec<Reply<u64>>,
    /// Reads handed to raft, by the context id of their batch.
    reads_sent: VecDeque<(u64, Vec<Reply<u64>>)>,
    /// Reads whose read index is known, waiting for apply to reach it.
    reads_ready: VecDeque<(u64, Vec<Reply<u64>>)>,
    read_seq: u64,
    /// The configuration as of `conf_index`, and the index that produced it.
    conf_state: ConfState,
    conf_index: u64,
    /// Applied index at the last compaction.
    compacted_at: u64,
    /// Index up to which this replica's cached log entries were released.
    cache_released: u64,
    /// Committed entries a leader applies only after its ready is persisted: from
    /// the first membership change on (see `Peer::step_down_if_removed`).
    deferred: Vec<raft::eraftpb::Entry>,
    pub hibernated: bool,
    idle_ticks: usize,
    pub role: StateRole,
    /// Tells this replica from an earlier one of the same group on this worker (removed
    /// and created again while a write of the old one was being synced).
    pub epoch: u64,
    /// Readies handed to raft with `advance_append_async` whose write is not durable
    /// yet: until they are, later readies of this replica wait for a sync too, so that
    /// persistence is reported to raft in order.
    pub unpersisted: usize,
}

impl Peer {
    /// Opens the replica: a new group is bootstrapped with its initial configuration,
    /// an existing one resumes from the engine and the state machine's durable index.
    pub(crate) fn open(
        config: &MultiConfig,
        spec: GroupSpec,
        engine: &LogEngine,
        logger: &slog::Logger,
    ) -> Result<Peer> {
        let group = spec.group_id;
        let storage = engine.group(group);
        let state = storage.initial_state()?;
        let is_new = state.hard_state == Default::default()
            && state.conf_state == ConfState::default()
            && storage.last_index() == 0;
        if is_new && !(spec.voters.is_empty() && spec.learners.is_empty()) {
            bootstrap::bootstrap(engine, group, &spec.voters, &spec.learners)?;
        }
        let fsm = spec.state_machine;
        let hard_state = storage.hard_state();
        let first_index = storage.first_index();
        let applied = fsm.applied_index();
        if applied + 1 < first_index {
            return Err(Error::StateMachineBehindLog {
                group,
                applied,
                first_index,
            });
        }
        // raft-rs needs applied <= commit; a state machine restored from a snapshot may
        // be ahead of this replica's log: the entries it already holds are skipped.
        //
        // raft starts no later than the stored configuration, though: membership
        // changes past it may be in the state machine's applied range without being in
        // the configuration (the state machine was restored from a leader's snapshot
        // newer than the raft snapshot installed with it, or flushed while the write
        // storing the configuration was still being synced). raft hands those entries
        // out again; `apply` folds their changes into the configuration and skips the
        // state machine. Changes below the log's first index are in the stored
        // configuration (it is written before the compaction that removes them).
        let floor = first_index.saturating_sub(1);
        let raft_applied = applied
            .min(hard_state.commit)
            .min(storage.conf_state_index().max(floor))
            .max(floor);
        let raft_config = config.raft_config(raft_applied);
        let logger = logger.new(slog::o!("group" => group, "node" => config.node_id));
        let node = RawNode::new(&raft_config, storage.clone(), &logger)?;
        let role = node.raft.state;
        Ok(Peer {
            id: group,
            node,
            fsm: Some(fsm),
            waiters: VecDeque::new(),
            proposals_new: Vec::new(),
            reads_new: Vec::new(),
            reads_sent: VecDeque::new(),
            reads_ready: VecDeque::new(),
            read_seq: 0,
            conf_state: storage.conf_state(),
            conf_index: storage.conf_state_index(),
            compacted_at: applied,
            cache_released: 0,
            deferred: Vec::new(),
            hibernated: false,
            idle_ticks: 0,
            role,
            epoch: 0,
            unpersisted: 0,
        })
    }

    fn leader_hint(&self) -> Option<NodeId> {
        match self.node.raft.leader_id {
            0 => None,
            id => Some(id),
        }
    }

    fn not_leader(&self) -> Error {
        Error::NotLeader {
            group: self.id,
            leader: self.leader_hint(),
        }
    }

    /// Any work wakes a sleeping group. (Heartbeats of an awake group do not reset the
    /// idle count: `quiescent` decides from the log whether there is work.)
    pub(crate) fn wake(&mut self, metrics: &Metrics) {
        if self.hibernated {
            self.idle_ticks = 0;
            self.hibernated = false;
            metrics.gauge(&metrics.hibernated, -1);
            metrics.add(&metrics.wakeups, 1);
        }
    }

    /// Records a waiter for the entry just appended at the end of the log. Entries of
    /// an earlier term at that index or later were overwritten by this leader's log:
    /// their proposals failed.
    fn register(&mut self, last_before: u64, waiting: Waiting) -> bool {
        let index = self.node.raft.raft_log.last_index();
        if index == last_before {
            match waiting {
                Waiting::Proposal(reply) => {
                    answer(reply, Err(Error::ProposalDropped { group: self.id }))
                }
                Waiting::Change(reply) => {
                    answer(reply, Err(Error::ProposalDropped { group: self.id }))
                }
            }
            return false;
        }
        self.wait_for(index, waiting);
        true
    }

    /// Records a waiter for the entry this leader appended at `index`.
    fn wait_for(&mut self, index: u64, waiting: Waiting) {
        let term = self.node.raft.term;
        while self.waiters.back().is_some_and(|w| w.index >= index) {
            if let Some(w) = self.waiters.pop_back() {
                let (group, index, term) = (self.id, w.index, w.term);
                w.fail(Error::Superseded { group, index, term });
            }
        }
        self.waiters.push_back(Waiter {
            index,
            term,
            waiting,
        });
    }

    /// Takes a proposal for this round: `submit_proposals` hands the round's proposals
    /// to raft together, so a leader sends each follower one append for all of them
    /// (and a follower answers once) instead of one per proposal.
    pub(crate) fn propose(&mut self, data: Vec<u8>, reply: Reply<Bytes>, metrics: &Metrics) {
        self.wake(metrics);
        if data.is_empty() {
            return answer(reply, Err(Error::EmptyProposal { group: self.id }));
        }
        if self.node.raft.state != StateRole::Leader {
            metrics.add(&metrics.proposals_rejected, 1);
            return answer(reply, Err(self.not_leader()));
        }
        self.proposals_new.push((data, reply));
    }

    /// Hands this round's proposals to raft as one `MsgPropose`, in the order they came:
    /// they take consecutive log indexes, or all fail together.
    pub(crate) fn submit_proposals(&mut self, metrics: &Metrics) {
        if self.proposals_new.is_empty() {
            return;
        }
        let proposals = std::mem::take(&mut self.proposals_new);
        let count = proposals.len() as u64;
        if self.node.raft.state != StateRole::Leader {
            // Stepped down since the proposals came (a higher term in this round).
            metrics.add(&metrics.proposals_rejected, count);
            for (_, reply) in proposals {
                answer(reply, Err(self.not_leader()));
            }
            return;
        }
        let (entries, replies): (Vec<_>, Vec<_>) = proposals
            .into_iter()
            .map(|(data, reply)| {
                let entry = raft::eraftpb::Entry {
                    data: data.into(),
                    ..Default::default()
                };
                (entry, reply)
            })
            .unzip();
        let mut msg = Message::default();
        msg.set_msg_type(MessageType::MsgPropose);
        msg.from = self.node.raft.id;
        msg.set_entries(entries.into());
        let last_before = self.node.raft.raft_log.last_index();
        let stepped = self.node.raft.step(msg);
        let appended = self
            .node
            .raft
            .raft_log
            .last_index()
            .saturating_sub(last_before);
        match stepped {
            Ok(()) if appended == count => {
                metrics.add(&metrics.proposals, count);
                for (index, reply) in (last_before + 1..).zip(replies) {
                    self.wait_for(index, Waiting::Proposal(reply));
                }
            }
            outcome => {
                metrics.add(&metrics.proposals_rejected, count);
                // Dropped by a leader: a transfer in progress or the uncommitted budget
                // spent (raft-rs appends a proposal's entries all or none).
                let busy = self.node.raft.lead_transferee.is_none()
                    && matches!(outcome, Err(raft::Error::ProposalDropped));
                for reply in replies {
                    let error = if busy {
                        Error::Busy { group: self.id }
                    } else {
                        Error::ProposalDropped { group: self.id }
                    };
                    answer(reply, Err(error));
                }
                if let Err(error) = outcome {
                    if !matches!(error, raft::Error::ProposalDropped) {
                        tracing::warn!(group = self.id, %error, "proposals refused by raft");
                    }
                }
            }
        }
    }

    pub(crate) fn change_membership(
        &mut self,
        changes: Vec<MembershipChange>,
        reply: Reply<ConfState>,
        metrics: &Metrics,
    ) {
        self.wake(metrics);
        if self.node.raft.state != StateRole::Leader {
            return answer(reply, Err(self.not_leader()));
        }
        if self.node.raft.has_pending_conf() || !self.conf_state.voters_outgoing.is_empty() {
            return answer(reply, Err(Error::ChangeInProgress { group: self.id }));
        }
        if changes.is_empty() {
            return answer(reply, Ok(self.conf_state.clone()));
        }
        // raft-rs keeps a leader that removed itself leading a group it is no longer in.
        // A leader therefore never removes itself: it hands leadership to a voter that
        // keeps up, and the caller retries there.
        let me = self.node.raft.id;
        if changes.contains(&MembershipChange::Remove(me)) {
            let successor = self
                .in_sync()
                .into_iter()
                .find(|&n| n != me && !changes.contains(&MembershipChange::Remove(n)));
            if let Some(target) = successor {
                self.node.transfer_leader(target);
            }
            return answer(
                reply,
                Err(Error::NotLeader {
                    group: self.id,
                    leader: successor,
                }),
            );
        }
        let cc = MembershipChange::to_conf_change(&changes);
        // Validate against the current configuration first, so a bad change is refused
        // at once instead of being committed and failing on every replica.
        let mut changer_check = raft::Changer::new(self.node.raft.prs());
        let checked = if cc.enter_joint().is_some() {
            changer_check
                .enter_joint(cc.enter_joint().unwrap_or(false), cc.get_changes())
                .map(|_| ())
        } else {
            changer_check.simple(cc.get_changes()).map(|_| ())
        };
        if let Err(source) = checked {
            return answer(
                reply,
                Err(Error::InvalidChange {
                    group: self.id,
                    source,
                }),
            );
        }
        let last_before = self.node.raft.raft_log.last_index();
        match self.node.propose_conf_change(Vec::new(), cc) {
            Ok(()) => {
                self.register(last_before, Waiting::Change(reply));
            }
            Err(raft::Error::ProposalDropped) => {
                answer(reply, Err(Error::ProposalDropped { group: self.id }))
            }
            Err(e) => answer(reply, Err(Error::Raft(e))),
        }
    }

    pub(crate) fn read_index(&mut self, reply: Reply<u64>, metrics: &Metrics) {
        self.wake(metrics);
        if self.leader_hint().is_none() {
            return answer(reply, Err(self.not_leader()));
        }
        self.reads_new.push(reply);
    }

    /// Hands this round's reads to raft as one ReadIndex request.
    pub(crate) fn submit_reads(&mut self) {
        if self.reads_new.is_empty() {
            return;
        }
        self.read_seq += 1;
        let ctx = self.read_seq.to_le_bytes().to_vec();
        self.node.read_index(ctx);
        let replies = std::mem::take(&mut self.reads_new);
        self.reads_sent.push_back((self.read_seq, replies));
    }

    pub(crate) fn transfer_leader(&mut self, to: NodeId, reply: Reply<()>, metrics: &Metrics) {
        self.wake(metrics);
        if self.node.raft.state != StateRole::Leader {
            return answer(reply, Err(self.not_leader()));
        }
        self.node.transfer_leader(to);
        answer(reply, Ok(()));
    }

    pub(crate) fn campaign(&mut self, reply: Reply<()>, metrics: &Metrics) {
        self.wake(metrics);
        answer(reply, self.node.campaign().map_err(Error::Raft));
    }

    /// Steps a message from a peer. Heartbeats of the current term do not wake a
    /// sleeping group: the last heartbeats and their answers are still in flight when a
    /// group falls asleep, and an awake leader's heartbeat carries nothing a sleeping
    /// follower must act on (node liveness covers the leader's loss).
    pub(crate) fn step(&mut self, msg: Message, metrics: &Metrics) {
        let keeps_sleeping = matches!(
            msg.get_msg_type(),
            MessageType::MsgHeartbeat | MessageType::MsgHeartbeatResponse
        ) && msg.term == self.node.raft.term;
        if !keeps_sleeping {
            self.wake(metrics);
        }
        // Stale or misdirected messages are part of raft's normal life: ignore them.
        if let Err(e) = self.node.step(msg) {
            tracing::trace!(group = self.id, error = %e, "raft message ignored");
        }
    }

    /// The group's leader put it to sleep: follow if this replica is caught up.
    pub(crate) fn hibernate_notice(
        &mut self,
        from: NodeId,
        term: u64,
        last_index: u64,
        metrics: &Metrics,
    ) {
        let raft = &self.node.raft;
        if raft.state == StateRole::Follower
            && raft.term == term
            && raft.leader_id == from
            && raft.raft_log.last_index() == last_index
            && !self.hibernated
        {
            self.hibernated = true;
            self.idle_ticks = 0;
            metrics.gauge(&metrics.hibernated, 1);
            self.node.store().release_memory();
        }
    }

    /// Whether a leader may put the group to sleep: nothing in flight anywhere.
    fn quiescent(&self) -> bool {
        let raft = &self.node.raft;
        let last = raft.raft_log.last_index();
        raft.state == StateRole::Leader
            && raft.raft_log.committed == last
            && raft.raft_log.applied == last
            && raft.lead_transferee.is_none()
            && !raft.has_pending_conf()
            && self.waiters.is_empty()
            && self.proposals_new.is_empty()
            && self.reads_new.is_empty()
            && self.reads_sent.is_empty()
            && self.reads_ready.is_empty()
            && raft.prs().iter().all(|(_, pr)| pr.matched == last)
    }

    /// One tick. A leader idle long enough puts the group to sleep on every replica.
    pub(crate) fn tick(&mut self, ctx: &mut Ctx<'_>) {
        if self.hibernated || self.fsm.is_none() {
            return;
        }
        self.node.tick();
        let after = ctx.config.hibernate_after_ticks;
        if after == 0 || !self.quiescent() {
            self.idle_ticks = 0;
            return;
        }
        self.idle_ticks += 1;
        if self.idle_ticks >= after {
            let raft = &self.node.raft;
            let (term, last) = (raft.term, raft.raft_log.last_index());
            let me = raft.id;
            for (&to, _) in raft.prs().iter() {
                if to != me {
                    ctx.outbox.push_hibernate(self.id, to, term, last);
                }
            }
            self.hibernated = true;
            ctx.metrics.gauge(&ctx.metrics.hibernated, 1);
            // Compactions keep the room a busy log grew; asleep, it needs none.
            self.node.store().release_memory();
        }
    }

    /// The peer node `node` is gone: if it led this group, wake up (if asleep) and
    /// elect soon. True if the group has work now.
    pub(crate) fn on_node_lost(&mut self, node: NodeId, metrics: &Metrics) -> bool {
        let raft = &mut self.node.raft;
        if raft.leader_id != node || raft.state != StateRole::Follower {
            return false;
        }
        // The transport declares a node lost after an election timeout of silence:
        // the follower has waited long enough. It forgets the leader (so it grants
        // votes at once instead of defending the old leader's lease) and campaigns
        // within a few ticks instead of a whole new randomized timeout (a sleeping
        // group's timer did not even run). The survivors take turns, in an order
        // that differs per group, two ticks apart: they never split the vote, and if
        // the first cannot win (a stale log) the next tries. With pre-vote and
        // check-quorum, a false alarm disturbs no live leader.
        let me = raft.id;
        let mut survivors: Vec<NodeId> = self
            .conf_state
            .voters
            .iter()
            .copied()
            .filter(|&v| v != node)
            .collect();
        let group = self.id;
        survivors.sort_by_key(|&v| (group ^ v.rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let rank = survivors
            .iter()
            .position(|&v| v == me)
            .unwrap_or(survivors.len());
        let delay = 1 + 2 * rank;
        let timeout = raft.randomized_election_timeout();
        raft.election_elapsed = raft.election_elapsed.max(timeout.saturating_sub(delay));
        raft.leader_id = raft::INVALID_ID;
        self.wake(metrics);
        true
    }

    /// How far the engine may drop this replica's cached entries, if further than last
    /// time: what is applied here and, on a leader, held by every follower and learner
    /// (an append to one that falls behind reads the rest from the log file).
    pub(crate) fn cache_release(&mut self) -> Option<u64> {
        let raft = &self.node.raft;
        let mut upto = raft.raft_log.applied;
        if raft.state == StateRole::Leader {
            let held = raft.prs().iter().map(|(_, pr)| pr.matched).min();
            upto = upto.min(held.unwrap_or(0));
        }
        if upto <= self.cache_released {
            return None;
        }
        self.cache_released = upto;
        Some(upto)
    }

    /// True when a pipelined round must finish `rd` only once its write is durable: it
    /// persists entries, a term or vote, or a snapshot, or an earlier ready of this
    /// replica is still waiting (raft learns of persistence in order).
    pub(crate) fn waits_for_sync(&self, rd: &raft::Ready) -> bool {
        rd.must_sync() || self.unpersisted > 0
    }

    /// True when raft made this replica leader while readies it took as a follower are
    /// not durable yet (a group with a single voter left elects at once): raft-rs
    /// requires those to be persisted before the first ready of a new leader, so its
    /// next ready waits for the sync (which marks the group active again).
    pub(crate) fn awaits_persistence_to_lead(&self) -> bool {
        self.unpersisted > 0
            && self.node.raft.state == StateRole::Leader
            && self.role != StateRole::Leader
    }

    /// Fails every caller still waiting (the group is going away).
    pub(crate) fn fail_all(&mut self, error: impl Fn() -> Error) {
        for w in self.waiters.drain(..) {
            w.fail(error());
        }
        for (_, reply) in self.proposals_new.drain(..) {
            answer(reply, Err(error()));
        }
        for reply in self.reads_new.drain(..) {
            answer(reply, Err(error()));
        }
        for (_, replies) in self.reads_sent.drain(..).chain(self.reads_ready.drain(..)) {
            for reply in replies {
                answer(reply, Err(error()));
            }
        }
    }

    pub(crate) fn status(&self) -> GroupStatus {
        let raft = &self.node.raft;
        GroupStatus {
            group_id: self.id,
            role: raft.state.into(),
            leader: self.leader_hint(),
            term: raft.term,
            commit: raft.raft_log.committed,
            applied: self
                .fsm
                .as_ref()
                .map_or(raft.raft_log.applied, |f| f.applied_index()),
            last_index: raft.raft_log.last_index(),
            first_index: self.node.store().first_index(),
            hibernated: self.hibernated,
            voters: self.conf_state.voters.clone(),
            learners: self.conf_state.learners.clone(),
            in_sync: self.in_sync(),
            matched: if raft.state == StateRole::Leader {
                let mut matched: Vec<(NodeId, u64)> = raft
                    .prs()
                    .iter()
                    .map(|(&id, pr)| (id, pr.matched))
                    .collect();
                matched.sort_unstable();
                matched
            } else {
                Vec::new()
            },
        }
    }

    /// On a leader, the voters that keep up: itself, and followers whose appends are
    /// streaming (replicate state, not paused by a full window). Empty elsewhere.
    fn in_sync(&self) -> Vec<NodeId> {
        let raft = &self.node.raft;
        if raft.state != StateRole::Leader {
            return Vec::new();
        }
        let mut in_sync: Vec<NodeId> = raft
            .prs()
            .iter()
            .filter(|(&id, pr)| {
                self.conf_state.voters.contains(&id)
                    && (id == raft.id
                        || pr.state == raft::ProgressState::Replicate && !pr.is_paused())
            })
            .map(|(&id, _)| id)
            .collect();
        in_sync.sort_unstable();
        in_sync
    }

    /// True if this follower has committed the snapshot's index already: raft ignores
    /// such a snapshot (its committed entries are final) and only answers with its
    /// commit index.
    pub(crate) fn already_has(&self, snapshot_index: u64) -> bool {
        let raft = &self.node.raft;
        raft.state != StateRole::Leader && snapshot_index <= raft.raft_log.committed
    }

    pub(crate) fn is_snapshot_target(&self, snapshot_index: u64, term: u64) -> bool {
        let raft = &self.node.raft;
        raft.state != StateRole::Leader
            && snapshot_index > raft.raft_log.committed
            && term >= raft.term
    }
}

#[cfg(test)]
mod tests {
    use protobuf::Message as _;
    use raft::eraftpb::{Entry, EntryType, HardState};

    use super::*;
    use crate::leaders::LeaderTable;
    use crate::testing::{MemoryDisk, MemoryState, MemoryStateMachine};

    #[test]
    fn a_restart_folds_in_membership_changes_the_state_machine_is_already_past() {
        let engine = LogEngine::in_memory();
        let config = MultiConfig::new(1);
        let logger = crate::logger::raft_logger();
        let spec = |fsm: MemoryStateMachine| GroupSpec::new(7, vec![1, 2, 3], Box::new(fsm));
        // Bootstrapped with voters 1, 2, 3 (entries 1 to 3, configuration stored at 3).
        drop(Peer::open(&config, spec(MemoryStateMachine::new()), &engine, &logger).unwrap());
        // Then entry 5 adds learner 4, and everything through 6 is committed; the write
        // storing the new configuration never made it.
        let change = MembershipChange::to_conf_change(&[MembershipChange::AddLearner(4)]);
        let entry = |index: u64, kind: EntryType, data: Vec<u8>| {
            let mut entry = Entry {
                index,
                term: 1,
                data: data.into(),
                ..Default::default()
            };
            entry.set_entry_type(kind);
            entry
        };
        let entries = [
            entry(4, EntryType::EntryNormal, Vec::new()),
            entry(
                5,
                EntryType::EntryConfChangeV2,
                change.write_to_bytes().unwrap(),
            ),
            entry(6, EntryType::EntryNormal, b"data".to_vec()),
        ];
        let mut batch = LogBatch::new();
        batch.append(7, &entries);
        let hs = HardState {
            term: 1,
            commit: 6,
            ..Default::default()
        };
        batch.set_hard_state(7, &hs);
        engine.write(&mut batch, true).unwrap();
        // The state machine already holds all of it (restored from a leader's snapshot
        // newer than the raft snapshot, or flushed before the configuration was synced).
        let disk = MemoryDisk::default();
        *disk.0.lock() = MemoryState {
            applied: 6,
            term: 1,
            commands: vec![(6, bytes::Bytes::from_static(b"data"))],
        };
        let fsm = MemoryStateMachine::open(&disk);
        let view = fsm.view();
        let mut peer = Peer::open(&config, spec(fsm), &engine, &logger).unwrap();
        assert!(peer.node.has_ready(), "raft hands the changes out again");
        let (leaders, metrics) = (LeaderTable::default(), Metrics::default());
        let (mut batch, mut outbox) = (LogBatch::new(), Outbox::default());
        let mut ctx = Ctx {
            config: &config,
            leaders: &leaders,
            batch: &mut batch,
            outbox: &mut outbox,
            metrics: &metrics,
        };
        let rd = peer.prepare_ready(&mut ctx).unwrap();
        peer.finish_ready(rd, &mut ctx).unwrap();
        assert_eq!(peer.conf_state.learners, vec![4]);
        assert_eq!(peer.conf_index, 5);
        assert_eq!(
            peer.node.raft.prs().conf().to_conf_state().learners,
            vec![4]
        );
        // The state machine was not given any entry twice.
        assert_eq!(view.state().commands.len(), 1);
        assert_eq!(
            metrics
                .entries_applied
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
        // The configuration is stored again.
        engine.write(&mut batch, true).unwrap();
        assert_eq!(engine.group(7).conf_state_index(), 5);
    }
}
