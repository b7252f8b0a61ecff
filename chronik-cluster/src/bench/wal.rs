//! `bench wal`: the write-ahead log's group commit against one `fdatasync` per write on
//! a plain file (N writer threads, synced appends of small entries), and the engine's
//! synced 64 KiB batches against the raw disk (sequential 64 KiB write + `fdatasync`
//! on a plain file: the physical limit), and a log that compacts and purges as it
//! goes, with purged segment files reused against without. Runs alternate, so noise
//! from neighbours hits both alike.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use raft::eraftpb::{Entry, HardState};
use raft_storage::{EngineConfig, LogBatch, LogEngine};

use super::{BenchError, Common, Report};

/// Flags of `bench wal`.
#[derive(Debug, Clone, clap::Args)]
pub struct WalArgs {
    /// Writer thread counts, one run each.
    #[arg(long, value_delimiter = ',', default_values_t = [1u64, 16, 256])]
    writers: Vec<u64>,
    /// Bytes per entry of the group-commit runs.
    #[arg(long, default_value_t = 128)]
    entry_bytes: usize,
    /// MiB written by each side of the bandwidth run.
    #[arg(long, default_value_t = 64)]
    bandwidth_mib: u64,
}

fn entry(index: u64, size: usize) -> Entry {
    Entry {
        index,
        term: 1,
        data: vec![0xab; size].into(),
        ..Default::default()
    }
}

