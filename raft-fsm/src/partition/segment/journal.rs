//! The index journal of a segment without an index file (the active one):
//! its sparse index entries, appended at each flush after the segment's own
//! sync, each entry with its own CRC. On open, the valid entries below the
//! durable length let only the tail after the last one be read and
//! verified, instead of the whole segment. A torn or stale journal costs a
//! longer scan, never correctness: the scan checks every frame it reads.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{Inner, Segment};
use crate::error::FsmError;

/// Bytes of one journal entry: offset, position, timestamp, crc.
const ENTRY_LEN: usize = 28;

/// The journal file of the segment file at `path`.
pub(crate) fn journal_path(path: &Path) -> PathBuf {
    path.with_extension("journal")
}

/// One journaled sparse index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JournalEntry {
    /// Base offset of the batch at `position`.
    pub(crate) offset: u64,
    /// Byte position of that batch.
    pub(crate) position: u64,
    /// Greatest timestamp of the batches before `position`.
    pub(crate) max_before: i64,
}

fn encode(entry: &JournalEntry) -> [u8; ENTRY_LEN] {
    let mut buf = [0u8; ENTRY_LEN];
    buf[0..8].copy_from_slice(&entry.offset.to_le_bytes());
    buf[8..16].copy_from_slice(&entry.position.to_le_bytes());
    buf[16..24].copy_from_slice(&entry.max_before.to_le_bytes());
    let crc = crc32c::crc32c(&buf[..24]);
    buf[24..28].copy_from_slice(&crc.to_le_bytes());
    buf
}

fn decode(buf: &[u8]) -> Option<JournalEntry> {
    let word = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(buf.get(at..at + 8)?);
        Some(b)
    };
    let crc = u32::from_le_bytes(buf.get(24..28)?.try_into().ok()?);
    if crc32c::crc32c(buf.get(..24)?) != crc {
        return None;
    }
    Some(JournalEntry {
        offset: u64::from_le_bytes(word(0)?),
        position: u64::from_le_bytes(word(8)?),
        max_before: i64::from_le_bytes(word(16)?),
    })
}

/// The valid prefix of the journal of a segment at `base_offset` whose first
/// `durable_len` bytes are durable: checksummed entries, strictly
/// increasing, starting at the segment's start, below `durable_len`.
/// Unreadable journals give no entries.
pub(crate) fn read_entries(path: &Path, base_offset: u64, durable_len: u64) -> Vec<JournalEntry> {
    let mut bytes = Vec::new();
    let read = OpenOptions::new()
        .read(true)
        .open(journal_path(path))
        .and_then(|mut f| f.read_to_end(&mut bytes));
    if read.is_err() {
        return Vec::new();
    }
    let mut entries: Vec<JournalEntry> = Vec::new();
    for chunk in bytes.chunks_exact(ENTRY_LEN) {
        let Some(entry) = decode(chunk) else { break };
        let fits = match entries.last() {
            None => entry.offset == base_offset && entry.position == 0,
            Some(last) => entry.offset > last.offset && entry.position > last.position,
        };
        if !fits || entry.position >= durable_len {
            break;
        }
        entries.push(entry);
    }
    entries
}

impl Segment {
    /// Appends the index entries not yet journaled and syncs the journal.
    /// Call after [`Segment::sync`], so entries point at durable bytes.
    pub(crate) fn journal_index(&self) -> Result<(), FsmError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut inner = self.inner.write();
        if inner.index_file || inner.journaled >= inner.index.len() {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity((inner.index.len() - inner.journaled) * ENTRY_LEN);
        for slot in inner.journaled..inner.index.len() {
            let (offset, position) = inner.index[slot];
            let max_before = inner
                .index_max_before
                .get(slot)
                .copied()
                .unwrap_or(i64::MIN);
            bytes.extend_from_slice(&encode(&JournalEntry {
                offset,
                position,
                max_before,
            }));
        }
        let journal = journal_path(path);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal)
            .map_err(|e| FsmError::io(&journal, e))?;
        file.write_all(&bytes)
            .map_err(|e| FsmError::io(&journal, e))?;
        file.sync_data().map_err(|e| FsmError::io(&journal, e))?;
        inner.journaled = inner.index.len();
        Ok(())
    }

    /// Starts `inner` from journaled entries (all but the last, which the
    /// tail scan from its position re-creates) and cuts the journal file to
    /// them. Returns the position the scan must start at.
    pub(super) fn resume_from_journal(
        inner: &mut Inner,
        path: &Path,
        entries: &[JournalEntry],
    ) -> Result<u64, FsmError> {
        let Some((last, kept)) = entries.split_last() else {
            super::remove_if_exists(&journal_path(path))?;
            return Ok(0);
        };
        inner.index = kept.iter().map(|e| (e.offset, e.position)).collect();
        inner.index_max_before = kept.iter().map(|e| e.max_before).collect();
        inner.len = last.position;
        inner.next_offset = last.offset;
        inner.max_timestamp = last.max_before;
        // Forces an index entry at the first batch the scan reads.
        inner.since_index = u64::MAX;
        inner.journaled = kept.len();
        let journal = journal_path(path);
        let file = OpenOptions::new()
            .write(true)
            .open(&journal)
            .map_err(|e| FsmError::io(&journal, e))?;
        file.set_len((kept.len() * ENTRY_LEN) as u64)
            .map_err(|e| FsmError::io(&journal, e))?;
        file.sync_all().map_err(|e| FsmError::io(&journal, e))?;
        Ok(last.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_reject_damage() {
        let entry = JournalEntry {
            offset: 7,
            position: 4096,
            max_before: -3,
        };
        let mut bytes = encode(&entry);
        assert_eq!(decode(&bytes), Some(entry));
        bytes[3] ^= 1;
        assert_eq!(decode(&bytes), None);
        assert_eq!(decode(&bytes[..10]), None);
    }
}
