//! Helpers shared by the integration tests: a driver that feeds a state
//! machine entries with consecutive indexes, and a seeded command generator.
#![allow(dead_code)]

use bytes::Bytes;
use raft_fsm::{
    collect_chunks, AppendResult, LogEntry, PartitionCommand, PartitionError, ProducerInfo,
    SnapshotMeta, StateMachine,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Feeds a machine entries with consecutive indexes in a chosen term.
pub struct Driver<M: StateMachine> {
    pub machine: M,
    pub term: u64,
    pub log: Vec<(u64, u64, bool, Bytes)>,
}

impl<M: StateMachine> Driver<M> {
    pub fn new(machine: M) -> Self {
        Driver {
            machine,
            term: 0,
            log: Vec::new(),
        }
    }

    /// A new leader: an empty entry in a higher term.
    pub fn new_term(&mut self) -> u64 {
        self.term += 1;
        let index = self.machine.applied_index() + 1;
        self.log.push((index, self.term, false, Bytes::new()));
        let response = self
            .machine
            .apply(&LogEntry::empty(index, self.term))
            .unwrap();
        assert!(response.is_empty());
        self.term
    }

    pub fn apply(&mut self, command: Bytes) -> Bytes {
        let index = self.machine.applied_index() + 1;
        self.log.push((index, self.term, true, command.clone()));
        self.machine
            .apply(&LogEntry::normal(index, self.term, &command))
            .unwrap()
    }

    pub fn append(
        &mut self,
        records: &[u8],
        count: u32,
        timestamp: i64,
    ) -> Result<AppendResult, PartitionError> {
        let command =
            PartitionCommand::append(Bytes::copy_from_slice(records), count, timestamp, timestamp);
        raft_fsm::decode_append_response(&self.apply(command.encode()))
    }

    pub fn produce(
        &mut self,
        producer_id: i64,
        producer_epoch: i32,
        base_sequence: i32,
        count: u32,
    ) -> Result<AppendResult, PartitionError> {
        let producer = ProducerInfo {
            producer_id,
            producer_epoch,
            base_sequence,
        };
        let records = Bytes::from(format!("p{producer_id}e{producer_epoch}s{base_sequence}"));
        let command = PartitionCommand::append_idempotent(records, count, 10, 10, producer);
        raft_fsm::decode_append_response(&self.apply(command.encode()))
    }

    /// Replays this driver's log from `from` (inclusive) into `machine`.
    pub fn replay_into(&self, machine: &mut dyn StateMachine, from: u64) -> Vec<Bytes> {
        replay(&self.log, machine, from)
    }
}

/// The entries a driver applied: `(index, term, normal, data)`.
pub type Log = Vec<(u64, u64, bool, Bytes)>;

/// Replays `log` from index `from` (inclusive) into `machine`.
pub fn replay(log: &Log, machine: &mut dyn StateMachine, from: u64) -> Vec<Bytes> {
    {
        log.iter()
            .filter(|(index, ..)| *index >= from)
            .map(|(index, term, normal, data)| {
                let entry = if *normal {
                    LogEntry::normal(*index, *term, data)
                } else {
                    LogEntry::empty(*index, *term)
                };
                machine.apply(&entry).unwrap()
            })
            .collect()
    }
}

/// The whole snapshot stream of a machine, concatenated.
pub fn snapshot_bytes(machine: &dyn StateMachine) -> (SnapshotMeta, Vec<u8>) {
    let mut source = machine.snapshot().unwrap();
    let meta = source.meta();
    let chunks = collect_chunks(source.as_mut()).unwrap();
    (meta, chunks.concat())
}

/// Copies a machine's snapshot into another machine.
pub fn transfer(from: &dyn StateMachine, to: &mut dyn StateMachine) {
    let mut source = from.snapshot().unwrap();
    let meta = source.meta();
    let chunks = collect_chunks(source.as_mut()).unwrap();
    to.restore(meta, &mut chunks.into_iter().map(Ok)).unwrap();
}

/// The seed from `SEED` or a fixed default; printed so a failure replays.
pub fn seed() -> u64 {
    let seed = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f5a1);
    eprintln!("SEED={seed}");
    seed
}

/// A random partition command (appends, idempotent appends, deletes,
/// retention, garbage), deterministic for an rng.
pub fn random_command(rng: &mut StdRng, clock: &mut i64, high_watermark_hint: u64) -> Bytes {
    *clock += rng.random_range(0..50);
    let now = *clock;
    match rng.random_range(0..100) {
        0..=54 => {
            let len = rng.random_range(1..300);
            let records: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            PartitionCommand::append(Bytes::from(records), rng.random_range(1..20), now, now)
                .encode()
        }
        55..=79 => {
            let producer = ProducerInfo {
                producer_id: rng.random_range(0..4),
                producer_epoch: rng.random_range(0..3),
                base_sequence: rng.random_range(0..12),
            };
            let records = Bytes::from(vec![rng.random::<u8>(); rng.random_range(1..100)]);
            PartitionCommand::append_idempotent(records, rng.random_range(1..4), now, now, producer)
                .encode()
        }
        80..=86 => {
            PartitionCommand::delete_records(rng.random_range(0..=high_watermark_hint + 3)).encode()
        }
        87..=95 => PartitionCommand::apply_retention(
            now,
            rng.random_bool(0.5).then(|| rng.random_range(0..400)),
            rng.random_bool(0.5).then(|| rng.random_range(0..4000)),
            rng.random_bool(0.3).then(|| rng.random_range(0..300)),
        )
        .encode(),
        _ => Bytes::from(
            (0..rng.random_range(0..8))
                .map(|_| rng.random::<u8>())
                .collect::<Vec<u8>>(),
        ),
    }
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}
