//! Engine configuration.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Default segment size: 128 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 128 << 20;
/// Default entry cache budget: 256 MiB.
pub const DEFAULT_CACHE_CAPACITY: usize = 256 << 20;
/// Default purge lag: 8 segments.
pub const DEFAULT_PURGE_LAG_SEGMENTS: u64 = 8;
/// Default number of purged segment files kept for reuse: 2.
pub const DEFAULT_RECYCLE_SEGMENTS: usize = 2;
/// Default size up to which a lagging group's live entries are rewritten forward: 256 KiB.
pub const DEFAULT_REWRITE_THRESHOLD: u64 = 256 << 10;

/// Configuration of a [`LogEngine`](crate::LogEngine).
///
/// ```
/// let config = raft_storage::EngineConfig::new("/var/lib/chronik/raft")
///     .segment_size(64 << 20)
///     .cache_capacity(32 << 20);
/// assert_eq!(config.get_segment_size(), 64 << 20);
/// ```
#[derive(Debug, Clone)]
pub struct EngineConfig {
    dir: PathBuf,
    segment_size: u64,
    cache_capacity: usize,
    purge_lag_segments: u64,
    rewrite_threshold: u64,
    max_log_bytes: u64,
    recycle_segments: usize,
    prefill_segments: bool,
}

impl EngineConfig {
    /// A configuration for the engine living in `dir` (created if missing), with defaults.
    pub fn new(dir: impl AsRef<Path>) -> EngineConfig {
        EngineConfig {
            dir: dir.as_ref().to_path_buf(),
            segment_size: DEFAULT_SEGMENT_SIZE,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            purge_lag_segments: DEFAULT_PURGE_LAG_SEGMENTS,
            rewrite_threshold: DEFAULT_REWRITE_THRESHOLD,
            max_log_bytes: 0,
            recycle_segments: DEFAULT_RECYCLE_SEGMENTS,
            prefill_segments: false,
        }
    }

    /// Size at which the active segment is sealed and a new one started (a batch larger than
    /// this goes alone into one segment). Between 4 KiB and 4 GiB.
    pub fn segment_size(mut self, bytes: u64) -> EngineConfig {
        self.segment_size = bytes;
        self
    }

    /// Bytes of recently written entries kept decoded in memory across all groups. Older
    /// entries are read back from the segment files.
    pub fn cache_capacity(mut self, bytes: usize) -> EngineConfig {
        self.cache_capacity = bytes;
        self
    }

    /// A group whose oldest live entry sits more than this many segments behind the active
    /// segment is reported by [`purge_expired`](crate::LogEngine::purge_expired).
    pub fn purge_lag_segments(mut self, segments: u64) -> EngineConfig {
        self.purge_lag_segments = segments;
        self
    }

    /// A lagging group (see [`purge_lag_segments`](EngineConfig::purge_lag_segments)) whose
    /// live entries total at most this many bytes has them rewritten forward by purge instead
    /// of being reported (an idle group keeping its last applied entry must not pin a segment
    /// forever). 0 disables rewriting entries.
    pub fn rewrite_threshold(mut self, bytes: u64) -> EngineConfig {
        self.rewrite_threshold = bytes;
        self
    }

    /// The most bytes the live segment files may hold together (0: no limit; otherwise at
    /// least two segments, so that purge can free some). A write that
    /// appends entries and would pass the limit is refused with
    /// [`Error::QuotaExceeded`] before anything is written; the engine stays usable, and
    /// compaction and purge free space again. Records without entries (hard states,
    /// compactions, snapshot references, purge's rewrites) are never refused: they are
    /// small and they are how space is freed.
    pub fn max_log_bytes(mut self, bytes: u64) -> EngineConfig {
        self.max_log_bytes = bytes;
        self
    }

    /// How many purged segment files are kept to become new segments (default 2; 0:
    /// purge deletes them). A sync of frames written over blocks already on disk writes
    /// data only, where a sync after an append also commits the file's new length to the
    /// file system's journal (on ext4 with small writes, about two thirds of the cost).
    /// Kept files take up to this many segments of disk beside the log (the size limit
    /// counts the live segments' frames only).
    pub fn recycle_segments(mut self, files: usize) -> EngineConfig {
        self.recycle_segments = files;
        self
    }

    /// How many purged segment files are kept for reuse.
    pub fn get_recycle_segments(&self) -> usize {
        self.recycle_segments
    }

    /// Whether [`LogEngine::open`](crate::LogEngine::open) fills the kept files up to
    /// [`recycle_segments`](EngineConfig::recycle_segments) with zero-written files of
    /// a segment's size (default: no). The segment an open starts is then one of
    /// them, so a new log's first segments are written over blocks already on disk as
    /// well, instead of only once purge has freed files. It costs writing (and
    /// syncing) up to that many segments of zeros at open, and that much disk; a file
    /// is prefilled only while five segments' worth of disk is free, so that the
    /// files never take the room the log needs. Like raft-engine's
    /// `prefill-for-recycle`.
    pub fn prefill_segments(mut self, prefill: bool) -> EngineConfig {
        self.prefill_segments = prefill;
        self
    }

    /// Whether open fills the kept files up with zero-written ones.
    pub fn get_prefill_segments(&self) -> bool {
        self.prefill_segments
    }

    /// The size limit of the log in bytes (0: none).
    pub fn get_max_log_bytes(&self) -> u64 {
        self.max_log_bytes
    }

    /// The rewrite threshold in bytes.
    pub fn get_rewrite_threshold(&self) -> u64 {
        self.rewrite_threshold
    }

    /// The engine directory.
    pub fn get_dir(&self) -> &Path {
        &self.dir
    }

    /// The segment size in bytes.
    pub fn get_segment_size(&self) -> u64 {
        self.segment_size
    }

    /// The entry cache budget in bytes.
    pub fn get_cache_capacity(&self) -> usize {
        self.cache_capacity
    }

    /// The purge lag in segments.
    pub fn get_purge_lag_segments(&self) -> u64 {
        self.purge_lag_segments
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first bad setting.
    pub fn validate(&self) -> Result<()> {
        if self.segment_size < 4096 {
            return Err(Error::InvalidConfig {
                field: "segment_size",
                reason: "must be at least 4 KiB",
            });
        }
        if self.segment_size > u64::from(u32::MAX) {
            return Err(Error::InvalidConfig {
                field: "segment_size",
                reason: "must be below 4 GiB",
            });
        }
        if self.max_log_bytes != 0 && self.max_log_bytes < 2 * self.segment_size {
            return Err(Error::InvalidConfig {
                field: "max_log_bytes",
                reason: "must be 0 (no limit) or at least two segments",
            });
        }
        if self.purge_lag_segments == 0 {
            return Err(Error::InvalidConfig {
                field: "purge_lag_segments",
                reason: "must be at least 1",
            });
        }
        Ok(())
    }
}
