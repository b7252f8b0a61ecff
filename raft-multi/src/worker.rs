//! A worker: one thread that owns a shard of the node's groups and drives them in
//! rounds. One round takes everything in the mailbox, steps the groups, gathers the
//! ready of each group that has one, sends leaders' messages, writes every group's
//! entries and hard state in ONE batch with one sync, then advances and applies.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use crossbeam_channel::Receiver;
use raft_storage::{LogBatch, LogEngine};
use raft_transport::Transport;

use crate::command::{answer, Command, Reply};
use crate::config::MultiConfig;
use crate::error::Error;
use crate::leaders::LeaderTable;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::peer::{Ctx, Peer};
use crate::router::Router;
use crate::GroupId;

mod handle;
mod room;
mod snapshots;
mod upkeep;

use room::Reserved;
pub(crate) use room::Room;

use handle::reject;

/// Commands taken into one round at most, so a flood cannot delay writes forever.
const MAX_COMMANDS_PER_ROUND: usize = 4096;

/// Forced compactions (each flushes a state machine: file syncs and a checkpoint) a turn
/// runs until this much time has passed, at least one: a purge asking every group at
/// once spreads over rounds instead of stalling one round for all of them.
const COMPACTION_BUDGET: std::time::Duration = std::time::Duration::from_millis(2);

/// What every worker of a node shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub config: Arc<MultiConfig>,
    pub engine: LogEngine,
    pub transport: Arc<dyn Transport>,
    pub router: Router,
    pub metrics: Arc<Metrics>,
    pub leaders: Arc<LeaderTable>,
    pub logger: slog::Logger,
    /// Log bytes accepted by every worker and not yet written.
    pub room: Room,
}

/// What one turn of a worker did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Turn {
    /// The worker was told to stop.
    pub shutdown: bool,
    /// Something was handled, written, sent or applied.
    pub worked: bool,
}

pub(crate) struct Worker {
    index: usize,
    config: Arc<MultiConfig>,
    engine: LogEngine,
    transport: Arc<dyn Transport>,
    router: Router,
    metrics: Arc<Metrics>,
    leaders: Arc<LeaderTable>,
    logger: slog::Logger,
    room: Room,
    /// What this worker accepted into the log since its last write.
    reserved: Reserved,
    /// (group, index) cache releases gathered in a round (kept for its capacity).
    releases: Vec<(GroupId, u64)>,
    /// Groups asked to compact (by purge or a snapshot request), run a few per turn.
    compactions: VecDeque<GroupId>,
    /// The groups in `compactions`.
    compactions_queued: BTreeSet<GroupId>,
    mailbox: Receiver<Command>,
    peers: BTreeMap<GroupId, Peer>,
    /// Groups with work this round.
    active: BTreeSet<GroupId>,
    /// Groups that tick (not hibernated).
    awake: BTreeSet<GroupId>,
    outbox: Outbox,
    batch: LogBatch,
    /// Creators answered once the write that made their group durable has synced.
    created: Vec<Reply<()>>,
    ticks: u64,
    /// The tick of the last maintenance pass (worker 0).
    maintained_at: u64,
    stopped: Option<String>,
    /// Driven by the caller's thread (`MultiRaft::start_manual`): snapshot restores run
    /// in turns instead of on threads of their own.
    manual: bool,
    /// Manual mode: snapshots being received.
    restores: Vec<snapshots::PendingRestore>,
}

impl Worker {
    /// A worker for manual driving (see [`Worker::poll`]).
    pub(crate) fn manual(index: usize, shared: Shared, mailbox: Receiver<Command>) -> Worker {
        let mut worker = Worker::new(index, shared, mailbox);
        worker.manual = true;
        worker
    }

    pub(crate) fn new(index: usize, shared: Shared, mailbox: Receiver<Command>) -> Worker {
        let Shared {
            config,
            engine,
            transport,
            router,
            metrics,
            leaders,
            logger,
            room,
        } = shared;
        Worker {
            index,
            config,
            engine,
            transport,
            router,
            metrics,
            leaders,
            logger,
            room,
            reserved: Reserved::default(),
            releases: Vec::new(),
            compactions: VecDeque::new(),
            compactions_queued: BTreeSet::new(),
            mailbox,
            peers: BTreeMap::new(),
            active: BTreeSet::new(),
            awake: BTreeSet::new(),
            outbox: Outbox::default(),
            batch: LogBatch::new(),
            created: Vec::new(),
            ticks: 0,
            maintained_at: 0,
            stopped: None,
            manual: false,
            restores: Vec::new(),
        }
    }

