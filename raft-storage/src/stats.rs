//! [`EngineStats`]: counters of the engine.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds, in microseconds, of the `fdatasync` latency buckets of
/// [`EngineStats::sync_latency`]; its last bucket counts the syncs slower than all of them.
pub const SYNC_LATENCY_BOUNDS_MICROS: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// Buckets of [`EngineStats::sync_latency`]: one per bound and one above them all.
pub const SYNC_LATENCY_BUCKETS: usize = SYNC_LATENCY_BOUNDS_MICROS.len() + 1;

/// A sync at least this long counts in [`EngineStats::slow_syncs`]; one of a second or
/// more is also logged (a failing or overloaded disk).
pub const SLOW_SYNC: Duration = Duration::from_millis(100);

/// A snapshot of the engine's counters since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Bytes of frames written.
    pub bytes_written: u64,
    /// Batches written.
    pub batches_written: u64,
    /// `fdatasync` calls made for durability (group commit merges many batches in one);
    /// a segment rotation (syncing the sealed segment, the new one and the directory)
    /// counts as one, here and in the latency figures below.
    pub syncs: u64,
    /// Sum over syncs of the groups written since the previous sync.
    pub groups_synced: u64,
    /// Sum over syncs of the batches made durable by them.
    pub batches_synced: u64,
    /// Total time spent in `fdatasync`, in nanoseconds.
    pub sync_nanos: u64,
    /// Syncs by latency: `sync_latency[i]` counts those of at most
    /// `SYNC_LATENCY_BOUNDS_MICROS[i]` and more than the bound before (the last bucket,
    /// those slower than every bound). Not cumulative.
    pub sync_latency: [u64; SYNC_LATENCY_BUCKETS],
    /// The slowest sync so far, in nanoseconds.
    pub max_sync_nanos: u64,
    /// Syncs that took [`SLOW_SYNC`] or longer.
    pub slow_syncs: u64,
    /// Segments deleted by purge.
    pub purged_segments: u64,
    /// Segments started on a kept file, a purged segment's or a prefilled one, by a
    /// rotation or an open (see
    /// [`EngineConfig::recycle_segments`](crate::EngineConfig::recycle_segments)).
    pub recycled_segments: u64,
    /// Zero-written segment files made at open (see
    /// [`EngineConfig::prefill_segments`](crate::EngineConfig::prefill_segments)).
    pub prefilled_segments: u64,
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
    pub sync_latency: [AtomicU64; SYNC_LATENCY_BUCKETS],
    pub max_sync_nanos: AtomicU64,
    /// Moving average of recent syncs (weight 1/8 each), nanoseconds.
    pub recent_sync_nanos: AtomicU64,
    pub slow_syncs: AtomicU64,
    pub purged_segments: AtomicU64,
    pub recycled_segments: AtomicU64,
    pub prefilled_segments: AtomicU64,
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
    /// Counts one sync that took `took`.
    pub fn record_sync(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let micros = nanos / 1_000;
        let bucket = SYNC_LATENCY_BOUNDS_MICROS
            .iter()
            .position(|&bound| micros <= bound)
            .unwrap_or(SYNC_LATENCY_BOUNDS_MICROS.len());
        add(&self.sync_latency[bucket], 1);
        add(&self.sync_nanos, nanos);
        add(&self.syncs, 1);
        self.max_sync_nanos.fetch_max(nanos, Ordering::Relaxed);
        // Syncs run one at a time (group commit), so load and store do not race.
        let recent = self.recent_sync_nanos.load(Ordering::Relaxed);
        self.recent_sync_nanos
            .store(recent - recent / 8 + nanos / 8, Ordering::Relaxed);
        if took >= SLOW_SYNC {
            add(&self.slow_syncs, 1);
            if took >= Duration::from_secs(1) {
                tracing::warn!(
                    took_ms = took.as_millis() as u64,
                    "slow fdatasync of the write-ahead log: the disk is slow or overloaded"
                );
            }
        }
    }

    pub fn snapshot(&self) -> EngineStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EngineStats {
            bytes_written: get(&self.bytes_written),
            batches_written: get(&self.batches_written),
            syncs: get(&self.syncs),
            groups_synced: get(&self.groups_synced),
            batches_synced: get(&self.batches_synced),
            sync_nanos: get(&self.sync_nanos),
            sync_latency: std::array::from_fn(|i| get(&self.sync_latency[i])),
            max_sync_nanos: get(&self.max_sync_nanos),
            slow_syncs: get(&self.slow_syncs),
            purged_segments: get(&self.purged_segments),
            recycled_segments: get(&self.recycled_segments),
            prefilled_segments: get(&self.prefilled_segments),
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Counters, SYNC_LATENCY_BUCKETS};

    #[test]
    fn syncs_land_in_their_latency_buckets() {
        let counters = Counters::default();
        for took in [
            Duration::from_micros(50),
            Duration::from_micros(100),
            Duration::from_micros(300),
            Duration::from_millis(150),
            Duration::from_secs(2),
        ] {
            counters.record_sync(took);
        }
        let stats = counters.snapshot();
        let mut expected = [0u64; SYNC_LATENCY_BUCKETS];
        // <= 100 us twice, <= 500 us, <= 250 ms, and above every bound.
        expected[0] = 2;
        expected[2] = 1;
        expected[10] = 1;
        expected[SYNC_LATENCY_BUCKETS - 1] = 1;
        assert_eq!(stats.sync_latency, expected);
        assert_eq!(stats.syncs, 5);
        assert_eq!(stats.slow_syncs, 2);
        assert_eq!(stats.max_sync_nanos, 2_000_000_000);
        assert_eq!(stats.sync_nanos, 2_150_450_000);
    }
}
