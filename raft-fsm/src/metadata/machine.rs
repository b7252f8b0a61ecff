//! [`MetadataStateMachine`]: the cluster catalogue as a raft state machine,
//! and [`MetadataReader`], its cheap consistent view.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;
use prost::Message;
use tokio::sync::watch;

use super::catalog::Catalog;
use super::command::{MetadataCommand, MetadataErrorWire, MetadataResponse};
use crate::entry::{EntryKind, LogEntry, SnapshotMeta};
use crate::error::{CorruptionKind, FsmError};
use crate::partition::state::{self, STATE_PREFIX};
use crate::state_machine::{MemorySnapshot, SnapshotSource, StateMachine};

/// Magic of the metadata checkpoint and snapshot.
const METADATA_MAGIC: &[u8; 4] = b"CKMD";
/// Name of the checkpoint file of [`MetadataStateMachine::open`].
const CHECKPOINT_FILE: &str = "metadata.checkpoint";
/// Snapshot chunk size.
const CHUNK_BYTES: usize = 1024 * 1024;

#[derive(Debug)]
struct Shared {
    catalog: RwLock<Arc<Catalog>>,
    version: watch::Sender<u64>,
    rejected_commands: AtomicU64,
}

/// A cheap, consistent view of the catalogue, shared with the machine.
#[derive(Debug, Clone)]
pub struct MetadataReader {
    shared: Arc<Shared>,
}

impl MetadataReader {
    /// The catalogue as of the last applied entry (an `Arc`: no copy).
    pub fn catalog(&self) -> Arc<Catalog> {
        Arc::clone(&self.shared.catalog.read())
    }

    /// Receives the catalogue version after every accepted change, so a
    /// node can reconcile its local raft groups.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.version.subscribe()
    }

    /// Commands rejected so far (bad input included).
    pub fn rejected_commands(&self) -> u64 {
        self.shared.rejected_commands.load(Ordering::Relaxed)
    }
}

/// The cluster catalogue, like Kafka's KRaft metadata: nodes, topics,
/// partitions with their raft group and replicas, committed offsets.
///
/// Durability: [`MetadataStateMachine::new`] keeps no files, so its
/// [`durable_index`](StateMachine::durable_index) is the index of the last
/// restored snapshot (0 at first): the raft log must be kept (or compacted
/// only behind snapshots the scheduler stored) and replayed on restart.
/// [`MetadataStateMachine::open`] writes the catalogue to a checkpoint file
/// on [`flush`](StateMachine::flush), which makes the applied index durable.
///
/// ```
/// use raft_fsm::{decode_metadata_response, LogEntry, MetadataCommand, MetadataStateMachine};
/// use raft_fsm::{NodeInfo, StateMachine};
///
/// let mut machine = MetadataStateMachine::new();
/// let node = NodeInfo { node_id: 1, raft_address: "127.0.0.1:7000".into(), ..Default::default() };
/// let response = machine.apply(&LogEntry::normal(1, 1, &MetadataCommand::register_node(node).encode())).unwrap();
/// assert_eq!(decode_metadata_response(&response), Ok(1));
/// assert!(machine.reader().catalog().nodes.contains_key(&1));
/// ```
#[derive(Debug)]
pub struct MetadataStateMachine {
    shared: Arc<Shared>,
    dir: Option<PathBuf>,
    durable_index: u64,
    poisoned: bool,
    /// The directory lock of [`MetadataStateMachine::open`].
    _lock: Option<std::fs::File>,
}

impl Default for MetadataStateMachine {
    fn default() -> Self {
        Self::new()
    }
}

impl MetadataStateMachine {
    /// An empty in-memory catalogue.
    pub fn new() -> Self {
        Self::with_catalog(Catalog::default(), None)
    }

    fn with_catalog(catalog: Catalog, dir: Option<PathBuf>) -> Self {
        let (version, _) = watch::channel(catalog.version);
        let durable_index = if dir.is_some() {
            catalog.applied_index
        } else {
            0
        };
        let shared = Shared {
            catalog: RwLock::new(Arc::new(catalog)),
            version,
            rejected_commands: AtomicU64::new(0),
        };
        MetadataStateMachine {
            shared: Arc::new(shared),
            dir,
            durable_index,
            poisoned: false,
            _lock: None,
        }
    }

