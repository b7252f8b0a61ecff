//! Rebuilding every group from the segment files.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Read;
use std::path::Path;

use super::segment::{
    check_header, is_end_marker, list_segments, segment_path, REUSE_VERSION, SEGMENT_HEADER,
};
use crate::codec::{decode_records, entry_spans, read_frame, Record, FRAME_HEADER};
use crate::error::{CorruptionKind, Error, Result};
use crate::group::{GroupState, IndexEntry, Location};
use crate::GroupId;

/// What recovery found.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    pub groups: HashMap<GroupId, GroupState>,
    /// Live segments, ascending: (id, final length: the bytes of frames after the
    /// header, plus the header).
    pub segments: Vec<(u32, u64)>,
    /// Bytes of frames replayed.
    pub bytes: u64,
    /// Torn tails cut (0 or 1).
    pub tail_cuts: u64,
    /// Bytes dropped by the cut.
    pub tail_bytes_cut: u64,
    /// Final length of the last live segment (0 if none).
    pub last_segment_len: u64,
}

/// Replays every segment of `dir`, cutting a torn tail of the last one.
pub(crate) fn recover(dir: &Path) -> Result<Recovered> {
    let mut ids = list_segments(dir)?;
    // Purge deletes ascending, so a hole means an interrupted purge: everything before the
    // last hole was purgeable. Finish the job.
    if let Some(hole) = ids.windows(2).rposition(|w| w[1] != w[0] + 1) {
        for &id in &ids[..=hole] {
            fs::remove_file(segment_path(dir, id))?;
        }
        ids.drain(..=hole);
        super::segment::sync_dir(dir)?;
    }
    // A last segment without its header (torn while being created: short, or still
    // zeros) never held a frame: remove it first, so that the one before it is read as
    // the last (it may end in a reused file's old bytes, which only a last segment's
    // reading stops at without the length its successor records).
    if let Some(&last) = ids.last() {
        let path = segment_path(dir, last);
        let mut reader = SegmentReader::open(&path)?;
        reader.fill_to(SEGMENT_HEADER)?;
        let bytes = &reader.bytes;
        let unwritten =
            bytes.len() < SEGMENT_HEADER || bytes[..SEGMENT_HEADER].iter().all(|&b| b == 0);
        if unwritten && check_header(bytes, last).is_err() {
            tracing::warn!(path = %path.display(), "removing segment with a torn header");
            fs::remove_file(&path)?;
            ids.pop();
        }
    }
    let mut recovered = Recovered::default();
    let count = ids.len();
    // The previous segment's path and final length, checked against what the next
    // segment's header recorded when it was sealed.
    let mut previous: Option<(std::path::PathBuf, u64)> = None;
    for (position, &id) in ids.iter().enumerate() {
        let is_last = position + 1 == count;
        let path = segment_path(dir, id);
        let mut reader = SegmentReader::open(&path)?;
        reader.fill_to(SEGMENT_HEADER)?;
        let (version, recorded) = match check_header(&reader.bytes, id) {
            Ok(header) => (header.version, u64::from(header.prev_len)),
            Err(kind) => {
                return Err(Error::Corruption {
                    path,
                    offset: 0,
                    kind,
                });
            }
        };
        // A sealed segment of version 2 ends where its successor's header says (a
        // reused file's old bytes may follow its frames).
        let limit = match ids.get(position + 1) {
            Some(&next) if version >= REUSE_VERSION => recorded_len(dir, next)?,
            _ => None,
        };
        if let Some((prev_path, prev_len)) = previous.take() {
            if recorded != 0 && prev_len < recorded {
                // A sealed segment lost whole frames at its end.
                return Err(Error::Corruption {
                    path: prev_path,
                    offset: prev_len,
                    kind: CorruptionKind::Truncated,
                });
            }
        }
        let mut pos = SEGMENT_HEADER;
        let mut torn = false;
        let seed = (version >= REUSE_VERSION).then_some(id);
        loop {
            if limit.is_some_and(|limit| pos as u64 >= limit) {
                break;
            }
            // Read only as far as the frames go, not a reused file's old bytes.
            reader.fill_to(pos + FRAME_HEADER)?;
            if pos >= reader.bytes.len() {
                break;
            }
            if is_end_marker(version, &reader.bytes[pos..]) {
                // The frames end here (a reused file's old bytes may follow).
                break;
            }
            if let Some(len) = reader.bytes.get(pos..pos + 4) {
                let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
                reader.fill_to(pos + FRAME_HEADER + len)?;
            }
            let (payload, total) = match read_frame(&reader.bytes[pos..], seed) {
                Ok(frame) => frame,
                Err(error) if is_last => {
                    tracing::warn!(path = %path.display(), offset = pos, ?error, "cutting torn log tail");
                    recovered.tail_cuts += 1;
                    recovered.tail_bytes_cut += reader.file_len.saturating_sub(pos as u64);
                    torn = true;
                    break;
                }
                Err(error) => {
                    return Err(Error::Corruption {
                        path,
                        offset: pos as u64,
                        kind: error.into(),
                    });
                }
            };
            let payload_offset = pos + FRAME_HEADER;
            apply_frame(&mut recovered.groups, id, payload, payload_offset).map_err(
                |(kind, at)| Error::Corruption {
                    path: path.clone(),
                    offset: (payload_offset + at) as u64,
                    kind,
                },
            )?;
            recovered.bytes += total as u64;
            pos += total;
        }
        let final_len = pos.min(reader.bytes.len()) as u64;
        if let Some(limit) = limit {
            if final_len != limit {
                // Frames missing before the recorded end, or one running past it.
                return Err(Error::Corruption {
                    path,
                    offset: final_len.min(limit),
                    kind: CorruptionKind::Truncated,
                });
            }
        }
        if is_last && reader.file_len > final_len {
            // Cut what follows the last frame: a torn write, or a reused file's old bytes
            // (among which may lie a later frame of this segment whose write reached the
            // disk before an earlier one's: never acknowledged, and never to be read).
            // The segment is sealed from now on.
            if !torn {
                tracing::debug!(path = %path.display(), offset = pos, "cutting a reused segment file's old bytes");
            }
            let file = OpenOptions::new().write(true).open(&path)?;
            file.set_len(final_len)?;
            file.sync_all()?;
        }
        recovered.last_segment_len = final_len;
        previous = Some((path, final_len));
        recovered.segments.push((id, final_len));
    }
    for group in recovered.groups.values_mut() {
        group.soft = None;
    }
    Ok(recovered)
}