/// `threads` writers call `write(thread)` until `duration` passes; writes per second.
fn writers(
    threads: u64,
    duration: Duration,
    write: impl Fn(u64) -> Result<(), BenchError> + Send + Sync + 'static,
) -> Result<f64, BenchError> {
    let write = Arc::new(write);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let handles = (0..threads)
        .map(|thread| {
            let (write, stop, done) = (Arc::clone(&write), Arc::clone(&stop), Arc::clone(&done));
            std::thread::Builder::new()
                .name("bench-writer".into())
                .spawn(move || {
                    // Bounded by `stop`.
                    while !stop.load(Ordering::Relaxed) {
                        write(thread)?;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok::<_, BenchError>(())
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let count = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for handle in handles {
        handle.join().map_err(|_| BenchError::Panicked)??;
    }
    Ok(count as f64 / elapsed)
}

/// Runs the scenario (on a blocking thread).
pub fn run(common: &Common, args: WalArgs) -> Result<Report, BenchError> {
    if args.writers.contains(&0) || args.bandwidth_mib == 0 {
        return Err(BenchError::Usage(
            "--writers and --bandwidth-mib must be at least 1".into(),
        ));
    }
    let duration = common.duration(1.0);
    let mut report = Report::new("wal");
    report.setting("entry_bytes", args.entry_bytes as u64);
    report.setting("writers", args.writers.clone());
    report.setting("run_secs", duration.as_secs_f64());
    report.setting("bandwidth_mib", args.bandwidth_mib);
    let progress = super::load::bar(args.writers.len() as u64 + 1, "wal: group commit");
    for &threads in &args.writers {
        let dir = common.temp_dir()?;
        let file = Arc::new(Mutex::new(File::create(dir.path().join("baseline"))?));
        let engine = LogEngine::open(EngineConfig::new(dir.path().join("wal")))?;
        let next: Arc<Vec<AtomicU64>> = Arc::new((0..threads).map(|_| AtomicU64::new(1)).collect());
        let record = vec![0xcd; args.entry_bytes + 32];
        let (mut baseline, mut ours) = (0.0, 0.0);
        let size = args.entry_bytes;
        for _ in 0..2 {
            let (file, record) = (Arc::clone(&file), record.clone());
            baseline += writers(threads, duration, move |_| {
                let mut file = file.lock();
                file.write_all(&record)?;
                file.sync_data()?;
                Ok(())
            })? / 2.0;
            let (engine, next) = (engine.clone(), Arc::clone(&next));
            ours += writers(threads, duration, move |group| {
                let index = next[group as usize].fetch_add(1, Ordering::Relaxed);
                let mut batch = LogBatch::new();
                batch.append(group + 1, &[entry(index, size)]);
                let hs = HardState {
                    term: 1,
                    vote: 1,
                    commit: index,
                    ..Default::default()
                };
                batch.set_hard_state(group + 1, &hs);
                engine.write(&mut batch, true)?;
                Ok(())
            })? / 2.0;
        }
        let stats = engine.stats();
        let section = format!("writers_{threads}");
        report.add(&section, "per_write_fdatasync_writes_per_sec", baseline);
        report.add(&section, "group_commit_writes_per_sec", ours);
        report.add(&section, "ratio", ours / baseline.max(1e-9));
        report.add(
            &section,
            "writes_per_sync",
            stats.batches_synced as f64 / stats.syncs.max(1) as f64,
        );
        progress.inc(1);
    }
    progress.set_message("wal: bandwidth");
    bandwidth(common, args.bandwidth_mib, &mut report)?;
    progress.set_message("wal: reused segment files");
    for &threads in &args.writers {
        recycling(common, threads, duration, args.entry_bytes, &mut report)?;
    }
    progress.finish_and_clear();
    report.ratios("engine", "raw_disk", &["mb_per_sec"]);
    for &threads in &args.writers {
        report.ratios(
            &format!("reused_files_writers_{threads}"),
            &format!("new_files_writers_{threads}"),
            &["writes_per_sec"],
        );
    }
    Ok(report)
}

/// Segment size of the steady-state runs: small, so that they purge and rotate often.
const STEADY_SEGMENT: u64 = 512 << 10;

/// A log in its steady state, compacting and purging as it writes: `threads` writers,
/// each with its own group, write synced entries; each compacts its group every 256
/// writes, and writer 0 purges. One engine keeps purged segment files for reuse (the
/// default), the other deletes them; both are first written until the first has reused
/// a file, then measured in alternation.
fn recycling(
    common: &Common,
    threads: u64,
    duration: Duration,
    size: usize,
    report: &mut Report,
) -> Result<(), BenchError> {
    let dir = common.temp_dir()?;
    let open = |name: &str, files: usize| {
        LogEngine::open(
            EngineConfig::new(dir.path().join(name))
                .segment_size(STEADY_SEGMENT)
                .purge_lag_segments(1)
                .recycle_segments(files),
        )
    };
    let engines = [open("reused", 2)?, open("new", 0)?];
    let next: Vec<Arc<Vec<AtomicU64>>> = (0..2)
        .map(|_| Arc::new((0..threads).map(|_| AtomicU64::new(1)).collect()))
        .collect();
    let write = |engine: &LogEngine, next: &Arc<Vec<AtomicU64>>| {
        let (engine, next) = (engine.clone(), Arc::clone(next));
        move |group: u64| -> Result<(), BenchError> {
            let index = next[group as usize].fetch_add(1, Ordering::Relaxed);
            let mut batch = LogBatch::new();
            batch.append(group + 1, &[entry(index, size)]);
            if index % 256 == 0 {
                batch.compact(group + 1, index);
            }
            engine.write(&mut batch, true)?;
            if group == 0 && index % 256 == 0 {
                engine.purge_expired()?;
            }
            Ok(())
        }
    };
    // Warm up: write until the first engine has reused a file, then as much into the
    // second (bounded: the pool fills once purge has run past two segments).
    let limit = STEADY_SEGMENT / size.max(1) as u64 * 16;
    let mut writes = 0;
    let first = write(&engines[0], &next[0]);
    while engines[0].stats().recycled_segments == 0 && writes < limit {
        first(writes % threads)?;
        writes += 1;
    }
    let second = write(&engines[1], &next[1]);
    for i in 0..writes {
        second(i % threads)?;
    }
    let (mut reused, mut new) = (0.0, 0.0);
    for _ in 0..2 {
        reused += writers(threads, duration, write(&engines[0], &next[0]))? / 2.0;
        new += writers(threads, duration, write(&engines[1], &next[1]))? / 2.0;
    }
    let files = engines[0].stats().recycled_segments;
    report.add(
        &format!("reused_files_writers_{threads}"),
        "writes_per_sec",
        reused,
    );
    report.add(
        &format!("reused_files_writers_{threads}"),
        "files_reused",
        files as f64,
    );
    report.add(
        &format!("new_files_writers_{threads}"),
        "writes_per_sec",
        new,
    );
    Ok(())
}

/// Sequential 64 KiB + fdatasync: raw file against the engine, alternating rounds.
fn bandwidth(common: &Common, mib: u64, report: &mut Report) -> Result<(), BenchError> {
    const BLOCK: usize = 64 << 10;
    const ROUNDS: u64 = 4;
    let blocks = ((mib << 20) / BLOCK as u64 / ROUNDS).max(1);
    let dir = common.temp_dir()?;
    let block = vec![0x5au8; BLOCK];
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("raw"))?;
    let engine = LogEngine::open(EngineConfig::new(dir.path().join("wal")))?;
    let mut batch = LogBatch::new();
    // 16 entries of 4 KiB: a 64 KiB batch once framed.
    let mut template: Vec<Entry> = (0..16).map(|i| entry(i, 4096 - 40)).collect();
    let (mut raw_bytes, mut raw_secs, mut ours_bytes, mut ours_secs) = (0u64, 0f64, 0u64, 0f64);
    let mut index = 1;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..blocks {
            file.write_all(&block)?;
            file.sync_data()?;
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
            ours_bytes += engine.write(&mut batch, true)? as u64;
        }
        ours_secs += started.elapsed().as_secs_f64();
    }
    report.add(
        "raw_disk",
        "mb_per_sec",
        raw_bytes as f64 / raw_secs.max(1e-9) / 1e6,
    );
    report.add(
        "engine",
        "mb_per_sec",
        ours_bytes as f64 / ours_secs.max(1e-9) / 1e6,
    );
    Ok(())
}
