//! [`GroupState`]: the in-memory index, cache and raft state of one group.

use std::collections::VecDeque;

use raft::eraftpb::{ConfState, Entry, HardState, SnapshotMetadata};

use crate::codec::Checkpoint;

/// Where an entry's protobuf bytes live. Segment 0 means "in memory only".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    pub segment: u32,
    pub offset: u32,
    pub len: u32,
}

/// Index of one entry: its term and location (24 bytes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexEntry {
    pub term: u64,
    pub location: Location,
}

/// Oldest segment holding the latest record of each kind of group metadata (0 = none).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Pins {
    pub hard_state: u32,
    pub conf_state: u32,
    pub base: u32,
    pub snapshot: u32,
}

impl Pins {
    fn oldest(&self) -> Option<u32> {
        [self.hard_state, self.conf_state, self.base, self.snapshot]
            .into_iter()
            .filter(|&s| s != 0)
            .min()
    }
}

/// The state of one group. Invariants: `index` holds entries `first_index ..= last_index()`
/// with contiguous indexes; `cache` is a suffix of them; an empty log has
/// `last_index() == first_index - 1`; `prev_term` is the term at `first_index - 1`.
#[derive(Debug, Clone)]
pub(crate) struct GroupState {
    pub hard_state: HardState,
    pub conf_state: ConfState,
    /// The raft index `conf_state` reflects (0 when set without one).
    pub conf_index: u64,
    /// Metadata of the last applied snapshot (index, term).
    pub base: (u64, u64),
    pub first_index: u64,
    pub prev_term: u64,
    pub index: VecDeque<IndexEntry>,
    pub cache: VecDeque<Entry>,
    pub cache_bytes: usize,
    /// The most entries `index` and `cache` held since the last compaction: a compaction
    /// keeps that much room, so a busy group does not regrow (and copy) its buffers
    /// every cycle.
    pub peak: (usize, usize),
    /// Log position just past the frame of this group's last append to a file (0: none,
    /// as on the in-memory engine): once the file is flushed that far, every cached entry
    /// can be read back from it.
    pub appended_at: u64,
    /// The saved snapshot file serving this group (index, term).
    pub snapshot: Option<(u64, u64)>,
    pub pins: Pins,
    /// Only during recovery from a purged prefix: the log's known part starts at
    /// `first_index`, but the compaction point (the true first index, with the term before it)
    /// is this, and entries between the two are not known yet; a later record settles them.
    pub soft: Option<(u64, u64)>,
    /// The group was removed: this cell is out of the engine's map, and storage handles
    /// that kept it look the group up again (it may have been created anew).
    pub removed: bool,
}

impl Default for GroupState {
    fn default() -> Self {
        GroupState {
            hard_state: HardState::default(),
            conf_state: ConfState::default(),
            conf_index: 0,
            base: (0, 0),
            first_index: 1,
            prev_term: 0,
            index: VecDeque::new(),
            cache: VecDeque::new(),
            cache_bytes: 0,
            peak: (0, 0),
            appended_at: 0,
            snapshot: None,
            pins: Pins::default(),
            soft: None,
            removed: false,
        }
    }
}

/// Shrinks `deque` to twice `max(len, keep)` once it has more than four times that
/// room (and more than a few slots): a load as large again still fits.
fn shrink_deque<T>(deque: &mut VecDeque<T>, keep: usize) {
    let need = deque.len().max(keep);
    if deque.capacity() > 16 && need < deque.capacity() / 4 {
        deque.shrink_to(2 * need);
    }
}

fn entry_bytes(entry: &Entry) -> usize {
    entry.data.len() + entry.context.len() + 32
}

impl GroupState {
    /// A group met first during recovery: its beginning may have been purged.
    pub fn recovering() -> GroupState {
        GroupState {
            soft: Some((1, 0)),
            ..GroupState::default()
        }
    }

    pub fn last_index(&self) -> u64 {
        self.first_index + self.index.len() as u64 - 1
    }

    /// First index served from the cache.
    pub fn cache_start(&self) -> u64 {
        self.last_index() + 1 - self.cache.len() as u64
    }

