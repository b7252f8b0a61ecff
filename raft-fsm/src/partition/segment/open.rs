//! Opening a file segment after a restart, and its index file.
//!
//! A closed segment (one that is no longer active) gets an index file,
//! `<segment>.index`, at the first flush after it closed: its sparse offset
//! index, length, next offset and greatest timestamp, framed with a CRC.
//! Opening a closed segment with a valid index file skips reading the
//! segment; without one (or with `verify`), every frame is read and its
//! checksum verified, except what the index journal of the segment (see
//! [`super::journal`]) vouches for. Frames are verified on every fetch.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::{journal, pread, remove_if_exists, Inner, Segment, Store, READ_WINDOW};
use crate::error::{CorruptionKind, FsmError};
use crate::partition::frame::{self, FRAME_HEADER};
use crate::partition::state;

/// Magic of a segment index file.
const INDEX_MAGIC: &[u8; 4] = b"CKIX";

/// The persisted sparse index of a closed segment.
#[derive(Clone, PartialEq, prost::Message)]
struct SegmentIndex {
    #[prost(uint64, tag = "1")]
    len: u64,
    #[prost(uint64, tag = "2")]
    next_offset: u64,
    #[prost(int64, tag = "3")]
    max_timestamp: i64,
    #[prost(uint64, repeated, tag = "4")]
    offsets: Vec<u64>,
    #[prost(uint64, repeated, tag = "5")]
    positions: Vec<u64>,
}

/// The index file of the segment file at `path`.
pub(crate) fn index_path(path: &Path) -> PathBuf {
    path.with_extension("index")
}

impl SegmentIndex {
    /// Whether the index can describe a segment at `base_offset` of `len` bytes.
    fn fits(&self, base_offset: u64, len: u64) -> bool {
        let increasing = |v: &[u64]| v.windows(2).all(|w| w[0] < w[1]);
        self.len == len
            && !self.offsets.is_empty()
            && self.offsets.len() == self.positions.len()
            && self.offsets[0] == base_offset
            && self.positions[0] == 0
            && increasing(&self.offsets)
            && increasing(&self.positions)
            && self.positions.last().is_some_and(|&p| p < len)
            && self.offsets.last().is_some_and(|&o| o < self.next_offset)
    }
}

impl Segment {
    /// Opens a file segment whose first `durable_len` bytes were made
    /// durable, cutting anything past them. Loads the index file when it is
    /// valid and `verify` is off; otherwise reads and verifies every frame.
    pub(crate) fn open(
        path: PathBuf,
        base_offset: u64,
        durable_len: u64,
        verify: bool,
    ) -> Result<Self, FsmError> {
        let corrupt = |position: u64, kind: CorruptionKind| FsmError::Corruption {
            path: path.clone(),
            position,
            kind,
        };
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(corrupt(0, CorruptionKind::MissingFile));
            }
            Err(e) => return Err(FsmError::io(&path, e)),
        };
        let actual = file.metadata().map_err(|e| FsmError::io(&path, e))?.len();
        if actual < durable_len {
            return Err(corrupt(actual, CorruptionKind::Truncated));
        }
        if actual > durable_len {
            // Bytes applied after the last checkpoint: replay rewrites them.
            file.set_len(durable_len)
                .map_err(|e| FsmError::io(&path, e))?;
            file.sync_all().map_err(|e| FsmError::io(&path, e))?;
        }
        let file = Arc::new(file);
        let store = Store::File {
            file: Arc::clone(&file),
            file_len: durable_len,
            buffer: Vec::new(),
        };
        let segment = Self::with_store(base_offset, Some(path.clone()), store);
        let index = if verify || durable_len == 0 {
            None
        } else {
            // An unreadable or stale index file is not an error: scan instead.
            state::read_framed::<SegmentIndex>(INDEX_MAGIC, &index_path(&path))
                .ok()
                .flatten()
                .filter(|index| index.fits(base_offset, durable_len))
        };
        let mut inner = segment.inner.write();
        match index {
            Some(index) => {
                inner.len = index.len;
                inner.next_offset = index.next_offset;
                inner.max_timestamp = index.max_timestamp;
                inner.index = index.offsets.into_iter().zip(index.positions).collect();
                inner.index_file = true;
            }
            None => {
                // No index file: resume from the index journal, if any, and
                // verify the tail after its last entry (or everything).
                let entries = if verify {
                    Vec::new()
                } else {
                    journal::read_entries(&path, base_offset, durable_len)
                };
                let from = Self::resume_from_journal(&mut inner, &path, &entries)?;
                Self::scan(&mut inner, &file, &path, from, durable_len)?;
            }
        }
        drop(inner);
        Ok(segment)
    }

    /// Reads every frame from `from` up to `len`: checksums, contiguous
    /// offsets, and the sparse index rebuilt on the way.
    fn scan(
        inner: &mut Inner,
        file: &std::fs::File,
        path: &Path,
        from: u64,
        len: u64,
    ) -> Result<(), FsmError> {
        let corrupt = |position: u64, kind: CorruptionKind| FsmError::Corruption {
            path: path.to_path_buf(),
            position,
            kind,
        };
        let mut window = Bytes::new();
        let mut window_pos = from;
        let mut position = from;
        // Bounded: every iteration advances `position` by a whole frame.
        while position < len {
            let remaining = len - position;
            if remaining < FRAME_HEADER as u64 {
                return Err(corrupt(position, CorruptionKind::BadLength));
            }
            let in_window = (window_pos + window.len() as u64).saturating_sub(position);
            if position < window_pos || in_window < FRAME_HEADER as u64 {
                let read = remaining.min(READ_WINDOW as u64) as usize;
                window = pread(file, path, position, read)?;
                window_pos = position;
            }
            let at = (position - window_pos) as usize;
            let header = frame::parse_header(&window[at..])
                .ok_or_else(|| corrupt(position, CorruptionKind::BadLength))?;
            let frame_len = header.frame_len() as u64;
            if frame_len > remaining {
                return Err(corrupt(position, CorruptionKind::BadLength));
            }
            if (window.len() - at) < frame_len as usize {
                let read = remaining.min(frame_len.max(READ_WINDOW as u64)) as usize;
                window = pread(file, path, position, read)?;
                window_pos = position;
            }
            let at = (position - window_pos) as usize;
            if !frame::checksum_ok(&header, &window[at..at + frame_len as usize]) {
                return Err(corrupt(position, CorruptionKind::ChecksumMismatch));
            }
            if header.base_offset != inner.next_offset {
                return Err(corrupt(position, CorruptionKind::OffsetGap));
            }
            Self::note_batch(inner, &header, position);
            inner.len += frame_len;
            position += frame_len;
        }
        Ok(())
    }

    /// Writes the index file of a closed file segment, once.
    pub(crate) fn persist_index(&self) -> Result<(), FsmError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut inner = self.inner.write();
        if inner.index_file || inner.len == 0 {
            return Ok(());
        }
        let index = SegmentIndex {
            len: inner.len,
            next_offset: inner.next_offset,
            max_timestamp: inner.max_timestamp,
            offsets: inner.index.iter().map(|&(offset, _)| offset).collect(),
            positions: inner.index.iter().map(|&(_, position)| position).collect(),
        };
        let target = index_path(path);
        let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
            return Ok(());
        };
        let encoded = state::frame_body(INDEX_MAGIC, &prost::Message::encode_to_vec(&index));
        state::write_atomic(dir, &name.to_string_lossy(), &encoded)?;
        inner.index_file = true;
        // The index file supersedes the journal.
        remove_if_exists(&journal::journal_path(path))?;
        Ok(())
    }
}
