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
    /// segment and their live entries are too large to rewrite, so the caller should compact
    /// them (or snapshot and compact).
    ///
    /// Near the size limit ([`max_log_bytes`](crate::EngineConfig::max_log_bytes), the last
    /// quarter), every group whose live entries sit in a sealed segment counts as lagging, so
    /// a full log whose active segment cannot move on is still freed.
    ///
    /// So that an idle group never pins a segment forever, purge first rewrites forward (in
    /// one synced batch) the hard state, conf state, compaction and snapshot records that
    /// alone pin an old segment (as one checkpoint record per group), and the live entries of
    /// lagging groups holding at most
    /// [`rewrite_threshold`](crate::EngineConfig::rewrite_threshold) bytes. The in-memory
    /// engine has nothing to purge.
    ///
    /// # Errors
    /// [`Error::Poisoned`](crate::Error::Poisoned), [`Error::Io`](crate::Error::Io), or an
    /// error reading entries to rewrite.
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
        let policy = self.inner.purge;
        // A log near its size limit cannot wait for groups to fall behind: appends are
        // refused, so the active segment may never move on. Every group that pins a
        // sealed segment counts as lagging then, and small live tails move forward.
        // Rewriting is exempt from the limit, so with a limit it gets a budget: up to the
        // pressure line, and past it a small share; groups past the budget are reported
        // for compaction instead.
        let usage = self.usage();
        let lag = if usage.is_under_pressure() {
            0
        } else {
            policy.lag_segments
        };
        let mut budget = usage.rewrite_budget();
        // Rewrite forward under the write lock, so what is rewritten is current.
        let (active, lagging, position) = {
            let mut state = self.inner.write.lock();
            let active = state.active.as_ref().map_or(0, |a| a.id);
            let mut oldest_entry = active;
            let mut lagging = Vec::new();
            let mut rewrite = Vec::new();
            for (&id, cell) in self.inner.groups.read().iter() {
                let g = cell.read();
                let Some(pin) = g.entry_pin() else { continue };
                if u64::from(pin) + lag < u64::from(active) {
                    let live: u64 = g.index.iter().map(|e| u64::from(e.location.len)).sum();
                    if live <= policy.rewrite_threshold && live <= budget {
                        budget -= live;
                        rewrite.push((id, g.first_index, g.last_index()));
                        continue;
                    }
                    lagging.push(id);
                }
                oldest_entry = oldest_entry.min(pin);
            }
            let mut batch = LogBatch::new();
            for &(id, first, last) in &rewrite {
                let storage = self.group(id);
                let entries = storage.read_range(first, last + 1)?;
                batch.append(id, &entries);
            }
            for (&id, cell) in self.inner.groups.read().iter() {
                let g = cell.read();
                if g.meta_pin().is_some_and(|pin| pin < oldest_entry) && !g.is_empty() {
                    batch.push_internal(Op::Checkpoint(id, Box::new(g.checkpoint())));
                }
            }
            if !batch.is_empty() {
                add(
                    &self.inner.stats.rewritten_groups,
                    batch.group_count() as u64,
                );
                self.write_locked(&mut state, &mut batch, false, false)?;
            }
            lagging.sort_unstable();
            (active, lagging, state.written)
        };
        // The rewritten records must be durable before the ones they replace disappear.
        self.wait_durable(position)?;
        self.evict_cache();
        let bound = {
            let groups = self.inner.groups.read();
            groups
                .values()
                .map(|cell| cell.read().pin())
                .filter(|&pin| pin != 0)
                .fold(active, u32::min)
        };
        let purged = wal.purge_below(bound)?;
        self.refresh_usage(&self.inner.write.lock());
        if purged > 0 {
            add(&self.inner.stats.purged_segments, purged);
            tracing::debug!(purged, bound, "purged log segments");
        }
        Ok(lagging)
    }
}
