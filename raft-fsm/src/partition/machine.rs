//! [`PartitionStateMachine`]: a Kafka partition applied from a raft log.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::config::PartitionConfig;
use super::epochs::LeaderEpochs;
use super::producer::ProducerTable;
use super::reader::{LogView, PartitionReader, Shared};
use super::segment::Segment;
use super::state::{self, PartitionState, SegmentEntry};
use crate::entry::{EntryKind, LogEntry, SnapshotMeta};
use crate::error::FsmError;
use crate::state_machine::{SnapshotSource, StateMachine};

/// Name of the lock file inside a partition directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// Name of the checkpoint file inside a partition directory.
pub(crate) const CHECKPOINT_FILE: &str = "checkpoint";

/// The file name of a segment of a generation.
pub(crate) fn segment_file_name(generation: u64, base_offset: u64) -> String {
    format!("{generation:08}-{base_offset:020}.log")
}

/// A Kafka partition as a raft state machine.
///
/// Assigns offsets at apply time, keeps the high watermark, log start offset,
/// leader epochs and idempotent-producer state, and writes applied batches to
/// its own segment files without a sync per batch; [`StateMachine::flush`]
/// syncs them and writes a checkpoint carrying the durable applied index.
/// Reads go through [`PartitionStateMachine::reader`], never through raft.
///
/// ```
/// use raft_fsm::{decode_append_response, LogEntry, PartitionCommand, PartitionConfig};
/// use raft_fsm::{PartitionStateMachine, StateMachine};
///
/// let mut machine = PartitionStateMachine::in_memory(PartitionConfig::default());
/// machine.apply(&LogEntry::empty(1, 1)).unwrap(); // a leader's empty entry opens epoch 1
/// let command = PartitionCommand::append(bytes::Bytes::from_static(b"records"), 3, 1_000, 1_001);
/// let response = machine.apply(&LogEntry::normal(2, 1, &command.encode())).unwrap();
/// let appended = decode_append_response(&response).unwrap();
/// assert_eq!((appended.base_offset, appended.last_offset), (0, 2));
/// assert_eq!(machine.reader().high_watermark(), 3);
/// ```
#[derive(Debug)]
pub struct PartitionStateMachine {
    pub(crate) config: PartitionConfig,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) active: Arc<Segment>,
    pub(crate) producers: ProducerTable,
    pub(crate) applied_index: u64,
    pub(crate) applied_term: u64,
    pub(crate) durable_index: u64,
    pub(crate) current_epoch: Option<u64>,
    pub(crate) next_offset: u64,
    pub(crate) log_start_offset: u64,
    pub(crate) generation: u64,
    /// Segments with a base at or above this may hold unsynced bytes.
    pub(crate) unsynced_from: u64,
    /// Segments dropped by retention whose files go once a checkpoint no
    /// longer lists them.
    pub(crate) pending_deletes: Vec<Arc<Segment>>,
    pub(crate) poisoned: bool,
    /// The directory lock, held while the machine lives.
    pub(crate) _lock: Option<fs::File>,
}

impl PartitionStateMachine {
    /// A partition kept in memory only: same semantics, no files. Its
    /// [`durable_index`](StateMachine::durable_index) follows `flush` like
    /// a file-backed one (a node without storage keeps nothing anyway).
    pub fn in_memory(config: PartitionConfig) -> Self {
        let active = Arc::new(Segment::memory(0));
        Self::assemble(config, None, vec![active], PartitionState::default())
    }

    /// Builds the machine around opened segments (at least one).
    pub(crate) fn assemble(
        config: PartitionConfig,
        dir: Option<PathBuf>,
        segments: Vec<Arc<Segment>>,
        state: PartitionState,
    ) -> Self {
        let active = segments
            .last()
            .cloned()
            .unwrap_or_else(|| Arc::new(Segment::memory(state.next_offset)));
        let epochs = LeaderEpochs::from_entries(state.epochs);
        let current_epoch = epochs.current();
        let view = LogView {
            segments,
            next_offset: state.next_offset,
            log_start_offset: state.log_start_offset,
            epochs,
        };
        PartitionStateMachine {
            config,
            dir,
            shared: Shared::new(view),
            unsynced_from: active.base_offset(),
            active,
            producers: ProducerTable::from_entries(state.producers),
            applied_index: state.applied_index,
            applied_term: state.applied_term,
            durable_index: state.applied_index,
            current_epoch,
            next_offset: state.next_offset,
            log_start_offset: state.log_start_offset,
            generation: state.generation,
            pending_deletes: Vec::new(),
            poisoned: false,
            _lock: None,
        }
    }

    /// A reader sharing this machine's log (fetch, list offsets, long-poll).
    pub fn reader(&self) -> PartitionReader {
        PartitionReader::new(Arc::clone(&self.shared))
    }

    /// The configuration.
    pub fn config(&self) -> &PartitionConfig {
        &self.config
    }

    /// The high watermark (the next offset to assign).
    pub fn high_watermark(&self) -> u64 {
        self.next_offset
    }

    /// Idempotent producers currently remembered.
    pub fn producer_count(&self) -> usize {
        self.producers.len()
    }

