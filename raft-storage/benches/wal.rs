//! Figures for the write-ahead log, each against a baseline measured in the same run:
//!
//! (a) synced appends from 1, 16 and 256 writer threads: the engine (group commit) against
//!     one `fdatasync` per write on a plain file;
//! (b) sequential 64 KiB write + `fdatasync` on a plain file (the disk's limit) against the
//!     engine writing 64 KiB batches with sync;
//! (c) recovery speed of a 1 GiB log (`RECOVERY_MB` shrinks it) with the files dropped from
//!     the page cache (GNU `dd iflag=nocache`), against reading the same files raw, and warm.
//!
//! `BENCH_PARTS` (default `abcd`) picks the parts; `BENCH_DIR` picks the directory (default: the system temp dir), `BENCH_SECS` the duration
//! of each (a) run (default 2), `BANDWIDTH_MB` the volume of (b) (default 256).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use raft::eraftpb::{Entry, HardState};
use raft_storage::{EngineConfig, LogBatch, LogEngine};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bench_dir() -> tempfile::TempDir {
    match std::env::var("BENCH_DIR") {
        Ok(dir) => tempfile::tempdir_in(dir).expect("temp dir in BENCH_DIR"),
        Err(_) => tempfile::tempdir().expect("temp dir"),
    }
}

fn entry(index: u64, size: usize) -> Entry {
    Entry {
        index,
        term: 1,
        data: vec![0xab; size].into(),
        ..Default::default()
    }
}

/// Runs `threads` writers for `secs`, each calling `write(thread, n)`; returns writes/s.
fn run_writers(threads: u64, secs: u64, write: impl Fn(u64, u64) + Send + Sync + 'static) -> f64 {
    let write = Arc::new(write);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let (write, stop, done) = (Arc::clone(&write), Arc::clone(&stop), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    write(thread, n);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let count = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for handle in handles {
        handle.join().expect("writer thread");
    }
    count as f64 / elapsed
}

fn group_commit(secs: u64) {
    println!("(a) synced appends, 128-byte entries + hard state, one group per writer;");
    println!("    baseline and engine alternate in 2 rounds of {secs} s each, rates are averages");
    println!("    writers   per-write fdatasync   engine (group commit)   ratio   batches/sync");
    for threads in [1u64, 16, 256] {
        let dir = bench_dir();
        let file = Arc::new(Mutex::new(
            File::create(dir.path().join("baseline")).expect("baseline file"),
        ));
        let engine = LogEngine::open(EngineConfig::new(dir.path().join("wal"))).expect("open");
        let next_index: Arc<Vec<AtomicU64>> =
            Arc::new((0..threads).map(|_| AtomicU64::new(1)).collect());
        let (mut baseline, mut ours) = (0.0, 0.0);
        for _ in 0..2 {
            let file = Arc::clone(&file);
            let record = vec![0xcd; 160];
            baseline += run_writers(threads, secs, move |_, _| {
                let mut file = file.lock();
                file.write_all(&record).expect("write");
                file.sync_data().expect("fdatasync");
            }) / 2.0;
            let (writer, next_index) = (engine.clone(), Arc::clone(&next_index));
            ours += run_writers(threads, secs, move |group, _| {
                let index = next_index[group as usize].fetch_add(1, Ordering::Relaxed);
                let mut batch = LogBatch::new();
                batch.append(group, &[entry(index, 128)]);
                batch.set_hard_state(
                    group,
                    &HardState {
                        term: 1,
                        vote: 1,
                        commit: index,
                        ..Default::default()
                    },
                );
                writer.write(&mut batch, true).expect("engine write");
            }) / 2.0;
        }
        let stats = engine.stats();
        let per_sync = stats.batches_synced as f64 / stats.syncs.max(1) as f64;
        println!(
            "    {threads:>7}   {baseline:>13.0} /s   {ours:>15.0} /s   {:>6.1}x   {per_sync:>8.1}",
            ours / baseline
        );
    }
}

fn bandwidth(total_mb: u64) {
    const BLOCK: usize = 64 << 10;
    const ROUNDS: u64 = 4;
    // Raw and engine runs alternate, so load from neighbours hits both alike.
    let blocks = (total_mb << 20) / BLOCK as u64 / ROUNDS;
    let dir = bench_dir();
    let block = vec![0x5au8; BLOCK];
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("raw"))
        .expect("raw file");
    let engine = LogEngine::open(EngineConfig::new(dir.path().join("wal"))).expect("open");
    let mut batch = LogBatch::new();
    // 16 entries of 4 KiB: a 64 KiB batch once framed.
    let mut template: Vec<Entry> = (0..16).map(|i| entry(i, 4096 - 40)).collect();
    let (mut raw_bytes, mut raw_secs, mut ours_bytes, mut ours_secs) = (0u64, 0f64, 0u64, 0f64);
    let mut index = 1;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..blocks {
            file.write_all(&block).expect("write");
            file.sync_data().expect("fdatasync");
        }
        raw_secs += started.elapsed().as_secs_f64();
        raw_bytes += blocks * BLOCK as u64;
        let started = Instant::now();
        for _ in 0..blocks {
            for entry in &mut template {
                entry.index = index;
                index += 1;
            }
            batch.append(1, &template);
            ours_bytes += engine.write(&mut batch, true).expect("engine write") as u64;
        }
        ours_secs += started.elapsed().as_secs_f64();
    }
    let raw = raw_bytes as f64 / raw_secs / 1e6;
    let ours = ours_bytes as f64 / ours_secs / 1e6;
    println!("(b) sequential 64 KiB + fdatasync, {total_mb} MiB each, {ROUNDS} alternating rounds");
    println!(
        "    raw file {raw:.1} MB/s   engine {ours:.1} MB/s   ratio {:.0}%",
        100.0 * ours / raw
    );
}

