//! Either driver behind one face, on bare raft groups with the counting machine, so
//! the raft-level scenarios (`single-group`, `idle`, the naive side of `produce`) are
//! written once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use raft_transport::local::LocalNetwork;
use raft_transport::Transport;

use super::load::Client;
use super::naive::{NaiveCluster, NaiveProposer};
use super::ours::{OurCluster, OurProposer};
use super::{BenchError, Driver, Timing};

/// Nodes of every raft-level scenario.
pub const NODES: u64 = 3;

/// The in-process network: delivery on the sender's thread while nothing is queued
/// (else on a background thread), queues deep enough that the naive driver's one frame
/// per message is not dropped. No faults.
pub fn local_network() -> LocalNetwork {
    LocalNetwork::builder()
        .seed(0x5eed)
        .queue_capacity(1 << 20)
        .auto_deliver(true)
        .direct_delivery(true)
        .build()
}

/// Endpoints of nodes `1..=NODES` on `net`.
pub fn local_endpoints(net: &LocalNetwork) -> Vec<Arc<dyn Transport>> {
    (1..=NODES)
        .map(|id| net.endpoint(id) as Arc<dyn Transport>)
        .collect()
}

/// Our scheduler or the naive driver.
pub enum AnyCluster {
    /// raft-multi.
    Ours(OurCluster),
    /// The baseline.
    Naive(NaiveCluster),
}

impl AnyCluster {
    /// `driver`'s nodes on `endpoints`.
    pub fn start(
        driver: Driver,
        endpoints: Vec<Arc<dyn Transport>>,
        timing: Timing,
        dir: Option<PathBuf>,
        sync: bool,
    ) -> Result<AnyCluster, BenchError> {
        Ok(match driver {
            Driver::Ours => AnyCluster::Ours(OurCluster::start(endpoints, timing, dir, sync)?),
            Driver::Naive => AnyCluster::Naive(NaiveCluster::start(endpoints, timing, dir, sync)?),
        })
    }

    /// Creates groups `1..=groups` on every node, has them campaign (leaders spread
    /// over the nodes) and waits until each has a leader.
    pub fn elect(&self, groups: u64, deadline: Duration) -> Result<Duration, BenchError> {
        match self {
            AnyCluster::Ours(c) => c.create_groups(1..=groups)?,
            AnyCluster::Naive(c) => c.create_groups(1..=groups)?,
        }
        let started = Instant::now();
        match self {
            AnyCluster::Ours(c) => c.campaign(1..=groups)?,
            AnyCluster::Naive(c) => c.campaign(1..=groups),
        }
        wait_until("every group led", deadline, || self.leaders() >= groups)?;
        Ok(started.elapsed())
    }

    /// Groups led.
    pub fn leaders(&self) -> u64 {
        match self {
            AnyCluster::Ours(c) => c.leaders(),
            AnyCluster::Naive(c) => c.leaders(),
        }
    }

    /// Replicas asleep (the naive driver never sleeps).
    pub fn hibernated(&self) -> u64 {
        match self {
            AnyCluster::Ours(c) => c.hibernated(),
            AnyCluster::Naive(_) => 0,
        }
    }

    /// Commands applied on each node.
    pub fn applied(&self) -> Vec<u64> {
        match self {
            AnyCluster::Ours(c) => c.applied(),
            AnyCluster::Naive(c) => c.applied(),
        }
    }

    /// Synced writes so far, over all nodes.
    pub fn syncs(&self) -> u64 {
        match self {
            AnyCluster::Ours(c) => c.metrics().iter().map(|m| m.syncs).sum(),
            AnyCluster::Naive(c) => c.stats.syncs.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// A client proposing `data` to `group`, starting at node index `hint`.
    pub fn client(&self, group: u64, data: Vec<u8>) -> RaftClient {
        let proposer = match self {
            AnyCluster::Ours(c) => Proposer::Ours(c.proposer()),
            AnyCluster::Naive(c) => Proposer::Naive(c.proposer()),
        };
        RaftClient {
            proposer,
            group,
            hint: (group % NODES) as usize,
            data,
        }
    }

    /// Waits until every node applied `acked` commands (10 s at most); the nodes
    /// still behind then (expected: 0).
    pub fn nodes_behind(&self, acked: u64) -> u64 {
        let caught_up = || self.applied().iter().all(|&a| a >= acked);
        if wait_until("every node applied", Duration::from_secs(10), caught_up).is_ok() {
            return 0;
        }
        self.applied().iter().filter(|&&a| a < acked).count() as u64
    }
}

/// Proposes through either driver.
#[derive(Clone)]
enum Proposer {
    Ours(OurProposer),
    Naive(NaiveProposer),
}

/// A closed-loop client of one raft group: proposes the same payload (its first 8
/// bytes replaced by the call number) and waits until it is applied on the leader.
pub struct RaftClient {
    proposer: Proposer,
    group: u64,
    hint: usize,
    data: Vec<u8>,
}

impl Client for RaftClient {
    async fn call(&mut self, seq: u64) -> Result<(), String> {
        let head = self.data.len().min(8);
        self.data[..head].copy_from_slice(&seq.to_le_bytes()[..head]);
        let data = self.data.clone();
        let accepted = match &self.proposer {
            Proposer::Ours(p) => p.propose(self.group, data, &mut self.hint).await,
            Proposer::Naive(p) => p.propose(self.group, data, &mut self.hint).await,
        };
        // Both drivers only say whether a proposal was taken (a refusal moves the hint).
        accepted.then_some(()).ok_or_else(|| "refused".to_owned())
    }
}

/// Polls `done` every 10 ms until it holds or `deadline` passes.
pub fn wait_until(
    what: &'static str,
    deadline: Duration,
    mut done: impl FnMut() -> bool,
) -> Result<(), BenchError> {
    let start = Instant::now();
    // Bounded by `deadline`.
    while !done() {
        if start.elapsed() > deadline {
            return Err(BenchError::Timeout {
                what,
                seconds: deadline.as_secs_f64(),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}
