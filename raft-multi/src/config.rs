//! Scheduler configuration.

use raft_transport::NodeId;

use crate::error::{Error, Result};

/// How a node's scheduler drives its raft groups.
///
/// Times are in ticks: the owner of the scheduler calls [`crate::MultiRaft::tick`] at a
/// fixed interval (chronik-cluster uses 100 ms by default), so with the defaults a
/// leader heartbeats every tick and followers start an election after 10 to 20 ticks
/// of silence.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MultiConfig {
    /// This node's id (never 0).
    pub node_id: NodeId,
    /// Worker threads; groups are sharded across them. Default: number of cores.
    pub workers: usize,
    /// Ticks between leader heartbeats.
    pub heartbeat_ticks: usize,
    /// Ticks of silence before a follower campaigns (raft randomizes within
    /// `[election_ticks, 2 * election_ticks)`). Must be greater than `heartbeat_ticks`.
    pub election_ticks: usize,
    /// Largest append message raft builds, in bytes.
    pub max_size_per_msg: u64,
    /// Appends in flight per follower.
    pub max_inflight_msgs: usize,
    /// Bytes of uncommitted entries a leader accepts before proposals get `Busy`.
    pub max_uncommitted_size: u64,
    /// Bytes of committed entries handed to apply per ready.
    pub max_committed_size_per_ready: u64,
    /// Idle ticks after which a leader whose followers are caught up puts its group
    /// to sleep on every replica (no ticks, no heartbeats). 0 disables hibernation.
    pub hibernate_after_ticks: usize,
    /// Commands each worker's mailbox holds before senders get `Busy` (proposals) or
    /// inbound raft messages are dropped (raft retransmits).
    pub mailbox_capacity: usize,
    /// Applied entries after which a group's state machine is flushed and its raft
    /// log compacted up to the durable index.
    pub compact_after_entries: u64,
    /// Ticks between checks that flush idle state machines, compact their logs and
    /// purge write-ahead-log segments.
    pub maintenance_ticks: usize,
    /// Sync every write of the write-ahead log before anything it holds is
    /// acknowledged (in the round, or pipelined on the worker's sync thread: see
    /// `inline_sync_below`). True in production; tests of throughput may turn it off.
    pub sync: bool,
    /// With `sync` and a durable log, a round waits for its own sync only while the
    /// node's recent syncs take less than this on average (a fast device: handing the
    /// sync to the worker's sync thread would cost more than the wait); slower syncs
    /// run on the sync thread while the worker goes on with the next round.
    /// `Duration::ZERO` always pipelines. Default 150 µs. A scheduler driven by a
    /// [`crate::Driver`] does not look at the clock: it waits in every fourth round.
    pub inline_sync_below: std::time::Duration,
    /// Randomize each group's election timeout within `[election_ticks, 2 *
    /// election_ticks)` (raft's defence against split votes; true by default). A
    /// deterministic simulation turns it off, since raft-rs draws from a thread-local
    /// generator no seed reaches: every timeout is then exactly `election_ticks`, and
    /// the simulation varies when each node ticks instead.
    pub election_jitter: bool,
}

impl MultiConfig {
    /// Defaults for node `node_id`.
    pub fn new(node_id: NodeId) -> Self {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        MultiConfig {
            node_id,
            workers,
            heartbeat_ticks: 1,
            election_ticks: 10,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            max_uncommitted_size: 32 * 1024 * 1024,
            max_committed_size_per_ready: 16 * 1024 * 1024,
            hibernate_after_ticks: 10,
            mailbox_capacity: 64 * 1024,
            compact_after_entries: 10_000,
            maintenance_ticks: 50,
            sync: true,
            inline_sync_below: std::time::Duration::from_micros(150),
            election_jitter: true,
        }
    }

    /// Sets the average sync time below which a round waits for its own sync (see
    /// [`MultiConfig::inline_sync_below`]).
    pub fn inline_sync_below(mut self, below: std::time::Duration) -> Self {
        self.inline_sync_below = below;
        self
    }

    /// Sets the number of workers.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Sets heartbeat and election ticks.
    pub fn ticks(mut self, heartbeat_ticks: usize, election_ticks: usize) -> Self {
        self.heartbeat_ticks = heartbeat_ticks;
        self.election_ticks = election_ticks;
        self
    }

    /// Sets the idle ticks before hibernation (0 disables it).
    pub fn hibernate_after_ticks(mut self, ticks: usize) -> Self {
        self.hibernate_after_ticks = ticks;
        self
    }

    /// Sets the applied entries between compactions.
    pub fn compact_after_entries(mut self, entries: u64) -> Self {
        self.compact_after_entries = entries;
        self
    }

    /// Sets the ticks between maintenance passes.
    pub fn maintenance_ticks(mut self, ticks: usize) -> Self {
        self.maintenance_ticks = ticks;
        self
    }

    /// Turns raft's randomized election timeouts on or off (see
    /// [`MultiConfig::election_jitter`]).
    pub fn election_jitter(mut self, on: bool) -> Self {
        self.election_jitter = on;
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// `Error::Raft(ConfigInvalid)` naming the first bad setting.
    pub fn validate(&self) -> Result<()> {
        let invalid = |what: &str| Err(Error::Raft(raft::Error::ConfigInvalid(what.to_owned())));
        if self.node_id == 0 {
            return invalid("node_id must not be 0");
        }
        if self.workers == 0 {
            return invalid("workers must be at least 1");
        }
        if self.heartbeat_ticks == 0 || self.election_ticks <= self.heartbeat_ticks {
            return invalid("election_ticks must be greater than heartbeat_ticks > 0");
        }
        if self.mailbox_capacity == 0 {
            return invalid("mailbox_capacity must be at least 1");
        }
        self.raft_config(0).validate()?;
        Ok(())
    }

    /// The raft-rs configuration of one group on this node.
    pub(crate) fn raft_config(&self, applied: u64) -> raft::Config {
        let (min_election_tick, max_election_tick) = if self.election_jitter {
            (0, 0) // raft's default: [election_tick, 2 * election_tick)
        } else {
            (self.election_ticks, self.election_ticks + 1)
        };
        raft::Config {
            min_election_tick,
            max_election_tick,
            id: self.node_id,
            election_tick: self.election_ticks,
            heartbeat_tick: self.heartbeat_ticks,
            applied,
            max_size_per_msg: self.max_size_per_msg,
            max_inflight_msgs: self.max_inflight_msgs,
            check_quorum: true,
            pre_vote: true,
            max_uncommitted_size: self.max_uncommitted_size,
            max_committed_size_per_ready: self.max_committed_size_per_ready,
            // raft-rs's batch_append merges new entries into an earlier MsgAppend to the
            // same peer in the same Ready, even an empty probe with a later index: after a
            // rejection in that Ready the message claims entries it does not start with,
            // the follower acknowledges an index it does not hold, and a later heartbeat
            // panics it. Our outbox already sends one frame per peer per round.
            batch_append: false,
            ..Default::default()
        }
    }
}
