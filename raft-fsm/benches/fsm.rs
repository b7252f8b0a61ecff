//! Throughput of the partition machine against plain `Vec` baselines
//! measured in the same run, printed as ratios.
//!
//! - apply: batches of 10 records of 100 bytes, each applied as an encoded
//!   append command (decode, offset assignment, CRC frame, segment write),
//!   against `Vec::extend_from_slice` of the same 1000 bytes per batch.
//! - fetch: reading the whole log back in 1 MiB fetches, against copying the
//!   same bytes out of a `Vec` in 1 MiB slices.
//!
//! `cargo bench -p raft-fsm` (BATCHES=n to change the size of a round).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft_fsm::{LogEntry, PartitionCommand, PartitionConfig, PartitionStateMachine, StateMachine};

const RECORDS_PER_BATCH: u32 = 10;
const RECORD_BYTES: usize = 100;
const FETCH_BYTES: usize = 1024 * 1024;
const ROUNDS: usize = 5;

fn batches() -> usize {
    std::env::var("BATCHES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50_000)
}

/// Payloads and their encoded commands (built outside the timed loops).
fn workload(count: usize) -> (Vec<Bytes>, Vec<Bytes>) {
    let payloads: Vec<Bytes> = (0..count)
        .map(|i| {
            Bytes::from(vec![
                (i % 251) as u8;
                RECORD_BYTES * RECORDS_PER_BATCH as usize
            ])
        })
        .collect();
    let commands = payloads
        .iter()
        .map(|p| PartitionCommand::append(p.clone(), RECORDS_PER_BATCH, 1, 1).encode())
        .collect();
    (payloads, commands)
}

fn apply_all(
    machine: &mut PartitionStateMachine,
    commands: &[Bytes],
    flush_every: usize,
) -> Duration {
    let start = Instant::now();
    machine.apply(&LogEntry::empty(1, 1)).unwrap();
    for (i, command) in commands.iter().enumerate() {
        let response = machine
            .apply(&LogEntry::normal(i as u64 + 2, 1, command))
            .unwrap();
        black_box(response);
        if flush_every > 0 && i % flush_every == flush_every - 1 {
            machine.flush().unwrap();
        }
    }
    start.elapsed()
}

fn fetch_all(machine: &PartitionStateMachine) -> (Duration, usize) {
    let reader = machine.reader();
    let start = Instant::now();
    let mut offset = 0;
    let mut bytes = 0;
    // Bounded: every fetch below the high watermark returns at least one batch.
    while offset < reader.high_watermark() {
        let fetched = reader.fetch(offset, FETCH_BYTES).unwrap();
        bytes += fetched.records_bytes();
        offset = fetched
            .batches
            .last()
            .map_or(u64::MAX, |b| b.last_offset + 1);
        black_box(&fetched);
    }
    (start.elapsed(), bytes)
}

fn rate(units: f64, elapsed: Duration) -> f64 {
    units / elapsed.as_secs_f64()
}

/// Best (shortest) time of each contender over `ROUNDS` interleaved rounds:
/// interleaving exposes every contender to the same machine load.
fn interleaved(contenders: &mut [(&str, &mut dyn FnMut() -> Duration)]) -> Vec<Duration> {
    let mut best = vec![Duration::MAX; contenders.len()];
    for _ in 0..ROUNDS {
        for (slot, (_, run)) in contenders.iter_mut().enumerate() {
            best[slot] = best[slot].min(run());
        }
    }
    best
}

fn main() {
    let count = batches();
    let records = (count * RECORDS_PER_BATCH as usize) as f64;
    let (payloads, commands) = workload(count);
    let total_bytes: usize = payloads.iter().map(Bytes::len).sum();
    let config = PartitionConfig::default();
    let dir = tempfile::tempdir().unwrap();
    println!(
        "raft-fsm bench: {count} batches x {RECORDS_PER_BATCH} records x {RECORD_BYTES} bytes, \
         best of {ROUNDS} interleaved rounds"
    );

    let mut round = 0;
    let mut next_dir = || {
        round += 1;
        dir.path().join(round.to_string())
    };
    let mut vec_append = || {
        let start = Instant::now();
        let mut log: Vec<u8> = Vec::new();
        for payload in &payloads {
            log.extend_from_slice(payload);
        }
        black_box(&log);
        start.elapsed()
    };
    let mut memory = || {
        apply_all(
            &mut PartitionStateMachine::in_memory(config.clone()),
            &commands,
            0,
        )
    };
    let mut file = || {
        let path = next_dir();
        let elapsed = apply_all(
            &mut PartitionStateMachine::open(&path, config.clone()).unwrap(),
            &commands,
            0,
        );
        std::fs::remove_dir_all(path).unwrap();
        elapsed
    };
    let mut flushed = || {
        let mut machine =
            PartitionStateMachine::open(dir.path().join("flushed"), config.clone()).unwrap();
        let elapsed = apply_all(&mut machine, &commands, 10_000);
        drop(machine);
        std::fs::remove_dir_all(dir.path().join("flushed")).unwrap();
        elapsed
    };
    let times = interleaved(&mut [
        ("vec", &mut vec_append),
        ("memory", &mut memory),
        ("file", &mut file),
        ("flushed", &mut flushed),
    ]);
    let base = rate(records, times[0]);
    println!("apply  baseline Vec append          {base:>12.0} records/s");
    for (name, time) in [
        ("in-memory partition         ", times[1]),
        ("file partition, no flush    ", times[2]),
        ("file partition, flush/10k   ", times[3]),
    ] {
        let r = rate(records, time);
        println!("apply  {name}  {r:>12.0} records/s  ratio {:.3}", r / base);
    }

    // Fetch: the same bytes read back in 1 MiB fetches, against copying
    // them out of a Vec in 1 MiB slices.
    let log: Vec<u8> = payloads.iter().flat_map(|p| p.iter().copied()).collect();
    let mut memory_machine = PartitionStateMachine::in_memory(config.clone());
    apply_all(&mut memory_machine, &commands, 0);
    let mut file_machine = PartitionStateMachine::open(next_dir(), config.clone()).unwrap();
    apply_all(&mut file_machine, &commands, 0);
    file_machine.flush().unwrap();
    let mut vec_slices = || {
        let start = Instant::now();
        let mut out = Vec::with_capacity(FETCH_BYTES);
        let mut copied = 0;
        for slice in log.chunks(FETCH_BYTES) {
            out.clear();
            out.extend_from_slice(slice);
            copied += black_box(&out).len();
        }
        assert_eq!(copied, total_bytes);
        start.elapsed()
    };
    let mut fetch_memory = || {
        let (elapsed, bytes) = fetch_all(&memory_machine);
        assert_eq!(bytes, total_bytes);
        elapsed
    };
    let mut fetch_file = || {
        let (elapsed, bytes) = fetch_all(&file_machine);
        assert_eq!(bytes, total_bytes);
        elapsed
    };
    let times = interleaved(&mut [
        ("vec", &mut vec_slices),
        ("memory", &mut fetch_memory),
        ("file", &mut fetch_file),
    ]);
    let mb = total_bytes as f64 / 1e6;
    let base = rate(mb, times[0]);
    println!("fetch  baseline Vec slice copy      {base:>12.0} MB/s");
    for (name, time) in [
        ("in-memory partition         ", times[1]),
        ("file partition (page cache) ", times[2]),
    ] {
        let r = rate(mb, time);
        println!("fetch  {name}  {r:>12.0} MB/s       ratio {:.3}", r / base);
    }
}
