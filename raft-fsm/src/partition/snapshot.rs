//! Snapshots of a partition: a header (the [`PartitionState`] framed with
//! magic and CRC) followed by the raw frames of every segment, captured by
//! length so apply can go on while the stream is read.
//!
//! The stream is deterministic: it carries only replicated data and the
//! segment layout, which a restore reproduces exactly.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};

use super::epochs::LeaderEpochs;
use super::frame::{self, FRAME_HEADER};
use super::machine::{segment_file_name, PartitionStateMachine, CHECKPOINT_FILE};
use super::producer::ProducerTable;
use super::segment::Segment;
use super::state::{self, PartitionState, STATE_PREFIX};
use crate::entry::SnapshotMeta;
use crate::error::{CorruptionKind, FsmError};
use crate::state_machine::SnapshotSource;

/// A partition snapshot being streamed.
#[derive(Debug)]
pub struct PartitionSnapshot {
    meta: SnapshotMeta,
    header: Option<Bytes>,
    segments: VecDeque<(Arc<Segment>, u64)>,
    position: u64,
    chunk_bytes: usize,
}

impl SnapshotSource for PartitionSnapshot {
    fn meta(&self) -> SnapshotMeta {
        self.meta
    }

    fn next_chunk(&mut self) -> Result<Option<Bytes>, FsmError> {
        if let Some(header) = self.header.take() {
            return Ok(Some(header));
        }
        // Bounded by the number of captured segments.
        while let Some((segment, len)) = self.segments.front() {
            if self.position >= *len {
                self.segments.pop_front();
                self.position = 0;
                continue;
            }
            let take = (*len - self.position).min(self.chunk_bytes as u64) as usize;
            let chunk = segment.read_raw(self.position, take)?;
            self.position += take as u64;
            return Ok(Some(chunk));
        }
        Ok(None)
    }
}

/// Reads exact byte counts from a sequence of chunks.
struct ChunkStream<'a> {
    chunks: &'a mut dyn Iterator<Item = Result<Bytes, FsmError>>,
    current: Bytes,
    position: u64,
}

impl ChunkStream<'_> {
    fn bad(&self, kind: CorruptionKind) -> FsmError {
        FsmError::BadSnapshot {
            position: self.position,
            kind,
        }
    }

    /// Up to `max` bytes (at least one), or `None` at the end of the stream.
    fn next_piece(&mut self, max: usize) -> Result<Option<Bytes>, FsmError> {
        // Bounded by the chunks the iterator yields; empty chunks are skipped.
        while self.current.is_empty() {
            match self.chunks.next() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(None),
            }
        }
        let take = max.min(self.current.len());
        self.position += take as u64;
        Ok(Some(self.current.split_to(take)))
    }

    fn read_exact(&mut self, len: usize) -> Result<Bytes, FsmError> {
        let mut out = BytesMut::with_capacity(len);
        while out.len() < len {
            let piece = self
                .next_piece(len - out.len())?
                .ok_or_else(|| self.bad(CorruptionKind::Truncated))?;
            out.extend_from_slice(&piece);
        }
        Ok(out.freeze())
    }
}

impl PartitionStateMachine {
    /// Captures a snapshot at the applied index.
    pub(crate) fn snapshot_source(&self) -> PartitionSnapshot {
        let (state, segments) = self.capture_state(false);
        PartitionSnapshot {
            meta: SnapshotMeta {
                index: state.applied_index,
                term: state.applied_term,
            },
            header: Some(Bytes::from(state::encode_framed(&state))),
            segments: segments.into(),
            position: 0,
            chunk_bytes: self.config.snapshot_chunk_bytes,
        }
    }

    /// Replaces the state with a snapshot's; the old state stays on error.
    pub(crate) fn restore_from(
        &mut self,
        meta: SnapshotMeta,
        chunks: &mut dyn Iterator<Item = Result<Bytes, FsmError>>,
    ) -> Result<(), FsmError> {
        let mut stream = ChunkStream {
            chunks,
            current: Bytes::new(),
            position: 0,
        };
        let prefix = stream.read_exact(STATE_PREFIX)?;
        let (len, crc) = state::parse_prefix(&prefix).map_err(|kind| stream.bad(kind))?;
        let body = stream.read_exact(len)?;
        let state: PartitionState =
            state::decode_body(&body, crc).map_err(|kind| stream.bad(kind))?;
        if state.applied_index != meta.index {
            return Err(FsmError::SnapshotMismatch {
                meta: meta.index,
                header: state.applied_index,
            });
        }
        let generation = self.generation + 1;
        let mut segments = Vec::with_capacity(state.segments.len());
        let loaded = self.load_segments(&mut stream, &state, generation, &mut segments);
        if let Err(error) = loaded {
            for segment in &segments {
                // Best effort: an unlisted file is removed at the next open anyway.
                let _ = segment.delete_file();
            }
            return Err(error);
        }
        if let Some(dir) = self.dir.clone() {
            let persisted = Self::persist_restored(&dir, &state, generation, &segments);
            self.poison_on_error(persisted)?;
        }
        let old = self.install(state, meta, generation, segments);
        for segment in old {
            // The new checkpoint no longer lists these; open() would remove them.
            let _ = segment.delete_file();
        }
        Ok(())
    }

