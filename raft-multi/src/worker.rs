//! A worker: one thread that owns a shard of the node's groups and drives them in
//! rounds. One round takes everything in the mailbox, steps the groups, gathers the
//! ready of each group that has one, sends leaders' messages, writes every group's
//! entries and hard state in ONE batch with one sync, then advances and applies.
//!
//! With a durable log the sync is pipelined (see `syncer`): the round hands its write to
//! the worker's sync thread and goes on; raft learns the write is durable, and the
//! messages and answers that wait for it leave, in a later turn.

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
mod syncer;
mod upkeep;

use room::Reserved;
pub(crate) use room::Room;

use handle::reject;
use syncer::{InFlight, PendingReady, Pipeline, Synced, Syncer};

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
    /// Writes are synced off the round (a durable log with `sync`): see `syncer`.
    pipelined: bool,
    /// Pipelined writes not known to be durable.
    pipeline: Pipeline,
    /// The sync thread (pipelined, driven by threads).
    syncer: Option<Syncer>,
    /// Manual mode: the newest write synced at the end of a round; it ripens in the
    /// next turn and is completed in the one after, so rounds run (and may wait for
    /// their own sync) while earlier writes are still in flight.
    synced: Option<u64>,
    ripe: Option<u64>,
    /// The epoch the next replica created here gets.
    next_epoch: u64,
    /// Rounds run that had work.
    rounds: u64,
}

