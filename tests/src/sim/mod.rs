//! A deterministic simulation of a whole cluster in one thread.
//!
//! Three or five nodes, each a real write-ahead log (in a temporary directory, on
//! tmpfs when there is one), a [`raft_multi`] scheduler driven by hand
//! ([`raft_multi::MultiRaft::start_manual`]) and a [`raft_fsm`] partition machine per
//! replica, talk over the in-process network in manual mode. One loop decides
//! everything: each step advances the network by one step (delivering what is due),
//! gives every node one turn in a seeded order, ticks nodes on their own slightly
//! uneven clocks, polls every client request, and lets the workload and the nemesis
//! act. Every random choice comes from one seeded generator, so a seed replays the
//! same run: [`SimReport::fingerprint`] hashes the whole history and every final log.
//!
//! The workload: plain and idempotent producers on every partition, fetchers reading
//! random slices of random replicas, leader transfers, reassignments and new
//! partitions. The faults: isolated nodes, splits, one-way cuts, flapping links,
//! dropped, duplicated, reordered and delayed messages, slow disks, and crashes that
//! lose what was not synced, half of them leaving a torn log tail. At the end the
//! nemesis heals everything, a barrier record is acknowledged on every partition, all
//! replicas must agree, and the history checker ([`crate::history`]) judges every
//! produce and fetch against every replica's final log.
//!
//! ```no_run
//! let report = chronik_cluster_tests::sim::run(&chronik_cluster_tests::sim::SimConfig::for_seed(7))?;
//! assert!(report.failure().is_none(), "{}", report.summary());
//! # Ok::<(), chronik_cluster_tests::sim::SimError>(())
//! ```

mod admin;
mod clients;
mod faults;
mod node;
mod records;
mod run;
mod task;

use std::collections::{BTreeMap, BTreeSet};

use raft_multi::GroupId;
use raft_transport::local::LocalNetwork;
use raft_transport::NodeId;
use rand::rngs::StdRng;

pub use run::run;

use crate::history::{History, Report};
use admin::AdminTask;
use clients::Producer;
use faults::Nemesis;
use node::SimNode;

/// What one simulated run does.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SimConfig {
    /// Seeds every random choice.
    pub seed: u64,
    /// Nodes in the cluster (3 to 5).
    pub nodes: u64,
    /// Partitions created at the start (each on 3 nodes).
    pub partitions: u64,
    /// Scheduler workers per node (groups are sharded across them).
    pub workers: usize,
    /// Logs prefill their kept segment files at every open
    /// (`EngineConfig::prefill_segments`), so new segments start on zero-written files.
    pub prefill_segments: bool,
    /// Steps of workload under faults before the final heal and check.
    pub steps: u64,
    /// Inject network faults, crashes and slow disks.
    pub faults: bool,
    /// Transfer leaders, reassign partitions, create partitions.
    pub admin: bool,
}

impl SimConfig {
    /// The settings CI runs for `seed`: 3, 4 or 5 nodes (with more than 3,
    /// reassignments have somewhere to go), 1 to 3 partitions, 1 or 2 workers per
    /// node, prefilled segment files in every other group of eight seeds, 2,000
    /// steps, every fault.
    pub fn for_seed(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            nodes: match seed % 4 {
                0 => 5,
                2 => 4,
                _ => 3,
            },
            partitions: 1 + seed % 3,
            workers: 1 + (seed / 4 % 2) as usize,
            prefill_segments: seed / 8 % 2 == 1,
            steps: 2_000,
            faults: true,
            admin: true,
        }
    }

    /// Sets the workload steps.
    pub fn steps(mut self, steps: u64) -> SimConfig {
        self.steps = steps;
        self
    }
}

/// Counts of what a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SimStats {
    /// Nodes crashed.
    pub crashes: u64,
    /// Of those, crashes that left a torn log tail.
    pub torn_crashes: u64,
    /// Nodes restarted.
    pub restarts: u64,
    /// Network fault episodes.
    pub network_faults: u64,
    /// Slow-disk episodes.
    pub slow_disks: u64,
    /// Leader transfers asked for.
    pub transfers: u64,
    /// Reassignments completed.
    pub reassignments: u64,
    /// Administrative operations that ended early (a node crashed, leadership moved).
    pub admin_aborted: u64,
    /// Partitions created during the run.
    pub partitions_created: u64,
    /// Snapshots installed by followers (all nodes, all incarnations seen at the end).
    pub snapshots_received: u64,
}

/// The outcome of one run.
#[derive(Debug)]
pub struct SimReport {
    /// The seed.
    pub seed: u64,
    /// A hash of the whole history, every final log and the step count: equal for
    /// two runs of one seed.
    pub fingerprint: u64,
    /// Steps taken, the final phase included.
    pub steps: u64,
    /// The history checker's verdict.
    pub report: Report,
    /// Answers no correct cluster gives.
    pub unexpected: Vec<String>,
    /// What happened.
    pub stats: SimStats,
}

impl SimReport {
    /// Why the run failed, if it did.
    pub fn failure(&self) -> Option<String> {
        if !self.unexpected.is_empty() {
            return Some(format!("unexpected answers: {:?}", self.unexpected));
        }
        if !self.report.is_ok() {
            return Some(format!("history check failed: {}", self.report));
        }
        None
    }

    /// One line: the seed, the verdict and the counts.
    pub fn summary(&self) -> String {
        format!(
            "seed {}: {} in {} steps; {} acknowledged, {} failed, {} unknown, {} fetches; {:?}",
            self.seed,
            if self.failure().is_none() {
                "ok"
            } else {
                "FAILED"
            },
            self.steps,
            self.report.acknowledged,
            self.report.failed,
            self.report.unknown,
            self.report.fetches,
            self.stats
        )
    }
}

/// A run that could not even reach its check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A node failed to start or recover.
    #[error("node {0}: {1}")]
    Node(NodeId, String),
    /// The cluster did not recover after every fault was healed.
    #[error("not live after healing: {0}")]
    NotLive(String),
    /// The temporary directory.
    #[error("temporary directory: {0}")]
    Io(#[from] std::io::Error),
}

/// The state of one run.
pub(crate) struct Sim {
    config: SimConfig,
    rng: StdRng,
    network: LocalNetwork,
    nodes: Vec<SimNode>,
    history: History,
    producers: Vec<Producer>,
    /// Every partition and the voters it was created with.
    groups: BTreeMap<GroupId, Vec<NodeId>>,
    /// (partition, node) pairs a reassignment moved away.
    left: BTreeSet<(GroupId, NodeId)>,
    /// (partition, node) pairs a reassignment added.
    joined: BTreeSet<(GroupId, NodeId)>,
    now: u64,
    unexpected: Vec<String>,
    stats: SimStats,
    admin: Option<AdminTask>,
    nemesis: Nemesis,
    /// Print the run's events (`SIM_TRACE=1`).
    trace: bool,
}

impl Sim {
    /// Prints an event of the run, with its step, when tracing.
    fn trace(&self, event: std::fmt::Arguments<'_>) {
        if self.trace {
            eprintln!("seed {} step {}: {event}", self.config.seed, self.now);
        }
    }
}
