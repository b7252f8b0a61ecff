//! One segment of a partition's log: a run of record-batch frames starting
//! at a base offset, in memory or in a file, with a sparse offset index.
//!
//! Segments are append-only once opened: readers and snapshot sources may
//! hold an `Arc<Segment>` and read any byte range below a length they saw,
//! while apply keeps appending. A segment removed from the log (retention)
//! stays readable through such an `Arc` (an unlinked file stays open).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use parking_lot::RwLock;

use super::frame::{self, FrameHeader};
use crate::error::FsmError;

pub(crate) mod journal;
pub(crate) mod open;
mod read;

/// A sparse index entry every this many bytes of a file segment.
const INDEX_INTERVAL: u64 = 4096;
/// Appends are gathered in memory up to this size before one `write`. The buffer is
/// allocated at this size on the first append after a sync (never regrown, so never
/// copied), a frame that does not fit goes to the file on its own, and a sync gives the
/// buffer back: a partition that went quiet holds none.
const WRITE_BUFFER: usize = 256 * 1024;
/// Reads from files are done in windows of at least this size.
const READ_WINDOW: usize = 64 * 1024;

/// One batch held by an in-memory segment: its header and its payload,
/// shared with the command it came from (no copy).
struct MemFrame {
    position: u64,
    header: FrameHeader,
    payload: Bytes,
}

/// Where the bytes of a segment live.
enum Store {
    /// Every frame, dense (the whole segment is in memory anyway).
    Memory(Vec<MemFrame>),
    /// A file plus the tail not yet written to it.
    File {
        file: Arc<File>,
        file_len: u64,
        buffer: Vec<u8>,
    },
}

struct Inner {
    store: Store,
    len: u64,
    next_offset: u64,
    max_timestamp: i64,
    /// Sparse `(base offset, position)` of some batches (file segments).
    index: Vec<(u64, u64)>,
    since_index: u64,
    /// Greatest timestamp of the batches before each index entry.
    index_max_before: Vec<i64>,
    /// Index entries already written to the index journal.
    journaled: usize,
    /// Whether an index file matching this (closed) segment exists.
    index_file: bool,
}

/// One segment of a partition log.
pub(crate) struct Segment {
    base_offset: u64,
    path: Option<PathBuf>,
    inner: RwLock<Inner>,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("base_offset", &self.base_offset)
            .field("path", &self.path)
            .field("len", &self.len())
            .finish()
    }
}

fn pread(file: &File, path: &Path, position: u64, len: usize) -> Result<Bytes, FsmError> {
    let mut buf = BytesMut::zeroed(len);
    file.read_exact_at(&mut buf, position)
        .map_err(|e| FsmError::io(path, e))?;
    Ok(buf.freeze())
}

impl Segment {
    fn with_store(base_offset: u64, path: Option<PathBuf>, store: Store) -> Self {
        let inner = Inner {
            store,
            len: 0,
            next_offset: base_offset,
            max_timestamp: i64::MIN,
            index: Vec::new(),
            since_index: 0,
            index_max_before: Vec::new(),
            journaled: 0,
            index_file: false,
        };
        Segment {
            base_offset,
            path,
            inner: RwLock::new(inner),
        }
    }

    /// A new empty in-memory segment.
    pub(crate) fn memory(base_offset: u64) -> Self {
        Self::with_store(base_offset, None, Store::Memory(Vec::new()))
    }

