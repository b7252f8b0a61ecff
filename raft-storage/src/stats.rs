//! [`EngineStats`]: counters of the engine.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the engine's counters since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Bytes of frames written.
    pub bytes_written: u64,
    /// Batches written.
    pub batches_written: u64,
    /// `fdatasync` calls made for durability (group commit merges many batches in one).
    pub syncs: u64,
    /// Sum over syncs of the groups written since the previous sync.
    pub groups_synced: u64,
    /// Sum over syncs of the batches made durable by them.
    pub batches_synced: u64,
    /// Total time spent in `fdatasync`, in nanoseconds.
    pub sync_nanos: u64,
    /// Segments deleted by purge.
    pub purged_segments: u64,
    /// Checkpoint records rewritten forward by purge so idle groups do not pin old segments.
    pub rewritten_groups: u64,
    /// Bytes of log replayed by recovery.
    pub recovered_bytes: u64,
    /// Torn tails cut at recovery.
    pub recovery_tail_cuts: u64,
    /// Bytes dropped at recovery with a torn tail.
    pub recovery_bytes_cut: u64,
    /// Snapshot files referenced by the log but missing or damaged at recovery.
    pub missing_snapshots: u64,
    /// Writes refused (invalid batch, poisoned engine, or over the size limit).
    pub rejected_writes: u64,
    /// Writes refused because the log was at its size limit (counted in `rejected_writes`
    /// too).
    pub quota_rejections: u64,
    /// Bytes held by the live segment files now (0 for the in-memory engine).
    pub log_bytes: u64,
    /// Entries read back from segment files (cache misses).
    pub entries_read_from_disk: u64,
    /// Bytes held by the entry cache now.
    pub cache_bytes: u64,
}

/// The live atomics behind [`EngineStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub bytes_written: AtomicU64,
    pub batches_written: AtomicU64,
    pub syncs: AtomicU64,
    pub groups_synced: AtomicU64,
    pub batches_synced: AtomicU64,
    pub sync_nanos: AtomicU64,
    pub purged_segments: AtomicU64,
    pub rewritten_groups: AtomicU64,
    pub recovered_bytes: AtomicU64,
    pub recovery_tail_cuts: AtomicU64,
    pub recovery_bytes_cut: AtomicU64,
    pub missing_snapshots: AtomicU64,
    pub rejected_writes: AtomicU64,
    pub quota_rejections: AtomicU64,
    pub log_bytes: AtomicU64,
    pub entries_read_from_disk: AtomicU64,
    pub cache_bytes: AtomicU64,
}

pub(crate) fn add(counter: &AtomicU64, value: u64) {
    counter.fetch_add(value, Ordering::Relaxed);
}

impl Counters {
    pub fn snapshot(&self) -> EngineStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EngineStats {
            bytes_written: get(&self.bytes_written),
            batches_written: get(&self.batches_written),
            syncs: get(&self.syncs),
            groups_synced: get(&self.groups_synced),
            batches_synced: get(&self.batches_synced),
            sync_nanos: get(&self.sync_nanos),
            purged_segments: get(&self.purged_segments),
            rewritten_groups: get(&self.rewritten_groups),
            recovered_bytes: get(&self.recovered_bytes),
            recovery_tail_cuts: get(&self.recovery_tail_cuts),
            recovery_bytes_cut: get(&self.recovery_bytes_cut),
            missing_snapshots: get(&self.missing_snapshots),
            rejected_writes: get(&self.rejected_writes),
            quota_rejections: get(&self.quota_rejections),
            log_bytes: get(&self.log_bytes),
            entries_read_from_disk: get(&self.entries_read_from_disk),
            cache_bytes: get(&self.cache_bytes),
        }
    }
}
