//! Pipelined writes: a worker's writes are synced on a thread of their own while the
//! worker goes on stepping its groups, taking proposals and sending appends.
//!
//! A round writes its batch with [`LogEngine::write_deferred`] (readable at once, raft
//! reads the entries from the engine's cache) and hands raft its readies with
//! `advance_append_async`. The write waits here, in an [`InFlight`] record, with what
//! must not happen before it is durable: raft learning it is persisted (so a leader's
//! own vote in a commit, a follower's applying), the messages a replica sends only
//! after persisting (acknowledgements, votes) and the answers to group creators. The
//! sync thread makes the writes durable in order, one `fdatasync` for every write that
//! arrived while the previous one ran, and tells the worker the newest write it covered.
//!
//! A worker driven by hand ([`crate::Driver`]) has no thread: it syncs at the end of its
//! round and completes the write two turns later, so simulations step groups between a
//! write and raft learning it is durable, as the threads do.
//!
//! A round may also wait for its own sync (see `Worker::round`): on a fast device, and
//! when a replica installs a raft snapshot. That sync covers every write before it, so
//! the writes still in flight are completed with it.

use std::collections::VecDeque;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use raft::eraftpb::Message;
use raft_storage::LogEngine;

use crate::command::Reply;
use crate::GroupId;

/// A ready handed to raft with `advance_append_async`, waiting for its write.
pub(crate) struct PendingReady {
    pub group: GroupId,
    /// The replica's epoch (see `Peer::epoch`): a replica created again meanwhile
    /// never hears of its predecessor's readies.
    pub epoch: u64,
    pub number: u64,
    /// Messages that leave only once the ready is durable.
    pub persisted: Vec<Message>,
}

/// One round's write on its way to the disk.
pub(crate) struct InFlight {
    /// Increasing per worker.
    pub id: u64,
    /// The log position just past the write.
    pub position: u64,
    pub readies: Vec<PendingReady>,
    /// Creators (and removers) answered once their group's records are durable.
    pub created: Vec<Reply<()>>,
    /// The round wrote log records (else it only waits for earlier ones).
    pub wrote: bool,
}

/// The writes of one worker not known to be durable, oldest first.
#[derive(Default)]
pub(crate) struct Pipeline {
    pub in_flight: VecDeque<InFlight>,
    next_id: u64,
}

impl Pipeline {
    /// Takes the id of the write about to be handed over.
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Takes the writes up to `id`, oldest first.
    pub fn complete(&mut self, id: u64) -> Vec<InFlight> {
        let mut done = Vec::new();
        while self.in_flight.front().is_some_and(|w| w.id <= id) {
            if let Some(write) = self.in_flight.pop_front() {
                done.push(write);
            }
        }
        done
    }
}

/// What the sync thread reports: the newest write id now durable, or why the log failed.
pub(crate) type Synced = Result<u64, String>;

/// The sync thread of one worker.
pub(crate) struct Syncer {
    tickets: Option<Sender<(u64, u64)>>,
    pub done: Receiver<Synced>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts the thread. Fails only if the thread cannot be created.
    pub fn spawn(engine: LogEngine, name: String) -> std::io::Result<Syncer> {
        let (tickets, requests) = crossbeam_channel::unbounded::<(u64, u64)>();
        let (report, done) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || run(&engine, &requests, &report))?;
        Ok(Syncer {
            tickets: Some(tickets),
            done,
            thread: Some(thread),
        })
    }

    /// Asks for write `id` (ending at `position`) to be made durable. False if the
    /// thread is gone.
    pub fn submit(&self, id: u64, position: u64) -> bool {
        self.tickets
            .as_ref()
            .is_some_and(|t| t.send((id, position)).is_ok())
    }

    /// Stops the thread once it has synced what it was asked to, and waits for it.
    pub fn stop(&mut self) {
        self.tickets = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The thread: takes every ticket waiting, syncs once up to the newest, reports it.
/// Ends when the worker drops its end or after the first failure (the engine is
/// poisoned then: nothing later can become durable).
fn run(engine: &LogEngine, requests: &Receiver<(u64, u64)>, report: &Sender<Synced>) {
    while let Ok((mut id, mut position)) = requests.recv() {
        while let Ok((later, at)) = requests.try_recv() {
            id = later;
            position = position.max(at);
        }
        let outcome = engine.sync_to(position).map(|()| id);
        let failed = outcome.is_err();
        if report.send(outcome.map_err(|e| e.to_string())).is_err() || failed {
            return;
        }
    }
}
