//! Durability: group-committed `fdatasync`.

#[cfg(any(test, feature = "failpoints"))]
use std::sync::atomic::Ordering;
#[cfg(feature = "wal")]
use std::sync::Arc;
use std::time::Instant;

use super::LogEngine;
use crate::error::{Error, Result};
use crate::stats::add;

impl LogEngine {
    /// Blocks until every byte below `position` is durable, syncing if nobody else is.
    pub(crate) fn wait_durable(&self, position: u64) -> Result<()> {
        let mut sync = self.inner.sync.lock();
        for _ in 0..u32::MAX {
            self.check_poisoned()?;
            if sync.synced >= position {
                return Ok(());
            }
            if sync.in_progress {
                self.inner.sync_done.wait(&mut sync);
                continue;
            }
            sync.in_progress = true;
            drop(sync);
            let outcome = self.sync_once();
            sync = self.inner.sync.lock();
            sync.in_progress = false;
            match outcome {
                Ok(target) => {
                    sync.synced = sync.synced.max(target);
                    let durable = sync.synced;
                    let ready: Vec<_> = {
                        let (ready, waiting) = std::mem::take(&mut sync.deferred_deletes)
                            .into_iter()
                            .partition(|(at, _)| *at <= durable);
                        sync.deferred_deletes = waiting;
                        ready
                    };
                    for (_, path) in ready {
                        if let Err(error) = std::fs::remove_file(&path) {
                            tracing::warn!(path = %path.display(), %error, "cannot delete old snapshot file");
                        }
                    }
                }
                Err(error) => {
                    self.poison();
                    self.inner.sync_done.notify_all();
                    return Err(error);
                }
            }
            self.inner.sync_done.notify_all();
        }
        Err(Error::Poisoned)
    }

    /// One `fdatasync` of the active segment; returns the log position it made durable.
    fn sync_once(&self) -> Result<u64> {
        let (target, groups, batches) = {
            let mut state = self.inner.write.lock();
            let taken = (
                state.written,
                state.groups_since_sync,
                state.batches_since_sync,
            );
            state.groups_since_sync = 0;
            state.batches_since_sync = 0;
            #[cfg(feature = "wal")]
            self.flush_pending(&mut state)?;
            #[cfg(feature = "wal")]
            let file = state.active.as_ref().map(|active| Arc::clone(&active.file));
            drop(state);
            #[cfg(any(test, feature = "failpoints"))]
            if self.inner.fail_next_sync.swap(false, Ordering::AcqRel) {
                return Err(Error::Io(std::io::Error::other(
                    "injected fdatasync failure",
                )));
            }
            #[cfg(any(test, feature = "failpoints"))]
            {
                let held_since = Instant::now();
                while self.inner.hold_syncs.load(Ordering::Acquire)
                    && held_since.elapsed() < std::time::Duration::from_secs(60)
                {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            let started = Instant::now();
            #[cfg(feature = "wal")]
            if let Some(file) = file {
                file.sync_data()?;
            }
            self.inner.stats.record_sync(started.elapsed());
            taken
        };
        add(&self.inner.stats.groups_synced, groups);
        add(&self.inner.stats.batches_synced, batches);
        Ok(target)
    }
}