    /// Opens (or creates) a catalogue checkpointed in `dir`.
    ///
    /// # Errors
    /// [`FsmError::Corruption`] for a corrupt checkpoint; I/O errors.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, FsmError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| FsmError::io(&dir, e))?;
        let lock = state::lock_dir(&dir, "metadata.lock")?;
        let catalog =
            state::read_framed(METADATA_MAGIC, &dir.join(CHECKPOINT_FILE))?.unwrap_or_default();
        let mut machine = Self::with_catalog(catalog, Some(dir));
        machine._lock = Some(lock);
        Ok(machine)
    }

    /// A reader sharing this machine's catalogue.
    pub fn reader(&self) -> MetadataReader {
        MetadataReader {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The same as [`MetadataStateMachine::reader`] (the name the
    /// scheduler's brief uses).
    pub fn catalog(&self) -> MetadataReader {
        self.reader()
    }

    fn encoded(&self) -> Vec<u8> {
        state::frame_body(METADATA_MAGIC, &self.shared.catalog.read().encode_to_vec())
    }
}

impl StateMachine for MetadataStateMachine {
    fn apply(&mut self, entry: &LogEntry<'_>) -> Result<Bytes, FsmError> {
        if self.poisoned {
            return Err(FsmError::Poisoned);
        }
        let mut guard = self.shared.catalog.write();
        let expected = guard.applied_index + 1;
        if entry.index != expected {
            return Err(FsmError::IndexGap {
                expected,
                got: entry.index,
            });
        }
        // Copies the catalogue only if a reader still holds the old one.
        let catalog = Arc::make_mut(&mut guard);
        catalog.applied_index = entry.index;
        catalog.applied_term = entry.term;
        // raft-rs's leader entry is a Normal entry without data: no command.
        if entry.kind != EntryKind::Normal || entry.data.is_empty() {
            return Ok(Bytes::new());
        }
        let outcome =
            MetadataCommand::decode_checked(entry.data).and_then(|op| catalog.apply_op(op));
        let version = catalog.version;
        drop(guard);
        let error = match outcome {
            Ok(()) => {
                self.shared.version.send_replace(version);
                None
            }
            Err(error) => {
                self.shared
                    .rejected_commands
                    .fetch_add(1, Ordering::Relaxed);
                Some(MetadataErrorWire::from_error(&error))
            }
        };
        Ok(Bytes::from(
            MetadataResponse { version, error }.encode_to_vec(),
        ))
    }

    fn applied_index(&self) -> u64 {
        self.shared.catalog.read().applied_index
    }

    fn durable_index(&self) -> u64 {
        self.durable_index
    }

    fn flush(&mut self) -> Result<u64, FsmError> {
        if self.poisoned {
            return Err(FsmError::Poisoned);
        }
        let Some(dir) = &self.dir else {
            return Ok(self.durable_index);
        };
        let applied = self.applied_index();
        if applied != self.durable_index {
            if let Err(error) = state::write_atomic(dir, CHECKPOINT_FILE, &self.encoded()) {
                self.poisoned = true;
                return Err(error);
            }
            self.durable_index = applied;
        }
        Ok(self.durable_index)
    }

    fn snapshot(&self) -> Result<Box<dyn SnapshotSource>, FsmError> {
        let catalog = self.shared.catalog.read();
        let meta = SnapshotMeta {
            index: catalog.applied_index,
            term: catalog.applied_term,
        };
        let encoded = state::frame_body(METADATA_MAGIC, &catalog.encode_to_vec());
        drop(catalog);
        let chunks = encoded
            .chunks(CHUNK_BYTES)
            .map(Bytes::copy_from_slice)
            .collect();
        Ok(Box::new(MemorySnapshot::new(meta, chunks)))
    }

    fn restore(
        &mut self,
        meta: SnapshotMeta,
        chunks: &mut dyn Iterator<Item = Result<Bytes, FsmError>>,
    ) -> Result<(), FsmError> {
        if self.poisoned {
            return Err(FsmError::Poisoned);
        }
        let mut bytes = Vec::new();
        for chunk in chunks {
            bytes.extend_from_slice(&chunk?);
        }
        let bad = |position: u64, kind| FsmError::BadSnapshot { position, kind };
        let (len, crc) =
            state::parse_prefix_with(METADATA_MAGIC, &bytes).map_err(|kind| bad(0, kind))?;
        if bytes.len() != STATE_PREFIX + len {
            return Err(bad(bytes.len() as u64, CorruptionKind::BadLength));
        }
        let catalog: Catalog = state::decode_body(&bytes[STATE_PREFIX..], crc)
            .map_err(|kind| bad(STATE_PREFIX as u64, kind))?;
        if catalog.applied_index != meta.index {
            return Err(FsmError::SnapshotMismatch {
                meta: meta.index,
                header: catalog.applied_index,
            });
        }
        if let Some(dir) = &self.dir {
            if let Err(error) = state::write_atomic(dir, CHECKPOINT_FILE, &bytes) {
                self.poisoned = true;
                return Err(error);
            }
        }
        let version = catalog.version;
        *self.shared.catalog.write() = Arc::new(catalog);
        self.durable_index = meta.index;
        self.shared.version.send_replace(version);
        Ok(())
    }
}
