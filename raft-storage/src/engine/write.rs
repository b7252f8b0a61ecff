//! The write path: validate, encode, one write, apply, group-committed sync.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::RwLock;

use super::{GroupCell, LogEngine, WriteState};
use crate::batch::{LogBatch, Op};
use crate::error::{Error, Result};
use crate::group::{GroupState, IndexEntry, Location};
use crate::stats::add;
use crate::GroupId;

/// A batch written by [`LogEngine::write_deferred`]: readable at once, durable once
/// [`LogEngine::sync_to`] with its `position` has returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deferred {
    /// Bytes the batch took in the log (0 for an empty batch).
    pub bytes: usize,
    /// The log position just past the batch.
    pub position: u64,
}

/// Length of the cache queue below which stale marks are not cleaned up.
pub(crate) const MIN_CLEANUP: usize = 65_536;

impl LogEngine {
    /// Writes the batch (any number of groups) with one `write` call and, if `sync`, at most
    /// one `fdatasync`, merged with concurrent writers (group commit): a writer that arrives
    /// while a sync runs is made durable by the next one, together with everyone else who
    /// arrived meanwhile. Returns the bytes written and clears the batch.
    ///
    /// Entries are readable through [`GroupStorage`](crate::GroupStorage) as soon as they are
    /// written, before the sync returns. An empty batch with `sync` waits until everything
    /// written before is durable.
    ///
    /// # Errors
    /// [`Error::Poisoned`] after any failed write or sync (the batch is kept);
    /// [`Error::QuotaExceeded`] when a batch that appends entries would take the log past
    /// [`max_log_bytes`](crate::EngineConfig::max_log_bytes) (nothing is written, the batch
    /// is kept, the engine stays usable);
    /// [`Error::LogGap`], [`Error::NotContiguous`], [`Error::SnapshotOutOfDate`] for a batch
    /// that contradicts the log (nothing is written, the batch is kept); [`Error::Io`] for the
    /// failure that poisons the engine (what the batch then holds is unspecified).
    pub fn write(&self, batch: &mut LogBatch, sync: bool) -> Result<usize> {
        let written = self.write_frame(batch, !sync)?;
        if sync {
            self.wait_durable(written.position)?;
        }
        batch.clear();
        Ok(written.bytes)
    }

    /// Writes the batch like [`write`](Self::write) with `sync`, but returns without
    /// waiting for the sync: the entries are readable at once, and they are durable once
    /// [`sync_to`](Self::sync_to) with the returned position has returned. This is how a
    /// scheduler keeps stepping its groups while their last writes are synced on another
    /// thread (raft-rs's `advance_append_async`): it must not acknowledge anything of the
    /// batch before then. The frame is handed to the file by that sync (or by a later
    /// write), together with every frame written meanwhile: one `write` call and one
    /// `fdatasync` for all of them. Clears the batch.
    ///
    /// # Errors
    /// As [`write`](Self::write), except that a failed sync is reported by `sync_to`.
    pub fn write_deferred(&self, batch: &mut LogBatch) -> Result<Deferred> {
        let written = self.write_frame(batch, false)?;
        batch.clear();
        Ok(written)
    }

    /// Blocks until everything written before `position` (see
    /// [`write_deferred`](Self::write_deferred)) is durable, syncing if no other caller
    /// is already doing so (group commit).
    ///
    /// # Errors
    /// [`Error::Poisoned`] once a write or sync of this engine failed; [`Error::Io`] for
    /// the sync that failed (the engine is poisoned from then on).
    pub fn sync_to(&self, position: u64) -> Result<()> {
        self.wait_durable(position)
    }

