//! Byte layout of frames and records (see FORMAT.md). Pure functions, no I/O.

use protobuf::Message;
use raft::eraftpb::{ConfState, HardState, SnapshotMetadata};

use crate::batch::Op;
use crate::error::{CorruptionKind, Error, Result};
use crate::GroupId;

/// Frame header: payload length (u32), CRC32C (u32), frame type (u8).
pub(crate) const FRAME_HEADER: usize = 9;
/// The only frame type: a batch of records, applied all or nothing.
pub(crate) const FRAME_BATCH: u8 = 1;
/// Record header: type (u8), group (u64), body length (u32).
pub(crate) const RECORD_HEADER: usize = 13;
/// Per-entry prefix inside an entries record: term (u64), encoded length (u32).
pub(crate) const ENTRY_PREFIX: usize = 12;

pub(crate) const REC_ENTRIES: u8 = 1;
pub(crate) const REC_HARD_STATE: u8 = 2;
pub(crate) const REC_CONF_STATE: u8 = 3;
pub(crate) const REC_COMPACT: u8 = 4;
pub(crate) const REC_APPLY_SNAPSHOT: u8 = 5;
pub(crate) const REC_REMOVE_GROUP: u8 = 6;
pub(crate) const REC_SNAPSHOT_REF: u8 = 7;
pub(crate) const REC_CHECKPOINT: u8 = 8;

/// Everything a group holds except its entries.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Checkpoint {
    pub first_index: u64,
    pub prev_term: u64,
    pub base_index: u64,
    pub base_term: u64,
    pub hard_state: HardState,
    pub conf_state: ConfState,
    pub snapshot: Option<(u64, u64)>,
    /// The raft index `conf_state` reflects.
    pub conf_index: u64,
}

fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn to_u32(size: usize) -> Result<u32> {
    u32::try_from(size).map_err(|_| Error::TooLarge { size })
}

