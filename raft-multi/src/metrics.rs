//! Counters of the scheduler. Plain atomics: reading them never slows a round.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Live counters, shared by the workers.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub groups: AtomicI64,
    pub leaders: AtomicI64,
    pub hibernated: AtomicI64,
    pub rounds: AtomicU64,
    pub writes: AtomicU64,
    pub syncs: AtomicU64,
    pub groups_written: AtomicU64,
    pub max_groups_per_write: AtomicU64,
    pub bytes_written: AtomicU64,
    pub proposals: AtomicU64,
    pub proposals_rejected: AtomicU64,
    pub entries_applied: AtomicU64,
    pub reads: AtomicU64,
    pub messages_sent: AtomicU64,
    pub frames_sent: AtomicU64,
    pub messages_dropped: AtomicU64,
    pub messages_received: AtomicU64,
    pub inbound_dropped: AtomicU64,
    pub appends_trimmed: AtomicU64,
    pub inbound_malformed: AtomicU64,
    pub inbound_unknown_group: AtomicU64,
    pub snapshots_sent: AtomicU64,
    pub snapshots_received: AtomicU64,
    pub compactions: AtomicU64,
    pub conf_changes_applied: AtomicU64,
    pub wakeups: AtomicU64,
}

impl Metrics {
    pub(crate) fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn gauge(&self, gauge: &AtomicI64, delta: i64) {
        gauge.fetch_add(delta, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> MultiMetrics {
        let g = |a: &AtomicI64| a.load(Ordering::Relaxed).max(0) as u64;
        let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MultiMetrics {
            groups: g(&self.groups),
            leaders: g(&self.leaders),
            hibernated: g(&self.hibernated),
            rounds: c(&self.rounds),
            writes: c(&self.writes),
            syncs: c(&self.syncs),
            groups_written: c(&self.groups_written),
            max_groups_per_write: c(&self.max_groups_per_write),
            bytes_written: c(&self.bytes_written),
            proposals: c(&self.proposals),
            proposals_rejected: c(&self.proposals_rejected),
            entries_applied: c(&self.entries_applied),
            reads: c(&self.reads),
            messages_sent: c(&self.messages_sent),
            frames_sent: c(&self.frames_sent),
            messages_dropped: c(&self.messages_dropped),
            messages_received: c(&self.messages_received),
            inbound_dropped: c(&self.inbound_dropped),
            appends_trimmed: c(&self.appends_trimmed),
            inbound_malformed: c(&self.inbound_malformed),
            inbound_unknown_group: c(&self.inbound_unknown_group),
            snapshots_sent: c(&self.snapshots_sent),
            snapshots_received: c(&self.snapshots_received),
            compactions: c(&self.compactions),
            conf_changes_applied: c(&self.conf_changes_applied),
            wakeups: c(&self.wakeups),
        }
    }
}

/// A point-in-time copy of the scheduler's counters and gauges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MultiMetrics {
    /// Groups hosted.
    pub groups: u64,
    /// Groups this node leads.
    pub leaders: u64,
    /// Groups asleep.
    pub hibernated: u64,
    /// Rounds run by all workers.
    pub rounds: u64,
    /// Write-ahead-log batches written.
    pub writes: u64,
    /// Of those, batches written with a sync.
    pub syncs: u64,
    /// Sum over writes of the groups each write held (`groups_written / writes` is the
    /// mean number of groups per sync).
    pub groups_written: u64,
    /// The most groups one write (and its one sync) carried.
    pub max_groups_per_write: u64,
    /// Bytes written to the write-ahead log.
    pub bytes_written: u64,
    /// Proposals accepted into a leader's log.
    pub proposals: u64,
    /// Proposals refused (not leader, busy, dropped).
    pub proposals_rejected: u64,
    /// Entries applied to state machines.
    pub entries_applied: u64,
    /// Linearizable reads answered.
    pub reads: u64,
    /// Raft messages handed to the transport.
    pub messages_sent: u64,
    /// Transport frames (one per peer per round at most).
    pub frames_sent: u64,
    /// Messages the transport refused (full queue, unreachable peer).
    pub messages_dropped: u64,
    /// Inbound group messages taken.
    pub messages_received: u64,
    /// Inbound messages dropped: a mailbox was full, or an append did not fit in a
    /// write-ahead log at its size limit (raft sends both again).
    pub inbound_dropped: u64,
    /// Inbound appends cut to the entries that fit in a write-ahead log near its size
    /// limit (the leader sends the rest again).
    pub appends_trimmed: u64,
    /// Inbound messages that did not decode.
    pub inbound_malformed: u64,
    /// Inbound messages for groups not hosted here.
    pub inbound_unknown_group: u64,
    /// Snapshot streams started to followers.
    pub snapshots_sent: u64,
    /// Snapshots installed from leaders.
    pub snapshots_received: u64,
    /// Raft log compactions.
    pub compactions: u64,
    /// Membership changes applied to raft (replayed ones already folded into the stored
    /// configuration are skipped and not counted).
    pub conf_changes_applied: u64,
    /// Hibernated groups woken.
    pub wakeups: u64,
}
