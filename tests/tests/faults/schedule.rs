//! The fault schedule: seeded network faults for a bounded time.

use std::time::Duration;

use chronik_cluster::{Cluster, LocalNetwork};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::harness::{claimed_leaders, NODES};

/// One kind of fault the schedule may inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Cut off the node leading a random partition.
    IsolateLeader,
    /// Cut off a random node.
    IsolateNode,
    /// Cut the link between two nodes, both ways.
    CutLink,
    /// Cut one direction of a link.
    OneWay,
    /// Lose a share of all messages.
    Drop,
    /// Deliver some messages twice.
    Duplicate,
    /// Hold some messages back so later ones overtake them.
    Reorder,
    /// Both at once.
    DuplicateReorder,
    /// No fault for a while.
    Calm,
}

/// Steps at most, whatever the duration.
const MAX_STEPS: usize = 200;

fn other_node(rng: &mut StdRng, not: u64) -> u64 {
    let offset = rng.random_range(1..NODES);
    (not - 1 + offset) % NODES + 1
}

/// Injects faults of `kinds` (each step heals the last one first) for `duration`,
/// holding each for 100 to 500 ms; ends with the network whole. Returns what it did.
pub async fn run(
    network: &LocalNetwork,
    nodes: &[Cluster],
    partitions: u32,
    kinds: &[Fault],
    duration: Duration,
    seed: u64,
) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_fa17);
    let deadline = tokio::time::Instant::now() + duration;
    let mut log = Vec::new();
    for _ in 0..MAX_STEPS {
        if tokio::time::Instant::now() >= deadline || kinds.is_empty() {
            break;
        }
        network.heal();
        network.set_drop_rate(0.0);
        network.set_duplicate_rate(0.0);
        network.set_reorder_rate(0.0);
        let fault = kinds[rng.random_range(0..kinds.len())];
        let node = rng.random_range(1..=NODES);
        let what = match fault {
            Fault::IsolateLeader => {
                let partition = rng.random_range(0..partitions);
                let leader = claimed_leaders(nodes, partition, &[])
                    .first()
                    .map_or(node, Cluster::node_id);
                network.isolate(leader);
                format!("isolate node {leader} (leader of p{partition})")
            }
            Fault::IsolateNode => {
                network.isolate(node);
                format!("isolate node {node}")
            }
            Fault::CutLink => {
                let other = other_node(&mut rng, node);
                network.partition(&[node], &[other]);
                format!("cut {node} <-> {other}")
            }
            Fault::OneWay => {
                let other = other_node(&mut rng, node);
                network.partition_one_way(node, other);
                format!("cut {node} -> {other}")
            }
            Fault::Drop => {
                let rate = rng.random_range(0.05..0.4);
                network.set_drop_rate(rate);
                format!("drop {rate:.2}")
            }
            Fault::Duplicate => {
                let rate = rng.random_range(0.05..0.3);
                network.set_duplicate_rate(rate);
                format!("duplicate {rate:.2}")
            }
            Fault::Reorder => {
                let rate = rng.random_range(0.05..0.3);
                network.set_reorder_rate(rate);
                format!("reorder {rate:.2}")
            }
            Fault::DuplicateReorder => {
                let rate = rng.random_range(0.05..0.3);
                network.set_duplicate_rate(rate);
                network.set_reorder_rate(rate);
                format!("duplicate and reorder {rate:.2}")
            }
            Fault::Calm => "calm".to_owned(),
        };
        let hold = Duration::from_millis(rng.random_range(100..500));
        log.push(format!("{what} for {hold:?}"));
        tokio::time::sleep(hold).await;
    }
    network.heal();
    network.set_drop_rate(0.0);
    network.set_duplicate_rate(0.0);
    network.set_reorder_rate(0.0);
    log.push("heal".to_owned());
    log
}
