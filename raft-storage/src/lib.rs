//! One write-ahead log per node, shared by every raft group, backing raft-rs's `Storage`.
//!
//! A node of Chronik hosts thousands of raft groups (`raft` 0.7). Giving each its own files
//! and its own `fdatasync` does not scale, so every group of a node writes into one
//! segmented log:
//!
//! - [`LogEngine`] owns the log directory. [`LogEngine::write`] takes a [`LogBatch`] that may
//!   touch any number of groups and writes it with one `write` call and at most one
//!   `fdatasync`; concurrent writers share syncs (group commit).
//! - [`LogEngine::group`] hands out a cheap [`GroupStorage`] per group that implements
//!   [`raft::Storage`] with the semantics of raft-rs's `MemStorage`, served from a per-group
//!   index, a bounded entry cache and, for older entries, the segment files.
//! - Reopening replays the log, cuts a torn tail at the first bad frame and refuses (with a
//!   typed error naming file and offset) damage anywhere else. A failed `fdatasync` poisons
//!   the engine. [`LogEngine::purge_expired`] deletes segments no group needs (keeping a few of
//!   their files to become later segments: syncs over blocks already on disk are cheaper;
//!   [`EngineConfig::prefill_segments`] writes such files ahead at open, so a new log's
//!   first segments get that too).
//! - [`LogEngine::in_memory`] has the same API without files.
//!
//! The on-disk format is described in `FORMAT.md`.
//!
//! # Example
//!
//! ```
//! use raft::eraftpb::{Entry, HardState};
//! use raft::{GetEntriesContext, Storage};
//! use raft_storage::{LogBatch, LogEngine};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! # #[cfg(feature = "wal")]
//! let engine = LogEngine::open(raft_storage::EngineConfig::new(dir.path()))?;
//! # #[cfg(not(feature = "wal"))]
//! # let engine = LogEngine::in_memory();
//! let mut batch = LogBatch::new();
//! for group in [1, 2] {
//!     let entries: Vec<Entry> =
//!         (1..=3).map(|index| Entry { index, term: 1, ..Default::default() }).collect();
//!     batch.append(group, &entries);
//!     batch.set_hard_state(group, &HardState { term: 1, vote: 1, commit: 2, ..Default::default() });
//! }
//! engine.write(&mut batch, true)?; // both groups, one write, one fdatasync
//!
//! let storage = engine.group(2);
//! assert_eq!(storage.last_index(), 3); // inherent, infallible; raft::Storage has it too
//! let read = storage.entries(2, 4, None, GetEntriesContext::empty(false))?;
//! assert_eq!(read.iter().map(|e| e.index).collect::<Vec<_>>(), [2, 3]);
//! assert_eq!(storage.initial_state()?.hard_state.commit, 2);
//! # Ok(())
//! # }
//! ```
//!
//! # Feature flags
//!
//! - `wal` (default): the file engine, [`LogEngine::open`]. Without it only
//!   [`LogEngine::in_memory`] exists.
//! - `test-util`: `testing`, a conformance suite of the `raft::Storage` contract checked
//!   against `MemStorage`, for this crate's and other crates' tests.
//! - `failpoints`: `LogEngine::inject_sync_failure`.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

#[cfg_attr(not(feature = "wal"), allow(dead_code))]
mod batch;
#[cfg_attr(not(feature = "wal"), allow(dead_code))]
mod codec;
mod config;
mod engine;
mod error;
#[cfg_attr(not(feature = "wal"), allow(dead_code))]
mod group;
mod stats;
mod storage;
#[cfg(feature = "test-util")]
pub mod testing;
#[cfg(feature = "wal")]
mod wal;

/// Identifies a raft group (as in raft-rs, a `u64`).
pub type GroupId = u64;

pub use batch::LogBatch;
pub use config::{
    EngineConfig, DEFAULT_CACHE_CAPACITY, DEFAULT_PURGE_LAG_SEGMENTS, DEFAULT_RECYCLE_SEGMENTS,
    DEFAULT_SEGMENT_SIZE,
};
pub use engine::{Deferred, LogEngine, LogUsage, NEAR_FULL_DIVISOR};
pub use error::{CorruptionKind, Error, Result};
pub use stats::{EngineStats, SLOW_SYNC, SYNC_LATENCY_BOUNDS_MICROS, SYNC_LATENCY_BUCKETS};
pub use storage::GroupStorage;