/// Appends one encoded batch frame to `buf`. For every entry of every append op, in order,
/// pushes the offset of the entry's protobuf bytes relative to the frame start onto
/// `entry_offsets`.
pub(crate) fn encode_batch(
    ops: &[Op],
    buf: &mut Vec<u8>,
    entry_offsets: &mut Vec<u32>,
) -> Result<()> {
    let frame_start = buf.len();
    buf.extend_from_slice(&[0u8; FRAME_HEADER]);
    for op in ops {
        if matches!(op, Op::Append(_, entries) if entries.is_empty()) {
            continue;
        }
        let record_start = buf.len();
        let (kind, group) = match op {
            Op::Append(group, _) => (REC_ENTRIES, *group),
            Op::HardState(group, _) => (REC_HARD_STATE, *group),
            Op::ConfState(group, _, _) => (REC_CONF_STATE, *group),
            Op::Compact(group, _, _) => (REC_COMPACT, *group),
            Op::ApplySnapshot(group, _) => (REC_APPLY_SNAPSHOT, *group),
            Op::Remove(group) => (REC_REMOVE_GROUP, *group),
            Op::SnapshotRef(group, _, _) => (REC_SNAPSHOT_REF, *group),
            Op::Checkpoint(group, _) => (REC_CHECKPOINT, *group),
        };
        buf.push(kind);
        put_u64(buf, group);
        put_u32(buf, 0);
        let body_start = buf.len();
        match op {
            Op::Append(_, entries) => {
                put_u64(buf, entries.first().map_or(0, |e| e.index));
                put_u32(buf, to_u32(entries.len())?);
                for entry in entries {
                    put_u64(buf, entry.term);
                    let len = entry.compute_size();
                    put_u32(buf, len);
                    entry_offsets.push(to_u32(buf.len() - frame_start)?);
                    entry.write_to_vec(buf)?;
                }
            }
            Op::HardState(_, hs) => hs.write_to_vec(buf)?,
            Op::ConfState(_, cs, index) => {
                put_u64(buf, *index);
                cs.write_to_vec(buf)?;
            }
            Op::Compact(_, index, prev_term) => {
                put_u64(buf, *index);
                put_u64(buf, *prev_term);
            }
            Op::ApplySnapshot(_, meta) => meta.write_to_vec(buf)?,
            Op::Remove(_) => {}
            Op::SnapshotRef(_, index, term) => {
                put_u64(buf, *index);
                put_u64(buf, *term);
            }
            Op::Checkpoint(_, cp) => encode_checkpoint(cp, buf)?,
        }
        let body_len = to_u32(buf.len() - body_start)?;
        buf[record_start + 9..record_start + 13].copy_from_slice(&body_len.to_le_bytes());
    }
    let payload_len = to_u32(buf.len() - frame_start - FRAME_HEADER)?;
    buf[frame_start + 8] = FRAME_BATCH;
    let crc = crc32c::crc32c(&buf[frame_start + 8..]);
    buf[frame_start..frame_start + 4].copy_from_slice(&payload_len.to_le_bytes());
    buf[frame_start + 4..frame_start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn encode_checkpoint(cp: &Checkpoint, buf: &mut Vec<u8>) -> Result<()> {
    put_u64(buf, cp.first_index);
    put_u64(buf, cp.prev_term);
    put_u64(buf, cp.base_index);
    put_u64(buf, cp.base_term);
    let (snap_index, snap_term, has_snap) = match cp.snapshot {
        Some((index, term)) => (index, term, 1),
        None => (0, 0, 0),
    };
    put_u64(buf, snap_index);
    put_u64(buf, snap_term);
    buf.push(has_snap);
    put_u32(buf, cp.hard_state.compute_size());
    cp.hard_state.write_to_vec(buf)?;
    put_u32(buf, cp.conf_state.compute_size());
    cp.conf_state.write_to_vec(buf)?;
    put_u64(buf, cp.conf_index);
    Ok(())
}

/// Why a frame could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// Fewer bytes than the header or the length claims: a torn write.
    Truncated,
    /// Checksum mismatch.
    Checksum,
    /// Unknown frame type.
    UnknownType(u8),
}

impl From<FrameError> for CorruptionKind {
    fn from(error: FrameError) -> CorruptionKind {
        match error {
            FrameError::Truncated => CorruptionKind::Truncated,
            FrameError::Checksum => CorruptionKind::Checksum,
            FrameError::UnknownType(kind) => CorruptionKind::UnknownType(kind),
        }
    }
}

/// Reads the frame at the start of `bytes`: its payload and total length.
pub(crate) fn read_frame(
    bytes: &[u8],
    segment: Option<u32>,
) -> std::result::Result<(&[u8], usize), FrameError> {
    let header = bytes.get(..FRAME_HEADER).ok_or(FrameError::Truncated)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let total = FRAME_HEADER.checked_add(len).ok_or(FrameError::Truncated)?;
    let framed = bytes.get(8..total).ok_or(FrameError::Truncated)?;
    let expected = match segment {
        Some(id) => crc32c::crc32c_append(crc32c::crc32c(&id.to_le_bytes()), framed),
        None => crc32c::crc32c(framed),
    };
    if expected != crc {
        return Err(FrameError::Checksum);
    }
    if framed[0] != FRAME_BATCH {
        return Err(FrameError::UnknownType(framed[0]));
    }
    Ok((&framed[1..], total))
}

/// Binds an encoded frame (whose CRC covers its type and payload) to segment `segment`:
/// its CRC becomes that of the id's four bytes followed by the type and payload, so that
/// a frame left in a reused file by an older segment never passes for one of this
/// segment's (format version 2).
pub(crate) fn seal_frame(frame: &mut [u8], segment: u32) {
    if frame.len() < FRAME_HEADER {
        return;
    }
    let content = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let seed = crc32c::crc32c(&segment.to_le_bytes());
    let crc = crc32c_concat(seed, content, (frame.len() - 8) as u64);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// CRC-32C's polynomial in the bit-reflected form its registers use (bit 31 holds the
/// coefficient of x^0, bit 0 that of x^31).
const CRC32C_POLY: u32 = 0x82F6_3B78;

/// `a * b mod P` for two polynomials in reflected form.
const fn gf2_mul_mod(a: u32, b: u32) -> u32 {
    let mut product = 0;
    // b * x^degree, reduced, as degree counts up through a's terms.
    let mut term = b;
    let mut degree = 0;
    while degree < 32 {
        if a & (1 << (31 - degree)) != 0 {
            product ^= term;
        }
        // Times x: every coefficient moves one degree up; an x^32 wraps to P's rest.
        term = if term & 1 != 0 {
            (term >> 1) ^ CRC32C_POLY
        } else {
            term >> 1
        };
        degree += 1;
    }
    product
}

/// `X8_POW2[k]` is `x^(8 * 2^k) mod P`: appending `2^k` zero bytes to a message
/// multiplies its (unconditioned) CRC register by it.
const X8_POW2: [u32; 64] = {
    let mut table = [0u32; 64];
    // x^8 in reflected form.
    table[0] = 1 << (31 - 8);
    let mut k = 1;
    while k < 64 {
        table[k] = gf2_mul_mod(table[k - 1], table[k - 1]);
        k += 1;
    }
    table
};

/// The CRC-32C of `a` followed by `b`, from the CRC of each and `b`'s length: the
/// register after `a`, moved past `len_b` bytes (one multiplication per bit set in
/// `len_b`), plus `b`'s own. `crc32c::crc32c_combine` gives the same figure with
/// 32x32 matrix squarings, several microseconds per call, too slow for the write lock.
pub(crate) fn crc32c_concat(crc_a: u32, crc_b: u32, len_b: u64) -> u32 {
    let mut register = crc_a;
    let mut rest = len_b;
    let mut k = 0;
    while rest != 0 {
        if rest & 1 != 0 {
            register = gf2_mul_mod(X8_POW2[k], register);
        }
        rest >>= 1;
        k += 1;
    }
    register ^ crc_b
}

/// One decoded record; entries stay encoded in the frame.
#[derive(Debug)]
pub(crate) enum Record<'a> {
    Entries {
        group: GroupId,
        first_index: u64,
        count: u32,
        body: &'a [u8],
        body_offset: usize,
    },
    HardState(GroupId, HardState),
    ConfState(GroupId, ConfState, u64),
    Compact(GroupId, u64, u64),
    ApplySnapshot(GroupId, SnapshotMetadata),
    Remove(GroupId),
    SnapshotRef(GroupId, u64, u64),
    Checkpoint(GroupId, Box<Checkpoint>),
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], CorruptionKind> {
        let end = self.pos.checked_add(n).ok_or(CorruptionKind::Truncated)?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(CorruptionKind::Truncated)?;
        self.pos = end;
        Ok(slice)
    }
    fn u8(&mut self) -> std::result::Result<u8, CorruptionKind> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> std::result::Result<u32, CorruptionKind> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> std::result::Result<u64, CorruptionKind> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn message<M: Message>(&mut self, n: usize) -> std::result::Result<M, CorruptionKind> {
        let bytes = self.take(n)?;
        M::parse_from_bytes(bytes).map_err(|_| CorruptionKind::Decode)
    }
}

