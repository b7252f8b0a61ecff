//! Rebuilding every group from the segment files.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Read;
use std::path::Path;

use super::segment::{check_header, list_segments, segment_path, SEGMENT_HEADER};
use crate::codec::{decode_records, entry_spans, read_frame, Record, FRAME_HEADER};
use crate::error::{CorruptionKind, Error, Result};
use crate::group::{GroupState, IndexEntry, Location};
use crate::GroupId;

/// What recovery found.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    pub groups: HashMap<GroupId, GroupState>,
    /// Live segment ids, ascending.
    pub segments: Vec<u32>,
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
    let mut recovered = Recovered::default();
    let mut bytes = Vec::new();
    let count = ids.len();
    // The previous segment's path and final length, checked against what the next
    // segment's header recorded when it was sealed.
    let mut previous: Option<(std::path::PathBuf, u64)> = None;
    for (position, &id) in ids.iter().enumerate() {
        let is_last = position + 1 == count;
        let path = segment_path(dir, id);
        bytes.clear();
        fs::File::open(&path)?.read_to_end(&mut bytes)?;
        let recorded = match check_header(&bytes, id) {
            Ok(recorded) => u64::from(recorded),
            Err(kind) => {
                if is_last && bytes.len() < SEGMENT_HEADER {
                    // Torn while being created: it never held a frame.
                    tracing::warn!(path = %path.display(), "removing segment with a torn header");
                    fs::remove_file(&path)?;
                    continue;
                }
                return Err(Error::Corruption {
                    path,
                    offset: 0,
                    kind,
                });
            }
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
        while pos < bytes.len() {
            let (payload, total) = match read_frame(&bytes[pos..]) {
                Ok(frame) => frame,
                Err(error) if is_last => {
                    tracing::warn!(path = %path.display(), offset = pos, ?error, "cutting torn log tail");
                    recovered.tail_cuts += 1;
                    recovered.tail_bytes_cut += (bytes.len() - pos) as u64;
                    let file = OpenOptions::new().write(true).open(&path)?;
                    file.set_len(pos as u64)?;
                    file.sync_all()?;
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
        let final_len = pos.min(bytes.len()) as u64;
        recovered.last_segment_len = final_len;
        previous = Some((path, final_len));
        recovered.segments.push(id);
    }
    for group in recovered.groups.values_mut() {
        group.soft = None;
    }
    Ok(recovered)
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
