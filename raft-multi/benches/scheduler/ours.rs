//! Our scheduler: one `MultiRaft` per node, one log engine per node, a ticker thread.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::future::join_all;
use raft_multi::{Error, GroupSpec, MultiConfig, MultiMetrics, MultiRaft, NodeId};
use raft_storage::{EngineConfig, LogEngine};
use raft_transport::local::LocalNetwork;

use crate::machine::CountingMachine;
use crate::Settings;

/// Calls waited on at once when creating or campaigning many groups.
const CHUNK: usize = 1024;

pub struct OurCluster {
    pub net: LocalNetwork,
    pub multis: Vec<MultiRaft>,
    /// Commands applied on each node.
    pub tallies: Vec<Arc<AtomicU64>>,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl OurCluster {
    /// `dir`: one write-ahead log per node under it (memory engines if `None`).
    pub fn start(nodes: u64, settings: &Settings, dir: Option<PathBuf>) -> OurCluster {
        let net = crate::network();
        let multis: Vec<MultiRaft> = (1..=nodes)
            .map(|id| {
                let engine = match &dir {
                    Some(dir) => LogEngine::open(EngineConfig::new(dir.join(format!("node-{id}"))))
                        .expect("a write-ahead log per node"),
                    None => LogEngine::in_memory(),
                };
                let mut config = MultiConfig::new(id)
                    .workers(settings.workers)
                    .ticks(settings.heartbeat_ticks, settings.election_ticks)
                    .hibernate_after_ticks(settings.hibernate_after_ticks);
                config.sync = settings.sync;
                MultiRaft::start(config, engine, net.endpoint(id)).expect("scheduler starts")
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (multis, stop, tick) = (multis.clone(), Arc::clone(&stop), settings.tick);
            std::thread::Builder::new()
                .name("ticker".into())
                .spawn(move || {
                    // Bounded: stops with the cluster, and after an hour at most.
                    let until = Instant::now() + Duration::from_secs(3600);
                    let mut next = Instant::now() + tick;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                        std::thread::sleep(next.saturating_duration_since(Instant::now()));
                        next += tick;
                        for multi in &multis {
                            multi.tick();
                        }
                    }
                })
                .expect("ticker thread")
        };
        OurCluster {
            net,
            tallies: multis.iter().map(|_| Arc::default()).collect(),
            multis,
            stop,
            ticker: Some(ticker),
        }
    }

    /// Creates a replica of each group on every node, voters = all nodes.
    pub fn create_groups(&self, groups: std::ops::RangeInclusive<u64>) {
        let voters: Vec<NodeId> = (1..=self.multis.len() as u64).collect();
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
                outcome.expect("group created");
            }
        }
    }

    /// Asks node `(group % nodes) + 1` to campaign for each group, spreading leaders.
    pub fn campaign(&self, groups: std::ops::RangeInclusive<u64>) {
        let all: Vec<u64> = groups.collect();
        let n = self.multis.len() as u64;
        for chunk in all.chunks(CHUNK) {
            let calls = chunk
                .iter()
                .map(|&group| self.multis[(group % n) as usize].campaign(group));
            for outcome in futures::executor::block_on(join_all(calls)) {
                outcome.expect("campaign");
            }
        }
    }

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

    pub fn proposer(&self) -> OurProposer {
        OurProposer {
            multis: self.multis.clone(),
        }
    }

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

/// Proposes to our scheduler from client tasks.
#[derive(Clone)]
pub struct OurProposer {
    multis: Vec<MultiRaft>,
}

impl OurProposer {
    /// Proposes on node index `*hint`; on `NotLeader` moves the hint to the leader (or
    /// the next node). True once the entry is applied on the leader.
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
