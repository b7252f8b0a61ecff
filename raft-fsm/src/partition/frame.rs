//! The on-disk (and in-snapshot) frame of one applied record batch.
//!
//! ```text
//! 0  u32 len        bytes after the 8-byte prefix (36 + payload)
//! 4  u32 crc32c     over those `len` bytes
//! 8  u64 base_offset
//! 16 u32 record_count
//! 20 i64 max_timestamp
//! 28 i64 append_time
//! 36 u64 leader_epoch
//! 44 payload        the records, opaque (Kafka RecordBatch v2 bytes)
//! ```
//! All integers little-endian. Every field is deterministic (it comes from
//! the replicated command or from apply), so frames are byte-identical on
//! every replica.

use bytes::BufMut;
#[cfg(test)]
use bytes::Bytes;

/// Size of the frame header before the payload.
pub(crate) const FRAME_HEADER: usize = 44;

/// The fields of a frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// Length of the frame after the 8-byte length+crc prefix.
    pub(crate) len: u32,
    /// Checksum of those bytes.
    pub(crate) crc: u32,
    /// First offset of the batch.
    pub(crate) base_offset: u64,
    /// Number of records (offsets) of the batch.
    pub(crate) record_count: u32,
    /// Greatest record timestamp of the batch.
    pub(crate) max_timestamp: i64,
    /// The append time carried by the command.
    pub(crate) append_time: i64,
    /// The leader epoch (raft term) the batch was applied in.
    pub(crate) leader_epoch: u64,
}

impl FrameHeader {
    /// Total size of the frame in bytes.
    pub(crate) fn frame_len(&self) -> usize {
        8 + self.len as usize
    }

    /// The offset after the batch's last record.
    pub(crate) fn next_offset(&self) -> u64 {
        self.base_offset
            .saturating_add(u64::from(self.record_count))
    }

    /// Payload length.
    pub(crate) fn payload_len(&self) -> usize {
        (self.len as usize).saturating_sub(FRAME_HEADER - 8)
    }
}

/// The header of a frame for a batch, checksum included.
pub(crate) fn build(
    base_offset: u64,
    record_count: u32,
    max_timestamp: i64,
    append_time: i64,
    leader_epoch: u64,
    payload: &[u8],
) -> FrameHeader {
    let mut header = FrameHeader {
        len: (FRAME_HEADER - 8 + payload.len()) as u32,
        crc: 0,
        base_offset,
        record_count,
        max_timestamp,
        append_time,
        leader_epoch,
    };
    let bytes = header_bytes(&header);
    header.crc = crc32c::crc32c_append(crc32c::crc32c(&bytes[8..]), payload);
    header
}

/// The encoded header (the first [`FRAME_HEADER`] bytes of the frame).
pub(crate) fn header_bytes(header: &FrameHeader) -> [u8; FRAME_HEADER] {
    let mut buf = [0u8; FRAME_HEADER];
    let mut at = &mut buf[..];
    at.put_u32_le(header.len);
    at.put_u32_le(header.crc);
    at.put_u64_le(header.base_offset);
    at.put_u32_le(header.record_count);
    at.put_i64_le(header.max_timestamp);
    at.put_i64_le(header.append_time);
    at.put_u64_le(header.leader_epoch);
    buf
}

/// Builds a whole frame (header and payload) in one buffer.
#[cfg(test)]
pub(crate) fn encode(
    base_offset: u64,
    record_count: u32,
    max_timestamp: i64,
    append_time: i64,
    leader_epoch: u64,
    payload: &[u8],
) -> Bytes {
    let header = build(
        base_offset,
        record_count,
        max_timestamp,
        append_time,
        leader_epoch,
        payload,
    );
    let mut buf = Vec::with_capacity(header.frame_len());
    buf.extend_from_slice(&header_bytes(&header));
    buf.extend_from_slice(payload);
    Bytes::from(buf)
}

/// Parses a header from the start of `buf`; `None` if fewer than
/// [`FRAME_HEADER`] bytes are there or the length is impossible.
pub(crate) fn parse_header(buf: &[u8]) -> Option<FrameHeader> {
    let head = buf.get(..FRAME_HEADER)?;
    let u32_at =
        |at: usize| u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&head[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let header = FrameHeader {
        len: u32_at(0),
        crc: u32_at(4),
        base_offset: u64_at(8),
        record_count: u32_at(16),
        max_timestamp: u64_at(20) as i64,
        append_time: u64_at(28) as i64,
        leader_epoch: u64_at(36),
    };
    if (header.len as usize) < FRAME_HEADER - 8 || header.record_count == 0 {
        return None;
    }
    Some(header)
}

/// Whether the checksum of a whole frame (`buf` is exactly the frame) holds.
pub(crate) fn checksum_ok(header: &FrameHeader, frame: &[u8]) -> bool {
    frame.len() == header.frame_len() && crc32c::crc32c(&frame[8..]) == header.crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_checksum() {
        let frame = encode(42, 3, 1000, 2000, 7, b"hello");
        let header = parse_header(&frame).unwrap();
        assert_eq!(header.base_offset, 42);
        assert_eq!(header.record_count, 3);
        assert_eq!(header.max_timestamp, 1000);
        assert_eq!(header.append_time, 2000);
        assert_eq!(header.leader_epoch, 7);
        assert_eq!(header.frame_len(), frame.len());
        assert_eq!(header.next_offset(), 45);
        assert_eq!(&frame[FRAME_HEADER..], b"hello");
        assert!(checksum_ok(&header, &frame));
        let mut bad = frame.to_vec();
        bad[FRAME_HEADER] ^= 1;
        assert!(!checksum_ok(&header, &bad));
    }

    #[test]
    fn short_or_zeroed_headers_are_rejected() {
        assert!(parse_header(&[0u8; 10]).is_none());
        assert!(parse_header(&[0u8; FRAME_HEADER]).is_none());
    }
}
