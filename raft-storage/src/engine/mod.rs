//! [`LogEngine`]: the shared log of every group of a node.

mod purge;
mod quota;
pub use quota::{LogUsage, NEAR_FULL_DIVISOR};
mod snapshot;
mod sync;
mod write;
pub use write::Deferred;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};
use raft::eraftpb::Snapshot;

#[cfg(feature = "wal")]
use crate::config::EngineConfig;
use crate::error::{Error, Result};
use crate::group::GroupState;
use crate::stats::{Counters, EngineStats};
use crate::storage::GroupStorage;
use crate::GroupId;

pub(crate) type GroupCell = Arc<RwLock<GroupState>>;

/// State owned by the write lock: the encode buffer and the active segment.
#[derive(Debug, Default)]
pub(crate) struct WriteState {
    /// Encoded frames not written to the file yet (write combining).
    #[cfg_attr(not(feature = "wal"), allow(dead_code))]
    buf: Vec<u8>,
    entry_offsets: Vec<u32>,
    spans: Vec<crate::group::IndexEntry>,
    /// (first, last) per group while validating a batch.
    shadow: HashMap<GroupId, (u64, u64)>,
    #[cfg(feature = "wal")]
    active: Option<crate::wal::ActiveSegment>,
    /// Bytes written since open: the log position of the last write.
    written: u64,
    /// Groups and batches written since the last sync (for the stats).
    groups_since_sync: u64,
    batches_since_sync: u64,
}

/// Progress of durability, owned by the sync lock.
#[derive(Debug, Default)]
pub(crate) struct SyncState {
    /// Every byte below this log position is durable.
    synced: u64,
    in_progress: bool,
    /// Snapshot files to delete once the log position is durable.
    deferred_deletes: Vec<(u64, std::path::PathBuf)>,
}

/// Entry cache bookkeeping: a budget and the order entries were written in.
#[derive(Debug, Default)]
pub(crate) struct CacheBudget {
    capacity: usize,
    used: usize,
    /// (group, last index appended, log position after its frame), in log order.
    order: VecDeque<(GroupId, u64, u64)>,
    /// Queue length that triggers the next cleanup of stale marks.
    cleanup_at: usize,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub groups: RwLock<HashMap<GroupId, GroupCell>>,
    pub write: Mutex<WriteState>,
    pub sync: Mutex<SyncState>,
    pub sync_done: Condvar,
    pub poisoned: AtomicBool,
    /// Log position up to which frames are in the file (not only in the pending buffer).
    pub flushed: std::sync::atomic::AtomicU64,
    /// Set when the cache is over budget or its queue long: only then does eviction lock.
    pub cache_pressure: AtomicBool,
    pub stats: Counters,
    pub cache: Mutex<CacheBudget>,
    pub snapshot_requests: Mutex<HashMap<GroupId, u64>>,
    /// Saved snapshots of the in-memory engine.
    pub memory_snapshots: Mutex<HashMap<GroupId, Snapshot>>,
    #[cfg(feature = "wal")]
    pub wal: Option<crate::wal::Wal>,
    /// Held (flock) while the engine lives, so one directory has one engine.
    #[cfg(feature = "wal")]
    pub _lock: Option<std::fs::File>,
    #[cfg(any(test, feature = "failpoints"))]
    pub fail_next_sync: AtomicBool,
    /// While set, every `fdatasync` waits before it runs (a stalled disk).
    #[cfg(any(test, feature = "failpoints"))]
    pub hold_syncs: AtomicBool,
    #[cfg_attr(not(feature = "wal"), allow(dead_code))]
    pub purge: PurgePolicy,
    /// Most bytes the live segments may hold (0: no limit).
    #[cfg_attr(not(feature = "wal"), allow(dead_code))]
    pub max_log_bytes: u64,
}

/// When purge reports or rewrites a lagging group.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "wal"), allow(dead_code))]
pub(crate) struct PurgePolicy {
    pub lag_segments: u64,
    pub rewrite_threshold: u64,
}

