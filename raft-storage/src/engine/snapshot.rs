//! Saved snapshots: files beside the log (or a map for the in-memory engine).

#[cfg(feature = "wal")]
use std::collections::HashMap;
#[cfg(feature = "wal")]
use std::path::Path;

use raft::eraftpb::Snapshot;

use super::LogEngine;
use crate::batch::{LogBatch, Op};
use crate::error::Result;
#[cfg(feature = "wal")]
use crate::group::GroupState;
use crate::GroupId;

impl LogEngine {
    /// Stores a raft snapshot of `group` (metadata and data) so that
    /// [`GroupStorage::snapshot`](crate::GroupStorage) serves it from now on. With the `wal`
    /// engine it goes to a file beside the log, written atomically (temp file, fsync, rename,
    /// directory fsync) and referenced by a synced log record; the group's previous snapshot
    /// file is deleted. Does not change the group's log (that is
    /// [`LogBatch::apply_snapshot`]).
    ///
    /// # Errors
    /// [`Error::Poisoned`](crate::Error::Poisoned), [`Error::Io`](crate::Error::Io).
    pub fn save_snapshot(&self, group: GroupId, snapshot: &Snapshot) -> Result<()> {
        self.check_poisoned()?;
        let meta = snapshot.get_metadata();
        #[cfg(feature = "wal")]
        if let Some(wal) = &self.inner.wal {
            crate::wal::snapshot_file::write_snapshot(wal.dir(), group, snapshot)?;
        }
        if self.is_memory() {
            self.inner
                .memory_snapshots
                .lock()
                .insert(group, snapshot.clone());
        }
        let previous = self
            .inner
            .groups
            .read()
            .get(&group)
            .and_then(|cell| cell.read().snapshot);
        let mut batch = LogBatch::new();
        batch.push_internal(Op::SnapshotRef(group, meta.index, meta.term));
        self.write(&mut batch, true)?;
        if let Some((index, term)) = previous.filter(|&old| old != (meta.index, meta.term)) {
            self.delete_snapshot_file(group, index, term);
        }
        let mut requests = self.inner.snapshot_requests.lock();
        if requests
            .get(&group)
            .is_some_and(|&asked| asked <= meta.index)
        {
            requests.remove(&group);
        }
        Ok(())
    }

    /// Groups whose [`GroupStorage::snapshot`](crate::GroupStorage) was asked for a snapshot
    /// the engine does not have (it answered `SnapshotTemporarilyUnavailable`), each with the
    /// highest index asked for. Taking them clears the list; the scheduler answers with
    /// [`save_snapshot`](LogEngine::save_snapshot).
    pub fn take_snapshot_requests(&self) -> Vec<(GroupId, u64)> {
        let mut requests: Vec<(GroupId, u64)> =
            self.inner.snapshot_requests.lock().drain().collect();
        requests.sort_unstable();
        requests
    }

    pub(crate) fn record_snapshot_request(&self, group: GroupId, index: u64) {
        let mut requests = self.inner.snapshot_requests.lock();
        let asked = requests.entry(group).or_insert(index);
        *asked = (*asked).max(index);
    }

    pub(crate) fn is_memory(&self) -> bool {
        #[cfg(feature = "wal")]
        {
            self.inner.wal.is_none()
        }
        #[cfg(not(feature = "wal"))]
        {
            true
        }
    }

    /// Loads the saved snapshot `(index, term)` of `group`.
    pub(crate) fn load_snapshot(
        &self,
        group: GroupId,
        index: u64,
        term: u64,
    ) -> Result<Option<Snapshot>> {
        #[cfg(feature = "wal")]
        if let Some(wal) = &self.inner.wal {
            let path = crate::wal::snapshot_file::snapshot_path(wal.dir(), group, index, term);
            return crate::wal::snapshot_file::read_snapshot(&path).map(Some);
        }
        let snapshots = self.inner.memory_snapshots.lock();
        let saved = snapshots
            .get(&group)
            .filter(|s| s.get_metadata().index == index && s.get_metadata().term == term);
        Ok(saved.cloned())
    }

    fn delete_snapshot_file(&self, group: GroupId, index: u64, term: u64) {
        #[cfg(feature = "wal")]
        if let Some(wal) = &self.inner.wal {
            let path = crate::wal::snapshot_file::snapshot_path(wal.dir(), group, index, term);
            if let Err(error) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), %error, "cannot delete old snapshot file");
            }
        }
        let _ = (group, index, term);
    }

    /// The group was removed at log `position`: drop its snapshot once that is durable.
    pub(crate) fn forget_snapshot(&self, group: GroupId, position: u64) {
        self.inner.memory_snapshots.lock().remove(&group);
        #[cfg(feature = "wal")]
        if let Some(wal) = &self.inner.wal {
            let Ok((found, _)) = crate::wal::snapshot_file::list_snapshots(wal.dir()) else {
                return;
            };
            let mut sync = self.inner.sync.lock();
            for (_, _, _, path) in found.into_iter().filter(|(g, ..)| *g == group) {
                sync.deferred_deletes.push((position, path));
            }
        }
        let _ = position;
    }
}

/// After recovery: deletes temp files and snapshot files no group references, and drops
/// references to files that are missing. Returns how many references were dropped.
#[cfg(feature = "wal")]
pub(crate) fn reconcile_snapshot_files(
    dir: &Path,
    groups: &mut HashMap<GroupId, GroupState>,
) -> Result<u64> {
    let (found, temps) = crate::wal::snapshot_file::list_snapshots(dir)?;
    for path in temps {
        std::fs::remove_file(path)?;
    }
    let mut present: HashMap<GroupId, Vec<(u64, u64)>> = HashMap::new();
    for (group, index, term, path) in found {
        let referenced = groups.get(&group).and_then(|g| g.snapshot) == Some((index, term));
        if referenced {
            present.entry(group).or_default().push((index, term));
        } else {
            std::fs::remove_file(path)?;
        }
    }
    let mut missing = 0;
    for (&group, state) in groups.iter_mut() {
        if let Some(reference) = state.snapshot {
            if !present
                .get(&group)
                .is_some_and(|files| files.contains(&reference))
            {
                tracing::warn!(
                    group,
                    index = reference.0,
                    "saved snapshot file is missing; will ask for a new one"
                );
                state.snapshot = None;
                missing += 1;
            }
        }
    }
    Ok(missing)
}
