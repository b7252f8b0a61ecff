//! The two halves of a round for one replica: taking its `Ready` and staging its
//! writes, then (after the batch is durable) advancing, applying and compacting.

use bytes::Bytes;
use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeV2, ConfState, Entry, EntryType, Message};
use raft::{Ready, StateRole};
use raft_fsm::{EntryKind, LogEntry};

use super::{Ctx, Peer, Waiter, Waiting};
use crate::command::answer;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::outbox::Outbox;

impl Peer {
    /// First half of a round: take the ready, send a leader's messages, stage the log
    /// writes, apply what is committed.
    pub(crate) fn prepare_ready(&mut self, ctx: &mut Ctx<'_>) -> Result<Ready> {
        let mut rd = self.node.ready();
        if let Some(ss) = rd.ss() {
            ctx.leaders.set(self.id, ss.leader_id);
            self.on_role(ss.raft_state, ctx.metrics);
        }
        if !rd.messages().is_empty() {
            ctx.outbox.push_raft(self.id, rd.take_messages());
        }
        if !rd.snapshot().is_empty() {
            let meta = rd.snapshot().get_metadata();
            ctx.batch.apply_snapshot(self.id, meta);
            self.conf_state = meta.get_conf_state().clone();
            self.conf_index = meta.index;
        }
        if !rd.entries().is_empty() {
            // raft-rs keeps what it needs of them (the record of the last entry).
            ctx.batch.append_owned(self.id, rd.take_entries());
        }
        if let Some(hs) = rd.hs() {
            ctx.batch.set_hard_state(self.id, hs);
        }
        if !rd.read_states().is_empty() {
            for state in rd.take_read_states() {
                self.on_read_state(state.index, &state.request_ctx);
            }
        }
        let committed = rd.take_committed_entries();
        self.apply(committed, ctx, true)?;
        Ok(rd)
    }

    /// Second half of a round, after the batch is durable. True when the raft log was
    /// compacted (the caller then saves a new raft snapshot).
    pub(crate) fn finish_ready(&mut self, mut rd: Ready, ctx: &mut Ctx<'_>) -> Result<bool> {
        if !rd.persisted_messages().is_empty() {
            ctx.outbox.push_raft(self.id, rd.take_persisted_messages());
        }
        let mut light = self.node.advance_append(rd);
        if light.commit_index().is_some() {
            // raft counts this commit index as handed over and will not put it in a
            // later ready's hard state: store it now, or a compaction up to what it
            // commits could pass the stored commit and a restart would refuse the log.
            ctx.batch
                .set_hard_state(self.id, &self.node.raft.hard_state());
        }
        if !light.messages().is_empty() {
            ctx.outbox.push_raft(self.id, light.take_messages());
        }
        let deferred = std::mem::take(&mut self.deferred);
        self.apply(deferred, ctx, false)?;
        let committed = light.take_committed_entries();
        self.apply(committed, ctx, false)?;
        self.node.advance_apply();
        self.answer_reads(ctx.metrics);
        self.maybe_compact(ctx, false)
    }

    /// Second half of a round for a ready that must be durable before raft learns it
    /// is (pipelined writes): raft is told the ready was handled but not persisted,
    /// reads its entries from the engine's cache meanwhile, and keeps the entries it
    /// cannot commit or apply until then. Returns the ready's number and the messages
    /// that may leave only once it is durable (a follower's acknowledgements, votes),
    /// for [`Peer::on_persisted`]; and true when the raft log was compacted.
    pub(crate) fn finish_ready_async(
        &mut self,
        mut rd: Ready,
        ctx: &mut Ctx<'_>,
    ) -> Result<(u64, Vec<Message>, bool)> {
        let number = rd.number();
        let persisted = rd.take_persisted_messages();
        // (A ready installing a snapshot never comes here: the round waits for it.)
        self.node.advance_append_async(rd);
        self.unpersisted += 1;
        let deferred = std::mem::take(&mut self.deferred);
        self.apply(deferred, ctx, false)?;
        self.node.advance_apply();
        self.answer_reads(ctx.metrics);
        let compacted = self.maybe_compact(ctx, false)?;
        Ok((number, persisted, compacted))
    }

    /// The write holding the ready `number` (and every earlier one) is durable: raft
    /// learns it (a leader may commit, a follower may apply) and the messages that
    /// waited for it leave with the next round.
    pub(crate) fn on_persisted(
        &mut self,
        number: u64,
        persisted: Vec<Message>,
        outbox: &mut Outbox,
    ) {
        self.node.on_persist_ready(number);
        self.unpersisted = self.unpersisted.saturating_sub(1);
        if !persisted.is_empty() {
            outbox.push_raft(self.id, persisted);
        }
    }

