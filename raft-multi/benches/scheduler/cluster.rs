//! Either driver behind one face, so each scenario is written once.

use std::path::PathBuf;

use raft_transport::local::LocalNetwork;

use crate::naive::{NaiveCluster, NaiveProposer};
use crate::ours::{OurCluster, OurProposer};
use crate::{Driver, Settings, NODES};

pub enum AnyCluster {
    Ours(OurCluster),
    Naive(NaiveCluster),
}

/// Counters both drivers keep.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub writes: u64,
    pub syncs: u64,
    pub messages: u64,
}

impl AnyCluster {
    pub fn start(driver: Driver, settings: &Settings, dir: Option<PathBuf>) -> AnyCluster {
        match driver {
            Driver::Ours => AnyCluster::Ours(OurCluster::start(NODES, settings, dir)),
            Driver::Naive => AnyCluster::Naive(NaiveCluster::start(NODES, settings.clone(), dir)),
        }
    }

    pub fn create_groups(&self, groups: std::ops::RangeInclusive<u64>) {
        match self {
            AnyCluster::Ours(c) => c.create_groups(groups),
            AnyCluster::Naive(c) => c.create_groups(groups),
        }
    }

    pub fn campaign(&self, groups: std::ops::RangeInclusive<u64>) {
        match self {
            AnyCluster::Ours(c) => c.campaign(groups),
            AnyCluster::Naive(c) => c.campaign(groups),
        }
    }

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

    pub fn net(&self) -> &LocalNetwork {
        match self {
            AnyCluster::Ours(c) => &c.net,
            AnyCluster::Naive(c) => &c.net,
        }
    }

    pub fn counters(&self) -> Counters {
        match self {
            AnyCluster::Ours(c) => {
                c.metrics()
                    .iter()
                    .fold(Counters::default(), |acc, m| Counters {
                        writes: acc.writes + m.writes,
                        syncs: acc.syncs + m.syncs,
                        messages: acc.messages + m.messages_sent,
                    })
            }
            AnyCluster::Naive(c) => {
                let load =
                    |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
                Counters {
                    writes: load(&c.stats.writes),
                    syncs: load(&c.stats.syncs),
                    messages: load(&c.stats.messages),
                }
            }
        }
    }

    /// Commands applied on each node.
    pub fn applied(&self) -> Vec<u64> {
        match self {
            AnyCluster::Ours(c) => c
                .tallies
                .iter()
                .map(|t| t.load(std::sync::atomic::Ordering::Relaxed))
                .collect(),
            AnyCluster::Naive(c) => c.applied(),
        }
    }

    pub fn proposer(&self) -> Proposer {
        match self {
            AnyCluster::Ours(c) => Proposer::Ours(c.proposer()),
            AnyCluster::Naive(c) => Proposer::Naive(c.proposer()),
        }
    }
}

/// Proposes through either driver.
#[derive(Clone)]
pub enum Proposer {
    Ours(OurProposer),
    Naive(NaiveProposer),
}

impl Proposer {
    /// True once the entry is committed and applied on the leader. `hint` is the node
    /// index tried first; a refusal moves it.
    pub async fn propose(&self, group: u64, data: Vec<u8>, hint: &mut usize) -> bool {
        match self {
            Proposer::Ours(p) => p.propose(group, data, hint).await,
            Proposer::Naive(p) => p.propose(group, data, hint).await,
        }
    }
}