    fn load_segments(
        &self,
        stream: &mut ChunkStream<'_>,
        state: &PartitionState,
        generation: u64,
        segments: &mut Vec<Arc<Segment>>,
    ) -> Result<(), FsmError> {
        let mut expected_base = state.segments.first().map(|s| s.base_offset);
        for entry in &state.segments {
            if Some(entry.base_offset) != expected_base {
                return Err(stream.bad(CorruptionKind::OffsetGap));
            }
            let segment = self.new_segment(generation, entry.base_offset)?;
            segments.push(Arc::clone(&segment));
            let mut pending = BytesMut::new();
            let mut remaining = entry.len;
            // Bounded: every piece consumes at least one byte of `remaining`.
            while remaining > 0 {
                let want = remaining.min(self.config.snapshot_chunk_bytes.max(FRAME_HEADER) as u64)
                    as usize;
                let piece = stream
                    .next_piece(want)?
                    .ok_or_else(|| stream.bad(CorruptionKind::Truncated))?;
                remaining -= piece.len() as u64;
                pending.extend_from_slice(&piece);
                // Bounded: every iteration consumes one whole frame.
                while let Some(header) = frame::parse_header(&pending) {
                    if pending.len() < header.frame_len() {
                        break;
                    }
                    let encoded = pending.split_to(header.frame_len()).freeze();
                    if !frame::checksum_ok(&header, &encoded) {
                        return Err(stream.bad(CorruptionKind::ChecksumMismatch));
                    }
                    if header.base_offset != segment.next_offset() {
                        return Err(stream.bad(CorruptionKind::OffsetGap));
                    }
                    segment.append(&header, &encoded.slice(FRAME_HEADER..))?;
                }
            }
            if !pending.is_empty() {
                return Err(stream.bad(CorruptionKind::BadLength));
            }
            expected_base = Some(segment.next_offset());
        }
        if expected_base != Some(state.next_offset) {
            return Err(stream.bad(CorruptionKind::OffsetGap));
        }
        if stream.next_piece(1)?.is_some_and(|b| b.has_remaining()) {
            return Err(stream.bad(CorruptionKind::BadLength));
        }
        Ok(())
    }

    fn persist_restored(
        dir: &std::path::Path,
        state: &PartitionState,
        generation: u64,
        segments: &[Arc<Segment>],
    ) -> Result<(), FsmError> {
        let mut checkpoint = state.clone();
        checkpoint.generation = generation;
        for (entry, segment) in checkpoint.segments.iter_mut().zip(segments) {
            entry.len = segment.sync()?;
            entry.file = segment_file_name(generation, segment.base_offset());
        }
        for segment in segments.iter().take(segments.len().saturating_sub(1)) {
            segment.persist_index()?;
        }
        state::sync_dir(dir)?;
        state::write_atomic(dir, CHECKPOINT_FILE, &state::encode_framed(&checkpoint))
    }

    /// Swaps the restored state in; returns the segments it replaced.
    fn install(
        &mut self,
        state: PartitionState,
        meta: SnapshotMeta,
        generation: u64,
        segments: Vec<Arc<Segment>>,
    ) -> Vec<Arc<Segment>> {
        let epochs = LeaderEpochs::from_entries(state.epochs);
        self.current_epoch = epochs.current();
        if let Some(active) = segments.last() {
            self.active = Arc::clone(active);
        }
        self.unsynced_from = self.active.base_offset();
        let old = {
            let mut view = self.shared.view.write();
            view.next_offset = state.next_offset;
            view.log_start_offset = state.log_start_offset;
            view.epochs = epochs;
            std::mem::replace(&mut view.segments, segments)
        };
        self.shared.high_watermark.send_replace(state.next_offset);
        self.producers = ProducerTable::from_entries(state.producers);
        self.next_offset = state.next_offset;
        self.log_start_offset = state.log_start_offset;
        self.applied_index = meta.index;
        self.applied_term = meta.term;
        self.durable_index = meta.index;
        self.generation = generation;
        let mut old = old;
        old.append(&mut self.pending_deletes);
        old
    }
}
