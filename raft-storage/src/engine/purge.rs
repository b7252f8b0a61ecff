//! Purge: deleting segments no group needs.

use super::LogEngine;
#[cfg(feature = "wal")]
use crate::batch::{LogBatch, Op};
use crate::error::Result;
#[cfg(feature = "wal")]
use crate::stats::add;
use crate::GroupId;

impl LogEngine {
    /// Deletes every segment no group needs any more, and returns the groups that hold purge
    /// back: their oldest live entry sits more than the configured lag behind the active
    /// segment, so the caller should compact them (or snapshot and compact).
    ///
    /// Hard state, conf state, compaction and snapshot records that alone pin an old segment
    /// are rewritten forward first (one synced checkpoint record per such group), so an idle
    /// group never pins a segment forever. The in-memory engine has nothing to purge.
    ///
    /// # Errors
    /// [`Error::Poisoned`](crate::Error::Poisoned), [`Error::Io`](crate::Error::Io).
    pub fn purge_expired(&self) -> Result<Vec<GroupId>> {
        self.check_poisoned()?;
        #[cfg(feature = "wal")]
        if let Some(wal) = &self.inner.wal {
            return self.purge_wal(wal);
        }
        Ok(Vec::new())
    }

    #[cfg(feature = "wal")]
    fn purge_wal(&self, wal: &crate::wal::Wal) -> Result<Vec<GroupId>> {
        let lag = self.lag_segments();
        // Rewrite forward, under the write lock so the checkpoints are current.
        let (active, lagging, position) = {
            let mut state = self.inner.write.lock();
            let active = state.active.as_ref().map_or(0, |a| a.id);
            let groups = self.inner.groups.read();
            let mut oldest_entry = active;
            let mut lagging = Vec::new();
            for (&id, cell) in groups.iter() {
                if let Some(pin) = cell.read().entry_pin() {
                    oldest_entry = oldest_entry.min(pin);
                    if u64::from(pin) + lag < u64::from(active) {
                        lagging.push(id);
                    }
                }
            }
            let mut batch = LogBatch::new();
            for (&id, cell) in groups.iter() {
                let g = cell.read();
                if g.meta_pin().is_some_and(|pin| pin < oldest_entry) && !g.is_empty() {
                    batch.push_internal(Op::Checkpoint(id, Box::new(g.checkpoint())));
                }
            }
            drop(groups);
            if !batch.is_empty() {
                add(
                    &self.inner.stats.rewritten_groups,
                    batch.group_count() as u64,
                );
                self.write_locked(&mut state, &batch)?;
            }
            lagging.sort_unstable();
            (active, lagging, state.written)
        };
        // The checkpoints must be durable before the records they replace disappear.
        self.wait_durable(position)?;
        let bound = {
            let groups = self.inner.groups.read();
            groups
                .values()
                .map(|cell| cell.read().pin())
                .filter(|&pin| pin != 0)
                .fold(active, u32::min)
        };
        let purged = wal.purge_below(bound)?;
        if purged > 0 {
            add(&self.inner.stats.purged_segments, purged);
            tracing::debug!(purged, bound, "purged log segments");
        }
        Ok(lagging)
    }

    #[cfg(feature = "wal")]
    fn lag_segments(&self) -> u64 {
        self.inner.purge_lag
    }
}