impl Worker {
    /// A worker for manual driving (see [`Worker::poll`]).
    pub(crate) fn manual(index: usize, shared: Shared, mailbox: Receiver<Command>) -> Worker {
        let mut worker = Worker::new(index, shared, mailbox);
        worker.manual = true;
        worker.pipelined = worker.config.sync && worker.engine.is_persistent();
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
            pipelined: false,
            pipeline: Pipeline::default(),
            syncer: None,
            synced: None,
            ripe: None,
            next_epoch: 1,
            rounds: 0,
        }
    }

    /// Runs rounds until shut down. Blocks on the mailbox only when nothing is pending.
    pub(crate) fn run(mut self) {
        if self.config.sync && self.engine.is_persistent() {
            let name = format!("raft-sync-{}-{}", self.config.node_id, self.index);
            match Syncer::spawn(self.engine.clone(), name) {
                Ok(syncer) => {
                    self.syncer = Some(syncer);
                    self.pipelined = true;
                }
                // Still correct, only slower: each round waits for its own sync.
                Err(error) => {
                    tracing::warn!(worker = self.index, %error, "no sync thread: writes are synced in the round")
                }
            }
        }
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
        let mut synced = self.collect_synced();
        let idle = self.active.is_empty()
            && self.outbox.is_empty()
            && self.batch.is_empty()
            && self.created.is_empty()
            && self.compactions.is_empty()
            // A hand-driven worker completes its writes in its next turn.
            && (self.syncer.is_some() || self.pipeline.in_flight.is_empty());
        let (first, closed) = if idle && block {
            self.wait_for_work(&mut synced)
        } else {
            (self.mailbox.try_recv().ok(), false)
        };
        let mut shutdown = closed;
        let mut worked = !idle || first.is_some() || synced;
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

    /// Blocks until a command arrives or (with writes in flight) a sync completes.
    /// Returns the command, if one came, and true if the mailbox is closed.
    fn wait_for_work(&mut self, synced: &mut bool) -> (Option<Command>, bool) {
        let done = match &self.syncer {
            Some(syncer) if !self.pipeline.in_flight.is_empty() => syncer.done.clone(),
            _ => {
                let command = self.mailbox.recv().ok();
                let closed = command.is_none();
                return (command, closed);
            }
        };
        crossbeam_channel::select! {
            recv(self.mailbox) -> command => {
                let closed = command.is_err();
                (command.ok(), closed)
            }
            recv(done) -> report => {
                match report {
                    Ok(report) => self.on_synced(report),
                    Err(_) => self.fail_worker("the sync thread stopped".to_owned()),
                }
                *synced = true;
                (self.mailbox.try_recv().ok(), false)
            }
        }
    }

    /// Completes the writes the sync thread (or, driven by hand, the last round) made
    /// durable. True if any was.
    fn collect_synced(&mut self) -> bool {
        if self.manual {
            let ripe = std::mem::replace(&mut self.ripe, self.synced.take());
            if let Some(id) = ripe {
                self.complete_writes(id);
                return true;
            }
            return false;
        }
        let Some(syncer) = &self.syncer else {
            return false;
        };
        let reports: Vec<Synced> = syncer.done.try_iter().collect();
        let any = !reports.is_empty();
        for report in reports {
            self.on_synced(report);
        }
        any
    }

    fn on_synced(&mut self, report: Synced) {
        match report {
            Ok(id) => self.complete_writes(id),
            // Nothing after this is durable: stop rather than acknowledge what a crash
            // would lose.
            Err(error) => self.fail_worker(format!("write-ahead log failed: {error}")),
        }
    }

    /// Writes up to `id` are durable: raft learns it, waiting messages leave with the
    /// next round, creators are answered.
    fn complete_writes(&mut self, id: u64) {
        if self.stopped.is_some() {
            return;
        }
        let writes = self.pipeline.complete(id);
        // Like a round's own sync, counted only when it made log records durable.
        if writes.iter().any(|w| w.wrote) {
            self.metrics.add(&self.metrics.syncs, 1);
        }
        for write in writes {
            for ready in write.readies {
                let Some(peer) = self.peers.get_mut(&ready.group) else {
                    continue;
                };
                if peer.epoch != ready.epoch {
                    continue;
                }
                peer.on_persisted(ready.number, ready.persisted, &mut self.outbox);
                self.touch(ready.group);
            }
            for reply in write.created {
                answer(reply, Ok(()));
            }
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
        self.rounds += 1;
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
                if !peer.node.has_ready() || peer.awaits_persistence_to_lead() {
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
        // Pipelined unless syncs are fast enough to wait for: they then cost less than
        // the two thread hand-offs and the extra ready cycle of a pipelined write. A
        // hand-driven worker does not look at the clock (a simulation replays from its
        // seed): it waits for its sync in every fourth round and pipelines the others,
        // so simulations cover both ways and the switch between them.
        //
        // A ready that installs a raft snapshot is always waited for: raft counts the
        // snapshot as applied, which it allows only once persisted, and until then an
        // election timeout would read entries the snapshot removed from the log.
        let installs_snapshot = readies.iter().any(|(_, rd)| !rd.snapshot().is_empty());
        let pipelined = self.pipelined
            && !installs_snapshot
            && if self.manual {
                self.rounds % 4 != 0
            } else {
                self.engine.recent_sync_time() >= self.config.inline_sync_below
            };
        let waits = pipelined
            && readies
                .iter()
                .any(|(group, rd)| self.peers.get(group).is_some_and(|p| p.waits_for_sync(rd)));
        // A round that waits for its sync while writes are still with the sync thread
        // waits for those too (a sync covers every write before it), so its replicas
        // may finish their readies at once.
        let catch_up = self.pipelined && !pipelined && !self.pipeline.in_flight.is_empty();
        let mut position = 0;
        let mut wrote = false;
        if !self.batch.is_empty() || !self.created.is_empty() || waits || catch_up {
            let groups = self.batch.group_count() as u64;
            let written = if pipelined {
                self.engine
                    .write_deferred(&mut self.batch)
                    .map(|w| (w.bytes, w.position))
            } else {
                self.engine
                    .write(&mut self.batch, self.config.sync)
                    .map(|bytes| (bytes, 0))
            };
            // Written or not, the engine's usage tells the truth about these bytes now.
            self.room.release(&mut self.reserved);
            match written {
                Ok((_, at)) if groups == 0 => position = at,
                Ok((bytes, at)) => {
                    position = at;
                    wrote = true;
                    let m = &self.metrics;
                    m.add(&m.writes, 1);
                    m.add(&m.groups_written, groups);
                    m.max_groups_per_write
                        .fetch_max(groups, std::sync::atomic::Ordering::Relaxed);
                    m.add(&m.bytes_written, bytes as u64);
                    if self.config.sync && !pipelined {
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
        if catch_up {
            if let Some(last) = self.pipeline.in_flight.back().map(|w| w.id) {
                self.complete_writes(last);
            }
        }
        let mut in_flight = InFlight {
            id: 0,
            position,
            readies: Vec::new(),
            created: Vec::new(),
            wrote: false,
        };
        // Everything written is synced, also what no reply waits for (a commit index, a
        // membership, a compaction): a restart finds what the round decided. The id is
        // taken now: what the rest of the round stages goes with the next write.
        let sending = pipelined && (wrote || waits || !self.created.is_empty());
        if sending {
            in_flight.id = self.pipeline.next_id();
        }
        if pipelined {
            in_flight.created = std::mem::take(&mut self.created);
        } else {
            for reply in self.created.drain(..) {
                answer(reply, Ok(()));
            }
        }
        let mut compacted = Vec::new();
        let mut releases = std::mem::take(&mut self.releases);
        {
            let (mut ctx, peers) = self.ctx();
            for (group, rd) in readies {
                let Some(peer) = peers.get_mut(&group) else {
                    continue;
                };
                let finished = if pipelined && peer.waits_for_sync(&rd) {
                    peer.finish_ready_async(rd, &mut ctx)
                        .map(|(number, persisted, compacted)| {
                            in_flight.readies.push(PendingReady {
                                group,
                                epoch: peer.epoch,
                                number,
                                persisted,
                            });
                            compacted
                        })
                } else {
                    peer.finish_ready(rd, &mut ctx)
                };
                match finished {
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
        in_flight.wrote = wrote;
        if sending {
            self.send_to_sync(in_flight);
        }
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

    /// Hands a pipelined write to the sync thread; driven by hand, syncs it now and
    /// completes it in the next turn.
    fn send_to_sync(&mut self, write: InFlight) {
        let (id, position) = (write.id, write.position);
        self.pipeline.in_flight.push_back(write);
        if let Some(syncer) = &self.syncer {
            if !syncer.submit(id, position) {
                self.fail_worker("the sync thread stopped".to_owned());
            }
            return;
        }
        match self.engine.sync_to(position) {
            Ok(()) => self.synced = Some(id),
            Err(error) => self.fail_worker(format!("write-ahead log failed: {error}")),
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
        self.drop_in_flight();
        for reply in self.created.drain(..) {
            answer(reply, Err(Error::Stopped));
        }
        for peer in self.peers.values_mut() {
            peer.fail_all(|| Error::Stopped);
        }
        self.stopped = Some(reason);
    }

    /// Forgets the writes not known to be durable: their creators learn the worker
    /// stopped (their proposers learn it from `fail_all`).
    fn drop_in_flight(&mut self) {
        self.synced = None;
        self.ripe = None;
        for write in self.pipeline.in_flight.drain(..) {
            for reply in write.created {
                answer(reply, Err(Error::Stopped));
            }
        }
    }

    pub(crate) fn close(&mut self) {
        if let Some(mut syncer) = self.syncer.take() {
            syncer.stop();
        }
        self.drop_in_flight();
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
