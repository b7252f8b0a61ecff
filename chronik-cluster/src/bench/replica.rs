//! One replica of the naive driver: a tokio task owning one `RawNode`, its own timer
//! and its own storage, sending each raft message as a frame of its own. Every event
//! (a message, a proposal, a tick) is followed by raft-rs's documented Ready handling
//! with a write (synced when it holds entries or a hard state) of its own.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeV2, Entry, EntryType, Message};
use raft::{RawNode, StateRole};
use raft_fsm::{EntryKind, LogEntry, SnapshotMeta, StateMachine};
use raft_storage::{GroupStorage, LogBatch, LogEngine};
use raft_transport::{GroupMessage, Transport};
use tokio::sync::{mpsc, oneshot};

use super::machine::CountingMachine;
use super::naive::NaiveStats;

/// Why a naive proposal was not applied.
#[derive(Debug)]
pub enum Refused {
    /// Not the leader; the leader this replica knows, if any.
    NotLeader(Option<u64>),
    /// raft dropped it, the leader stepped down, or the replica stopped.
    Dropped,
}

/// The answer to a proposal: its raft index once applied on this replica.
pub type Reply = oneshot::Sender<Result<u64, Refused>>;

/// What a replica's task reacts to.
pub enum Event {
    /// A raft message from a peer.
    Raft(Box<Message>),
    /// A command to propose.
    Propose(Vec<u8>, Reply),
    /// Start an election.
    Campaign,
}

