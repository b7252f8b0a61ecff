//! The size limit of the log: bytes of live segment files against
//! [`max_log_bytes`](crate::EngineConfig::max_log_bytes).

use std::sync::atomic::Ordering;

use super::{LogEngine, WriteState};
#[cfg(feature = "wal")]
use crate::batch::{LogBatch, Op};
#[cfg(feature = "wal")]
use crate::error::{Error, Result};

/// The share of the limit a scheduler keeps free for raft's own records once it refuses
/// proposals: one eighth.
pub const NEAR_FULL_DIVISOR: u64 = 8;

/// Under pressure, purge rewrites live entries forward (a write the limit does not
/// refuse) for at most this share of the limit per pass: one sixty-fourth.
#[cfg_attr(not(feature = "wal"), allow(dead_code))]
pub(crate) const PRESSURE_REWRITE_DIVISOR: u64 = 64;

/// How full the log is: bytes of live segment files and the limit.
///
/// ```
/// let usage = raft_storage::LogUsage { used: 700, limit: 1000 };
/// assert!(usage.has_room(200, 100));
/// assert!(!usage.has_room(201, 100));
/// assert!(raft_storage::LogUsage { used: 5, limit: 0 }.has_room(u64::MAX, u64::MAX));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogUsage {
    /// Bytes the live segment files hold (0 for the in-memory engine).
    pub used: u64,
    /// The configured limit (0: none).
    pub limit: u64,
}

impl LogUsage {
    /// True when `bytes` more still leave at least `reserve` bytes below the limit
    /// (always true without a limit).
    pub fn has_room(&self, bytes: u64, reserve: u64) -> bool {
        self.limit == 0 || self.used.saturating_add(bytes).saturating_add(reserve) <= self.limit
    }

    /// True when a limit is set and reached.
    pub fn is_full(&self) -> bool {
        self.limit != 0 && self.used >= self.limit
    }

    /// Bytes purge may rewrite forward in one pass (a write the limit does not refuse):
    /// all it wants without a limit; up to three quarters of the limit; past that, a
    /// sixty-fourth of the limit, enough to move small tails that pin old segments.
    #[cfg_attr(not(feature = "wal"), allow(dead_code))]
    pub(crate) fn rewrite_budget(&self) -> u64 {
        if self.limit == 0 {
            return u64::MAX;
        }
        let pressure_line = self.limit - self.limit / 4;
        pressure_line
            .saturating_sub(self.used)
            .max(self.limit / PRESSURE_REWRITE_DIVISOR)
    }

    /// True when a limit is set and at most a quarter of it is left: purge then frees every
    /// segment it can, before a scheduler starts refusing proposals (at the last eighth,
    /// [`NEAR_FULL_DIVISOR`]).
    pub fn is_under_pressure(&self) -> bool {
        self.limit != 0 && self.used >= self.limit - self.limit / 4
    }
}

impl LogEngine {
    /// Bytes held by the live segment files and the size limit. Cheap (two atomic loads):
    /// callers may ask before every proposal.
    pub fn usage(&self) -> LogUsage {
        LogUsage {
            used: self.inner.stats.log_bytes.load(Ordering::Acquire),
            limit: self.inner.max_log_bytes,
        }
    }

    /// True when a size limit is set and the live segments have reached it.
    pub fn over_quota(&self) -> bool {
        self.usage().is_full()
    }

    /// Publishes the bytes of the live segments (sealed, active, and frames pending in the
    /// write buffer). Caller holds the write lock.
    pub(crate) fn refresh_usage(&self, state: &WriteState) {
        #[cfg(feature = "wal")]
        if let Some(wal) = &self.inner.wal {
            let active = state.active.as_ref().map_or(0, |a| a.len);
            let used = wal.sealed_bytes() + active + state.buf.len() as u64;
            self.inner.stats.log_bytes.store(used, Ordering::Release);
        }
        #[cfg(not(feature = "wal"))]
        let _ = state;
    }

    /// Refuses a batch that appends entries when its frame (the last `len` bytes of the
    /// write buffer) would take the live segments past the limit. Caller holds the write
    /// lock.
    #[cfg(feature = "wal")]
    pub(crate) fn check_quota(
        &self,
        wal: &crate::wal::Wal,
        state: &WriteState,
        batch: &LogBatch,
        len: usize,
    ) -> Result<()> {
        let limit = self.inner.max_log_bytes;
        if limit == 0 {
            return Ok(());
        }
        let appends = batch
            .ops()
            .iter()
            .any(|op| matches!(op, Op::Append(_, entries) if !entries.is_empty()));
        if !appends {
            return Ok(());
        }
        let active = state.active.as_ref().map_or(0, |a| a.len);
        let used = wal.sealed_bytes() + active + (state.buf.len() - len) as u64;
        // A rotation on the way adds a segment header.
        let needed = (len + crate::wal::segment::SEGMENT_HEADER) as u64;
        if used.saturating_add(needed) > limit {
            return Err(Error::QuotaExceeded {
                used,
                limit,
                needed,
            });
        }
        Ok(())
    }
}
