//! The state machine of the raft-level scenarios (both drivers apply to it): it counts
//! the commands it applied and answers each with its raft index. It keeps no payloads,
//! so it costs the same under both drivers and does not blur the memory figures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use raft_fsm::{
    CorruptionKind, EntryKind, FsmError, LogEntry, MemorySnapshot, SnapshotMeta, SnapshotSource,
    StateMachine,
};

/// Applied index and term, and how many commands it applied.
#[derive(Debug, Default)]
pub struct CountingMachine {
    applied: u64,
    term: u64,
    durable: u64,
    commands: u64,
    /// Commands applied by every machine of one node.
    tally: Arc<AtomicU64>,
}

impl CountingMachine {
    /// A machine that also adds its commands to its node's `tally`.
    pub fn new(tally: &Arc<AtomicU64>) -> Self {
        CountingMachine {
            tally: Arc::clone(tally),
            ..Self::default()
        }
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
        let chunk = Bytes::copy_from_slice(&self.commands.to_le_bytes());
        Ok(Box::new(MemorySnapshot::new(meta, vec![chunk])))
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
        let commands = match data.len() {
            0 => 0,
            8 => data
                .get(..8)
                .and_then(|s| <[u8; 8]>::try_from(s).ok())
                .map_or(0, u64::from_le_bytes),
            _ => {
                return Err(FsmError::BadSnapshot {
                    position: 0,
                    kind: CorruptionKind::Truncated,
                })
            }
        };
        self.tally
            .fetch_add(commands.saturating_sub(self.commands), Ordering::Relaxed);
        self.applied = meta.index;
        self.term = meta.term;
        self.durable = meta.index;
        self.commands = commands;
        Ok(())
    }
}
