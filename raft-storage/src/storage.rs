//! [`GroupStorage`]: one group's view of the engine, implementing `raft::Storage`.

use std::sync::Arc;

use parking_lot::Mutex;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};

use crate::engine::{GroupCell, Inner, LogEngine};
use crate::error::Error;
use crate::group::{GroupState, IndexEntry};
use crate::GroupId;

/// A cheap handle on one group of a [`LogEngine`], implementing `raft::Storage` with the
/// semantics of raft-rs's `MemStorage`. Clone it freely; every clone sees the same group.
///
/// Differences from `MemStorage`, all in the direction of answering more:
/// `term(first_index - 1)` is known after a compaction; `entries` with `high > last_index + 1`
/// returns `Unavailable` instead of panicking; `snapshot` serves the snapshot saved with
/// [`LogEngine::save_snapshot`] (see [`raft::Storage::snapshot`] below).
#[derive(Debug)]
pub struct GroupStorage {
    inner: Arc<Inner>,
    id: GroupId,
    /// The group's cell once it exists. Raft calls the storage many times per step, and
    /// the engine's map of groups sits behind one lock that every worker takes: the
    /// handle keeps the cell instead (this lock is only ever taken by the handle's
    /// owner). A removed group's cell is marked, and the handle looks the group up again.
    cached: Mutex<Option<GroupCell>>,
}

impl Clone for GroupStorage {
    fn clone(&self) -> GroupStorage {
        GroupStorage {
            inner: Arc::clone(&self.inner),
            id: self.id,
            cached: Mutex::new(self.cached.lock().clone()),
        }
    }
}

fn store_error(error: Error) -> raft::Error {
    match error {
        Error::Io(io) => raft::Error::Io(io),
        other => raft::Error::Store(StorageError::Other(Box::new(other))),
    }
}

impl GroupStorage {
    pub(crate) fn new(inner: Arc<Inner>, id: GroupId) -> GroupStorage {
        GroupStorage {
            inner,
            id,
            cached: Mutex::new(None),
        }
    }

    fn cell(&self) -> Option<GroupCell> {
        let mut cached = self.cached.lock();
        if let Some(cell) = cached.as_ref() {
            if !cell.read().removed {
                return Some(Arc::clone(cell));
            }
        }
        *cached = self.lookup();
        cached.clone()
    }

    fn lookup(&self) -> Option<GroupCell> {
        self.inner.groups.read().get(&self.id).cloned()
    }

    fn with_state<T>(&self, read: impl FnOnce(&GroupState) -> T) -> T {
        let mut cached = self.cached.lock();
        if let Some(cell) = cached.as_ref() {
            let state = cell.read();
            if !state.removed {
                return read(&state);
            }
        }
        *cached = self.lookup();
        match cached.as_ref() {
            Some(cell) => read(&cell.read()),
            None => read(&GroupState::default()),
        }
    }

    fn engine(&self) -> LogEngine {
        LogEngine {
            inner: Arc::clone(&self.inner),
        }
    }

    /// The group this handle reads.
    pub fn group_id(&self) -> GroupId {
        self.id
    }

    /// The group's hard state (default if the group is unknown).
    pub fn hard_state(&self) -> HardState {
        self.with_state(|g| g.hard_state.clone())
    }

    /// The group's conf state (default if the group is unknown).
    pub fn conf_state(&self) -> ConfState {
        self.with_state(|g| g.conf_state.clone())
    }

    /// The raft index the stored conf state reflects: as given to
    /// [`crate::LogBatch::set_conf_state_at`], the snapshot's index after
    /// [`crate::LogBatch::apply_snapshot`], 0 otherwise.
    pub fn conf_state_index(&self) -> u64 {
        self.with_state(|g| g.conf_index)
    }

    /// Index of the first entry held (`last_index + 1` if the log is empty).
    pub fn first_index(&self) -> u64 {
        self.with_state(|g| g.first_index)
    }

    /// Index of the last entry held (`first_index - 1` if the log is empty).
    pub fn last_index(&self) -> u64 {
        self.with_state(|g| g.last_index())
    }

    /// Index and term of the snapshot saved for this group, if any.
    pub fn saved_snapshot(&self) -> Option<(u64, u64)> {
        self.with_state(|g| g.snapshot)
    }

    /// Gives back the room the group's in-memory log keeps beyond the entries it holds,
    /// when that is most of it. A compaction keeps room for as many entries as the
    /// group held since the compaction before (a busy group fills it again); a caller
    /// that knows the group went idle, such as a scheduler putting it to sleep, calls
    /// this so idle groups stay small.
    pub fn release_memory(&self) {
        if let Some(cell) = self.cell() {
            cell.write().release_memory();
        }
    }
}

