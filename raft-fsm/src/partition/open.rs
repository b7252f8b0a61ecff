//! Opening a file-backed [`PartitionStateMachine`]: checkpoint, segment
//! files, and the cleanup of whatever was written after the checkpoint.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use super::config::PartitionConfig;
use super::machine::{segment_file_name, PartitionStateMachine, CHECKPOINT_FILE, LOCK_FILE};
use super::segment::Segment;
use super::state::{self, PartitionState, SegmentEntry};
use crate::error::{CorruptionKind, FsmError};

impl PartitionStateMachine {
    /// Opens (or creates) a partition stored in `dir`.
    ///
    /// Data past the last checkpoint is cut, so `applied_index() ==
    /// durable_index()` and the scheduler replays the raft log from there.
    ///
    /// # Errors
    /// [`FsmError::Corruption`] for a corrupt checkpoint or segment (a bad
    /// checksum, a file shorter than the checkpoint says, a missing file,
    /// an offset gap, segments without a checkpoint);
    /// [`FsmError::DirectoryLocked`] if another machine has `dir` open; I/O
    /// errors.
    pub fn open(dir: impl AsRef<Path>, config: PartitionConfig) -> Result<Self, FsmError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| FsmError::io(&dir, e))?;
        let lock = state::lock_dir(&dir, LOCK_FILE)?;
        let checkpoint_path = dir.join(CHECKPOINT_FILE);
        let state = match state::read_checkpoint(&checkpoint_path)? {
            Some(state) => state,
            None => Self::initialize(&dir, &checkpoint_path)?,
        };
        let listed: Vec<&str> = state.segments.iter().map(|s| s.file.as_str()).collect();
        for entry in fs::read_dir(&dir).map_err(|e| FsmError::io(&dir, e))? {
            let entry = entry.map_err(|e| FsmError::io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Segments and index files written after the last checkpoint (or
            // by an interrupted restore), and temporary files.
            let segment_name = name
                .strip_suffix(".index")
                .or_else(|| name.strip_suffix(".journal"))
                .map(|stem| format!("{stem}.log"));
            let stale = match segment_name {
                Some(log) => !listed.contains(&log.as_str()),
                None => name.ends_with(".log") && !listed.contains(&name.as_str()),
            } || name.ends_with(".tmp");
            if stale {
                // Written after the last checkpoint (or by an interrupted restore).
                fs::remove_file(entry.path()).map_err(|e| FsmError::io(entry.path(), e))?;
            }
        }
        let mut segments = Vec::with_capacity(state.segments.len());
        for entry in &state.segments {
            let path = dir.join(&entry.file);
            if entry.file.contains('/') || entry.file.is_empty() {
                return Err(FsmError::Corruption {
                    path: checkpoint_path,
                    position: 0,
                    kind: CorruptionKind::UndecodableState,
                });
            }
            let verify = config.verify_on_open;
            let segment = Segment::open(path.clone(), entry.base_offset, entry.len, verify)?;
            if let Some(previous) = segments.last().map(|s: &Arc<Segment>| s.next_offset()) {
                if previous != segment.base_offset() {
                    return Err(FsmError::Corruption {
                        path,
                        position: 0,
                        kind: CorruptionKind::OffsetGap,
                    });
                }
            }
            segments.push(Arc::new(segment));
        }
        if segments.is_empty() {
            let base = state.next_offset;
            let path = dir.join(segment_file_name(state.generation, base));
            segments.push(Arc::new(Segment::create(path, base)?));
        }
        if let Some(last) = segments.last() {
            if last.next_offset() != state.next_offset {
                return Err(FsmError::Corruption {
                    path: last.path().map(Path::to_path_buf).unwrap_or_default(),
                    position: last.len(),
                    kind: CorruptionKind::OffsetGap,
                });
            }
        }
        state::sync_dir(&dir)?;
        let mut machine = Self::assemble(config, Some(dir), segments, state);
        machine._lock = Some(lock);
        Ok(machine)
    }

    /// Creates the first segment and checkpoint of a new partition directory.
    /// A directory holding segments but no checkpoint is corrupt: the first
    /// checkpoint is written before any record, so it was lost.
    fn initialize(dir: &Path, checkpoint_path: &Path) -> Result<PartitionState, FsmError> {
        for entry in fs::read_dir(dir).map_err(|e| FsmError::io(dir, e))? {
            let entry = entry.map_err(|e| FsmError::io(dir, e))?;
            if entry.file_name().to_string_lossy().ends_with(".log") {
                return Err(FsmError::Corruption {
                    path: checkpoint_path.to_path_buf(),
                    position: 0,
                    kind: CorruptionKind::MissingFile,
                });
            }
        }
        let file = segment_file_name(0, 0);
        Segment::create(dir.join(&file), 0)?.sync()?;
        let state = PartitionState {
            segments: vec![SegmentEntry {
                base_offset: 0,
                len: 0,
                file,
            }],
            ..PartitionState::default()
        };
        state::sync_dir(dir)?;
        state::write_atomic(dir, CHECKPOINT_FILE, &state::encode_framed(&state))?;
        Ok(state)
    }
}