    /// Runs rounds until shut down. Blocks on the mailbox only when nothing is pending.
    pub(crate) fn run(mut self) {
        while !self.turn(true).shutdown {}
        self.close();
    }

    /// One turn on the caller's thread without blocking (manual driving): pending
    /// snapshot restores, the mailbox, one round.
    pub(crate) fn poll(&mut self) -> Turn {
        let restored = self.poll_restores();
        let mut turn = self.turn(false);
        turn.worked |= restored;
        turn
    }

    /// Takes what is in the mailbox (waiting for the first command when `block` and
    /// nothing is pending) and runs one round.
    fn turn(&mut self, block: bool) -> Turn {
        let idle = self.active.is_empty()
            && self.outbox.is_empty()
            && self.batch.is_empty()
            && self.created.is_empty()
            && self.compactions.is_empty();
        let first = if idle && block {
            self.mailbox.recv().ok()
        } else {
            self.mailbox.try_recv().ok()
        };
        let mut shutdown = idle && block && first.is_none();
        let mut worked = !idle || first.is_some();
        if let Some(command) = first {
            shutdown |= self.handle(command);
        }
        for _ in 0..MAX_COMMANDS_PER_ROUND {
            if shutdown {
                break;
            }
            match self.mailbox.try_recv() {
                Ok(command) => {
                    worked = true;
                    shutdown |= self.handle(command);
                }
                Err(_) => break,
            }
        }
        if !shutdown {
            self.run_compactions();
        }
        self.round();
        Turn { shutdown, worked }
    }

    fn ctx(&mut self) -> (Ctx<'_>, &mut BTreeMap<GroupId, Peer>) {
        (
            Ctx {
                config: &self.config,
                leaders: &self.leaders,
                batch: &mut self.batch,
                outbox: &mut self.outbox,
                metrics: &self.metrics,
            },
            &mut self.peers,
        )
    }

    /// Marks `group` as having work; keeps the tick set in step with hibernation.
    fn touch(&mut self, group: GroupId) {
        if let Some(peer) = self.peers.get(&group) {
            self.active.insert(group);
            if peer.hibernated {
                self.awake.remove(&group);
            } else {
                self.awake.insert(group);
            }
        }
    }

    /// Drops a peer's contribution to the gauges and sets.
    fn forget(&mut self, peer: &Peer) {
        let metrics = &self.metrics;
        metrics.gauge(&metrics.groups, -1);
        if peer.hibernated {
            metrics.gauge(&metrics.hibernated, -1);
        }
        if peer.role == raft::StateRole::Leader {
            metrics.gauge(&metrics.leaders, -1);
        }
        self.active.remove(&peer.id);
        self.awake.remove(&peer.id);
        self.leaders.remove(peer.id);
    }

    /// A group whose state machine failed stops: its callers learn why, the rest of the
    /// node carries on.
    fn stop_group(&mut self, group: GroupId, error: Error) {
        tracing::error!(group, %error, "group stopped");
        if let Some(mut peer) = self.peers.remove(&group) {
            let text = error.to_string();
            peer.fail_all(|| Error::Unknown { group });
            self.forget(&peer);
            tracing::error!(group, reason = %text, "replica removed from the scheduler; its log is kept");
        }
    }

