//! `chronik-cluster bench SCENARIO`: measured figures, each next to a baseline measured
//! in the same run (these machines are shared and noisy, so ratios are what count).
//!
//! Every scenario shows a progress bar on stderr, prints a table on stdout and, with
//! `--json`, one JSON object on its last line: the settings and the figures, each with
//! its unit in its name. The baseline is the naive driver ([`naive`]): one task and one
//! `RawNode` per replica, its own timer, its own storage with a sync per write, one
//! frame per raft message: the shape of raftify.

use std::path::PathBuf;
use std::time::Duration;

mod error;
mod failover;
mod idle;
mod idle_nodes;
mod load;
mod machine;
mod naive;
mod nodes;
mod ours;
mod plot;
mod probe;
mod produce;
mod raftlevel;
mod recovery;
mod replica;
mod report;
mod single_group;
mod sweep;
mod wal;

pub use error::BenchError;
pub use report::Report;

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    scenario: Scenario,
}

/// Flags every scenario takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Print one JSON object with the settings and figures on the last line.
    #[arg(long, global = true)]
    pub json: bool,
    /// Seconds of each measured run (each scenario has its own default).
    #[arg(long, global = true)]
    pub duration: Option<f64>,
    /// Skip the naive baseline.
    #[arg(long, global = true)]
    pub no_baseline: bool,
    /// Raft tick in milliseconds (heartbeat every tick, election after 10 ticks).
    #[arg(long, global = true, default_value_t = 100)]
    pub tick_ms: u64,
    /// Idle ticks before a group of ours hibernates (0: never).
    #[arg(long, global = true, default_value_t = 10)]
    pub hibernate_ticks: usize,
    /// Scheduler workers per node (naive driver: runtime threads); 0: the cores.
    #[arg(long, global = true, default_value_t = 0)]
    pub workers: usize,
    /// Where write-ahead logs go (default: a temporary directory, removed after).
    #[arg(long, global = true)]
    pub dir: Option<PathBuf>,
    /// Where sweeps write their SVG plots.
    #[arg(long, global = true, default_value = ".")]
    pub plot_dir: PathBuf,
    /// Run one driver only (`ours` or `naive`); used by scenarios that measure each
    /// driver in a child process of its own.
    #[arg(long, global = true, hide = true)]
    pub driver: Option<Driver>,
}

impl Common {
    /// The run length: `--duration` or `default` seconds.
    pub fn duration(&self, default: f64) -> Duration {
        Duration::from_secs_f64(self.duration.unwrap_or(default).clamp(0.05, 3600.0))
    }

    /// Worker threads per node.
    pub fn workers(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }

    /// The drivers to run: ours, then the baseline unless skipped or pinned.
    pub fn drivers(&self) -> Vec<Driver> {
        match self.driver {
            Some(driver) => vec![driver],
            None if self.no_baseline => vec![Driver::Ours],
            None => vec![Driver::Ours, Driver::Naive],
        }
    }

    /// A fresh directory for write-ahead logs, removed when dropped.
    pub fn temp_dir(&self) -> Result<tempfile::TempDir, BenchError> {
        let dir = match &self.dir {
            Some(base) => {
                std::fs::create_dir_all(base)?;
                tempfile::tempdir_in(base)?
            }
            None => tempfile::tempdir()?,
        };
        Ok(dir)
    }

    /// Raft timing both drivers use.
    pub fn timing(&self) -> Timing {
        Timing {
            tick: Duration::from_millis(self.tick_ms.max(1)),
            heartbeat_ticks: 1,
            election_ticks: 10,
            hibernate_after_ticks: self.hibernate_ticks,
            workers: self.workers(),
        }
    }
}

/// Raft timing and threads, the same for both drivers.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The tick.
    pub tick: Duration,
    /// Heartbeat interval in ticks.
    pub heartbeat_ticks: usize,
    /// Election timeout in ticks.
    pub election_ticks: usize,
    /// Idle ticks before a group of ours sleeps (the naive driver never sleeps).
    pub hibernate_after_ticks: usize,
    /// Worker threads per node (naive: runtime threads for all its tasks).
    pub workers: usize,
}

impl Timing {
    /// Adds the timing to a report's settings.
    pub fn describe(&self, report: &mut Report) {
        report.setting("tick_ms", self.tick.as_millis() as u64);
        report.setting("heartbeat_ticks", self.heartbeat_ticks as u64);
        report.setting("election_ticks", self.election_ticks as u64);
        report.setting("hibernate_after_ticks", self.hibernate_after_ticks as u64);
        report.setting("workers", self.workers as u64);
    }
}

/// Which replication driver runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Driver {
    /// Our scheduler (raft-multi).
    Ours,
    /// The naive baseline: one task and one `RawNode` per replica.
    Naive,
}

impl Driver {
    /// Its name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Ours => "ours",
            Driver::Naive => "naive",
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum Scenario {
    /// 3 nodes over loopback gRPC with the real write-ahead log: records/s, MB/s,
    /// latency; beside the naive driver; `--sweep` sweeps the partitions.
    Produce(produce::ProduceArgs),
    /// N partitions x 3 replicas, nothing produced: CPU, memory per replica, frames.
    Idle(idle::IdleArgs),
    /// Stop the node leading a third of the partitions: time to new leaders and to
    /// produce succeeding on every partition.
    Failover(failover::FailoverArgs),
    /// Restart a node over a write-ahead log of a given size: time until it serves.
    Recovery(recovery::RecoveryArgs),
    /// The write-ahead log's group commit against one sync per write and the raw disk.
    Wal(wal::WalArgs),
    /// One raft group, 3 nodes, memory engine, in-process network, N closed-loop
    /// clients proposing 8-byte entries.
    SingleGroup(single_group::SingleGroupArgs),
}

/// Runs the scenario, prints its table and, with `--json`, its JSON line.
pub async fn run(args: BenchArgs) -> Result<Report, BenchError> {
    let common = args.common;
    let report = match args.scenario {
        Scenario::Produce(a) => produce::run(&common, a).await?,
        Scenario::Idle(a) => idle::run(&common, a).await?,
        Scenario::Failover(a) => failover::run(&common, a).await?,
        Scenario::Recovery(a) => recovery::run(&common, a).await?,
        Scenario::Wal(a) => blocking(move || wal::run(&common, a)).await?,
        Scenario::SingleGroup(a) => blocking(move || single_group::run(&common, a)).await?,
    };
    Ok(report)
}

/// Prints a finished report: the table, and the JSON line when asked.
pub fn print(report: &Report, json: bool) {
    print!("{}", report.table());
    if json {
        println!("{}", report.json());
    }
}

/// Runs `work` on a blocking thread (scenarios that own runtimes of their own).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, BenchError> + Send + 'static,
) -> Result<T, BenchError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| BenchError::Panicked)?
}

/// Whether `--json` was given (read before the arguments are consumed).
pub fn wants_json(args: &BenchArgs) -> bool {
    args.common.json
}
