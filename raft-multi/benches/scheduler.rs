//! Our scheduler against a naive driver (the shape raftify has: one task, one timer,
//! one storage per group, one frame per message), measured in the same run.
//!
//! `cargo bench -p raft-multi --bench scheduler [-- SCENARIO...]`, scenarios `idle`,
//! `single-group`, `produce` (all by default). Each scenario runs each driver in a
//! child process of its own (this binary with `--child`), so CPU and memory figures do
//! not mix. Settings come from the environment:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `BENCH_GROUPS` | 1000 | idle: groups (x 3 replicas) |
//! | `BENCH_IDLE_SECS` | 5 | idle: measured window |
//! | `BENCH_SECS` | 3 | single-group: seconds per client count |
//! | `BENCH_CLIENTS` | 1,64,1024 | single-group: client counts |
//! | `BENCH_PRODUCE_SECS` | 5 | produce: seconds |
//! | `BENCH_PRODUCE_GROUPS` | 64 | produce: groups |
//! | `BENCH_PRODUCE_CLIENTS` | 4 per group | produce: clients |
//! | `BENCH_ENTRY_BYTES` | 10240 | produce: entry size (100 records of 100 B) |
//! | `BENCH_TICK_MS` | 100 | tick interval; heartbeat 1 tick, election 10 ticks |
//! | `BENCH_WORKERS` | cores | scheduler workers per node / naive runtime threads |
//! | `BENCH_DIR` | temp dir | where produce puts its write-ahead logs |
//! | `BENCH_NAIVE_INLINE_SYNC` | 0 | 1: the naive driver syncs on its runtime threads |

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use raft_transport::local::LocalNetwork;

#[path = "scheduler/cluster.rs"]
mod cluster;
#[path = "scheduler/floor.rs"]
mod floor;
#[path = "scheduler/idle.rs"]
mod idle;
#[path = "scheduler/load.rs"]
mod load;
#[path = "scheduler/machine.rs"]
mod machine;
#[path = "scheduler/naive.rs"]
mod naive;
#[path = "scheduler/ours.rs"]
mod ours;
#[path = "scheduler/probe.rs"]
mod probe;
#[path = "scheduler/replica.rs"]
mod replica;
#[path = "scheduler/table.rs"]
mod table;

/// Nodes in every scenario, all in one process.
pub const NODES: u64 = 3;
/// The in-process network's seed (no faults are injected; it orders nothing here).
const SEED: u64 = 0x5eed;
/// A child that runs longer than this is killed and its scenario reported as failed.
const CHILD_TIMEOUT: Duration = Duration::from_secs(900);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Ours,
    Naive,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::Ours => "ours",
            Driver::Naive => "naive",
        }
    }

    fn parse(name: &str) -> Option<Driver> {
        [Driver::Ours, Driver::Naive]
            .into_iter()
            .find(|d| d.name() == name)
    }
}

/// Settings shared by both drivers.
#[derive(Debug, Clone)]
pub struct Settings {
    pub tick: Duration,
    pub heartbeat_ticks: usize,
    pub election_ticks: usize,
    /// Ours only (the naive driver never sleeps); 0 disables.
    pub hibernate_after_ticks: usize,
    /// Scheduler workers per node; threads of the naive driver's runtime.
    pub workers: usize,
    pub sync: bool,
    /// Naive driver: sync on the runtime thread (as raftify does) rather than in
    /// `block_in_place`, which lets other replicas run meanwhile (the default, kinder to
    /// the baseline).
    pub naive_inline_sync: bool,
}

impl Settings {
    fn from_env() -> Settings {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Settings {
            tick: Duration::from_millis(env_u64("BENCH_TICK_MS", 100).max(1)),
            heartbeat_ticks: 1,
            election_ticks: 10,
            hibernate_after_ticks: 10,
            workers: env_u64("BENCH_WORKERS", cores as u64).max(1) as usize,
            sync: true,
            naive_inline_sync: env_u64("BENCH_NAIVE_INLINE_SYNC", 0) == 1,
        }
    }
}

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

pub fn env_list(name: &str, default: &[u64]) -> Vec<u64> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .filter(|v: &Vec<u64>| !v.is_empty())
        .unwrap_or_else(|| default.to_vec())
}

/// The in-process network both drivers use: delivery on a background thread, and
/// queues deep enough that the naive driver's one frame per message is not dropped.
pub fn network() -> LocalNetwork {
    LocalNetwork::builder()
        .seed(SEED)
        .queue_capacity(1 << 20)
        .auto_deliver(true)
        .build()
}