/// Decodes the records of a batch payload, calling `apply` for each in order. `Err` holds the
/// kind of damage and the offset within the payload where decoding failed.
pub(crate) fn decode_records<'a>(
    payload: &'a [u8],
    mut apply: impl FnMut(Record<'a>),
) -> std::result::Result<(), (CorruptionKind, usize)> {
    let mut reader = Reader {
        bytes: payload,
        pos: 0,
    };
    while reader.pos < payload.len() {
        let at = reader.pos;
        let record = decode_record(&mut reader).map_err(|kind| (kind, at))?;
        apply(record);
    }
    Ok(())
}

/// Raft indexes and terms never come near this; a record claiming more was not written
/// by the engine (and would overflow index arithmetic).
const MAX_INDEX: u64 = 1 << 62;

/// `value` if it is a plausible raft index or term.
fn plausible(value: u64) -> std::result::Result<u64, CorruptionKind> {
    if value <= MAX_INDEX {
        Ok(value)
    } else {
        Err(CorruptionKind::Inconsistent)
    }
}

fn decode_record<'a>(reader: &mut Reader<'a>) -> std::result::Result<Record<'a>, CorruptionKind> {
    let kind = reader.u8()?;
    let group = reader.u64()?;
    let len = reader.u32()? as usize;
    let body_offset = reader.pos;
    let body = reader.take(len)?;
    let mut body_reader = Reader {
        bytes: body,
        pos: 0,
    };
    let r = &mut body_reader;
    let record = match kind {
        REC_ENTRIES => {
            let first_index = plausible(r.u64()?)?;
            let count = r.u32()?;
            let body = &body[12..];
            // Every entry takes at least its prefix: a larger count is not this record's.
            if first_index == 0 || u64::from(count) * ENTRY_PREFIX as u64 > body.len() as u64 {
                return Err(CorruptionKind::Inconsistent);
            }
            Record::Entries {
                group,
                first_index,
                count,
                body,
                body_offset: body_offset + 12,
            }
        }
        REC_HARD_STATE => {
            let hs: HardState = r.message(len)?;
            plausible(hs.term)?;
            plausible(hs.commit)?;
            Record::HardState(group, hs)
        }
        REC_CONF_STATE => {
            let index = plausible(r.u64()?)?;
            let cs_len = len.checked_sub(8).ok_or(CorruptionKind::Inconsistent)?;
            Record::ConfState(group, r.message(cs_len)?, index)
        }
        REC_COMPACT => {
            let index = plausible(r.u64()?)?;
            if index == 0 {
                return Err(CorruptionKind::Inconsistent);
            }
            Record::Compact(group, index, plausible(r.u64()?)?)
        }
        REC_APPLY_SNAPSHOT => {
            let meta: SnapshotMetadata = r.message(len)?;
            plausible(meta.index)?;
            plausible(meta.term)?;
            Record::ApplySnapshot(group, meta)
        }
        REC_REMOVE_GROUP => Record::Remove(group),
        REC_SNAPSHOT_REF => Record::SnapshotRef(group, plausible(r.u64()?)?, plausible(r.u64()?)?),
        REC_CHECKPOINT => {
            let first_index = plausible(r.u64()?)?;
            if first_index == 0 {
                return Err(CorruptionKind::Inconsistent);
            }
            let prev_term = plausible(r.u64()?)?;
            let base_index = plausible(r.u64()?)?;
            let base_term = plausible(r.u64()?)?;
            let snap_index = r.u64()?;
            let snap_term = r.u64()?;
            let snapshot = (r.u8()? == 1).then_some((snap_index, snap_term));
            let hs_len = r.u32()? as usize;
            let hard_state = r.message(hs_len)?;
            let cs_len = r.u32()? as usize;
            let conf_state = r.message(cs_len)?;
            let conf_index = r.u64()?;
            let cp = Checkpoint {
                first_index,
                prev_term,
                base_index,
                base_term,
                hard_state,
                conf_state,
                snapshot,
                conf_index,
            };
            Record::Checkpoint(group, Box::new(cp))
        }
        other => return Err(CorruptionKind::UnknownType(other)),
    };
    Ok(record)
}

/// Iterates the `(term, offset in body, length)` of each entry of an entries record body.
pub(crate) fn entry_spans(
    body: &[u8],
    count: u32,
) -> std::result::Result<Vec<(u64, usize, u32)>, CorruptionKind> {
    let mut reader = Reader {
        bytes: body,
        pos: 0,
    };
    let mut spans = Vec::with_capacity((count as usize).min(body.len() / ENTRY_PREFIX));
    for _ in 0..count {
        let term = reader.u64()?;
        let len = reader.u32()?;
        let offset = reader.pos;
        reader.take(len as usize)?;
        spans.push((term, offset, len));
    }
    if reader.pos != body.len() {
        return Err(CorruptionKind::Inconsistent);
    }
    Ok(spans)
}

#[cfg(test)]
#[path = "codec_test.rs"]
mod codec_test;
