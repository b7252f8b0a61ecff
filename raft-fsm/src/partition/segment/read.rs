//! Reading a segment: raw byte ranges (snapshots), batches by offset with
//! a byte budget (fetch), and the search by timestamp (ListOffsets).

use std::path::Path;

use bytes::{Bytes, BytesMut};

use super::{pread, Inner, Segment, Store, INDEX_INTERVAL, READ_WINDOW};
use crate::error::{FsmError, PartitionError};
use crate::partition::fetch::FetchedBatch;
use crate::partition::frame::{self, FrameHeader, FRAME_HEADER};

impl Segment {
    /// Copies `len` bytes starting at `position` (must lie below `len()`).
    pub(crate) fn read_raw(&self, position: u64, len: usize) -> Result<Bytes, FsmError> {
        let inner = self.inner.read();
        Self::read_locked(&inner, self.path.as_deref(), position, len)
    }

    fn read_locked(
        inner: &Inner,
        path: Option<&Path>,
        position: u64,
        len: usize,
    ) -> Result<Bytes, FsmError> {
        let path = path.unwrap_or(Path::new(""));
        match &inner.store {
            Store::Memory(frames) => {
                let mut out = BytesMut::with_capacity(len);
                let first = frames
                    .partition_point(|f| f.position + f.header.frame_len() as u64 <= position);
                for f in &frames[first..] {
                    if out.len() == len {
                        break;
                    }
                    // The frame as it would be in a file: header, then payload.
                    let header = frame::header_bytes(&f.header);
                    let mut skip = position.saturating_sub(f.position) as usize;
                    for part in [&header[..], &f.payload[..]] {
                        let from = skip.min(part.len());
                        skip -= from;
                        let take = (part.len() - from).min(len - out.len());
                        out.extend_from_slice(&part[from..from + take]);
                    }
                }
                Ok(out.freeze())
            }
            Store::File {
                file,
                file_len,
                buffer,
            } => {
                let end = position + len as u64;
                if end <= *file_len {
                    return pread(file, path, position, len);
                }
                let mut out = BytesMut::with_capacity(len);
                if position < *file_len {
                    out.extend_from_slice(&pread(
                        file,
                        path,
                        position,
                        (*file_len - position) as usize,
                    )?);
                }
                let to = (end - *file_len).min(buffer.len() as u64);
                let from = (position.max(*file_len) - *file_len).min(to);
                out.extend_from_slice(&buffer[from as usize..to as usize]);
                Ok(out.freeze())
            }
        }
    }

    /// Batches holding offsets from `offset` on, with base below `limit`,
    /// appended to `out` while the record bytes stay within `max_bytes`
    /// (`used` counts those already in `out`; the first batch of `out` is
    /// always taken whole). Returns the new `used`, and whether the read
    /// stopped before the end of the segment (budget or `limit` reached).
    pub(crate) fn read_batches(
        &self,
        offset: u64,
        limit: u64,
        max_bytes: usize,
        mut used: usize,
        out: &mut Vec<FetchedBatch>,
    ) -> Result<(usize, bool), PartitionError> {
        let inner = self.inner.read();
        let to_batch = |h: &FrameHeader, records: Bytes| FetchedBatch {
            base_offset: h.base_offset,
            last_offset: h.next_offset().saturating_sub(1),
            max_timestamp: h.max_timestamp,
            log_append_time: h.append_time,
            leader_epoch: h.leader_epoch,
            records,
        };
        let corrupt = |position: u64| PartitionError::CorruptStorage {
            segment: self.base_offset,
            position,
        };
        if let Store::Memory(frames) = &inner.store {
            let first = frames
                .partition_point(|f| f.header.base_offset <= offset)
                .saturating_sub(1);
            for f in &frames[first..] {
                let header = &f.header;
                if header.next_offset() <= offset {
                    continue;
                }
                if header.base_offset >= limit
                    || (!out.is_empty() && used + header.payload_len() > max_bytes)
                {
                    return Ok((used, true));
                }
                used += header.payload_len();
                out.push(to_batch(header, f.payload.clone()));
            }
            return Ok((used, false));
        }
        let slot = inner
            .index
            .partition_point(|&(o, _)| o <= offset)
            .saturating_sub(1);
        let mut position = inner.index.get(slot).map_or(0, |&(_, p)| p);
        let window_len = max_bytes
            .saturating_add(INDEX_INTERVAL as usize)
            .max(READ_WINDOW);
        let io = |e: FsmError| match e {
            FsmError::Io { source, .. } => PartitionError::Storage {
                kind: source.kind(),
            },
            _ => PartitionError::Storage {
                kind: std::io::ErrorKind::Other,
            },
        };
        let mut window = Bytes::new();
        let mut window_pos = position;
        // Bounded: every iteration advances `position` by a whole frame.
        while position < inner.len {
            let remaining = inner.len - position;
            let mut at = (position - window_pos) as usize;
            if window.len() < at + FRAME_HEADER {
                let len = remaining.min(window_len as u64) as usize;
                window =
                    Self::read_locked(&inner, self.path.as_deref(), position, len).map_err(io)?;
                window_pos = position;
                at = 0;
            }
            let header = frame::parse_header(&window[at..]).ok_or_else(|| corrupt(position))?;
            let frame_len = header.frame_len();
            if frame_len as u64 > remaining {
                return Err(corrupt(position));
            }
            if header.next_offset() > offset {
                if header.base_offset >= limit
                    || (!out.is_empty() && used + header.payload_len() > max_bytes)
                {
                    return Ok((used, true));
                }
                if window.len() < at + frame_len {
                    window = Self::read_locked(&inner, self.path.as_deref(), position, frame_len)
                        .map_err(io)?;
                    window_pos = position;
                    at = 0;
                }
                let bytes = window.slice(at..at + frame_len);
                if !frame::checksum_ok(&header, &bytes) {
                    return Err(corrupt(position));
                }
                used += header.payload_len();
                out.push(to_batch(&header, bytes.slice(FRAME_HEADER..)));
            }
            position += frame_len as u64;
        }
        Ok((used, false))
    }

    /// The first batch holding offsets in `[from, limit)` with a greatest
    /// timestamp at or after `timestamp`.
    pub(crate) fn find_timestamp(
        &self,
        timestamp: i64,
        from: u64,
        limit: u64,
    ) -> Result<Option<FetchedBatch>, PartitionError> {
        if self.max_timestamp() < timestamp {
            return Ok(None);
        }
        // Scan in bounded reads; ListOffsets by time is rare.
        let mut offset = from.max(self.base_offset);
        let end = self.next_offset().min(limit);
        while offset < end {
            let mut batches = Vec::new();
            self.read_batches(offset, end, READ_WINDOW, 0, &mut batches)?;
            let Some(last) = batches.last() else { break };
            offset = last.last_offset + 1;
            if let Some(found) = batches.into_iter().find(|b| b.max_timestamp >= timestamp) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}
