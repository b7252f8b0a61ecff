//! A small state machine for tests of the scheduler (feature `test-util`).
//!
//! [`MemoryStateMachine`] keeps every applied command in memory and answers each with
//! its raft index. Its "disk" ([`MemoryDisk`]) survives a simulated restart: what was
//! flushed is there when a new machine opens on the same disk, what was only applied
//! is not, exactly like a real machine that flushes lazily.

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use parking_lot::Mutex;
use raft_fsm::{
    EntryKind, FsmError, LogEntry, MemorySnapshot, SnapshotMeta, SnapshotSource, StateMachine,
};

/// Applied commands: (raft index, data), in apply order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryState {
    /// Last applied index.
    pub applied: u64,
    /// Term of the last applied entry.
    pub term: u64,
    /// Every normal entry applied, with its index.
    pub commands: Vec<(u64, Bytes)>,
}

/// The durable side of a [`MemoryStateMachine`]: shared, survives "restarts".
#[derive(Debug, Clone, Default)]
pub struct MemoryDisk(pub(crate) Arc<Mutex<MemoryState>>);

impl MemoryDisk {
    /// A copy of what is durable.
    pub fn state(&self) -> MemoryState {
        self.0.lock().clone()
    }
}

/// A deterministic in-memory state machine for tests.
#[derive(Debug)]
pub struct MemoryStateMachine {
    live: Arc<Mutex<MemoryState>>,
    disk: MemoryDisk,
    gate: Gate,
}

/// Holds a machine's `apply` while closed, so a test can stall the worker that owns
/// it and pile work up in the mailbox. Opens by itself after 30 seconds.
#[derive(Debug, Clone, Default)]
pub struct Gate(Arc<(Mutex<GateState>, parking_lot::Condvar)>);

#[derive(Debug, Default)]
struct GateState {
    closed: bool,
    waiting: bool,
}

impl Gate {
    /// Makes the next `apply` wait.
    pub fn close(&self) {
        self.0 .0.lock().closed = true;
    }

    /// Lets waiting and later `apply` calls through.
    pub fn open(&self) {
        self.0 .0.lock().closed = false;
        self.0 .1.notify_all();
    }

    /// True while an `apply` waits at the closed gate.
    pub fn has_waiter(&self) -> bool {
        self.0 .0.lock().waiting
    }

    fn pass(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut state = self.0 .0.lock();
        while state.closed && std::time::Instant::now() < deadline {
            state.waiting = true;
            self.0 .1.wait_until(&mut state, deadline);
        }
        state.waiting = false;
    }
}

impl MemoryStateMachine {
    /// Opens a machine on `disk`: it starts at what was flushed there.
    pub fn open(disk: &MemoryDisk) -> Self {
        MemoryStateMachine {
            live: Arc::new(Mutex::new(disk.state())),
            disk: disk.clone(),
            gate: Gate::default(),
        }
    }

    /// A machine on a fresh disk.
    pub fn new() -> Self {
        Self::open(&MemoryDisk::default())
    }

    /// The gate in front of this machine's `apply`.
    pub fn gate(&self) -> Gate {
        self.gate.clone()
    }

    /// A handle on the live (applied) state, readable while the scheduler owns the machine.
    pub fn view(&self) -> MemoryView {
        MemoryView(Arc::clone(&self.live))
    }

    /// Decodes a response of this machine: the raft index the command was applied at.
    pub fn decode_response(response: &[u8]) -> Option<u64> {
        <[u8; 8]>::try_from(response).ok().map(u64::from_le_bytes)
    }
}

impl Default for MemoryStateMachine {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads the applied state of a [`MemoryStateMachine`] from another thread.
#[derive(Debug, Clone)]
pub struct MemoryView(Arc<Mutex<MemoryState>>);

impl MemoryView {
    /// A copy of the applied state.
    pub fn state(&self) -> MemoryState {
        self.0.lock().clone()
    }

    /// The last applied index.
    pub fn applied(&self) -> u64 {
        self.0.lock().applied
    }
}

impl StateMachine for MemoryStateMachine {
    fn apply(&mut self, entry: &LogEntry<'_>) -> Result<Bytes, FsmError> {
        self.gate.pass();
        let mut live = self.live.lock();
        if entry.index != live.applied + 1 {
            return Err(FsmError::IndexGap {
                expected: live.applied + 1,
                got: entry.index,
            });
        }
        live.applied = entry.index;
        live.term = entry.term;
        if entry.kind != EntryKind::Normal {
            return Ok(Bytes::new());
        }
        live.commands
            .push((entry.index, Bytes::copy_from_slice(entry.data)));
        Ok(Bytes::copy_from_slice(&entry.index.to_le_bytes()))
    }

    fn applied_index(&self) -> u64 {
        self.live.lock().applied
    }

    fn durable_index(&self) -> u64 {
        self.disk.0.lock().applied
    }

    fn flush(&mut self) -> Result<u64, FsmError> {
        let live = self.live.lock().clone();
        let applied = live.applied;
        *self.disk.0.lock() = live;
        Ok(applied)
    }

    fn snapshot(&self) -> Result<Box<dyn SnapshotSource>, FsmError> {
        let live = self.live.lock();
        let meta = SnapshotMeta {
            index: live.applied,
            term: live.term,
        };
        let chunks = live
            .commands
            .chunks(64)
            .map(|part| {
                let mut chunk = BytesMut::new();
                for (index, data) in part {
                    chunk.put_u64_le(*index);
                    chunk.put_u32_le(data.len() as u32);
                    chunk.extend_from_slice(data);
                }
                chunk.freeze()
            })
            .collect();
        Ok(Box::new(MemorySnapshot::new(meta, chunks)))
    }

    fn restore(
        &mut self,
        meta: SnapshotMeta,
        chunks: &mut dyn Iterator<Item = Result<Bytes, FsmError>>,
    ) -> Result<(), FsmError> {
        let mut state = MemoryState {
            applied: meta.index,
            term: meta.term,
            commands: Vec::new(),
        };
        let mut position = 0u64;
        for chunk in chunks {
            let mut chunk = chunk?;
            while chunk.has_remaining() {
                let bad = || FsmError::BadSnapshot {
                    position,
                    kind: raft_fsm::CorruptionKind::Truncated,
                };
                if chunk.remaining() < 12 {
                    return Err(bad());
                }
                let index = chunk.get_u64_le();
                let len = chunk.get_u32_le() as usize;
                if chunk.remaining() < len {
                    return Err(bad());
                }
                state.commands.push((index, chunk.split_to(len)));
                position += 12 + len as u64;
            }
        }
        *self.live.lock() = state.clone();
        *self.disk.0.lock() = state;
        Ok(())
    }
}