    /// Term at `idx` if the group knows it (MemStorage semantics plus `first_index - 1`).
    pub fn term(&self, idx: u64) -> Result<u64, raft::StorageError> {
        if idx + 1 == self.first_index {
            return Ok(self.prev_term);
        }
        if idx == self.base.0 {
            return Ok(self.base.1);
        }
        if idx < self.first_index {
            return Err(raft::StorageError::Compacted);
        }
        if idx > self.last_index() {
            return Err(raft::StorageError::Unavailable);
        }
        Ok(self.index[(idx - self.first_index) as usize].term)
    }

    /// True if the group holds anything at all.
    pub fn is_empty(&self) -> bool {
        self.hard_state == HardState::default()
            && self.conf_state == ConfState::default()
            && self.index.is_empty()
            && self.first_index == 1
            && self.snapshot.is_none()
    }

    /// Oldest segment this group still needs (0 = none).
    pub fn pin(&self) -> u32 {
        let meta = self.pins.oldest();
        let entries = self.entry_pin();
        match (meta, entries) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(0),
        }
    }

    /// Segment of the oldest live entry, if it is on disk.
    pub fn entry_pin(&self) -> Option<u32> {
        self.index
            .front()
            .map(|e| e.location.segment)
            .filter(|&s| s != 0)
    }

    /// Oldest segment holding needed metadata.
    pub fn meta_pin(&self) -> Option<u32> {
        self.pins.oldest()
    }

    /// Appends (replacing from `first` on). `spans` describes every entry; `entries`, if
    /// given, are the decoded entries to cache. Entries below the compaction point are
    /// ignored. During recovery from a purged prefix an append may land before the known part
    /// of the log or after a gap; it then restarts the known part.
    pub fn append(&mut self, first: u64, spans: &[IndexEntry], entries: Option<Vec<Entry>>) {
        let (hard_first, hard_term) = self.soft.unwrap_or((self.first_index, self.prev_term));
        let skip = hard_first.saturating_sub(first);
        if skip >= spans.len() as u64 {
            return;
        }
        let start = first + skip;
        if start < self.first_index || start > self.last_index() + 1 {
            // Only in recovery (validation rules both out at run time).
            self.index.clear();
            self.drop_cache();
            self.first_index = start;
            if start == hard_first {
                self.prev_term = hard_term;
                self.soft = None;
            } else {
                self.prev_term = 0;
                self.soft = Some((hard_first, hard_term));
            }
        }
        let skip = skip as usize;
        self.truncate_from(start);
        self.index.extend(spans[skip..].iter().copied());
        if let Some(entries) = entries {
            for entry in entries.into_iter().skip(skip) {
                self.cache_bytes += entry_bytes(&entry);
                self.cache.push_back(entry);
            }
        }
        self.peak = (
            self.peak.0.max(self.index.len()),
            self.peak.1.max(self.cache.len()),
        );
    }

    /// Drops entries from `idx` on (`idx > first_index - 1`).
    fn truncate_from(&mut self, idx: u64) {
        let keep = (idx - self.first_index) as usize;
        self.index.truncate(keep);
        while self.cache.back().is_some_and(|e| e.index >= idx) {
            if let Some(entry) = self.cache.pop_back() {
                self.cache_bytes -= entry_bytes(&entry);
            }
        }
    }

    /// Drops cached entries up to and including `upto`. Returns bytes freed.
    pub fn evict_cache(&mut self, upto: u64) -> usize {
        let before = self.cache_bytes;
        while self.cache.front().is_some_and(|e| e.index <= upto) {
            if let Some(entry) = self.cache.pop_front() {
                self.cache_bytes -= entry_bytes(&entry);
            }
        }
        before - self.cache_bytes
    }

    fn drop_cache(&mut self) {
        self.cache.clear();
        self.cache_bytes = 0;
    }

    /// MemStorage::compact semantics for an index already clamped to `last_index + 1`, with
    /// `prev_term` the term at `compact_index - 1`.
    pub fn compact(&mut self, compact_index: u64, prev_term: u64, segment: u32) {
        let hard_first = self.soft.map_or(self.first_index, |(first, _)| first);
        if compact_index <= hard_first {
            return;
        }
        self.rebase(compact_index, prev_term);
        // The record sets the first index and the term before it, but the snapshot base
        // (index, term) still comes from an older record: keep that one pinned.
        if self.pins.base == 0 {
            self.pins.base = segment;
        }
    }

    /// Makes `(first, prev_term)` the compaction point, dropping entries below it.
    fn rebase(&mut self, first: u64, prev_term: u64) {
        if self.soft.is_some() && first < self.first_index && !self.index.is_empty() {
            // Recovery: entries between `first` and the known part are still unknown.
            self.soft = Some((first, prev_term));
            return;
        }
        if self.index.is_empty() || first > self.last_index() + 1 {
            self.index.clear();
            self.drop_cache();
        } else if first > self.first_index {
            self.index.drain(..(first - self.first_index) as usize);
            self.evict_cache(first - 1);
        }
        self.first_index = first;
        self.prev_term = prev_term;
        self.soft = None;
        self.shrink(true);
    }

    /// Gives back memory a compaction freed, so groups that slowed down stay small.
    /// `keep_peak`: keep room for as many entries as the group held since the last
    /// compaction (it will hold as many again before the next one if its load holds:
    /// growing back would copy the whole log and fault in fresh pages, every cycle);
    /// else shrink to what is held now.
    fn shrink(&mut self, keep_peak: bool) {
        let (peak_index, peak_cache) = if keep_peak { self.peak } else { (0, 0) };
        shrink_deque(&mut self.index, peak_index);
        shrink_deque(&mut self.cache, peak_cache);
        self.peak = (self.index.len(), self.cache.len());
    }

    /// Gives back the room beyond the entries held, when that is most of it (for a
    /// group going idle).
    pub fn release_memory(&mut self) {
        self.shrink(false);
    }

    /// MemStorage::apply_snapshot semantics.
    pub fn apply_snapshot(&mut self, meta: &SnapshotMetadata, segment: u32) {
        self.soft = None;
        self.base = (meta.index, meta.term);
        self.first_index = meta.index + 1;
        self.prev_term = meta.term;
        self.index.clear();
        self.drop_cache();
        self.shrink(false);
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.hard_state.commit = meta.index;
        self.conf_state = meta.get_conf_state().clone();
        self.conf_index = meta.index;
        self.pins.base = segment;
        // The hard state keeps its vote from an older record: keep that one pinned too.
        if self.pins.hard_state == 0 {
            self.pins.hard_state = segment;
        }
        self.pins.conf_state = segment;
    }

    pub fn set_hard_state(&mut self, hs: &HardState, segment: u32) {
        self.hard_state = hs.clone();
        self.pins.hard_state = segment;
    }

    pub fn set_conf_state(&mut self, cs: &ConfState, index: u64, segment: u32) {
        self.conf_state = cs.clone();
        self.conf_index = index;
        self.pins.conf_state = segment;
    }

    pub fn set_snapshot(&mut self, index: u64, term: u64, segment: u32) {
        self.snapshot = Some((index, term));
        self.pins.snapshot = segment;
    }

    /// Everything but the entries, to rewrite forward.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            first_index: self.first_index,
            prev_term: self.prev_term,
            base_index: self.base.0,
            base_term: self.base.1,
            hard_state: self.hard_state.clone(),
            conf_state: self.conf_state.clone(),
            snapshot: self.snapshot,
            conf_index: self.conf_index,
        }
    }

    pub fn apply_checkpoint(&mut self, cp: &Checkpoint, segment: u32) {
        self.rebase(cp.first_index, cp.prev_term);
        self.base = (cp.base_index, cp.base_term);
        self.hard_state = cp.hard_state.clone();
        self.conf_state = cp.conf_state.clone();
        self.conf_index = cp.conf_index;
        self.snapshot = cp.snapshot;
        self.pins = Pins {
            hard_state: segment,
            conf_state: segment,
            base: segment,
            snapshot: segment,
        };
    }

    /// Approximate heap plus inline bytes of this state (for the idle-overhead figure).
    pub fn memory_size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.index.capacity() * std::mem::size_of::<IndexEntry>()
            + self.cache.capacity() * std::mem::size_of::<Entry>()
            + self.cache_bytes
            + 8 * (self.conf_state.voters.capacity()
                + self.conf_state.learners.capacity()
                + self.conf_state.voters_outgoing.capacity()
                + self.conf_state.learners_next.capacity())
    }
}
