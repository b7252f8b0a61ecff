//! The file side of the engine: segments, the active segment, reads of old entries,
//! recovery and snapshot files.

pub(crate) mod recovery;
pub(crate) mod segment;
pub(crate) mod snapshot_file;

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
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
use segment::{
    adopt_segment, create_segment, list_recycled, prefill_file, recycled_path, remove_prefills,
    segment_path, sync_dir, SEGMENT_HEADER,
};

/// The end of the frames in a segment whose file runs further (a recycled file's old
/// content): nine zeros where the next frame header would start.
const END_MARKER: [u8; crate::codec::FRAME_HEADER] = [0; crate::codec::FRAME_HEADER];

/// The segment new frames go to. Owned by the engine's write lock.
#[derive(Debug)]
pub(crate) struct ActiveSegment {
    pub id: u32,
    pub file: Arc<File>,
    pub len: u64,
    /// The file's length when it became this segment: a recycled file holds an older
    /// segment's bytes up to here (a new file: just the header).
    pub stale_end: u64,
}

impl ActiveSegment {
    /// True if the segment is a recycled file.
    pub fn is_recycled(&self) -> bool {
        self.stale_end > SEGMENT_HEADER as u64
    }
}

/// Whether a prefilled file of `segment_size` bytes may take disk that has `available`
/// bytes free: only while four segments' worth stays free after it (the active segment,
/// the next one and room for snapshots), so that files written ahead for speed never
/// take the room the log itself needs.
fn room_to_prefill(available: u64, segment_size: u64) -> bool {
    available >= segment_size.saturating_mul(5)
}

/// Segment files of one engine directory.
#[derive(Debug)]
pub(crate) struct Wal {
    dir: PathBuf,
    segment_size: u64,
    /// Purged segment files kept to become new segments, at most.
    recycle_max: usize,
    /// Purged segment files kept, oldest first.
    pool: parking_lot::Mutex<std::collections::VecDeque<PathBuf>>,
    /// Read handles of every live segment, the active one included.
    readers: RwLock<BTreeMap<u32, Arc<File>>>,
    /// Final lengths of the sealed segments (every live one but the active one).
    sealed: parking_lot::Mutex<BTreeMap<u32, u64>>,
    /// Sum of `sealed`.
    sealed_bytes: AtomicU64,
}