    /// One round over the groups with work.
    fn round(&mut self) {
        if self.active.is_empty()
            && self.outbox.is_empty()
            && self.batch.is_empty()
            && self.created.is_empty()
        {
            return;
        }
        self.metrics.add(&self.metrics.rounds, 1);
        let active = std::mem::take(&mut self.active);
        let mut readies = Vec::new();
        let mut failed = Vec::new();
        {
            let (mut ctx, peers) = self.ctx();
            for &group in &active {
                let Some(peer) = peers.get_mut(&group) else {
                    continue;
                };
                peer.submit_proposals(ctx.metrics);
                peer.submit_reads();
                if !peer.node.has_ready() {
                    continue;
                }
                match peer.prepare_ready(&mut ctx) {
                    Ok(rd) => readies.push((group, rd)),
                    Err(error) => failed.push((group, error)),
                }
            }
        }
        // Leaders' appends leave before their own sync (raft thesis 10.2.1), together
        // with what the previous round produced after its sync: one frame per peer.
        self.send_outbox();
        // Creators wait for their group's bootstrap to be durable: with nothing else to
        // write, an empty synced write waits for what was written before.
        if !self.batch.is_empty() || !self.created.is_empty() {
            let groups = self.batch.group_count() as u64;
            let written = self.engine.write(&mut self.batch, self.config.sync);
            // Written or not, the engine's usage tells the truth about these bytes now.
            self.room.release(&mut self.reserved);
            match written {
                // An empty write only waited for earlier data: not a log write.
                Ok(_) if groups == 0 => {}
                Ok(bytes) => {
                    let m = &self.metrics;
                    m.add(&m.writes, 1);
                    m.add(&m.groups_written, groups);
                    m.max_groups_per_write
                        .fetch_max(groups, std::sync::atomic::Ordering::Relaxed);
                    m.add(&m.bytes_written, bytes as u64);
                    if self.config.sync {
                        m.add(&m.syncs, 1);
                    }
                }
                Err(error) => {
                    // Nothing after this is durable: stop the worker rather than
                    // acknowledge what a crash would lose.
                    self.fail_worker(format!("write-ahead log failed: {error}"));
                    return;
                }
            }
        }
        // Reserved by commands that wrote nothing (a proposal raft dropped, an append it
        // rejected).
        self.room.release(&mut self.reserved);
        for reply in self.created.drain(..) {
            answer(reply, Ok(()));
        }
        let mut compacted = Vec::new();
        let mut releases = std::mem::take(&mut self.releases);
        {
            let (mut ctx, peers) = self.ctx();
            for (group, rd) in readies {
                let Some(peer) = peers.get_mut(&group) else {
                    continue;
                };
                match peer.finish_ready(rd, &mut ctx) {
                    Ok(true) => compacted.push(group),
                    Ok(false) => {}
                    Err(error) => failed.push((group, error)),
                }
                if let Some(upto) = peer.cache_release() {
                    releases.push((group, upto));
                }
            }
        }
        // Entries applied (and on leaders held by every follower) leave the cache now
        // rather than when the cache budget is full: memory follows what is in flight.
        self.engine.release_cached(&releases);
        releases.clear();
        self.releases = releases;
        for group in compacted {
            self.save_snapshot(group);
        }
        for (group, error) in failed {
            self.stop_group(group, error);
        }
        // Only this round's groups can have new work from it (cost follows activity).
        for group in active {
            if self
                .peers
                .get(&group)
                .is_some_and(|p| p.fsm.is_some() && p.node.has_ready())
            {
                self.active.insert(group);
            }
        }
    }

    fn send_outbox(&mut self) {
        for (group, msg) in self.outbox.take_snapshots() {
            self.send_snapshot(group, msg);
        }
        let unreachable = self.outbox.flush(&self.transport, &self.metrics);
        for (group, to) in unreachable {
            if let Some(peer) = self.peers.get_mut(&group) {
                peer.node.report_unreachable(to);
                self.active.insert(group);
            }
        }
    }

    fn fail_worker(&mut self, reason: String) {
        tracing::error!(worker = self.index, %reason, "worker stopped");
        for reply in self.created.drain(..) {
            answer(reply, Err(Error::Stopped));
        }
        for peer in self.peers.values_mut() {
            peer.fail_all(|| Error::Stopped);
        }
        self.stopped = Some(reason);
    }

    pub(crate) fn close(&mut self) {
        for restore in std::mem::take(&mut self.restores) {
            restore.abandon();
        }
        for reply in self.created.drain(..) {
            answer(reply, Err(Error::Stopped));
        }
        for peer in self.peers.values_mut() {
            peer.fail_all(|| Error::Stopped);
        }
        while let Ok(command) = self.mailbox.try_recv() {
            reject(command);
        }
    }
}