    /// A new empty file segment at `path` (an existing file is truncated).
    pub(crate) fn create(path: PathBuf, base_offset: u64) -> Result<Self, FsmError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| FsmError::io(&path, e))?;
        // Index files of an earlier file of the same name describe nothing now.
        remove_if_exists(&open::index_path(&path))?;
        remove_if_exists(&journal::journal_path(&path))?;
        let store = Store::File {
            file: Arc::new(file),
            file_len: 0,
            buffer: Vec::new(),
        };
        Ok(Self::with_store(base_offset, Some(path), store))
    }

    fn note_batch(inner: &mut Inner, header: &FrameHeader, position: u64) {
        if inner.index.is_empty() || inner.since_index >= INDEX_INTERVAL {
            inner.index.push((header.base_offset, position));
            inner.index_max_before.push(inner.max_timestamp);
            inner.since_index = 0;
        }
        inner.since_index += header.frame_len() as u64;
        inner.next_offset = header.next_offset();
        inner.max_timestamp = inner.max_timestamp.max(header.max_timestamp);
    }

    /// The first offset of the segment.
    pub(crate) fn base_offset(&self) -> u64 {
        self.base_offset
    }

    /// The file, for file segments.
    pub(crate) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Bytes in the segment.
    pub(crate) fn len(&self) -> u64 {
        self.inner.read().len
    }

    /// The offset after the last batch.
    pub(crate) fn next_offset(&self) -> u64 {
        self.inner.read().next_offset
    }

    /// Greatest batch timestamp, `i64::MIN` when empty.
    pub(crate) fn max_timestamp(&self) -> i64 {
        self.inner.read().max_timestamp
    }

    /// Appends the frame of `header` (checksum included) and `payload`.
    pub(crate) fn append(&self, header: &FrameHeader, payload: &Bytes) -> Result<(), FsmError> {
        let mut inner = self.inner.write();
        let position = inner.len;
        Self::note_batch(&mut inner, header, position);
        inner.len += header.frame_len() as u64;
        match &mut inner.store {
            Store::Memory(frames) => {
                frames.push(MemFrame {
                    position,
                    header: *header,
                    payload: payload.clone(),
                });
            }
            Store::File {
                file,
                file_len,
                buffer,
            } => {
                let path = self.path.as_deref();
                let head = frame::header_bytes(header);
                let frame_len = head.len() + payload.len();
                if buffer.len() + frame_len > WRITE_BUFFER {
                    Self::write_buffer(path, file, file_len, buffer)?;
                }
                if frame_len > WRITE_BUFFER {
                    // Larger than the buffer: straight to the file, after what was
                    // buffered before it.
                    Self::write_at(path, file, file_len, &head)?;
                    Self::write_at(path, file, file_len, payload)?;
                } else {
                    if buffer.capacity() < WRITE_BUFFER {
                        buffer.reserve_exact(WRITE_BUFFER - buffer.len());
                    }
                    buffer.extend_from_slice(&head);
                    buffer.extend_from_slice(payload);
                }
            }
        }
        Ok(())
    }

    fn write_at(
        path: Option<&Path>,
        file: &File,
        file_len: &mut u64,
        bytes: &[u8],
    ) -> Result<(), FsmError> {
        file.write_all_at(bytes, *file_len)
            .map_err(|e| FsmError::io(path.unwrap_or(Path::new("")), e))?;
        *file_len += bytes.len() as u64;
        Ok(())
    }

    fn write_buffer(
        path: Option<&Path>,
        file: &File,
        file_len: &mut u64,
        buffer: &mut Vec<u8>,
    ) -> Result<(), FsmError> {
        if buffer.is_empty() {
            return Ok(());
        }
        Self::write_at(path, file, file_len, buffer)?;
        buffer.clear();
        Ok(())
    }

    /// Writes buffered bytes and syncs the file; returns the durable length.
    pub(crate) fn sync(&self) -> Result<u64, FsmError> {
        let mut inner = self.inner.write();
        let len = inner.len;
        if let Store::File {
            file,
            file_len,
            buffer,
        } = &mut inner.store
        {
            Self::write_buffer(self.path.as_deref(), file, file_len, buffer)?;
            // Syncs come every few thousand appends of a busy partition (or once for
            // a quiet one): the next append allocates anew.
            *buffer = Vec::new();
            let path = self.path.as_deref().unwrap_or(Path::new(""));
            file.sync_data().map_err(|e| FsmError::io(path, e))?;
        }
        Ok(len)
    }

    /// Removes the segment's file (readers holding it keep reading).
    pub(crate) fn delete_file(&self) -> Result<(), FsmError> {
        if let Some(path) = &self.path {
            remove_if_exists(path)?;
            remove_if_exists(&open::index_path(path))?;
            remove_if_exists(&journal::journal_path(path))?;
        }
        Ok(())
    }
}

/// Removes a file; a missing file is fine.
pub(crate) fn remove_if_exists(path: &Path) -> Result<(), FsmError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(FsmError::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffered(segment: &Segment) -> (usize, usize) {
        match &segment.inner.read().store {
            Store::File { buffer, .. } => (buffer.len(), buffer.capacity()),
            Store::Memory(_) => (0, 0),
        }
    }

    #[test]
    fn frames_of_every_size_read_back_in_order_and_the_buffer_stays_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("00000000000000000000.log");
        let segment = Segment::create(path.clone(), 0).expect("create");
        // Small frames, one that just fits the buffer, ones larger than it, small again.
        let sizes = [
            100,
            3_000,
            WRITE_BUFFER - frame::FRAME_HEADER,
            17,
            WRITE_BUFFER,
            5 * WRITE_BUFFER + 3,
            1,
            WRITE_BUFFER / 2,
            WRITE_BUFFER / 2,
            250,
        ];
        let mut expected = Vec::new();
        let mut offset = 0u64;
        for (i, &size) in sizes.iter().enumerate() {
            let payload = Bytes::from(vec![i as u8 + 1; size]);
            let header = frame::build(offset, 1, i as i64, 0, 1, &payload);
            segment.append(&header, &payload).expect("append");
            expected.extend_from_slice(&frame::header_bytes(&header));
            expected.extend_from_slice(&payload);
            offset += 1;
            let (len, capacity) = buffered(&segment);
            assert!(
                len <= WRITE_BUFFER && capacity <= WRITE_BUFFER,
                "{len}/{capacity}"
            );
            // What is in the file and what is buffered read back as one log.
            let all = segment.read_raw(0, expected.len()).expect("read");
            assert_eq!(&all[..], &expected[..], "after frame {i}");
        }
        assert_eq!(segment.len(), expected.len() as u64);
        assert_eq!(segment.next_offset(), offset);
        assert_eq!(segment.sync().expect("sync"), expected.len() as u64);
        assert_eq!(buffered(&segment), (0, 0), "a sync gives the buffer back");
        assert_eq!(std::fs::read(&path).expect("file"), expected);
        // Appending after a sync buffers again, at the buffer's size.
        let payload = Bytes::from_static(b"again");
        let header = frame::build(offset, 1, 0, 0, 1, &payload);
        segment.append(&header, &payload).expect("append");
        assert_eq!(buffered(&segment).1, WRITE_BUFFER);
    }
}