    fn on_role(&mut self, role: StateRole, metrics: &Metrics) {
        if role == self.role {
            return;
        }
        if self.role == StateRole::Leader {
            metrics.gauge(&metrics.leaders, -1);
        }
        if role == StateRole::Leader {
            metrics.gauge(&metrics.leaders, 1);
        }
        let was_leader = self.role == StateRole::Leader;
        self.role = role;
        if was_leader && role != StateRole::Leader {
            self.abandon_uncommitted();
        }
        // Raft may drop ReadIndex requests across a change of leadership: tell the
        // callers to retry rather than leave them hanging.
        let error = || Error::NotLeader {
            group: self.id,
            leader: None,
        };
        for (_, replies) in self.reads_sent.drain(..) {
            for reply in replies {
                answer(reply, Err(error()));
            }
        }
    }

    /// A leader that stops leading answers `Unknown` to the proposals it has not seen
    /// committed. They may still commit under the next leader, or be overwritten, and
    /// this replica may not apply anything at their index for a long time (the group
    /// can fall asleep once the new leader's log is replicated): callers must not wait
    /// on that. Committed ones stay: they will be applied here and answered exactly.
    fn abandon_uncommitted(&mut self) {
        let committed = self.node.raft.raft_log.committed;
        let group = self.id;
        while self.waiters.back().is_some_and(|w| w.index > committed) {
            if let Some(waiter) = self.waiters.pop_back() {
                waiter.fail(Error::Unknown { group });
            }
        }
    }

    fn on_read_state(&mut self, index: u64, ctx: &[u8]) {
        let Ok(bytes) = <[u8; 8]>::try_from(ctx) else {
            return;
        };
        let seq = u64::from_le_bytes(bytes);
        // Read states come back in request order; older unanswered ones were dropped.
        while let Some((s, replies)) = self.reads_sent.pop_front() {
            if s == seq {
                self.reads_ready.push_back((index, replies));
                break;
            }
            for reply in replies {
                answer(
                    reply,
                    Err(Error::NotLeader {
                        group: self.id,
                        leader: self.leader_hint(),
                    }),
                );
            }
        }
    }

    fn answer_reads(&mut self, metrics: &Metrics) {
        let applied = self.fsm.as_ref().map_or(0, |f| f.applied_index());
        while self
            .reads_ready
            .front()
            .is_some_and(|(index, _)| *index <= applied)
        {
            if let Some((index, replies)) = self.reads_ready.pop_front() {
                metrics.add(&metrics.reads, replies.len() as u64);
                for reply in replies {
                    answer(reply, Ok(index));
                }
            }
        }
    }