/// The log engine of a node: one write-ahead log shared by every raft group.
///
/// Cheap to clone (an `Arc` inside); `Send + Sync`. Writes come as [`LogBatch`]es; reads go
/// through per-group [`GroupStorage`] handles implementing `raft::Storage`.
///
/// [`LogBatch`]: crate::LogBatch
#[derive(Debug, Clone)]
pub struct LogEngine {
    pub(crate) inner: Arc<Inner>,
}

impl LogEngine {
    fn with_parts(
        groups: HashMap<GroupId, GroupState>,
        capacity: usize,
        purge: PurgePolicy,
        max_log_bytes: u64,
        #[cfg(feature = "wal")] wal: Option<(crate::wal::Wal, std::fs::File)>,
    ) -> LogEngine {
        #[cfg(feature = "wal")]
        let (wal, lock) = match wal {
            Some((wal, lock)) => (Some(wal), Some(lock)),
            None => (None, None),
        };
        let groups = groups
            .into_iter()
            .map(|(id, state)| (id, Arc::new(RwLock::new(state))))
            .collect();
        LogEngine {
            inner: Arc::new(Inner {
                groups: RwLock::new(groups),
                write: Mutex::new(WriteState::default()),
                sync: Mutex::new(SyncState::default()),
                sync_done: Condvar::new(),
                poisoned: AtomicBool::new(false),
                flushed: std::sync::atomic::AtomicU64::new(0),
                cache_pressure: AtomicBool::new(false),
                stats: Counters::default(),
                cache: Mutex::new(CacheBudget {
                    capacity,
                    cleanup_at: write::MIN_CLEANUP,
                    ..CacheBudget::default()
                }),
                snapshot_requests: Mutex::new(HashMap::new()),
                memory_snapshots: Mutex::new(HashMap::new()),
                #[cfg(feature = "wal")]
                wal,
                #[cfg(feature = "wal")]
                _lock: lock,
                #[cfg(any(test, feature = "failpoints"))]
                fail_next_sync: AtomicBool::new(false),
                #[cfg(any(test, feature = "failpoints"))]
                hold_syncs: AtomicBool::new(false),
                purge,
                max_log_bytes,
            }),
        }
    }

    /// An engine without files: the same API, nothing survives the process. Entries are never
    /// evicted from memory.
    pub fn in_memory() -> LogEngine {
        LogEngine::with_parts(
            HashMap::new(),
            usize::MAX,
            PurgePolicy {
                lag_segments: crate::config::DEFAULT_PURGE_LAG_SEGMENTS,
                rewrite_threshold: 0,
            },
            0,
            #[cfg(feature = "wal")]
            None,
        )
    }

    /// Opens (creating if needed) the engine in `config`'s directory and recovers every group.
    ///
    /// A torn tail of the last segment is cut at the first bad frame; everything before it is
    /// kept. New writes go to a fresh segment.
    ///
    /// # Errors
    /// [`Error::Corruption`] naming the file and offset if a sealed segment is damaged;
    /// [`Error::InvalidConfig`]; [`Error::Io`].
    #[cfg(feature = "wal")]
    pub fn open(config: EngineConfig) -> Result<LogEngine> {
        use crate::stats::add;
        config.validate()?;
        let dir = config.get_dir();
        std::fs::create_dir_all(dir)?;
        let lock_path = dir.join("LOCK");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        fs2::FileExt::try_lock_exclusive(&lock).map_err(|_| Error::Locked { path: lock_path })?;
        let recovered = crate::wal::recovery::recover(dir)?;
        let wal = crate::wal::Wal::new(
            dir,
            config.get_segment_size(),
            config.get_recycle_segments(),
            &recovered.segments,
        )?;
        let next = recovered
            .segments
            .last()
            .map_or(Some(1), |&(last, _)| last.checked_add(1));
        let next = next.ok_or(Error::TooLarge { size: usize::MAX })?;
        let prefilled = if config.get_prefill_segments() {
            wal.prefill()
        } else {
            0
        };
        let active = wal.create(next, recovered.last_segment_len)?;
        let started_on_kept_file = u64::from(active.is_recycled());
        let mut groups = recovered.groups;
        let missing = snapshot::reconcile_snapshot_files(dir, &mut groups)?;
        let engine = LogEngine::with_parts(
            groups,
            config.get_cache_capacity(),
            PurgePolicy {
                lag_segments: config.get_purge_lag_segments(),
                rewrite_threshold: config.get_rewrite_threshold(),
            },
            config.get_max_log_bytes(),
            Some((wal, lock)),
        );
        {
            let mut state = engine.inner.write.lock();
            state.active = Some(active);
            engine.refresh_usage(&state);
        }
        let stats = &engine.inner.stats;
        add(&stats.recovered_bytes, recovered.bytes);
        add(&stats.recovery_tail_cuts, recovered.tail_cuts);
        add(&stats.recovery_bytes_cut, recovered.tail_bytes_cut);
        add(&stats.missing_snapshots, missing);
        add(&stats.prefilled_segments, prefilled);
        add(&stats.recycled_segments, started_on_kept_file);
        tracing::info!(
            dir = %dir.display(),
            groups = engine.inner.groups.read().len(),
            bytes = recovered.bytes,
            tail_cuts = recovered.tail_cuts,
            "log engine recovered"
        );
        Ok(engine)
    }

