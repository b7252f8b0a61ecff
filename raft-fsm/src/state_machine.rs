//! The [`StateMachine`] trait the scheduler drives, and [`SnapshotSource`].

use bytes::Bytes;

use crate::entry::{LogEntry, SnapshotMeta};
use crate::error::FsmError;

/// A replicated state machine owned by one raft group.
///
/// Owned by one group and driven through `&mut self` from one thread at a
/// time (no interior mutex on the apply path). Object-safe: the scheduler
/// holds `Box<dyn StateMachine>`. Reads never go through the trait; each
/// machine hands out its own cheap reader.
///
/// # Correctness
/// - Deterministic: the same entries give the same state, the same responses
///   and the same snapshot bytes on every replica. No wall clock, no
///   randomness, no hash-map iteration order inside.
/// - Entries are applied strictly in order, every committed entry once.
/// - After a crash a machine reopens at `applied_index() == durable_index()`
///   and the scheduler replays the raft log from `durable_index() + 1`; the
///   raft log may therefore be compacted only up to `durable_index()`.
pub trait StateMachine: Send + 'static {
    /// Applies one committed entry and returns the response for its proposer.
    ///
    /// Command-level rejections (an out-of-order sequence, an unknown topic)
    /// are encoded *in* the response; they are deterministic and do not stop
    /// the group. [`EntryKind::Empty`](crate::EntryKind::Empty) and
    /// [`EntryKind::ConfChange`](crate::EntryKind::ConfChange) entries return
    /// an empty response.
    ///
    /// # Errors
    /// [`FsmError::IndexGap`] if `entry.index != applied_index() + 1`; I/O
    /// errors. Any error is fatal: the scheduler stops the group, and the
    /// machine is left unchanged by an index gap.
    fn apply(&mut self, entry: &LogEntry<'_>) -> Result<Bytes, FsmError>;

    /// The index of the last applied entry.
    fn applied_index(&self) -> u64;

    /// The highest applied index whose effects survive a crash.
    fn durable_index(&self) -> u64;

    /// Makes everything applied so far durable and returns the new durable
    /// index (a lazy flush point: call it every so often, not per entry).
    ///
    /// # Errors
    /// I/O errors; after one the machine is poisoned.
    fn flush(&mut self) -> Result<u64, FsmError>;

    /// A consistent snapshot at `applied_index()`, streamed in chunks.
    ///
    /// Applying may continue while the returned source is read: the source
    /// holds what it needs (for a partition, append-only segments captured
    /// by length).
    ///
    /// # Errors
    /// I/O errors.
    fn snapshot(&self) -> Result<Box<dyn SnapshotSource>, FsmError>;

    /// Replaces the whole state with the snapshot's. `chunks` yields the
    /// chunks in the order the source produced them. On success
    /// `applied_index() == meta.index` and the new state is durable.
    ///
    /// # Errors
    /// [`FsmError::BadSnapshot`] for a malformed stream (the old state is
    /// kept), errors from `chunks`, I/O errors.
    fn restore(
        &mut self,
        meta: SnapshotMeta,
        chunks: &mut dyn Iterator<Item = Result<Bytes, FsmError>>,
    ) -> Result<(), FsmError>;
}

/// A snapshot being read chunk by chunk.
pub trait SnapshotSource: Send + 'static {
    /// Where the snapshot sits in the raft log.
    fn meta(&self) -> SnapshotMeta;

    /// The next chunk, or `None` at the end.
    ///
    /// # Errors
    /// I/O errors while reading segment files.
    fn next_chunk(&mut self) -> Result<Option<Bytes>, FsmError>;
}

/// A [`SnapshotSource`] over chunks that are already in memory.
#[derive(Debug)]
pub struct MemorySnapshot {
    meta: SnapshotMeta,
    chunks: std::collections::VecDeque<Bytes>,
}

impl MemorySnapshot {
    /// A source yielding `chunks` in order.
    pub fn new(meta: SnapshotMeta, chunks: Vec<Bytes>) -> Self {
        MemorySnapshot {
            meta,
            chunks: chunks.into(),
        }
    }
}

impl SnapshotSource for MemorySnapshot {
    fn meta(&self) -> SnapshotMeta {
        self.meta
    }

    fn next_chunk(&mut self) -> Result<Option<Bytes>, FsmError> {
        Ok(self.chunks.pop_front())
    }
}

/// Reads a whole snapshot source into its chunks (tests, small snapshots).
///
/// # Errors
/// Whatever the source returns.
pub fn collect_chunks(source: &mut dyn SnapshotSource) -> Result<Vec<Bytes>, FsmError> {
    let mut chunks = Vec::new();
    // Bounded by the source: each call consumes bytes of a finite snapshot.
    while let Some(chunk) = source.next_chunk()? {
        chunks.push(chunk);
    }
    Ok(chunks)
}
