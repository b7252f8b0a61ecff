//! Snapshot files beside the log, written atomically.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use protobuf::Message;
use raft::eraftpb::{Snapshot, SnapshotMetadata};

use super::segment::sync_dir;
use crate::error::{CorruptionKind, Error, Result};
use crate::GroupId;

const SNAPSHOT_MAGIC: &[u8; 8] = b"CHRKSNAP";
const SNAPSHOT_VERSION: u32 = 1;
/// Magic, version, metadata length, data length, CRC32C.
const SNAPSHOT_HEADER: usize = 28;

/// `<dir>/snap-<group>-<index>-<term>.snap`, all 16 hex digits.
pub(crate) fn snapshot_path(dir: &Path, group: GroupId, index: u64, term: u64) -> PathBuf {
    dir.join(format!("snap-{group:016x}-{index:016x}-{term:016x}.snap"))
}

/// Parses a snapshot file name into (group, index, term).
pub(crate) fn parse_snapshot_name(name: &str) -> Option<(GroupId, u64, u64)> {
    let rest = name.strip_prefix("snap-")?.strip_suffix(".snap")?;
    let mut parts = rest.split('-');
    let mut next = || {
        parts
            .next()
            .filter(|p| p.len() == 16)
            .and_then(|p| u64::from_str_radix(p, 16).ok())
    };
    let parsed = (next()?, next()?, next()?);
    parts.next().is_none().then_some(parsed)
}

/// Writes `snapshot` for `group`: temp file, fsync, rename, directory fsync. Returns its path.
pub(crate) fn write_snapshot(dir: &Path, group: GroupId, snapshot: &Snapshot) -> Result<PathBuf> {
    let meta = snapshot.get_metadata();
    let path = snapshot_path(dir, group, meta.index, meta.term);
    let tmp = path.with_extension("snap.tmp");
    let meta_bytes = meta.write_to_bytes()?;
    let data = &snapshot.data;
    let meta_len = u32::try_from(meta_bytes.len()).map_err(|_| Error::TooLarge {
        size: meta_bytes.len(),
    })?;
    let mut crc = crc32c::crc32c(&meta_bytes);
    crc = crc32c::crc32c_append(crc, data);
    let mut header = Vec::with_capacity(SNAPSHOT_HEADER + meta_bytes.len());
    header.extend_from_slice(SNAPSHOT_MAGIC);
    header.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    header.extend_from_slice(&meta_len.to_le_bytes());
    header.extend_from_slice(&(data.len() as u64).to_le_bytes());
    header.extend_from_slice(&crc.to_le_bytes());
    header.extend_from_slice(&meta_bytes);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    file.write_all(&header)?;
    file.write_all(data)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, &path)?;
    sync_dir(dir)?;
    Ok(path)
}

/// Reads and verifies a snapshot file.
pub(crate) fn read_snapshot(path: &Path) -> Result<Snapshot> {
    let corrupt = |kind| Error::SnapshotCorruption {
        path: path.to_path_buf(),
        kind,
    };
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let header = bytes
        .get(..SNAPSHOT_HEADER)
        .ok_or(corrupt(CorruptionKind::Truncated))?;
    if &header[..8] != SNAPSHOT_MAGIC || header[8..12] != SNAPSHOT_VERSION.to_le_bytes() {
        return Err(corrupt(CorruptionKind::BadHeader));
    }
    let u32_at = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let meta_len = u32_at(12) as usize;
    let mut data_len = [0u8; 8];
    data_len.copy_from_slice(&header[16..24]);
    let data_len = usize::try_from(u64::from_le_bytes(data_len))
        .map_err(|_| corrupt(CorruptionKind::Truncated))?;
    let crc = u32_at(24);
    let body = &bytes[SNAPSHOT_HEADER..];
    if body.len() != meta_len.saturating_add(data_len) {
        return Err(corrupt(CorruptionKind::Truncated));
    }
    if crc32c::crc32c(body) != crc {
        return Err(corrupt(CorruptionKind::Checksum));
    }
    let meta = SnapshotMetadata::parse_from_bytes(&body[..meta_len])
        .map_err(|_| corrupt(CorruptionKind::Decode))?;
    let mut snapshot = Snapshot::default();
    snapshot.set_metadata(meta);
    snapshot.data = body[meta_len..].to_vec().into();
    Ok(snapshot)
}

/// A snapshot file found in the directory: group, index, term, path.
pub(crate) type FoundSnapshot = (GroupId, u64, u64, PathBuf);

/// Every snapshot file in `dir`, and leftover temp files.
pub(crate) fn list_snapshots(dir: &Path) -> Result<(Vec<FoundSnapshot>, Vec<PathBuf>)> {
    let mut found = Vec::new();
    let mut temps = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("snap-") && name.ends_with(".snap.tmp") {
            temps.push(entry.path());
        } else if let Some((group, index, term)) = parse_snapshot_name(name) {
            found.push((group, index, term, entry.path()));
        }
    }
    Ok((found, temps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_detect_damage() {
        let dir = tempfile::tempdir().unwrap();
        let mut snapshot = Snapshot::default();
        snapshot.mut_metadata().index = 9;
        snapshot.mut_metadata().term = 3;
        snapshot.mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
        snapshot.data = vec![7u8; 1000].into();
        let path = write_snapshot(dir.path(), 5, &snapshot).unwrap();
        assert_eq!(
            parse_snapshot_name(path.file_name().unwrap().to_str().unwrap()),
            Some((5, 9, 3))
        );
        assert_eq!(read_snapshot(&path).unwrap(), snapshot);
        let mut bytes = fs::read(&path).unwrap();
        bytes[500] ^= 0x10;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            read_snapshot(&path),
            Err(Error::SnapshotCorruption {
                kind: CorruptionKind::Checksum,
                ..
            })
        ));
        fs::write(&path, &bytes[..20]).unwrap();
        assert!(matches!(
            read_snapshot(&path),
            Err(Error::SnapshotCorruption {
                kind: CorruptionKind::Truncated,
                ..
            })
        ));
    }
}
