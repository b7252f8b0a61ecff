//! The crate's error type.

use std::io;
use std::path::PathBuf;

use crate::GroupId;

/// What exactly is wrong with a damaged piece of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptionKind {
    /// A segment header is missing, has the wrong magic or an unknown format version.
    BadHeader,
    /// A frame's CRC32C does not match its contents.
    Checksum,
    /// A frame or record claims more bytes than there are.
    Truncated,
    /// A frame or record carries a type tag this version does not know.
    UnknownType(u8),
    /// A protobuf message inside a record does not decode.
    Decode,
    /// A record is well formed but contradicts the log (for example entries out of order).
    Inconsistent,
}

/// Errors of the log engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An earlier `fdatasync` (or another write whose outcome is unknown) failed: the durable
    /// state of the log is unknown, so the engine refuses every later write.
    #[error("the log engine is poisoned by an earlier failed write or sync")]
    Poisoned,
    /// Damaged data in the log that is not a torn tail: never skipped silently.
    #[error("corrupted log file {}: {kind:?} at offset {offset}", path.display())]
    Corruption {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the damaged frame or header in that file.
        offset: u64,
        /// What is wrong.
        kind: CorruptionKind,
    },
    /// A snapshot file beside the log is damaged.
    #[error("corrupted snapshot file {}: {kind:?}", path.display())]
    SnapshotCorruption {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong.
        kind: CorruptionKind,
    },
    /// An append would leave a hole in a group's log.
    #[error("group {group}: append at index {index} leaves a gap after last index {last_index}")]
    LogGap {
        /// The group.
        group: GroupId,
        /// First index of the appended entries.
        index: u64,
        /// The group's last index before the append.
        last_index: u64,
    },
    /// The entries handed to one append do not have consecutive indexes.
    #[error("group {group}: appended entries are not contiguous at index {index}")]
    NotContiguous {
        /// The group.
        group: GroupId,
        /// The index that breaks the sequence.
        index: u64,
    },
    /// `apply_snapshot` with a snapshot older than the group's first index.
    #[error("group {group}: snapshot at index {index} is older than first index {first_index}")]
    SnapshotOutOfDate {
        /// The group.
        group: GroupId,
        /// The snapshot's index.
        index: u64,
        /// The group's first index.
        first_index: u64,
    },
    /// Entries the engine expected to hold are not there (compacted or truncated meanwhile).
    #[error("group {group}: entries [{low}, {high}) are not available")]
    EntriesUnavailable {
        /// The group.
        group: GroupId,
        /// First index asked for.
        low: u64,
        /// One past the last index asked for.
        high: u64,
    },
    /// Another engine (in this or another process) has the directory open.
    #[error("log directory {} is locked by another engine", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A protobuf message could not be encoded.
    #[error("cannot encode a protobuf message: {0}")]
    Encode(#[from] protobuf::ProtobufError),
    /// A batch or record is larger than the format allows (4 GiB).
    #[error("a batch of {size} bytes exceeds the format limit")]
    TooLarge {
        /// Size of the batch in bytes.
        size: usize,
    },
    /// The write would take the live segment files past
    /// [`max_log_bytes`](crate::EngineConfig::max_log_bytes). Nothing was written and the
    /// engine is not poisoned: the batch is kept, and the write succeeds once compaction and
    /// purge have freed enough space.
    #[error("the log is full: {used} of {limit} bytes used, {needed} more do not fit")]
    QuotaExceeded {
        /// Bytes the live segments held.
        used: u64,
        /// The configured limit.
        limit: u64,
        /// Bytes the refused write needed.
        needed: u64,
    },
    /// The configuration is unusable.
    #[error("invalid engine configuration: {field} {reason}")]
    InvalidConfig {
        /// The offending setting.
        field: &'static str,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// An I/O error from the file system.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