/// The length segment `id`'s header records for the segment before it (`None`:
/// unknown, or no valid header).
fn recorded_len(dir: &Path, id: u32) -> Result<Option<u64>> {
    let mut reader = SegmentReader::open(&segment_path(dir, id))?;
    reader.fill_to(SEGMENT_HEADER)?;
    Ok(check_header(&reader.bytes, id)
        .ok()
        .map(|header| u64::from(header.prev_len))
        .filter(|&len| len != 0))
}

/// A segment file read front to back, as far as asked.
struct SegmentReader {
    file: fs::File,
    /// The file's length.
    file_len: u64,
    /// The bytes read so far, from the file's start.
    bytes: Vec<u8>,
    eof: bool,
}

impl SegmentReader {
    fn open(path: &Path) -> std::io::Result<SegmentReader> {
        let file = fs::File::open(path)?;
        let file_len = file.metadata()?.len();
        Ok(SegmentReader {
            file,
            file_len,
            bytes: Vec::new(),
            eof: false,
        })
    }

    /// Reads until `bytes` holds at least `len` bytes or the file ends (at least 1 MiB
    /// at a time).
    fn fill_to(&mut self, len: usize) -> std::io::Result<()> {
        const CHUNK: usize = 1 << 20;
        // Bounded: each pass reads more or reaches the end of the file.
        while self.bytes.len() < len && !self.eof {
            let want = (len - self.bytes.len()).max(CHUNK);
            let read = (&mut self.file)
                .take(want as u64)
                .read_to_end(&mut self.bytes)?;
            self.eof = read == 0 || self.bytes.len() as u64 >= self.file_len;
        }
        Ok(())
    }
}

/// Applies one verified frame. Records are decoded first, so a bad one applies nothing.
fn apply_frame(
    groups: &mut HashMap<GroupId, GroupState>,
    segment: u32,
    payload: &[u8],
    payload_offset: usize,
) -> std::result::Result<(), (CorruptionKind, usize)> {
    let mut records = Vec::new();
    decode_records(payload, |record| records.push(record))?;
    let mut spans = Vec::new();
    for record in records {
        match record {
            Record::Entries {
                group,
                first_index,
                count,
                body,
                body_offset,
            } => {
                let raw = entry_spans(body, count).map_err(|kind| (kind, body_offset))?;
                spans.clear();
                for (term, offset, len) in raw {
                    let file_offset = u32::try_from(payload_offset + body_offset + offset)
                        .map_err(|_| (CorruptionKind::Inconsistent, body_offset))?;
                    spans.push(IndexEntry {
                        term,
                        location: Location {
                            segment,
                            offset: file_offset,
                            len,
                        },
                    });
                }
                let state = groups.entry(group).or_insert_with(GroupState::recovering);
                // Writes never leave a hole in a group's log: one found here means frames
                // are missing (a sealed segment lost its end), not a purged prefix.
                if state.soft.is_none()
                    && !state.index.is_empty()
                    && first_index > state.last_index() + 1
                {
                    return Err((CorruptionKind::Inconsistent, body_offset));
                }
                state.append(first_index, &spans, None);
            }
            Record::HardState(group, hs) => groups
                .entry(group)
                .or_insert_with(GroupState::recovering)
                .set_hard_state(&hs, segment),
            Record::ConfState(group, cs, index) => groups
                .entry(group)
                .or_insert_with(GroupState::recovering)
                .set_conf_state(&cs, index, segment),
            Record::Compact(group, index, prev_term) => groups
                .entry(group)
                .or_insert_with(GroupState::recovering)
                .compact(index, prev_term, segment),
            Record::ApplySnapshot(group, meta) => groups
                .entry(group)
                .or_insert_with(GroupState::recovering)
                .apply_snapshot(&meta, segment),
            Record::Remove(group) => {
                groups.remove(&group);
            }
            Record::SnapshotRef(group, index, term) => groups
                .entry(group)
                .or_insert_with(GroupState::recovering)
                .set_snapshot(index, term, segment),
            Record::Checkpoint(group, cp) => groups
                .entry(group)
                .or_insert_with(GroupState::recovering)
                .apply_checkpoint(&cp, segment),
        }
    }
    Ok(())
}