impl raft::Storage for GroupStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(self.with_state(|g| RaftState::new(g.hard_state.clone(), g.conf_state.clone())))
    }

    /// Entries `[low, high)`, at least one if any, at most `max_size` bytes beyond the first.
    ///
    /// # Errors
    /// `Compacted` if `low < first_index`; `Unavailable` if `high > last_index + 1`; an I/O
    /// or corruption error reading an old entry back from its segment.
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let max_size = max_size.into().unwrap_or(raft::NO_LIMIT);
        let Some(cell) = self.cell() else {
            return if low < 1 {
                Err(raft::Error::Store(StorageError::Compacted))
            } else if high > 1 {
                Err(raft::Error::Store(StorageError::Unavailable))
            } else {
                Ok(Vec::new())
            };
        };
        let mut out = Vec::new();
        let mut from_disk: Vec<IndexEntry> = Vec::new();
        {
            let g = cell.read();
            if low < g.first_index {
                return Err(raft::Error::Store(StorageError::Compacted));
            }
            if high > g.last_index() + 1 {
                return Err(raft::Error::Store(StorageError::Unavailable));
            }
            if low >= high {
                return Ok(out);
            }
            // How many fit: the first always, then while the total stays within max_size.
            let mut count = 0u64;
            let mut size = 0u64;
            for idx in low..high {
                let entry = &g.index[(idx - g.first_index) as usize];
                size += u64::from(entry.location.len);
                if count > 0 && size > max_size {
                    break;
                }
                count += 1;
            }
            let end = low + count;
            let cache_start = g.cache_start();
            let disk_end = end.min(cache_start).max(low);
            out.reserve(count as usize);
            for idx in low..disk_end {
                from_disk.push(g.index[(idx - g.first_index) as usize]);
            }
            if from_disk.is_empty() {
                for idx in low.max(cache_start)..end {
                    out.push(g.cache[(idx - cache_start) as usize].clone());
                }
                return Ok(out);
            }
            // Read under the group's read lock: while it is held the group cannot compact,
            // so the segments holding these entries stay pinned and purge leaves them alone.
            self.read_from_disk(&from_disk, &mut out)?;
            for idx in low.max(cache_start)..end {
                out.push(g.cache[(idx - cache_start) as usize].clone());
            }
            drop(g);
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.with_state(|g| g.term(idx)).map_err(raft::Error::Store)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(GroupStorage::first_index(self))
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(GroupStorage::last_index(self))
    }

    /// The snapshot saved with [`LogEngine::save_snapshot`] if its index is at least
    /// `request_index` and at least `first_index - 1` (an older one would not let the follower
    /// catch up from the log). A group whose log was never compacted (`first_index == 1`) and
    /// has no saved snapshot gets a data-less snapshot at index 0 with the conf state, like
    /// `MemStorage`, if that satisfies `request_index`. Otherwise the request is recorded for
    /// [`LogEngine::take_snapshot_requests`] and the answer is `SnapshotTemporarilyUnavailable`.
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let (saved, first_index, base, conf_state) =
            self.with_state(|g| (g.snapshot, g.first_index, g.base, g.conf_state.clone()));
        let needed = request_index.max(first_index - 1);
        if let Some((index, term)) = saved.filter(|&(index, _)| index >= needed) {
            match self.engine().load_snapshot(self.id, index, term) {
                Ok(Some(snapshot)) => return Ok(snapshot),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(group = self.id, %error, "cannot read saved snapshot");
                }
            }
        } else if saved.is_none() && first_index == 1 && base.0 >= request_index {
            let mut snapshot = Snapshot::default();
            let meta = snapshot.mut_metadata();
            meta.index = base.0;
            meta.term = base.1;
            meta.set_conf_state(conf_state);
            return Ok(snapshot);
        }
        self.engine().record_snapshot_request(self.id, needed);
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable,
        ))
    }
}

impl GroupStorage {
    /// Entries `[low, high)` without a size limit, with the crate's error type.
    #[cfg(feature = "wal")]
    pub(crate) fn read_range(&self, low: u64, high: u64) -> crate::Result<Vec<Entry>> {
        use raft::Storage;
        let unavailable = Error::EntriesUnavailable {
            group: self.id,
            low,
            high,
        };
        self.entries(low, high, None, GetEntriesContext::empty(false))
            .map_err(|error| match error {
                raft::Error::Io(io) => Error::Io(io),
                raft::Error::Store(StorageError::Other(other)) => match other.downcast::<Error>() {
                    Ok(original) => *original,
                    Err(_) => unavailable,
                },
                _ => unavailable,
            })
    }

    #[cfg(feature = "wal")]
    fn read_from_disk(&self, locations: &[IndexEntry], out: &mut Vec<Entry>) -> raft::Result<()> {
        let Some(wal) = &self.inner.wal else {
            return Err(raft::Error::Store(StorageError::Unavailable));
        };
        wal.read_entries(locations, out).map_err(store_error)?;
        crate::stats::add(
            &self.inner.stats.entries_read_from_disk,
            locations.len() as u64,
        );
        Ok(())
    }

    #[cfg(not(feature = "wal"))]
    fn read_from_disk(&self, _locations: &[IndexEntry], _out: &mut Vec<Entry>) -> raft::Result<()> {
        let _ = store_error;
        Err(raft::Error::Store(StorageError::Unavailable))
    }
}