/// Polls `done` every 10 ms until it holds (true) or `deadline` passes (false).
pub fn wait_until(deadline: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Like [`wait_until`], but a timeout is fatal.
pub fn wait_for(what: &str, deadline: Duration, done: impl FnMut() -> bool) {
    assert!(
        wait_until(deadline, done),
        "timed out after {deadline:?} waiting for {what}"
    );
}

/// Named figures a child prints for its parent, one `RESULT name value` line each.
#[derive(Debug, Default)]
pub struct Report(Vec<(String, f64)>);

impl Report {
    pub fn add(&mut self, name: &str, value: f64) {
        self.0.push((name.to_owned(), value));
    }

    fn print(&self) {
        for (name, value) in &self.0 {
            println!("RESULT {name} {value}");
        }
    }
}

const SCENARIOS: [&str; 3] = ["idle", "single-group", "produce"];

fn child(scenario: &str, driver: Driver) {
    let settings = Settings::from_env();
    let report = match scenario {
        "idle" => idle::run(driver, &settings),
        "single-group" => load::single_group(driver, &settings),
        "produce" => load::produce(driver, &settings),
        other => panic!("unknown scenario {other}"),
    };
    report.print();
}

/// Runs one scenario with one driver in a child process and collects its figures.
fn run_child(scenario: &str, driver: Driver) -> Option<BTreeMap<String, f64>> {
    let exe = std::env::current_exe().ok()?;
    eprintln!("{scenario} / {} ...", driver.name());
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args(["--child", scenario, driver.name()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    let stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut figures = BTreeMap::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let mut parts = line.split_whitespace();
            if parts.next() != Some("RESULT") {
                continue;
            }
            if let (Some(name), Some(Ok(value))) = (parts.next(), parts.next().map(str::parse)) {
                figures.insert(name.to_owned(), value);
            }
        }
        figures
    });
    // Bounded by CHILD_TIMEOUT.
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() > CHILD_TIMEOUT => {
                eprintln!("{scenario} / {}: timed out, killed", driver.name());
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => break None,
        }
    };
    let figures = reader.join().ok()?;
    eprintln!(
        "{scenario} / {}: done in {:.1?}",
        driver.name(),
        started.elapsed()
    );
    (status.is_some_and(|s| s.success()) && !figures.is_empty()).then_some(figures)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--child") {
        let scenario = args.get(at + 1).map(String::as_str).unwrap_or_default();
        let driver = args
            .get(at + 2)
            .and_then(|d| Driver::parse(d))
            .expect("--child SCENARIO ours|naive");
        child(scenario, driver);
        return;
    }
    let wanted: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| SCENARIOS.contains(a))
        .collect();
    let settings = Settings::from_env();
    println!(
        "raft-multi scheduler benchmark: {NODES} nodes in one process, tick {:?}, {} workers, \
         naive syncs {}, {} cores",
        settings.tick,
        settings.workers,
        if settings.naive_inline_sync {
            "on its runtime threads"
        } else {
            "in block_in_place"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let started = Instant::now();
    for scenario in SCENARIOS {
        if !wanted.is_empty() && !wanted.contains(&scenario) {
            continue;
        }
        let ours = run_child(scenario, Driver::Ours);
        let naive = run_child(scenario, Driver::Naive);
        table::print(scenario, &settings, ours.as_ref(), naive.as_ref());
        if scenario == "single-group" {
            match floor::network_round_trip(20_000) {
                Some((p50, p99)) => println!(
                    "floor: one round trip through the in-process network between two plain \
                     threads: p50 {p50} us, p99 {p99} us (a commit needs at least one)"
                ),
                None => println!("floor: network round trip not measured"),
            }
        }
        if scenario == "produce" {
            let block = 1 << 20;
            match floor::disk_limit(block, Duration::from_secs(2)) {
                Some(rate) => println!(
                    "disk reference: one writer, {} KiB writes each followed by fdatasync: \
                     {:.1} MB/s ({:.1} MB/s of payload when {NODES} replicas share this disk; \
                     concurrent writers may get more)",
                    block >> 10,
                    rate / 1e6,
                    rate / 1e6 / NODES as f64
                ),
                None => println!("disk reference: not measured (temporary directory unusable)"),
            }
        }
    }
    println!("\ntotal time {:.1?}", started.elapsed());
}