    /// Validates and writes the batch as one frame (handed to the file at once with
    /// `flush`, else left for the next sync); the batch is left to the caller to clear.
    fn write_frame(&self, batch: &mut LogBatch, flush: bool) -> Result<Deferred> {
        if let Err(error) = self.check_poisoned() {
            add(&self.inner.stats.rejected_writes, 1);
            return Err(error);
        }
        let written = {
            let mut state = self.inner.write.lock();
            // Re-checked under the lock: a sync may have failed while we waited for it.
            if let Err(error) = self.check_poisoned() {
                add(&self.inner.stats.rejected_writes, 1);
                return Err(error);
            }
            if batch.is_empty() {
                Deferred {
                    bytes: 0,
                    position: state.written,
                }
            } else {
                if let Err(error) = self.validate(&mut state, batch.ops_mut()) {
                    add(&self.inner.stats.rejected_writes, 1);
                    return Err(error);
                }
                let bytes = match self.write_locked(&mut state, batch, flush, true) {
                    Err(error @ Error::QuotaExceeded { .. }) => {
                        add(&self.inner.stats.rejected_writes, 1);
                        add(&self.inner.stats.quota_rejections, 1);
                        return Err(error);
                    }
                    other => other?,
                };
                Deferred {
                    bytes,
                    position: state.written,
                }
            }
        };
        self.evict_cache();
        Ok(written)
    }

    /// Encodes and applies a validated batch. Caller holds the write lock. With `quota`, a
    /// batch appending entries that would pass the size limit is refused before any write.
    ///
    /// The frame joins the pending buffer. With `flush` it is written at once (one `write`
    /// call, together with frames still pending); otherwise the next sync writes every
    /// pending frame with one call (write combining for group commit). Pending entries stay
    /// in the cache until written, so reads never miss them.
    pub(crate) fn write_locked(
        &self,
        state: &mut WriteState,
        batch: &mut LogBatch,
        #[cfg_attr(not(feature = "wal"), allow(unused_variables))] flush: bool,
        #[cfg_attr(not(feature = "wal"), allow(unused_variables))] quota: bool,
    ) -> Result<usize> {
        let state = &mut *state;
        state.entry_offsets.clear();
        #[cfg_attr(not(feature = "wal"), allow(unused_mut))]
        let mut segment = 0;
        #[cfg_attr(not(feature = "wal"), allow(unused_mut))]
        let mut frame_offset = 0u64;
        #[cfg_attr(not(feature = "wal"), allow(unused_mut))]
        let mut len = 0;
        #[cfg(feature = "wal")]
        if let Some(wal) = &self.inner.wal {
            let frame_start = state.buf.len();
            if let Err(error) =
                crate::codec::encode_batch(batch.ops(), &mut state.buf, &mut state.entry_offsets)
            {
                state.buf.truncate(frame_start);
                return Err(error);
            }
            len = state.buf.len() - frame_start;
            if quota {
                if let Err(error) = self.check_quota(wal, state, batch, len) {
                    state.buf.truncate(frame_start);
                    return Err(error);
                }
            }
            let outcome = self.place_frame(wal, state, frame_start, len, flush);
            match outcome {
                Ok((id, offset)) => (segment, frame_offset) = (id, offset),
                Err(error) => {
                    // The file's content is unknown now: refuse everything from here on.
                    self.poison();
                    return Err(error);
                }
            }
        }
        state.written += len as u64;
        state.groups_since_sync += batch.group_count() as u64;
        state.batches_since_sync += 1;
        add(&self.inner.stats.bytes_written, len as u64);
        add(&self.inner.stats.batches_written, 1);
        self.refresh_usage(state);
        // The entries move into the cache: the batch is cleared after a write anyway.
        self.apply_ops(state, batch.ops_mut(), segment, frame_offset);
        Ok(len)
    }