/// One replica of one group: everything its task owns.
pub struct Replica {
    /// Its group.
    pub group: u64,
    /// raft-rs.
    pub node: RawNode<GroupStorage>,
    /// Its own log engine.
    pub engine: LogEngine,
    /// The node's transport.
    pub transport: Arc<dyn Transport>,
    /// Counters shared by every replica.
    pub stats: Arc<NaiveStats>,
    /// Sync writes that hold entries or a hard state.
    pub sync: bool,
    /// Applies commands.
    pub machine: CountingMachine,
    /// Proposals waiting for their entry, by the id carried in the entry's context.
    pub waiters: HashMap<u64, Reply>,
    /// The last proposal id.
    pub next_id: u64,
    /// The role in the last Ready.
    pub role: StateRole,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

impl Replica {
    /// The task: wait for an event or the tick, handle it, then the Ready; ends when
    /// the mailbox closes.
    pub async fn run(mut self, mut events: mpsc::Receiver<Event>, tick: Duration) {
        let mut timer = tokio::time::interval(tick);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.handle(event),
                    None => break,
                },
                _ = timer.tick() => {
                    self.node.tick();
                }
            }
            if let Err(error) = self.on_ready() {
                tracing::warn!(group = self.group, %error, "naive replica stopped");
                break;
            }
        }
        self.fail_waiters();
        if self.role == StateRole::Leader {
            self.stats.leaders.fetch_sub(1, Ordering::Relaxed);
        }
        self.stats.live.fetch_sub(1, Ordering::Relaxed);
    }

    fn handle(&mut self, event: Event) {
        match event {
            // Stale or misdirected messages are normal raft life.
            Event::Raft(message) => {
                let _ = self.node.step(*message);
            }
            Event::Propose(data, reply) => {
                if self.node.raft.state != StateRole::Leader {
                    let leader = Some(self.node.raft.leader_id).filter(|&l| l != 0);
                    let _ = reply.send(Err(Refused::NotLeader(leader)));
                    return;
                }
                self.next_id += 1;
                let id = self.next_id;
                match self.node.propose(id.to_le_bytes().to_vec(), data) {
                    Ok(()) => {
                        self.waiters.insert(id, reply);
                    }
                    Err(_) => {
                        let _ = reply.send(Err(Refused::Dropped));
                    }
                }
            }
            Event::Campaign => {
                let _ = self.node.campaign();
            }
        }
    }

    /// One frame per message: the shape of one RPC per raft message.
    fn send(&mut self, messages: Vec<Message>) {
        for message in messages {
            let to = message.to;
            let Ok(bytes) = message.write_to_bytes() else {
                continue;
            };
            self.stats.messages.fetch_add(1, Ordering::Relaxed);
            let frame = vec![GroupMessage::new(self.group, bytes)];
            if self.transport.send(to, frame).is_err() {
                self.node.report_unreachable(to);
            }
        }
    }

    fn write(&mut self, batch: &mut LogBatch, sync: bool) -> Result<(), Failure> {
        if batch.is_empty() {
            return Ok(());
        }
        self.stats.writes.fetch_add(1, Ordering::Relaxed);
        if sync {
            self.stats.syncs.fetch_add(1, Ordering::Relaxed);
            // Let the runtime move other tasks away while this one waits for the disk
            // (kinder to the baseline than raftify, which syncs on the runtime thread).
            let engine = &self.engine;
            tokio::task::block_in_place(|| engine.write(batch, true))?;
        } else {
            self.engine.write(batch, false)?;
        }
        Ok(())
    }

    /// raft-rs's documented Ready handling, for this one group.
    fn on_ready(&mut self) -> Result<(), Failure> {
        if !self.node.has_ready() {
            return Ok(());
        }
        let mut ready = self.node.ready();
        if let Some(soft) = ready.ss() {
            self.set_role(soft.raft_state);
        }
        let messages = ready.take_messages();
        self.send(messages);
        let mut batch = LogBatch::new();
        if !ready.snapshot().is_empty() {
            let snapshot = ready.snapshot().clone();
            let meta = snapshot.get_metadata();
            batch.apply_snapshot(self.group, meta);
            let state = SnapshotMeta {
                index: meta.index,
                term: meta.term,
            };
            self.machine
                .restore(state, &mut std::iter::once(Ok(snapshot.data.clone())))?;
        }
        let committed = ready.take_committed_entries();
        self.apply(committed, &mut batch)?;
        if !ready.entries().is_empty() {
            batch.append(self.group, ready.entries());
        }
        if let Some(hs) = ready.hs() {
            batch.set_hard_state(self.group, hs);
        }
        let sync = self.sync;
        self.write(&mut batch, sync)?;
        let persisted = ready.take_persisted_messages();
        self.send(persisted);
        let mut light = self.node.advance(ready);
        if let Some(commit) = light.commit_index() {
            let mut hs = self.node.store().hard_state();
            hs.commit = commit;
            batch.set_hard_state(self.group, &hs);
        }
        let messages = light.take_messages();
        self.send(messages);
        let committed = light.take_committed_entries();
        self.apply(committed, &mut batch)?;
        self.write(&mut batch, false)?;
        self.node.advance_apply();
        Ok(())
    }

    fn set_role(&mut self, role: StateRole) {
        let was = self.role == StateRole::Leader;
        let is = role == StateRole::Leader;
        if was && !is {
            self.stats.leaders.fetch_sub(1, Ordering::Relaxed);
            self.fail_waiters();
        } else if is && !was {
            self.stats.leaders.fetch_add(1, Ordering::Relaxed);
        }
        self.role = role;
    }

    fn fail_waiters(&mut self) {
        for (_, reply) in self.waiters.drain() {
            let _ = reply.send(Err(Refused::Dropped));
        }
    }

    fn apply(&mut self, entries: Vec<Entry>, batch: &mut LogBatch) -> Result<(), Failure> {
        for entry in entries {
            let kind = match entry.get_entry_type() {
                EntryType::EntryNormal if entry.data.is_empty() => EntryKind::Empty,
                EntryType::EntryNormal => EntryKind::Normal,
                EntryType::EntryConfChange => {
                    let cc = ConfChange::parse_from_bytes(&entry.data)?;
                    let cs = self.node.apply_conf_change(&cc)?;
                    batch.set_conf_state(self.group, &cs);
                    EntryKind::ConfChange
                }
                EntryType::EntryConfChangeV2 => {
                    let cc = ConfChangeV2::parse_from_bytes(&entry.data)?;
                    let cs = self.node.apply_conf_change(&cc)?;
                    batch.set_conf_state(self.group, &cs);
                    EntryKind::ConfChange
                }
            };
            if entry.index <= self.machine.applied_index() {
                continue;
            }
            let log_entry = LogEntry {
                index: entry.index,
                term: entry.term,
                kind,
                data: &entry.data,
            };
            self.machine.apply(&log_entry)?;
            let id = <[u8; 8]>::try_from(&entry.context[..])
                .ok()
                .map(u64::from_le_bytes);
            // Ids are unique per replica and a leader that steps down fails all its
            // waiters, so an entry overwritten by another leader is never acknowledged.
            if let Some(reply) = id.and_then(|id| self.waiters.remove(&id)) {
                let _ = reply.send(Ok(entry.index));
            }
        }
        Ok(())
    }
}
