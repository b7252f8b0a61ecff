//! Scenarios under load: `single-group` (one group, memory engine, C closed-loop
//! clients proposing 8-byte entries) and `produce` (64 groups, the real write-ahead
//! log with sync, clients proposing 10 KB entries as fast as they are answered).

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::cluster::{AnyCluster, Proposer};
use crate::probe::CpuSample;
use crate::{env_list, env_u64, wait_for, wait_until, Driver, Report, Settings, NODES};

/// What a closed-loop run measured.
struct Outcome {
    /// Answered proposals in the measured window.
    ops: u64,
    /// Answered proposals in the whole run, warm-up included.
    acked: u64,
    errors: u64,
    secs: f64,
    latency_us: Histogram<u64>,
    /// CPU of the process in the measured window, % of one core.
    cpu_percent: f64,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

/// `clients` tasks, client `i` on group `1 + i % groups`, each proposing `entry_bytes`
/// and waiting for the answer before the next, for `warmup` (not counted) then
/// `duration`.
fn closed_loop(
    proposer: &Proposer,
    groups: u64,
    clients: usize,
    entry_bytes: usize,
    warmup: Duration,
    duration: Duration,
) -> Outcome {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("client")
        .enable_time()
        .build()
        .expect("a client runtime");
    let start = Instant::now() + warmup;
    let end = start + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let proposer = proposer.clone();
            let group = 1 + i as u64 % groups;
            runtime.spawn(async move {
                let mut hint = (group % NODES) as usize;
                // Plain samples, folded into one histogram at the end: a histogram per
                // client would cost each of 1024 clients ~400 KiB and a cache miss a record.
                let mut latency: Vec<u32> = Vec::with_capacity(1 << 12);
                let (mut ops, mut acked, mut errors) = (0u64, 0u64, 0u64);
                let mut data = vec![0u8; entry_bytes];
                // Bounded by `end`.
                for seq in 0u64.. {
                    let now = Instant::now();
                    if now >= end {
                        break;
                    }
                    let head = data.len().min(8);
                    data[..head].copy_from_slice(&seq.to_le_bytes()[..head]);
                    let ok = proposer.propose(group, data.clone(), &mut hint).await;
                    let done = Instant::now();
                    acked += u64::from(ok);
                    if now < start || done > end {
                        continue;
                    }
                    if ok {
                        ops += 1;
                        let micros = done.duration_since(now).as_micros() as u64;
                        latency.push(micros.clamp(1, u64::from(u32::MAX)) as u32);
                    } else {
                        errors += 1;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                (ops, acked, errors, latency)
            })
        })
        .collect();
    std::thread::sleep(start.saturating_duration_since(Instant::now()));
    let cpu0 = CpuSample::now();
    std::thread::sleep(end.saturating_duration_since(Instant::now()));
    let cpu1 = CpuSample::now();
    let cpu = cpu1.since(&cpu0, &[]);
    let kinds: Vec<String> = cpu1
        .by_thread_kind(&cpu0)
        .into_iter()
        .take(6)
        .map(|(kind, percent)| format!("{kind} {percent:.0}%"))
        .collect();
    eprintln!("  CPU by thread: {}", kinds.join(", "));
    let mut outcome = Outcome {
        ops: 0,
        acked: 0,
        errors: 0,
        secs: duration.as_secs_f64(),
        latency_us: histogram(),
        cpu_percent: cpu.percent,
    };
    runtime.block_on(async {
        for task in tasks {
            if let Ok((ops, acked, errors, latency)) = task.await {
                outcome.ops += ops;
                outcome.acked += acked;
                outcome.errors += errors;
                for micros in latency {
                    let _ = outcome.latency_us.record(u64::from(micros));
                }
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    outcome
}

/// Nodes that have not applied every acknowledged command within 10 s (expected: 0).
fn behind(cluster: &AnyCluster, acked: u64) -> u64 {
    let caught_up = || cluster.applied().iter().all(|&applied| applied >= acked);
    if wait_until(Duration::from_secs(10), caught_up) {
        return 0;
    }
    let applied = cluster.applied();
    eprintln!("  applied per node {applied:?} < {acked} acknowledged");
    applied.iter().filter(|&&a| a < acked).count() as u64
}

fn elect(cluster: &AnyCluster, groups: u64) {
    cluster.create_groups(1..=groups);
    cluster.campaign(1..=groups);
    wait_for("every group led", Duration::from_secs(60), || {
        cluster.leaders() >= groups
    });
}

pub fn single_group(driver: Driver, settings: &Settings) -> Report {
    let secs = env_u64("BENCH_SECS", 3);
    let levels = env_list("BENCH_CLIENTS", &[1, 64, 1024]);
    let cluster = AnyCluster::start(driver, settings, None);
    elect(&cluster, 1);
    let proposer = cluster.proposer();
    let mut report = Report::default();
    let mut acked = 0;
    for clients in levels {
        let outcome = closed_loop(
            &proposer,
            1,
            clients as usize,
            8,
            Duration::from_millis(500),
            Duration::from_secs(secs),
        );
        eprintln!(
            "  single-group/{}: {clients} clients: {} ops, {} errors",
            driver.name(),
            outcome.ops,
            outcome.errors
        );
        let key = |what: &str| format!("c{clients}_{what}");
        report.add(&key("ops_per_sec"), outcome.ops as f64 / outcome.secs);
        report.add(
            &key("p50_us"),
            outcome.latency_us.value_at_quantile(0.5) as f64,
        );
        report.add(
            &key("p99_us"),
            outcome.latency_us.value_at_quantile(0.99) as f64,
        );
        report.add(&key("errors"), outcome.errors as f64);
        report.add(&key("cpu_percent"), outcome.cpu_percent);
        acked += outcome.acked;
        report.add(&key("nodes_behind"), behind(&cluster, acked) as f64);
    }
    report
}

pub fn produce(driver: Driver, settings: &Settings) -> Report {
    let secs = env_u64("BENCH_PRODUCE_SECS", 5);
    let groups = env_u64("BENCH_PRODUCE_GROUPS", 64);
    let clients = env_u64("BENCH_PRODUCE_CLIENTS", groups * 4) as usize;
    let entry_bytes = env_u64("BENCH_ENTRY_BYTES", 10 * 1024) as usize;
    let base = std::env::var_os("BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = tempfile::tempdir_in(base).expect("a temporary directory");
    let mut settings = settings.clone();
    settings.sync = true;
    let cluster = AnyCluster::start(driver, &settings, Some(dir.path().to_path_buf()));
    elect(&cluster, groups);
    let before = cluster.counters();
    let outcome = closed_loop(
        &cluster.proposer(),
        groups,
        clients,
        entry_bytes,
        Duration::from_millis(500),
        Duration::from_secs(secs),
    );
    let after = cluster.counters();
    eprintln!(
        "  produce/{}: {} entries, {} errors",
        driver.name(),
        outcome.ops,
        outcome.errors
    );
    let mut report = Report::default();
    let per_sec = outcome.ops as f64 / outcome.secs;
    report.add("groups", groups as f64);
    report.add("clients", clients as f64);
    report.add("entry_bytes", entry_bytes as f64);
    report.add("entries_per_sec", per_sec);
    report.add("mb_per_sec", per_sec * entry_bytes as f64 / 1e6);
    report.add("p50_us", outcome.latency_us.value_at_quantile(0.5) as f64);
    report.add("p99_us", outcome.latency_us.value_at_quantile(0.99) as f64);
    report.add("errors", outcome.errors as f64);
    report.add("cpu_percent", outcome.cpu_percent);
    report.add("nodes_behind", behind(&cluster, outcome.acked) as f64);
    // Counted over warm-up and measurement together.
    let syncs = after.syncs - before.syncs;
    report.add("syncs", syncs as f64);
    report.add("messages", (after.messages - before.messages) as f64);
    drop(cluster);
    drop(dir);
    report
}
