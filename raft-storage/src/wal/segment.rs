//! Segment files: names, header, creation and directory sync.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::CorruptionKind;

/// Segment header length.
pub(crate) const SEGMENT_HEADER: usize = 24;
/// Magic bytes opening every segment.
pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"CHRKRLOG";
/// Format version written: 2 (frames bound to their segment, and an end marker, so
/// that a purged segment's file can be reused: see FORMAT.md).
/// Version 1 segments are still read.
pub(crate) const FORMAT_VERSION: u32 = 2;
/// The first version whose segments may be reused files: frames bound to their segment,
/// end markers, sealed segments read to their recorded length.
pub(crate) const REUSE_VERSION: u32 = 2;
const SEGMENT_SUFFIX: &str = ".log";
const RECYCLED_SUFFIX: &str = ".recycle";
/// A kept file being prefilled; renamed to `.recycle` once written and synced.
const PREFILL_SUFFIX: &str = ".prefill";

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

/// The header of segment `id` in format `version`: magic, version, id, `prev_len` (the
/// final length of the segment before it, 0 when unknown, so recovery notices a sealed
/// segment that lost its end), CRC32C of the first 20 bytes.
pub(crate) fn encode_header(version: u32, id: u32, prev_len: u32) -> [u8; SEGMENT_HEADER] {
    let mut header = [0u8; SEGMENT_HEADER];
    header[..8].copy_from_slice(SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&version.to_le_bytes());
    header[12..16].copy_from_slice(&id.to_le_bytes());
    header[16..20].copy_from_slice(&prev_len.to_le_bytes());
    let crc = crc32c::crc32c(&header[..20]);
    header[20..24].copy_from_slice(&crc.to_le_bytes());
    header
}

/// What a segment's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Format version (1 or 2).
    pub version: u32,
    /// The previous segment's final length (0: unknown).
    pub prev_len: u32,
}

/// Checks segment `id`'s header (any version this code reads).
pub(crate) fn check_header(bytes: &[u8], id: u32) -> Result<Header, CorruptionKind> {
    let header = bytes
        .get(..SEGMENT_HEADER)
        .ok_or(CorruptionKind::Truncated)?;
    let field = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let (version, prev_len) = (field(8), field(16));
    if !(1..=FORMAT_VERSION).contains(&version) || header != encode_header(version, id, prev_len) {
        return Err(CorruptionKind::BadHeader);
    }
    Ok(Header { version, prev_len })
}

/// True if `bytes` (at least a frame header's worth) are the zeros that end the frames
/// of a segment of a version that has them (a reused file's old bytes may follow). No
/// frame starts with them (its length would be 0 and its CRC would have to be that of
/// the segment id and a type byte of 0).
pub(crate) fn is_end_marker(version: u32, bytes: &[u8]) -> bool {
    version >= REUSE_VERSION
        && bytes.len() >= crate::codec::FRAME_HEADER
        && bytes[..crate::codec::FRAME_HEADER].iter().all(|&b| b == 0)
}

/// Makes a directory's entries (new files, renames, deletions) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates segment `id` with its header, durable (file and directory entry).
pub(crate) fn create_segment(dir: &Path, id: u32, prev_len: u32) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(segment_path(dir, id))?;
    file.write_all_at(&encode_header(FORMAT_VERSION, id, prev_len), 0)?;
    file.sync_all()?;
    sync_dir(dir)?;
    Ok(file)
}

/// Where purge keeps the file of segment `id` for reuse: `<dir>/<id, 10 digits>.recycle`
/// (never a segment name, so recovery does not read it).
pub(crate) fn recycled_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:010}{RECYCLED_SUFFIX}"))
}

/// Ids of the kept files in `dir`, ascending.
pub(crate) fn list_recycled(dir: &Path) -> io::Result<Vec<u32>> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(digits) = name.to_str().and_then(|n| n.strip_suffix(RECYCLED_SUFFIX)) else {
            continue;
        };
        if digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(id) = digits.parse() {
                ids.push(id);
            }
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Writes a kept file of `size` zero bytes as `<dir>/<id>.recycle`: written to
/// `<id>.prefill`, synced, then renamed (the caller syncs the directory). A crash
/// leaves at worst a `.prefill` file, which [`remove_prefills`] deletes.
pub(crate) fn prefill_file(dir: &Path, id: u32, size: u64) -> io::Result<PathBuf> {
    const CHUNK: usize = 1 << 20;
    let partial = dir.join(format!("{id:010}{PREFILL_SUFFIX}"));
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&partial)?;
    let zeros = vec![0u8; CHUNK];
    let mut offset = 0u64;
    while offset < size {
        let len = (size - offset).min(CHUNK as u64) as usize;
        file.write_all_at(&zeros[..len], offset)?;
        offset += len as u64;
    }
    file.sync_data()?;
    let kept = recycled_path(dir, id);
    fs::rename(&partial, &kept)?;
    Ok(kept)
}

/// Deletes the `.prefill` files an interrupted prefill left in `dir`.
pub(crate) fn remove_prefills(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(PREFILL_SUFFIX))
        {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Makes the kept file at `from` segment `id`: writes its header followed by an end
/// marker (nine zeros: no frame yet, whatever the file held after them), syncs it,
/// renames it and syncs the directory. Returns the file and its length. A crash before
/// the rename leaves a kept file, reused later; after it, a segment without frames.
pub(crate) fn adopt_segment(
    dir: &Path,
    from: &Path,
    id: u32,
    prev_len: u32,
) -> io::Result<(File, u64)> {
    let file = OpenOptions::new().read(true).write(true).open(from)?;
    let mut start = [0u8; SEGMENT_HEADER + crate::codec::FRAME_HEADER];
    start[..SEGMENT_HEADER].copy_from_slice(&encode_header(FORMAT_VERSION, id, prev_len));
    file.write_all_at(&start, 0)?;
    file.sync_data()?;
    let len = file.metadata()?.len();
    fs::rename(from, segment_path(dir, id))?;
    sync_dir(dir)?;
    Ok((file, len))
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
        let header = encode_header(FORMAT_VERSION, 7, 0);
        let v2 = |prev_len| {
            Ok(Header {
                version: 2,
                prev_len,
            })
        };
        assert_eq!(check_header(&header, 7), v2(0));
        assert_eq!(check_header(&encode_header(2, 7, 4096), 7), v2(4096));
        // Version 1 segments are still read; unknown versions are not.
        assert_eq!(
            check_header(&encode_header(1, 7, 9), 7),
            Ok(Header {
                version: 1,
                prev_len: 9
            })
        );
        assert_eq!(
            check_header(&encode_header(3, 7, 0), 7),
            Err(CorruptionKind::BadHeader)
        );
        assert_eq!(
            check_header(&encode_header(0, 7, 0), 7),
            Err(CorruptionKind::BadHeader)
        );
        assert_eq!(check_header(&header, 8), Err(CorruptionKind::BadHeader));
        assert_eq!(
            check_header(&header[..10], 7),
            Err(CorruptionKind::Truncated)
        );
        let mut flipped = header;
        flipped[9] ^= 1;
        assert_eq!(check_header(&flipped, 7), Err(CorruptionKind::BadHeader));
    }

    #[test]
    fn only_zeros_of_a_version_2_segment_end_it() {
        let zeros = [0u8; 16];
        assert!(is_end_marker(2, &zeros));
        assert!(!is_end_marker(1, &zeros), "version 1 has no end marker");
        assert!(
            !is_end_marker(2, &zeros[..8]),
            "shorter than a frame header"
        );
        let mut one = zeros;
        one[4] = 1;
        assert!(!is_end_marker(2, &one));
    }
}