    /// Applies committed entries in order and answers their proposers. Before the
    /// ready is persisted (`before_persist`), a leader stops at a membership change and
    /// keeps it and what follows for after: applying its own removal could make it
    /// step down, which raft-rs only allows between readies.
    fn apply(
        &mut self,
        entries: Vec<Entry>,
        ctx: &mut Ctx<'_>,
        before_persist: bool,
    ) -> Result<()> {
        let mut entries = entries.into_iter();
        while let Some(entry) = entries.next() {
            let is_change = matches!(
                entry.get_entry_type(),
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2
            );
            if before_persist && is_change && self.node.raft.state == StateRole::Leader {
                self.deferred.push(entry);
                self.deferred.extend(entries);
                return Ok(());
            }
            let (index, term) = (entry.index, entry.term);
            let kind = match entry.get_entry_type() {
                EntryType::EntryNormal if entry.data.is_empty() => EntryKind::Empty,
                EntryType::EntryNormal => EntryKind::Normal,
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    self.apply_conf_change(&entry, ctx);
                    EntryKind::ConfChange
                }
            };
            let Some(fsm) = self.fsm.as_mut() else {
                return Ok(());
            };
            let response = if index > fsm.applied_index() {
                let log_entry = LogEntry {
                    index,
                    term,
                    kind,
                    data: &entry.data,
                };
                let response = fsm
                    .apply(&log_entry)
                    .map_err(|source| Error::StateMachine {
                        group: self.id,
                        source,
                    })?;
                ctx.metrics.add(&ctx.metrics.entries_applied, 1);
                Some(response)
            } else {
                // Already in the state machine (restored from a snapshot past it).
                None
            };
            self.resolve(index, term, response);
        }
        Ok(())
    }

    /// raft-rs leaves a leader that applies its own removal (or demotion) leading a
    /// group it no longer votes in, and its next look at its own progress panics. That
    /// happens when leadership moved to the node after another leader proposed the
    /// removal (the leader itself never proposes it: it hands leadership over first).
    /// Step down into the next term instead; the remaining voters elect a leader. A
    /// leader applies membership changes only after `advance_append` (see `apply`),
    /// so the change of term falls between two readies, as raft-rs requires.
    fn step_down_if_removed(&mut self, cs: &ConfState) {
        let raft = &mut self.node.raft;
        let id = raft.id;
        if raft.state == StateRole::Leader
            && !cs.voters.contains(&id)
            && !cs.voters_outgoing.contains(&id)
        {
            let term = raft.term;
            raft.become_follower(term + 1, raft::INVALID_ID);
            tracing::info!(
                group = self.id,
                term = term + 1,
                "removed from the group while leading it: stepped down"
            );
        }
    }

    fn apply_conf_change(&mut self, entry: &Entry, ctx: &mut Ctx<'_>) {
        let index = entry.index;
        if index <= self.conf_index {
            return; // already folded into the stored configuration
        }
        let cc = if entry.get_entry_type() == EntryType::EntryConfChange {
            ConfChange::parse_from_bytes(&entry.data).map(raft_proto::ConfChangeI::into_v2)
        } else {
            ConfChangeV2::parse_from_bytes(&entry.data)
        };
        let outcome = match cc {
            Ok(cc) => self
                .node
                .apply_conf_change(&cc)
                .map_err(|source| Error::InvalidChange {
                    group: self.id,
                    source,
                }),
            Err(e) => Err(Error::InvalidChange {
                group: self.id,
                source: raft::Error::CodecError(e),
            }),
        };
        match outcome {
            Ok(cs) => {
                self.step_down_if_removed(&cs);
                ctx.batch.set_conf_state_at(self.id, &cs, index);
                ctx.metrics.add(&ctx.metrics.conf_changes_applied, 1);
                self.conf_state = cs;
                self.conf_index = index;
                if let Some(pos) = self
                    .waiters
                    .iter()
                    .position(|w| w.index == index && w.term == entry.term)
                {
                    if let Some(Waiter {
                        waiting: Waiting::Change(reply),
                        ..
                    }) = self.waiters.remove(pos)
                    {
                        answer(reply, Ok(self.conf_state.clone()));
                    }
                }
            }
            Err(error) => {
                // Deterministic on every replica: the change is a no-op everywhere.
                tracing::warn!(group = self.id, index, %error, "membership change not applied");
                if let Some(pos) = self
                    .waiters
                    .iter()
                    .position(|w| w.index == index && w.term == entry.term)
                {
                    if let Some(w) = self.waiters.remove(pos) {
                        w.fail(error);
                    }
                }
            }
        }
    }

    /// Answers the waiter of the entry at (index, term), if any.
    fn resolve(&mut self, index: u64, term: u64, response: Option<Bytes>) {
        while let Some(front) = self.waiters.front() {
            if front.index > index {
                break;
            }
            let Some(w) = self.waiters.pop_front() else {
                break;
            };
            let group = self.id;
            if w.index < index || response.is_none() && w.term == term {
                w.fail(Error::Unknown { group });
            } else if w.term != term {
                let (index, term) = (w.index, w.term);
                w.fail(Error::Superseded { group, index, term });
            } else {
                match w.waiting {
                    Waiting::Proposal(reply) => {
                        answer(reply, Ok(response.clone().unwrap_or_default()))
                    }
                    // Answered by apply_conf_change; reaching here means it was skipped.
                    Waiting::Change(reply) => answer(reply, Ok(self.conf_state.clone())),
                }
            }
        }
    }

    /// Flushes the state machine and compacts the raft log up to its durable index,
    /// when enough was applied since the last time (or when `force`d by purge or by a
    /// snapshot request). True when a compaction was staged.
    pub(crate) fn maybe_compact(&mut self, ctx: &mut Ctx<'_>, force: bool) -> Result<bool> {
        let Some(fsm) = self.fsm.as_mut() else {
            return Ok(false);
        };
        let applied = fsm.applied_index();
        let due = applied >= self.compacted_at + ctx.config.compact_after_entries;
        if !(due || force) {
            return Ok(false);
        }
        let durable = fsm.flush().map_err(|source| Error::StateMachine {
            group: self.id,
            source,
        })?;
        let raft = &self.node.raft;
        let mut upto = durable.min(raft.raft_log.applied);
        if raft.state == StateRole::Leader && !force {
            // Keep what slow followers still need, unless they are far behind: then
            // they get a snapshot instead.
            let slowest = raft
                .prs()
                .iter()
                .map(|(_, pr)| pr.matched)
                .min()
                .unwrap_or(upto);
            if upto.saturating_sub(slowest) < 4 * ctx.config.compact_after_entries {
                upto = upto.min(slowest);
            }
        }
        self.compacted_at = applied;
        let first = self.node.store().first_index();
        if upto >= first {
            ctx.batch.compact(self.id, upto + 1);
            ctx.metrics.add(&ctx.metrics.compactions, 1);
        }
        // A forced pass always refreshes the raft snapshot (someone asked for one).
        Ok(upto >= first || force)
    }

    /// The raft snapshot the leader serves after compaction: the state machine's
    /// applied point with the configuration in force there. The data travels as a
    /// separate chunked stream, so the raft snapshot itself carries none.
    pub(crate) fn raft_snapshot(&self) -> Option<raft::eraftpb::Snapshot> {
        let fsm = self.fsm.as_ref()?;
        let index = fsm.applied_index().min(self.node.raft.raft_log.applied);
        let term = self.node.raft.raft_log.term(index).ok()?;
        let mut snapshot = raft::eraftpb::Snapshot::default();
        let meta = snapshot.mut_metadata();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(self.conf_state.clone());
        Some(snapshot)
    }
}
