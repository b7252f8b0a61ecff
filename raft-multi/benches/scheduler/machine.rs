//! The state machine both drivers apply to in the benchmarks: it counts what it
//! applied and answers each command with its raft index. Keeping no payloads, it
//! costs the same in both drivers and does not blur the memory figures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use raft_fsm::{
    EntryKind, FsmError, LogEntry, MemorySnapshot, SnapshotMeta, SnapshotSource, StateMachine,
};

/// Applied index, term, and how many commands and bytes were applied.
#[derive(Debug, Default)]
pub struct CountingMachine {
    applied: u64,
    term: u64,
    durable: u64,
    commands: u64,
    bytes: u64,
    /// Commands applied by every machine of one node.
    tally: Arc<AtomicU64>,
}

impl CountingMachine {
    /// A machine that also counts its commands into its node's `tally`.
    pub fn new(tally: &Arc<AtomicU64>) -> Self {
        CountingMachine {
            tally: Arc::clone(tally),
            ..Self::default()
        }
    }

    /// Encodes the state as one snapshot chunk.
    fn encode(&self) -> Bytes {
        let mut chunk = Vec::with_capacity(16);
        chunk.extend_from_slice(&self.commands.to_le_bytes());
        chunk.extend_from_slice(&self.bytes.to_le_bytes());
        Bytes::from(chunk)
    }
}

impl StateMachine for CountingMachine {
    fn apply(&mut self, entry: &LogEntry<'_>) -> Result<Bytes, FsmError> {
        if entry.index != self.applied + 1 {
            return Err(FsmError::IndexGap {
                expected: self.applied + 1,
                got: entry.index,
            });
        }
        self.applied = entry.index;
        self.term = entry.term;
        if entry.kind != EntryKind::Normal {
            return Ok(Bytes::new());
        }
        self.commands += 1;
        self.bytes += entry.data.len() as u64;
        self.tally.fetch_add(1, Ordering::Relaxed);
        Ok(Bytes::copy_from_slice(&entry.index.to_le_bytes()))
    }

    fn applied_index(&self) -> u64 {
        self.applied
    }

    fn durable_index(&self) -> u64 {
        self.durable
    }

    fn flush(&mut self) -> Result<u64, FsmError> {
        self.durable = self.applied;
        Ok(self.durable)
    }

    fn snapshot(&self) -> Result<Box<dyn SnapshotSource>, FsmError> {
        let meta = SnapshotMeta {
            index: self.applied,
            term: self.term,
        };
        Ok(Box::new(MemorySnapshot::new(meta, vec![self.encode()])))
    }

    fn restore(
        &mut self,
        meta: SnapshotMeta,
        chunks: &mut dyn Iterator<Item = Result<Bytes, FsmError>>,
    ) -> Result<(), FsmError> {
        let mut data = Vec::new();
        for chunk in chunks {
            data.extend_from_slice(&chunk?);
        }
        let bad = || FsmError::BadSnapshot {
            position: 0,
            kind: raft_fsm::CorruptionKind::Truncated,
        };
        // An empty stream is the state of a machine that applied no command yet.
        let (commands, bytes) = match data.len() {
            0 => (0, 0),
            16 => {
                let word = |at: usize| {
                    data.get(at..at + 8)
                        .and_then(|s| <[u8; 8]>::try_from(s).ok())
                        .map(u64::from_le_bytes)
                };
                (word(0).ok_or_else(bad)?, word(8).ok_or_else(bad)?)
            }
            _ => return Err(bad()),
        };
        let gained = commands.saturating_sub(self.commands);
        self.tally.fetch_add(gained, Ordering::Relaxed);
        self.applied = meta.index;
        self.term = meta.term;
        self.durable = meta.index;
        self.commands = commands;
        self.bytes = bytes;
        Ok(())
    }
}
