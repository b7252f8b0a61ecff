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

/// Best of `ROUNDS` runs of `f`, which returns the work done and a value to keep.
fn best<T>(mut f: impl FnMut() -> (Duration, T)) -> (Duration, T) {
    let mut best: Option<(Duration, T)> = None;
    for _ in 0..ROUNDS {
        let (elapsed, value) = f();
        if best.as_ref().is_none_or(|(b, _)| elapsed < *b) {
            best = Some((elapsed, value));
        }
    }
    best.unwrap_or_else(|| (Duration::MAX, f().1))
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

fn main() {
    let count = batches();
    let records = (count * RECORDS_PER_BATCH as usize) as f64;
    let (payloads, commands) = workload(count);
    let total_bytes: usize = payloads.iter().map(Bytes::len).sum();
    let config = PartitionConfig::default();
    println!("raft-fsm bench: {count} batches x {RECORDS_PER_BATCH} records x {RECORD_BYTES} bytes, best of {ROUNDS}");

    // Baseline: a plain in-memory Vec append of the same bytes.
    let (vec_apply, log) = best(|| {
        let start = Instant::now();
        let mut log: Vec<u8> = Vec::new();
        for payload in &payloads {
            log.extend_from_slice(payload);
        }
        black_box(&log);
        (start.elapsed(), log)
    });
    let base = rate(records, vec_apply);
    println!(
        "apply  baseline Vec append          {:>12.0} records/s",
        base
    );

    let (memory, _) = best(|| {
        let mut machine = PartitionStateMachine::in_memory(config.clone());
        (apply_all(&mut machine, &commands, 0), ())
    });
    let mem_rate = rate(records, memory);
    println!(
        "apply  in-memory partition          {:>12.0} records/s  ratio {:.3}",
        mem_rate,
        mem_rate / base
    );

    let dir = tempfile::tempdir().unwrap();
    let mut round = 0;
    let (file, file_machine) = best(|| {
        round += 1;
        let mut machine =
            PartitionStateMachine::open(dir.path().join(round.to_string()), config.clone())
                .unwrap();
        (apply_all(&mut machine, &commands, 0), machine)
    });
    let file_rate = rate(records, file);
    println!(
        "apply  file partition, no flush     {:>12.0} records/s  ratio {:.3}",
        file_rate,
        file_rate / base
    );

    let (flushed, _) = best(|| {
        round += 1;
        let mut machine =
            PartitionStateMachine::open(dir.path().join(round.to_string()), config.clone())
                .unwrap();
        let elapsed = apply_all(&mut machine, &commands, 10_000);
        machine.flush().unwrap();
        (elapsed, ())
    });
    let flushed_rate = rate(records, flushed);
    println!(
        "apply  file partition, flush/10k    {:>12.0} records/s  ratio {:.3}",
        flushed_rate,
        flushed_rate / base
    );

    // Fetch baseline: copying the same bytes out of a Vec in 1 MiB slices.
    let (vec_fetch, copied) = best(|| {
        let start = Instant::now();
        let mut copied = 0;
        let mut out = Vec::with_capacity(FETCH_BYTES);
        for slice in log.chunks(FETCH_BYTES) {
            out.clear();
            out.extend_from_slice(slice);
            copied += black_box(&out).len();
        }
        (start.elapsed(), copied)
    });
    assert_eq!(copied, total_bytes);
    let mb = total_bytes as f64 / 1e6;
    let fetch_base = rate(mb, vec_fetch);
    println!(
        "fetch  baseline Vec slice copy      {:>12.0} MB/s",
        fetch_base
    );

    let mut memory_machine = PartitionStateMachine::in_memory(config.clone());
    apply_all(&mut memory_machine, &commands, 0);
    let (mem_fetch, got) = best(|| fetch_all(&memory_machine));
    assert_eq!(got, total_bytes);
    let mem_fetch_rate = rate(mb, mem_fetch);
    println!(
        "fetch  in-memory partition          {:>12.0} MB/s       ratio {:.3}",
        mem_fetch_rate,
        mem_fetch_rate / fetch_base
    );

    let mut file_machine = file_machine;
    file_machine.flush().unwrap();
    let (file_fetch, got) = best(|| fetch_all(&file_machine));
    assert_eq!(got, total_bytes);
    let file_fetch_rate = rate(mb, file_fetch);
    println!(
        "fetch  file partition (page cache)  {:>12.0} MB/s       ratio {:.3}",
        file_fetch_rate,
        file_fetch_rate / fetch_base
    );
}
