//! Segment files: names, header, creation and directory sync.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::CorruptionKind;

/// Segment header length.
pub(crate) const SEGMENT_HEADER: usize = 24;
/// Magic bytes opening every segment.
pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"CHRKRLOG";
/// Current format version.
pub(crate) const FORMAT_VERSION: u32 = 1;
const SEGMENT_SUFFIX: &str = ".log";

/// `<dir>/<id, 10 digits>.log`.
pub(crate) fn segment_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:010}{SEGMENT_SUFFIX}"))
}

/// Parses a segment file name strictly (digits only), never by string order.
pub(crate) fn parse_segment_name(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&id| id != 0)
}

/// The header of segment `id`: magic, version, id, reserved, CRC32C of the first 20 bytes.
/// The header of segment `id`; `prev_len` is the final length of the segment before it
/// (0 when unknown), so recovery notices a sealed segment that lost its end.
pub(crate) fn encode_header(id: u32, prev_len: u32) -> [u8; SEGMENT_HEADER] {
    let mut header = [0u8; SEGMENT_HEADER];
    header[..8].copy_from_slice(SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&id.to_le_bytes());
    header[16..20].copy_from_slice(&prev_len.to_le_bytes());
    let crc = crc32c::crc32c(&header[..20]);
    header[20..24].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Checks a segment header read from the file of segment `id`.
/// Checks segment `id`'s header and returns the previous segment's recorded length.
pub(crate) fn check_header(bytes: &[u8], id: u32) -> Result<u32, CorruptionKind> {
    let header = bytes
        .get(..SEGMENT_HEADER)
        .ok_or(CorruptionKind::Truncated)?;
    let mut prev = [0u8; 4];
    prev.copy_from_slice(&header[16..20]);
    let prev_len = u32::from_le_bytes(prev);
    if header != encode_header(id, prev_len) {
        return Err(CorruptionKind::BadHeader);
    }
    Ok(prev_len)
}

/// Makes a directory's entries (new files, renames, deletions) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates segment `id` with its header, durable (file and directory entry).
pub(crate) fn create_segment(dir: &Path, id: u32, prev_len: u32) -> io::Result<File> {
    let path = segment_path(dir, id);
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .open(&path)?;
    file.write_all(&encode_header(id, prev_len))?;
    file.sync_all()?;
    sync_dir(dir)?;
    Ok(file)
}

/// Ids of the segment files in `dir`, ascending.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<u32>> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(id) = entry.file_name().to_str().and_then(parse_segment_name) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_reject_strangers() {
        let path = segment_path(Path::new("/x"), 42);
        assert_eq!(path, Path::new("/x/0000000042.log"));
        assert_eq!(parse_segment_name("0000000042.log"), Some(42));
        assert_eq!(parse_segment_name("42.log"), None);
        assert_eq!(parse_segment_name("00000000x2.log"), None);
        assert_eq!(parse_segment_name("0000000000.log"), None);
        assert_eq!(parse_segment_name("0000000042.log.tmp"), None);
    }

    #[test]
    fn header_checks_id_and_bits() {
        let header = encode_header(7, 0);
        assert_eq!(check_header(&header, 7), Ok(0));
        assert_eq!(check_header(&encode_header(7, 4096), 7), Ok(4096));
        assert_eq!(check_header(&header, 8), Err(CorruptionKind::BadHeader));
        assert_eq!(
            check_header(&header[..10], 7),
            Err(CorruptionKind::Truncated)
        );
        let mut flipped = header;
        flipped[9] ^= 1;
        assert_eq!(check_header(&flipped, 7), Err(CorruptionKind::BadHeader));
    }
}