    /// A handle implementing `raft::Storage` for `group` (an empty group if unknown).
    pub fn group(&self, id: GroupId) -> GroupStorage {
        GroupStorage::new(Arc::clone(&self.inner), id)
    }

    /// Groups that hold any state, ascending.
    pub fn group_ids(&self) -> Vec<GroupId> {
        let groups = self.inner.groups.read();
        let mut ids: Vec<GroupId> = groups
            .iter()
            .filter(|(_, cell)| !cell.read().is_empty())
            .map(|(&id, _)| id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The engine's counters.
    pub fn stats(&self) -> EngineStats {
        self.inner.stats.snapshot()
    }

    /// Number of live segment files (0 for the in-memory engine).
    pub fn segment_count(&self) -> usize {
        #[cfg(feature = "wal")]
        if let Some(wal) = &self.inner.wal {
            return wal.segment_ids().len();
        }
        0
    }

    /// True when the engine keeps its log in files (a sync makes writes durable); false
    /// for [`in_memory`](Self::in_memory), whose writes are never durable and never wait.
    pub fn is_persistent(&self) -> bool {
        !self.is_memory()
    }

    /// How long this engine's recent `fdatasync`s took: a moving average (each sync
    /// weighs an eighth), zero before the first. A writer can decide from it whether
    /// to wait for its sync or to go on while another thread waits.
    pub fn recent_sync_time(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.inner.stats.recent_sync_nanos.load(Ordering::Relaxed))
    }

    /// True once a failed sync or write poisoned the engine.
    pub fn is_poisoned(&self) -> bool {
        self.inner.poisoned.load(Ordering::Acquire)
    }

    /// Makes the next `fdatasync` fail as if the disk had, to test what follows.
    #[cfg(feature = "failpoints")]
    pub fn inject_sync_failure(&self) {
        self.inner.fail_next_sync.store(true, Ordering::Release);
    }

    /// While `held`, every `fdatasync` waits (for at most a minute) before it runs, as
    /// on a stalled disk: to test what must not wait for a sync, and what must.
    #[cfg(feature = "failpoints")]
    pub fn hold_syncs(&self, held: bool) {
        self.inner.hold_syncs.store(held, Ordering::Release);
    }

    /// Approximate memory held by the in-memory index and cache of one group (0 if unknown).
    pub fn group_memory_size(&self, id: GroupId) -> usize {
        let cell = self.inner.groups.read().get(&id).cloned();
        cell.map_or(0, |cell| {
            cell.read().memory_size()
                + std::mem::size_of::<(GroupId, GroupCell)>()
                + 2 * std::mem::size_of::<usize>()
        })
    }

    pub(crate) fn check_poisoned(&self) -> Result<()> {
        if self.is_poisoned() {
            return Err(Error::Poisoned);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "engine_test.rs"]
mod engine_test;
