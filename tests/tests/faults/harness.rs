//! Starting the cluster, the seed, and bounded waits.

use std::time::Duration;

use chronik_cluster::testing::TestCluster;
use chronik_cluster::{Cluster, TopicSpec};

/// The topic every fault test writes.
pub const TOPIC: &str = "faults";
/// Nodes (and replicas per partition).
pub const NODES: u64 = 3;
/// Upper bound of every wait for the cluster to reach a state.
pub const WAIT: Duration = Duration::from_secs(20);

/// The seed: `SEED` from the environment, else `default`.
pub fn seed_or(default: u64) -> u64 {
    match std::env::var("SEED") {
        Ok(text) => match text.trim().parse() {
            Ok(seed) => seed,
            Err(_) => panic!("SEED={text:?} is not a u64"),
        },
        Err(_) => default,
    }
}

/// Prints the seed and the replay command if the test panics.
pub struct SeedGuard {
    pub seed: u64,
    pub test: &'static str,
}

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "FAILED with seed {seed}; replay: SEED={seed} cargo test -p chronik-cluster-tests \
                 --test faults {test}",
                seed = self.seed,
                test = self.test
            );
        }
    }
}

/// Polls `probe` every 20 ms until it answers, for at most `timeout`.
pub async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Result<T, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The nodes that believe they lead `partition`, except `excluded`.
pub fn claimed_leaders(nodes: &[Cluster], partition: u32, excluded: &[u64]) -> Vec<Cluster> {
    nodes
        .iter()
        .filter(|c| !excluded.contains(&c.node_id()))
        .filter(|c| {
            c.status()
                .local_partitions
                .iter()
                .any(|p| p.topic == TOPIC && p.partition == partition && p.leader)
        })
        .cloned()
        .collect()
}

/// Starts a 3-node cluster and creates `partitions` partitions of 3 replicas, each
/// with a leader.
pub async fn start(seed: u64, partitions: u32) -> (TestCluster, Vec<Cluster>) {
    let cluster = match TestCluster::start(NODES, seed).await {
        Ok(c) => c,
        Err(e) => panic!("cluster did not start: {e}"),
    };
    let nodes: Vec<Cluster> = (1..=NODES).map(|id| cluster.cluster(id)).collect();
    let admin = match cluster.controller(WAIT).await {
        Ok(c) => c,
        Err(e) => panic!("no controller: {e}"),
    };
    wait_for("every node registered", WAIT, || {
        (admin.nodes().len() == NODES as usize).then_some(())
    })
    .await
    .unwrap();
    admin
        .create_topic(TopicSpec::new(TOPIC, partitions, NODES as u32))
        .await
        .unwrap();
    wait_for("a leader for every partition", WAIT, || {
        (0..partitions)
            .all(|p| !claimed_leaders(&nodes, p, &[]).is_empty())
            .then_some(())
    })
    .await
    .unwrap();
    (cluster, nodes)
}
