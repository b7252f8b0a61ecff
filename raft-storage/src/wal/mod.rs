//! The file side of the engine: segments, the active segment, reads of old entries,
//! recovery and snapshot files.

pub(crate) mod recovery;
pub(crate) mod segment;
pub(crate) mod snapshot_file;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use protobuf::Message;
use raft::eraftpb::Entry;

use crate::codec::ENTRY_PREFIX;
use crate::error::{CorruptionKind, Error, Result};
use crate::group::IndexEntry;
use segment::{create_segment, segment_path, sync_dir, SEGMENT_HEADER};

/// The segment new frames go to. Owned by the engine's write lock.
#[derive(Debug)]
pub(crate) struct ActiveSegment {
    pub id: u32,
    pub file: Arc<File>,
    pub len: u64,
}

/// Segment files of one engine directory.
#[derive(Debug)]
pub(crate) struct Wal {
    dir: PathBuf,
    segment_size: u64,
    /// Read handles of every live segment, the active one included.
    readers: RwLock<BTreeMap<u32, Arc<File>>>,
    /// Final lengths of the sealed segments (every live one but the active one).
    sealed: parking_lot::Mutex<BTreeMap<u32, u64>>,
    /// Sum of `sealed`.
    sealed_bytes: AtomicU64,
}

impl Wal {
    pub fn new(dir: &Path, segment_size: u64, segments: &[u32]) -> Result<Wal> {
        let mut readers = BTreeMap::new();
        let mut sealed = BTreeMap::new();
        for &id in segments {
            let file = File::open(segment_path(dir, id))?;
            sealed.insert(id, file.metadata()?.len());
            readers.insert(id, Arc::new(file));
        }
        let sealed_bytes = sealed.values().sum();
        Ok(Wal {
            dir: dir.to_path_buf(),
            segment_size,
            readers: RwLock::new(readers),
            sealed: parking_lot::Mutex::new(sealed),
            sealed_bytes: AtomicU64::new(sealed_bytes),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts segment `id` (recording `prev_len`, the final length of the segment before
    /// it) and registers it for reads.
    pub fn create(&self, id: u32, prev_len: u64) -> Result<ActiveSegment> {
        // Segments stay under 4 GiB; a length that does not fit is recorded as unknown.
        let prev_len = u32::try_from(prev_len).unwrap_or(0);
        let file = Arc::new(create_segment(&self.dir, id, prev_len)?);
        self.readers.write().insert(id, Arc::clone(&file));
        Ok(ActiveSegment {
            id,
            file,
            len: SEGMENT_HEADER as u64,
        })
    }

    /// True if a frame of `len` bytes does not fit in the active segment (an empty segment
    /// takes any frame).
    /// `current` is the segment's length including frames not written yet.
    pub fn needs_rotation(&self, current: u64, len: usize) -> bool {
        current > SEGMENT_HEADER as u64 && current + len as u64 > self.segment_size
    }

    /// Seals the active segment (durably) and starts the next one.
    pub fn rotate(&self, active: &mut ActiveSegment) -> Result<()> {
        active.file.sync_data()?;
        let next = active
            .id
            .checked_add(1)
            .ok_or(Error::TooLarge { size: usize::MAX })?;
        let sealed = (active.id, active.len);
        *active = self.create(next, active.len)?;
        self.sealed.lock().insert(sealed.0, sealed.1);
        self.sealed_bytes.fetch_add(sealed.1, Ordering::AcqRel);
        Ok(())
    }

    /// Bytes of the sealed segments (every live segment but the active one).
    pub fn sealed_bytes(&self) -> u64 {
        self.sealed_bytes.load(Ordering::Acquire)
    }

    /// Writes one frame with one `write` call; returns its offset in the segment.
    pub fn append(&self, active: &mut ActiveSegment, frame: &[u8]) -> io::Result<u64> {
        let offset = active.len;
        (&*active.file).write_all(frame)?;
        active.len += frame.len() as u64;
        Ok(offset)
    }

    /// Ids of live segments, ascending.
    pub fn segment_ids(&self) -> Vec<u32> {
        self.readers.read().keys().copied().collect()
    }

    /// Deletes segments below `bound` (never the active one); returns how many went.
    pub fn purge_below(&self, bound: u32) -> Result<u64> {
        let doomed: Vec<u32> = self
            .readers
            .read()
            .range(..bound)
            .map(|(&id, _)| id)
            .collect();
        if doomed.is_empty() {
            return Ok(0);
        }
        // Ascending order: an interrupted purge leaves a suffix, which recovery expects.
        for &id in &doomed {
            match std::fs::remove_file(segment_path(&self.dir, id)) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(error.into()),
            }
            self.readers.write().remove(&id);
            if let Some(len) = self.sealed.lock().remove(&id) {
                self.sealed_bytes.fetch_sub(len, Ordering::AcqRel);
            }
        }
        sync_dir(&self.dir)?;
        Ok(doomed.len() as u64)
    }

    /// Reads entries by location, merging neighbours in one file into one read.
    pub fn read_entries(&self, locations: &[IndexEntry], out: &mut Vec<Entry>) -> Result<()> {
        let mut buf = Vec::new();
        let mut at = 0;
        while at < locations.len() {
            let first = locations[at].location;
            let mut end = at + 1;
            while end < locations.len() {
                let (prev, next) = (locations[end - 1].location, locations[end].location);
                let contiguous = next.segment == prev.segment
                    && u64::from(next.offset)
                        == u64::from(prev.offset) + u64::from(prev.len) + ENTRY_PREFIX as u64;
                if !contiguous || end - at >= 1024 {
                    break;
                }
                end += 1;
            }
            let last = locations[end - 1].location;
            let span =
                (u64::from(last.offset) + u64::from(last.len) - u64::from(first.offset)) as usize;
            let file = self.readers.read().get(&first.segment).cloned();
            let path = || segment_path(&self.dir, first.segment);
            let file = file.ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, path().display().to_string())
            })?;
            buf.resize(span, 0);
            file.read_exact_at(&mut buf, u64::from(first.offset))?;
            for entry in &locations[at..end] {
                let start = (entry.location.offset - first.offset) as usize;
                let bytes = &buf[start..start + entry.location.len as usize];
                let decoded = Entry::parse_from_bytes(bytes).map_err(|_| Error::Corruption {
                    path: path(),
                    offset: u64::from(entry.location.offset),
                    kind: CorruptionKind::Decode,
                })?;
                out.push(decoded);
            }
            at = end;
        }
        Ok(())
    }
}