    /// A new empty segment starting at `base_offset` in `generation`.
    pub(crate) fn new_segment(
        &self,
        generation: u64,
        base_offset: u64,
    ) -> Result<Arc<Segment>, FsmError> {
        Ok(Arc::new(match &self.dir {
            Some(dir) => Segment::create(
                dir.join(segment_file_name(generation, base_offset)),
                base_offset,
            )?,
            None => Segment::memory(base_offset),
        }))
    }

    /// The state besides the records, and the segments with the lengths it
    /// covers. `with_files` adds file names and the generation (checkpoint).
    pub(crate) fn capture_state(
        &self,
        with_files: bool,
    ) -> (PartitionState, Vec<(Arc<Segment>, u64)>) {
        let view = self.shared.view.read();
        let mut entries = Vec::with_capacity(view.segments.len());
        let mut segments = Vec::with_capacity(view.segments.len());
        for segment in &view.segments {
            let len = segment.len();
            let file = match (with_files, segment.path().and_then(Path::file_name)) {
                (true, Some(name)) => name.to_string_lossy().into_owned(),
                _ => String::new(),
            };
            entries.push(SegmentEntry {
                base_offset: segment.base_offset(),
                len,
                file,
            });
            segments.push((Arc::clone(segment), len));
        }
        let state = PartitionState {
            applied_index: self.applied_index,
            applied_term: self.applied_term,
            next_offset: view.next_offset,
            log_start_offset: view.log_start_offset,
            epochs: view.epochs.entries().to_vec(),
            producers: self.producers.entries(),
            segments: entries,
            generation: if with_files { self.generation } else { 0 },
        };
        (state, segments)
    }

    /// Marks the machine poisoned if `result` is an error.
    pub(crate) fn poison_on_error<T>(
        &mut self,
        result: Result<T, FsmError>,
    ) -> Result<T, FsmError> {
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn flush_files(&mut self, dir: &Path) -> Result<(), FsmError> {
        let segments = self.shared.view.read().segments.clone();
        for segment in segments
            .iter()
            .filter(|s| s.base_offset() >= self.unsynced_from)
        {
            segment.sync()?;
        }
        // Closed segments get their index file once, the active one's index
        // goes to its journal (faster open).
        for segment in segments.iter().filter(|s| !Arc::ptr_eq(s, &self.active)) {
            segment.persist_index()?;
        }
        self.active.journal_index()?;
        // Segment files created since the last flush must exist durably
        // before a checkpoint names them.
        state::sync_dir(dir)?;
        let (state, _) = self.capture_state(true);
        state::write_atomic(dir, CHECKPOINT_FILE, &state::encode_framed(&state))?;
        for segment in self.pending_deletes.drain(..) {
            segment.delete_file()?;
        }
        self.unsynced_from = self.active.base_offset();
        Ok(())
    }
}

impl StateMachine for PartitionStateMachine {
    fn apply(&mut self, entry: &LogEntry<'_>) -> Result<Bytes, FsmError> {
        if self.poisoned {
            return Err(FsmError::Poisoned);
        }
        let expected = self.applied_index + 1;
        if entry.index != expected {
            return Err(FsmError::IndexGap {
                expected,
                got: entry.index,
            });
        }
        if self
            .current_epoch
            .is_none_or(|current| entry.term > current)
        {
            let mut view = self.shared.view.write();
            let start = view.next_offset;
            view.epochs.observe(entry.term, start);
            self.current_epoch = view.epochs.current();
        }
        let response = match entry.kind {
            // raft-rs's leader entry is a Normal entry without data: no command.
            EntryKind::Normal if entry.data.is_empty() => Bytes::new(),
            EntryKind::Normal => {
                let applied = self.apply_command(entry.data, entry.term);
                self.poison_on_error(applied)?
            }
            EntryKind::Empty | EntryKind::ConfChange => Bytes::new(),
        };
        self.applied_index = entry.index;
        self.applied_term = entry.term;
        Ok(response)
    }

    fn applied_index(&self) -> u64 {
        self.applied_index
    }

    fn durable_index(&self) -> u64 {
        self.durable_index
    }

    fn flush(&mut self) -> Result<u64, FsmError> {
        if self.poisoned {
            return Err(FsmError::Poisoned);
        }
        if self.durable_index == self.applied_index && self.pending_deletes.is_empty() {
            return Ok(self.durable_index);
        }
        if let Some(dir) = self.dir.clone() {
            let flushed = self.flush_files(&dir);
            self.poison_on_error(flushed)?;
        } else {
            self.pending_deletes.clear();
        }
        self.durable_index = self.applied_index;
        Ok(self.durable_index)
    }

    fn snapshot(&self) -> Result<Box<dyn SnapshotSource>, FsmError> {
        if self.poisoned {
            return Err(FsmError::Poisoned);
        }
        Ok(Box::new(self.snapshot_source()))
    }

    fn restore(
        &mut self,
        meta: SnapshotMeta,
        chunks: &mut dyn Iterator<Item = Result<Bytes, FsmError>>,
    ) -> Result<(), FsmError> {
        if self.poisoned {
            return Err(FsmError::Poisoned);
        }
        self.restore_from(meta, chunks)
    }
}
