//! The partition's state besides the records: written as the checkpoint
//! file (with the durable applied index) and as the snapshot header.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use prost::Message;

use super::epochs::EpochEntry;
use super::producer::ProducerEntry;
use crate::error::{CorruptionKind, FsmError};

/// Magic at the start of a checkpoint file and of a snapshot stream.
pub(crate) const STATE_MAGIC: &[u8; 4] = b"CKPS";
/// Format version of checkpoint and snapshot header.
pub(crate) const STATE_VERSION: u32 = 1;
/// Bytes before the encoded state: magic, version, length, crc.
pub(crate) const STATE_PREFIX: usize = 16;

/// One segment as recorded in a checkpoint or snapshot header.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SegmentEntry {
    /// First offset of the segment.
    #[prost(uint64, tag = "1")]
    pub base_offset: u64,
    /// Bytes of the segment covered (durable length, or snapshot length).
    #[prost(uint64, tag = "2")]
    pub len: u64,
    /// File name inside the partition directory (checkpoint only).
    #[prost(string, tag = "3")]
    pub file: String,
}

/// Everything that is not records.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PartitionState {
    /// Raft index of the last applied entry this state includes.
    #[prost(uint64, tag = "1")]
    pub applied_index: u64,
    /// Raft term of that entry.
    #[prost(uint64, tag = "2")]
    pub applied_term: u64,
    /// The next offset to assign (the high watermark).
    #[prost(uint64, tag = "3")]
    pub next_offset: u64,
    /// The log start offset.
    #[prost(uint64, tag = "4")]
    pub log_start_offset: u64,
    /// The leader-epoch history.
    #[prost(message, repeated, tag = "5")]
    pub epochs: Vec<EpochEntry>,
    /// Idempotent producers, by id.
    #[prost(message, repeated, tag = "6")]
    pub producers: Vec<ProducerEntry>,
    /// The segments, oldest first.
    #[prost(message, repeated, tag = "7")]
    pub segments: Vec<SegmentEntry>,
    /// File-name generation of the segments (checkpoint only).
    #[prost(uint64, tag = "8")]
    pub generation: u64,
}

/// Frames `state` with magic, version, length and CRC.
pub(crate) fn encode_framed(state: &PartitionState) -> Vec<u8> {
    frame_body(STATE_MAGIC, &state.encode_to_vec())
}

/// Frames an encoded message with `magic`, version, length and CRC.
pub(crate) fn frame_body(magic: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(STATE_PREFIX + body.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&STATE_VERSION.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Parses the 16-byte prefix: returns `(body length, crc)`.
pub(crate) fn parse_prefix(prefix: &[u8]) -> Result<(usize, u32), CorruptionKind> {
    parse_prefix_with(STATE_MAGIC, prefix)
}

/// Parses a prefix written by [`frame_body`] with `magic`.
pub(crate) fn parse_prefix_with(
    magic: &[u8; 4],
    prefix: &[u8],
) -> Result<(usize, u32), CorruptionKind> {
    if prefix.len() < STATE_PREFIX || &prefix[..4] != magic {
        return Err(CorruptionKind::BadHeader);
    }
    let word = |at: usize| {
        u32::from_le_bytes([prefix[at], prefix[at + 1], prefix[at + 2], prefix[at + 3]])
    };
    if word(4) != STATE_VERSION {
        return Err(CorruptionKind::BadHeader);
    }
    Ok((word(8) as usize, word(12)))
}

/// Decodes a body whose CRC was announced in the prefix.
pub(crate) fn decode_body<M: Message + Default>(
    body: &[u8],
    crc: u32,
) -> Result<M, CorruptionKind> {
    if crc32c::crc32c(body) != crc {
        return Err(CorruptionKind::ChecksumMismatch);
    }
    M::decode(body).map_err(|_| CorruptionKind::UndecodableState)
}

/// Reads and unframes a whole file written by [`frame_body`] with `magic`;
/// `Ok(None)` if there is no file.
pub(crate) fn read_framed<M: Message + Default>(
    magic: &[u8; 4],
    path: &Path,
) -> Result<Option<M>, FsmError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FsmError::io(path, e)),
    };
    let corrupt = |position: u64, kind| FsmError::Corruption {
        path: path.to_path_buf(),
        position,
        kind,
    };
    let (len, crc) = parse_prefix_with(magic, &bytes).map_err(|kind| corrupt(0, kind))?;
    let body = bytes
        .get(STATE_PREFIX..STATE_PREFIX + len)
        .ok_or_else(|| corrupt(STATE_PREFIX as u64, CorruptionKind::Truncated))?;
    decode_body(body, crc)
        .map(Some)
        .map_err(|kind| corrupt(STATE_PREFIX as u64, kind))
}

/// Writes `bytes` to `dir/name` atomically: temporary file, sync, rename,
/// sync of the directory.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), FsmError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let target = dir.join(name);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| FsmError::io(&tmp, e))?;
    file.write_all(bytes).map_err(|e| FsmError::io(&tmp, e))?;
    file.sync_all().map_err(|e| FsmError::io(&tmp, e))?;
    fs::rename(&tmp, &target).map_err(|e| FsmError::io(&target, e))?;
    sync_dir(dir)
}

/// Takes an exclusive advisory lock on `dir/name`, held as long as the
/// returned file lives: one machine per directory.
pub(crate) fn lock_dir(dir: &Path, name: &str) -> Result<File, FsmError> {
    let path = dir.join(name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| FsmError::io(&path, e))?;
    fs2::FileExt::try_lock_exclusive(&file).map_err(|_| FsmError::DirectoryLocked {
        path: dir.to_path_buf(),
    })?;
    Ok(file)
}

/// Syncs a directory so renames and creations in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), FsmError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| FsmError::io(dir, e))
}

/// Reads a checkpoint file; `Ok(None)` if there is none.
pub(crate) fn read_checkpoint(path: &Path) -> Result<Option<PartitionState>, FsmError> {
    read_framed(STATE_MAGIC, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips_and_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let state = PartitionState {
            applied_index: 9,
            next_offset: 40,
            ..Default::default()
        };
        write_atomic(dir.path(), "checkpoint", &encode_framed(&state)).unwrap();
        let path = dir.path().join("checkpoint");
        assert_eq!(read_checkpoint(&path).unwrap(), Some(state));
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            read_checkpoint(&path),
            Err(FsmError::Corruption {
                kind: CorruptionKind::ChecksumMismatch,
                ..
            })
        ));
        fs::write(&path, b"nope").unwrap();
        assert!(matches!(
            read_checkpoint(&path),
            Err(FsmError::Corruption {
                kind: CorruptionKind::BadHeader,
                ..
            })
        ));
        assert_eq!(read_checkpoint(&dir.path().join("absent")).unwrap(), None);
    }
}
