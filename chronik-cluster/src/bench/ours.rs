//! Our scheduler at the raft level: one `MultiRaft` and one log engine per node, and a
//! ticker thread, for the scenarios that compare drivers on bare raft groups.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::future::join_all;
use raft_multi::{Error, GroupSpec, MultiConfig, MultiMetrics, MultiRaft, NodeId};
use raft_storage::{EngineConfig, LogEngine};
use raft_transport::Transport;

use super::machine::CountingMachine;
use super::{BenchError, Timing};

/// Calls waited on at once when creating or campaigning many groups.
const CHUNK: usize = 1024;

/// One `MultiRaft` per transport endpoint, all in this process.
pub struct OurCluster {
    multis: Vec<MultiRaft>,
    /// Commands applied on each node.
    tallies: Vec<Arc<AtomicU64>>,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl OurCluster {
    /// Nodes on these endpoints; `dir`: one write-ahead log per node under it (memory
    /// engines if `None`); `sync`: one sync per round.
    pub fn start(
        endpoints: Vec<Arc<dyn Transport>>,
        timing: Timing,
        dir: Option<PathBuf>,
        sync: bool,
    ) -> Result<OurCluster, BenchError> {
        let mut multis = Vec::new();
        for transport in endpoints {
            let id = transport.local_id();
            let engine = match &dir {
                Some(dir) => LogEngine::open(EngineConfig::new(dir.join(format!("node-{id}"))))?,
                None => LogEngine::in_memory(),
            };
            let mut config = MultiConfig::new(id)
                .workers(timing.workers.max(1))
                .ticks(timing.heartbeat_ticks, timing.election_ticks)
                .hibernate_after_ticks(timing.hibernate_after_ticks);
            config.sync = sync;
            multis.push(MultiRaft::start(config, engine, transport)?);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (multis, stop, tick) = (multis.clone(), Arc::clone(&stop), timing.tick);
            std::thread::Builder::new()
                .name("ticker".into())
                .spawn(move || {
                    // Bounded: stops with the cluster, and after a day at most.
                    let until = Instant::now() + Duration::from_secs(86_400);
                    let mut next = Instant::now() + tick;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                        std::thread::sleep(next.saturating_duration_since(Instant::now()));
                        next += tick;
                        for multi in &multis {
                            multi.tick();
                        }
                    }
                })?
        };
        Ok(OurCluster {
            tallies: multis.iter().map(|_| Arc::default()).collect(),
            multis,
            stop,
            ticker: Some(ticker),
        })
    }

    /// Creates a replica of each group on every node, voters = all nodes.
    pub fn create_groups(&self, groups: std::ops::RangeInclusive<u64>) -> Result<(), BenchError> {
        let voters: Vec<NodeId> = self.multis.iter().map(|m| m.node_id()).collect();
        let all: Vec<u64> = groups.collect();
        for chunk in all.chunks(CHUNK) {
            let calls = chunk.iter().flat_map(|&group| {
                let voters = voters.clone();
                self.multis
                    .iter()
                    .zip(&self.tallies)
                    .map(move |(multi, tally)| {
                        multi.create_group(GroupSpec::new(
                            group,
                            voters.clone(),
                            Box::new(CountingMachine::new(tally)),
                        ))
                    })
            });
            for outcome in futures::executor::block_on(join_all(calls)) {
                outcome?;
            }
        }
        Ok(())
    }

    /// Asks node `(group % nodes) + 1` to campaign for each group, spreading leaders.
    pub fn campaign(&self, groups: std::ops::RangeInclusive<u64>) -> Result<(), BenchError> {
        let all: Vec<u64> = groups.collect();
        let n = self.multis.len() as u64;
        for chunk in all.chunks(CHUNK) {
            let calls = chunk
                .iter()
                .map(|&group| self.multis[(group % n) as usize].campaign(group));
            for outcome in futures::executor::block_on(join_all(calls)) {
                outcome?;
            }
        }
        Ok(())
    }

    /// The scheduler's counters of each node.
    pub fn metrics(&self) -> Vec<MultiMetrics> {
        self.multis.iter().map(|m| m.metrics()).collect()
    }

    /// Groups led, summed over the nodes.
    pub fn leaders(&self) -> u64 {
        self.metrics().iter().map(|m| m.leaders).sum()
    }

    /// Replicas asleep, summed over the nodes.
    pub fn hibernated(&self) -> u64 {
        self.metrics().iter().map(|m| m.hibernated).sum()
    }

    /// Commands applied on each node.
    pub fn applied(&self) -> Vec<u64> {
        self.tallies
            .iter()
            .map(|t| t.load(Ordering::Relaxed))
            .collect()
    }

    /// A handle that proposes from any task.
    pub fn proposer(&self) -> OurProposer {
        OurProposer {
            multis: self.multis.clone(),
        }
    }

    /// Stops the ticker and the schedulers.
    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
        for multi in &self.multis {
            multi.shutdown();
        }
    }
}

impl Drop for OurCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Proposes to our scheduler.
#[derive(Clone)]
pub struct OurProposer {
    multis: Vec<MultiRaft>,
}

impl OurProposer {
    /// Proposes on node index `*hint`; a refusal moves the hint to the leader (or the
    /// next node). True once the entry is applied on the leader.
    pub async fn propose(&self, group: u64, data: Vec<u8>, hint: &mut usize) -> bool {
        let node = *hint % self.multis.len();
        match self.multis[node].propose(group, data).await {
            Ok(_) => true,
            Err(Error::NotLeader {
                leader: Some(leader),
                ..
            }) => {
                *hint = (leader as usize).saturating_sub(1);
                false
            }
            Err(_) => {
                *hint = node + 1;
                false
            }
        }
    }
}