impl Wal {
    /// The log in `dir` with its recovered segments: (id, final length) ascending. Keeps
    /// up to `recycle_max` purged segment files found in `dir` for reuse.
    pub fn new(
        dir: &Path,
        segment_size: u64,
        recycle_max: usize,
        segments: &[(u32, u64)],
    ) -> Result<Wal> {
        let mut readers = BTreeMap::new();
        let mut sealed = BTreeMap::new();
        for &(id, len) in segments {
            let file = File::open(segment_path(dir, id))?;
            sealed.insert(id, len);
            readers.insert(id, Arc::new(file));
        }
        let sealed_bytes = sealed.values().sum();
        remove_prefills(dir)?;
        let mut pool = std::collections::VecDeque::new();
        for id in list_recycled(dir)? {
            let path = recycled_path(dir, id);
            if pool.len() < recycle_max {
                pool.push_back(path);
            } else {
                std::fs::remove_file(path)?;
            }
        }
        Ok(Wal {
            dir: dir.to_path_buf(),
            segment_size,
            recycle_max,
            pool: parking_lot::Mutex::new(pool),
            readers: RwLock::new(readers),
            sealed: parking_lot::Mutex::new(sealed),
            sealed_bytes: AtomicU64::new(sealed_bytes),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Fills the kept files up to the configured number with zero-written files of a
    /// segment's size; returns how many it wrote. Stops at the first failure (a full
    /// disk, say), logging it: the files are a speed-up, never needed.
    pub fn prefill(&self) -> u64 {
        let mut written = 0;
        let mut pool = self.pool.lock();
        // Named from the top of the id space down, so that they never take the name
        // purge gives a segment's file (segment ids count up from 1).
        let mut id = u32::MAX;
        while pool.len() < self.recycle_max {
            let path = recycled_path(&self.dir, id);
            if pool.contains(&path) {
                id -= 1;
                continue;
            }
            let available = fs2::available_space(&self.dir).unwrap_or(0);
            if !room_to_prefill(available, self.segment_size) {
                tracing::warn!(dir = %self.dir.display(), available, "too little free disk to prefill a segment file");
                break;
            }
            match prefill_file(&self.dir, id, self.segment_size) {
                Ok(path) => {
                    pool.push_back(path);
                    written += 1;
                }
                Err(error) => {
                    tracing::warn!(dir = %self.dir.display(), %error, "could not prefill a segment file");
                    let _ = remove_prefills(&self.dir);
                    break;
                }
            }
            id -= 1;
        }
        if written > 0 {
            if let Err(error) = sync_dir(&self.dir) {
                tracing::warn!(dir = %self.dir.display(), %error, "could not sync the log directory after prefilling");
            }
        }
        written
    }

    /// Starts segment `id` (recording `prev_len`, the final length of the segment before
    /// it) and registers it for reads: a purged segment's file if one is kept (its blocks
    /// are on disk already, so syncs of frames written over them write data only), else
    /// a new file.
    pub fn create(&self, id: u32, prev_len: u64) -> Result<ActiveSegment> {
        // Segments stay under 4 GiB; a length that does not fit is recorded as unknown.
        let prev_len = u32::try_from(prev_len).unwrap_or(0);
        let recycled = self.pool.lock().pop_front();
        let adopted = recycled.and_then(|path| {
            adopt_segment(&self.dir, &path, id, prev_len)
                .inspect_err(|error| {
                    tracing::warn!(path = %path.display(), %error, "a kept segment file could not be reused; starting a new one");
                    let _ = std::fs::remove_file(&path);
                })
                .ok()
        });
        let (file, stale_end) = match adopted {
            Some(adopted) => adopted,
            None => (
                create_segment(&self.dir, id, prev_len)?,
                SEGMENT_HEADER as u64,
            ),
        };
        let file = Arc::new(file);
        self.readers.write().insert(id, Arc::clone(&file));
        Ok(ActiveSegment {
            id,
            file,
            len: SEGMENT_HEADER as u64,
            stale_end,
        })
    }

    /// True if a frame of `len` bytes does not fit in the active segment (an empty segment
    /// takes any frame). `current` is the segment's length including frames not written
    /// yet.
    pub fn needs_rotation(&self, current: u64, len: usize) -> bool {
        current > SEGMENT_HEADER as u64 && current + len as u64 > self.segment_size
    }

    /// Seals the active segment (durably) and starts the next one.
    pub fn rotate(&self, active: &mut ActiveSegment) -> Result<()> {
        active.file.sync_data()?;
        if active.stale_end > active.len {
            // Drop the old bytes after the frames. Not synced: if a crash loses this,
            // recovery stops at the length the next segment's header records.
            if let Err(error) = active.file.set_len(active.len) {
                tracing::debug!(segment = active.id, %error, "old end of a sealed segment kept");
            }
        }
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

    /// Writes `frames` at the segment's end with one `pwrite` call; returns their offset
    /// in the segment. In a recycled file, nine zeros follow them (the next write
    /// overwrites them), so that recovery knows where the frames end and the old bytes
    /// begin: they go in the same call, appended to `frames` for it and taken off after.
    pub fn append(&self, active: &mut ActiveSegment, frames: &mut Vec<u8>) -> io::Result<u64> {
        let offset = active.len;
        let end = offset + frames.len() as u64;
        let marked = active.stale_end > end;
        if marked {
            frames.extend_from_slice(&END_MARKER);
        }
        let written = active.file.write_all_at(frames, offset);
        if marked {
            frames.truncate(frames.len() - END_MARKER.len());
        }
        written?;
        active.len = end;
        Ok(offset)
    }

    /// Ids of live segments, ascending.
    pub fn segment_ids(&self) -> Vec<u32> {
        self.readers.read().keys().copied().collect()
    }

    /// Deletes segments below `bound` (never the active one), keeping up to the
    /// configured number of their files for reuse; returns how many went.
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
            self.readers.write().remove(&id);
            let path = segment_path(&self.dir, id);
            let mut pool = self.pool.lock();
            let outcome = if pool.len() < self.recycle_max {
                let kept = recycled_path(&self.dir, id);
                std::fs::rename(&path, &kept).map(|()| pool.push_back(kept))
            } else {
                std::fs::remove_file(&path)
            };
            drop(pool);
            match outcome {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(error.into()),
            }
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

#[cfg(test)]
mod tests {
    use super::room_to_prefill;

    #[test]
    fn prefill_leaves_four_segments_of_disk_free() {
        assert!(room_to_prefill(5 << 20, 1 << 20));
        assert!(!room_to_prefill((5 << 20) - 1, 1 << 20));
        assert!(!room_to_prefill(0, 1 << 20));
        assert!(!room_to_prefill(600 << 20, 128 << 20));
        assert!(room_to_prefill(640 << 20, 128 << 20));
    }
}