fn recovery(total_mb: u64) {
    let dir = bench_dir();
    let path = dir.path().join("wal");
    let engine = LogEngine::open(EngineConfig::new(&path)).expect("open");
    let groups = 64u64;
    let mut batch = LogBatch::new();
    let mut next = vec![1u64; groups as usize];
    let started = Instant::now();
    let mut written = 0u64;
    let mut round = 0u64;
    while written < total_mb << 20 {
        // 1 MiB batches: 16 groups x 16 entries x 4 KiB, with hard states.
        for k in 0..16 {
            let group = (round * 16 + k) % groups;
            let first = next[group as usize];
            let entries: Vec<Entry> = (first..first + 16).map(|i| entry(i, 4096)).collect();
            next[group as usize] += 16;
            batch.append(group, &entries);
            batch.set_hard_state(
                group,
                &HardState {
                    term: 1,
                    vote: 1,
                    commit: first,
                    ..Default::default()
                },
            );
        }
        written += engine.write(&mut batch, false).expect("engine write") as u64;
        round += 1;
    }
    engine.write(&mut batch, true).expect("final sync");
    let write_rate = written as f64 / started.elapsed().as_secs_f64() / 1e6;
    drop(engine);
    let segments: Vec<std::path::PathBuf> = std::fs::read_dir(&path)
        .expect("read dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    // Cold: drop the files from the page cache (GNU dd), recover, drop again, read them raw
    // (the disk's limit). Recovery goes first: if the host caches the virtual disk, the raw
    // read profits from it, not recovery.
    let cold = drop_page_cache(&segments);
    let started = Instant::now();
    let engine = LogEngine::open(EngineConfig::new(&path)).expect("reopen");
    let cold_secs = started.elapsed().as_secs_f64();
    let recovered = engine.stats().recovered_bytes;
    assert_eq!(engine.group_ids().len() as u64, groups);
    let cold = cold && drop_page_cache(&segments);
    let started = Instant::now();
    let mut raw_bytes = 0u64;
    for segment in &segments {
        raw_bytes += std::fs::read(segment).expect("read segment").len() as u64;
    }
    let raw = raw_bytes as f64 / started.elapsed().as_secs_f64() / 1e6;
    let segment_count = engine.segment_count();
    drop(engine);
    let started = Instant::now();
    let engine = LogEngine::open(EngineConfig::new(&path)).expect("reopen");
    let warm_secs = started.elapsed().as_secs_f64();
    drop(engine);
    println!(
        "(c) recovery of {:.0} MiB in {segment_count} segments (written at {write_rate:.0} MB/s)",
        recovered as f64 / (1 << 20) as f64
    );
    let label = if cold {
        "cold"
    } else {
        "page cache NOT dropped (no GNU dd)"
    };
    println!(
        "    {label}: raw read {raw:.0} MB/s, recovery {:.0} MB/s ({:.0}% of raw); warm: recovery {:.0} MB/s",
        recovered as f64 / cold_secs / 1e6,
        100.0 * recovered as f64 / cold_secs / 1e6 / raw,
        recovered as f64 / warm_secs / 1e6
    );
}

/// Asks GNU dd to drop the files from the page cache; false if it could not.
fn drop_page_cache(files: &[std::path::PathBuf]) -> bool {
    files.iter().all(|file| {
        let mut input = std::ffi::OsString::from("if=");
        input.push(file);
        std::process::Command::new("dd")
            .arg(input)
            .args(["iflag=nocache", "count=0", "status=none"])
            .status()
            .is_ok_and(|status| status.success())
    })
}

fn idle_overhead() {
    let engine = LogEngine::in_memory();
    let mut batch = LogBatch::new();
    for group in 1..=10_000u64 {
        batch.append(group, &(1..=20).map(|i| entry(i, 100)).collect::<Vec<_>>());
        batch.set_hard_state(
            group,
            &HardState {
                term: 1,
                vote: 1,
                commit: 20,
                ..Default::default()
            },
        );
        batch.set_conf_state(
            group,
            &raft::eraftpb::ConfState {
                voters: vec![1, 2, 3],
                ..Default::default()
            },
        );
        batch.compact(group, 21);
        if batch.group_count() >= 256 {
            engine.write(&mut batch, false).expect("write");
        }
    }
    engine.write(&mut batch, false).expect("write");
    let total: usize = (1..=10_000u64).map(|g| engine.group_memory_size(g)).sum();
    println!(
        "(d) idle compacted group: {} bytes of index overhead (average over 10,000; target < 1024)",
        total / 10_000
    );
}

fn main() {
    // `cargo bench` passes --bench; anything else (like `cargo test --benches`) runs a smoke size.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let secs = if smoke { 1 } else { env_u64("BENCH_SECS", 2) };
    // BENCH_PARTS=abcd (default all) picks the parts to run.
    let parts = std::env::var("BENCH_PARTS").unwrap_or_else(|_| "abcd".to_string());
    if parts.contains('a') {
        group_commit(secs);
    }
    if parts.contains('b') {
        bandwidth(if smoke {
            8
        } else {
            env_u64("BANDWIDTH_MB", 256)
        });
    }
    if parts.contains('c') {
        recovery(if smoke {
            16
        } else {
            env_u64("RECOVERY_MB", 1024)
        });
    }
    if parts.contains('d') {
        idle_overhead();
    }
}