    /// Finds the frame (the last `len` bytes of the pending buffer, starting at `start`) its
    /// place in the log, rotating the segment first if it does not fit; writes if `flush`.
    /// Returns its segment and offset.
    #[cfg(feature = "wal")]
    fn place_frame(
        &self,
        wal: &crate::wal::Wal,
        state: &mut WriteState,
        start: usize,
        len: usize,
        flush: bool,
    ) -> Result<(u32, u64)> {
        let active = state.active.as_mut().ok_or(Error::Poisoned)?;
        let mut start = start;
        if wal.needs_rotation(active.len + start as u64, len) {
            // Earlier pending frames belong to the old segment.
            if start > 0 {
                let mut earlier: Vec<u8> = state.buf.drain(..start).collect();
                wal.append(active, &mut earlier)?;
                start = 0;
            }
            // Sealing the old segment and creating the next are syncs too (of the old
            // file, the new one and the directory), under the write lock: counted as one.
            let started = std::time::Instant::now();
            wal.rotate(active)?;
            self.inner.stats.record_sync(started.elapsed());
            if active.is_recycled() {
                self.inner
                    .stats
                    .recycled_segments
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        // The frame's CRC binds it to the segment it lands in.
        crate::codec::seal_frame(&mut state.buf[start..start + len], active.id);
        let placed = (active.id, active.len + start as u64);
        if flush {
            wal.append(active, &mut state.buf)?;
            state.buf.clear();
            self.inner
                .flushed
                .store(state.written + len as u64, Ordering::Release);
        }
        Ok(placed)
    }

    /// Writes every pending frame with one `write` call. Caller holds the write lock.
    #[cfg(feature = "wal")]
    pub(crate) fn flush_pending(&self, state: &mut WriteState) -> Result<()> {
        let (Some(wal), Some(active)) = (&self.inner.wal, state.active.as_mut()) else {
            return Ok(());
        };
        if state.buf.is_empty() {
            return Ok(());
        }
        if let Err(error) = wal.append(active, &mut state.buf) {
            self.poison();
            return Err(error.into());
        }
        state.buf.clear();
        self.inner.flushed.store(state.written, Ordering::Release);
        Ok(())
    }

    /// Checks that the batch, applied in order, leaves every log contiguous.
    fn validate(&self, state: &mut WriteState, ops: &mut [Op]) -> Result<()> {
        state.shadow.clear();
        let groups = self.inner.groups.read();
        for at in 0..ops.len() {
            if let Op::Compact(group, index, _) = ops[at] {
                let (first, last) = *state.shadow.entry(group).or_insert_with(|| {
                    groups.get(&group).map_or((1, 0), |cell| {
                        let g = cell.read();
                        (g.first_index, g.last_index())
                    })
                });
                // Clamp, and record the term before the new first index so the record
                // stands alone once older segments are purged.
                let target = index.min(last + 1).max(first);
                let prev_term = term_before(&ops[..at], group, target, &groups);
                ops[at] = Op::Compact(group, target, prev_term);
                state.shadow.insert(group, (target, last));
                continue;
            }
            let op = &mut ops[at];
            let group = op.group();
            let bounds = state.shadow.entry(group).or_insert_with(|| {
                groups.get(&group).map_or((1, 0), |cell| {
                    let g = cell.read();
                    (g.first_index, g.last_index())
                })
            });
            let (first, last) = *bounds;
            match op {
                Op::Append(_, entries) => {
                    for pair in entries.windows(2) {
                        if pair[1].index != pair[0].index + 1 {
                            return Err(Error::NotContiguous {
                                group,
                                index: pair[1].index,
                            });
                        }
                    }
                    let (Some(head), Some(tail)) = (entries.first(), entries.last()) else {
                        continue;
                    };
                    let (head, tail) = (head.index, tail.index);
                    // Entries below the compaction point are dropped here, so the record
                    // never holds them: replay must not depend on the compaction point.
                    let skip = first.saturating_sub(head);
                    if skip >= entries.len() as u64 {
                        entries.clear();
                        continue;
                    }
                    if head + skip > last + 1 {
                        return Err(Error::LogGap {
                            group,
                            index: head,
                            last_index: last,
                        });
                    }
                    entries.drain(..skip as usize);
                    *bounds = (first, tail);
                }
                Op::Compact(..) => {}
                Op::ApplySnapshot(_, meta) => {
                    if first > meta.index {
                        return Err(Error::SnapshotOutOfDate {
                            group,
                            index: meta.index,
                            first_index: first,
                        });
                    }
                    *bounds = (meta.index + 1, meta.index);
                }
                Op::Remove(_) => *bounds = (1, 0),
                Op::HardState(..)
                | Op::ConfState(..)
                | Op::SnapshotRef(..)
                | Op::Checkpoint(..) => {}
            }
        }
        Ok(())
    }

    fn cell(&self, group: GroupId) -> GroupCell {
        if let Some(cell) = self.inner.groups.read().get(&group) {
            return Arc::clone(cell);
        }
        let mut groups = self.inner.groups.write();
        Arc::clone(
            groups
                .entry(group)
                .or_insert_with(|| Arc::new(RwLock::new(GroupState::default()))),
        )
    }

    /// Applies written ops to the in-memory state, in batch order.
    fn apply_ops(&self, state: &mut WriteState, ops: &mut [Op], segment: u32, frame_offset: u64) {
        let mut next_offset = state.entry_offsets.iter();
        let mut cache_delta: isize = 0;
        let mut cache = self.inner.cache.lock();
        for op in ops {
            let group = op.group();
            if let Op::Remove(_) = op {
                if let Some(cell) = self.inner.groups.write().remove(&group) {
                    let mut g = cell.write();
                    cache_delta -= g.cache_bytes as isize;
                    *g = GroupState {
                        removed: true,
                        ..GroupState::default()
                    };
                }
                self.inner.snapshot_requests.lock().remove(&group);
                self.forget_snapshot(group, state.written);
                continue;
            }
            let cell = self.cell(group);
            let mut g = cell.write();
            let before = g.cache_bytes as isize;
            match op {
                Op::Append(_, entries) => {
                    state.spans.clear();
                    for entry in entries.iter() {
                        let location = match next_offset.next() {
                            Some(&offset) => Location {
                                segment,
                                offset: u32::try_from(frame_offset + u64::from(offset))
                                    .unwrap_or(u32::MAX),
                                len: protobuf::Message::compute_size(entry),
                            },
                            None => Location {
                                segment: 0,
                                offset: 0,
                                len: protobuf::Message::compute_size(entry),
                            },
                        };
                        state.spans.push(IndexEntry {
                            term: entry.term,
                            location,
                        });
                    }
                    let first = entries.first().map_or(0, |e| e.index);
                    let last = entries.last().map(|e| e.index);
                    g.append(first, &state.spans, Some(std::mem::take(entries)));
                    if segment != 0 {
                        g.appended_at = state.written;
                    }
                    if let (true, Some(last)) = (segment != 0, last) {
                        let mark = (group, last, state.written);
                        // Consecutive appends of one group share a mark.
                        match cache.order.back_mut() {
                            Some(back) if back.0 == group => *back = mark,
                            _ => cache.order.push_back(mark),
                        }
                    }
                }
                Op::HardState(_, hs) => g.set_hard_state(hs, segment),
                Op::ConfState(_, cs, index) => g.set_conf_state(cs, *index, segment),
                Op::Compact(_, index, prev_term) => g.compact(*index, *prev_term, segment),
                Op::ApplySnapshot(_, meta) => g.apply_snapshot(meta, segment),
                Op::SnapshotRef(_, index, term) => g.set_snapshot(*index, *term, segment),
                Op::Checkpoint(_, cp) => g.apply_checkpoint(cp, segment),
                Op::Remove(_) => {}
            }
            cache_delta += g.cache_bytes as isize - before;
        }
        cache.used = cache.used.saturating_add_signed(cache_delta);
        if cache.used > cache.capacity || cache.order.len() > cache.cleanup_at {
            self.inner.cache_pressure.store(true, Ordering::Release);
        }
        self.inner
            .stats
            .cache_bytes
            .store(cache.used as u64, Ordering::Relaxed);
    }

    /// Drops each group's cached entries up to and including its index: entries the
    /// caller will not read again soon (a replica's applied entries that, on a leader,
    /// every follower holds too). They stay in the log file, and a later read (a
    /// follower to catch up, a new leader) comes from there. This keeps the cache to the
    /// entries in flight instead of filling the budget with entries nobody reads.
    ///
    /// A group whose last append is not in the file yet (still in the write buffer)
    /// keeps its cache, and so does every group of the in-memory engine (memory is its
    /// only copy). Returns the bytes freed.
    pub fn release_cached(&self, releases: &[(GroupId, u64)]) -> usize {
        #[cfg(feature = "wal")]
        let has_file = self.inner.wal.is_some();
        #[cfg(not(feature = "wal"))]
        let has_file = false;
        // Called every round: the in-memory engine answers without a lock.
        if releases.is_empty() || !has_file {
            return 0;
        }
        let flushed = self.inner.flushed.load(Ordering::Acquire);
        let mut cache = self.inner.cache.lock();
        let mut freed = 0;
        {
            let groups = self.inner.groups.read();
            for (group, upto) in releases {
                let Some(cell) = groups.get(group) else {
                    continue;
                };
                let mut g = cell.write();
                if g.appended_at != 0 && g.appended_at <= flushed {
                    freed += g.evict_cache(*upto);
                }
            }
        }
        cache.used = cache.used.saturating_sub(freed);
        self.inner
            .stats
            .cache_bytes
            .store(cache.used as u64, Ordering::Relaxed);
        freed
    }

    /// Drops the oldest cached entries while the cache is over budget.
    pub(crate) fn evict_cache(&self) {
        if !self.inner.cache_pressure.load(Ordering::Acquire) {
            return;
        }
        let mut cache = self.inner.cache.lock();
        let flushed = self.inner.flushed.load(Ordering::Acquire);
        let mut rounds = 0usize;
        while cache.used > cache.capacity && rounds < 1 << 20 {
            rounds += 1;
            // Entries still in the pending buffer are not in the file yet: keep them.
            match cache.order.front() {
                Some(&(_, _, position)) if position <= flushed => {}
                _ => break,
            }
            let Some((group, upto, _)) = cache.order.pop_front() else {
                break;
            };
            let cell = self.inner.groups.read().get(&group).cloned();
            if let Some(cell) = cell {
                let freed = cell.write().evict_cache(upto);
                cache.used = cache.used.saturating_sub(freed);
            }
        }
        // Entries compacted or truncated away leave stale marks: keep the queue bounded,
        // at amortized O(1) per write (the next cleanup waits until the queue doubles).
        if cache.order.len() > cache.cleanup_at {
            let groups = self.inner.groups.read();
            cache.order.retain(|(group, upto, _)| {
                groups.get(group).is_some_and(|cell| {
                    let g = cell.read();
                    !g.cache.is_empty() && g.cache_start() <= *upto
                })
            });
            cache.cleanup_at = (2 * cache.order.len()).max(MIN_CLEANUP);
        }
        let pressure = cache.used > cache.capacity || cache.order.len() > cache.cleanup_at;
        self.inner.cache_pressure.store(pressure, Ordering::Release);
        self.inner
            .stats
            .cache_bytes
            .store(cache.used as u64, Ordering::Relaxed);
    }

    pub(crate) fn poison(&self) {
        if !self.inner.poisoned.swap(true, Ordering::AcqRel) {
            tracing::error!("log engine poisoned: a write or sync failed, refusing further writes");
        }
    }
}

/// The term at `target - 1` for `group` once `earlier` ops of the batch apply.
fn term_before(
    earlier: &[Op],
    group: GroupId,
    target: u64,
    groups: &std::collections::HashMap<GroupId, GroupCell>,
) -> u64 {
    let wanted = target - 1;
    for op in earlier.iter().rev().filter(|op| op.group() == group) {
        match op {
            Op::Append(_, entries) => {
                if let Some(entry) = entries.iter().find(|e| e.index == wanted) {
                    return entry.term;
                }
            }
            Op::Compact(_, index, prev_term) if *index == target => return *prev_term,
            Op::ApplySnapshot(_, meta) => return if meta.index == wanted { meta.term } else { 0 },
            Op::Remove(_) => return 0,
            _ => {}
        }
    }
    groups
        .get(&group)
        .map_or(0, |cell| cell.read().term(wanted).unwrap_or(0))
}
