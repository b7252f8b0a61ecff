//! In-process test clusters (feature `test-util`): nodes on the in-process network,
//! in memory, fast ticks. For tests of crates that embed chronik-cluster.

use std::time::Duration;

use raft_transport::local::LocalNetwork;

use crate::cluster::Cluster;
use crate::config::{NodeConfig, PeerConfig};
use crate::error::Result;
use crate::node::Node;
use crate::NodeId;

/// A cluster of `n` nodes in this process. Every wait is bounded.
pub struct TestCluster {
    network: LocalNetwork,
    nodes: Vec<Node>,
}

impl std::fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCluster")
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

impl TestCluster {
    /// Starts nodes `1..=n` (all initial voters of the metadata group), seeded network.
    ///
    /// # Errors
    /// A node that cannot start.
    pub async fn start(n: u64, seed: u64) -> Result<TestCluster> {
        let network = LocalNetwork::builder()
            .seed(seed)
            .auto_deliver(true)
            .direct_delivery(true)
            .build();
        let mut nodes = Vec::new();
        for id in 1..=n {
            let unused = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            let mut config = NodeConfig::new(id, std::env::temp_dir(), unused, unused);
            config.raft.tick_ms = 20;
            config.peers = (1..=n)
                .filter(|&p| p != id)
                .map(|p| PeerConfig {
                    id: p,
                    raft_addr: format!("node-{p}"),
                    client_addr: format!("node-{p}"),
                })
                .collect();
            nodes.push(
                Node::builder(config)
                    .local_network(network.clone())
                    .in_memory()
                    .start()
                    .await?,
            );
        }
        Ok(TestCluster { network, nodes })
    }

    /// The in-process network, to inject faults.
    pub fn network(&self) -> &LocalNetwork {
        &self.network
    }

    /// The API served by node `id`.
    ///
    /// # Panics
    /// If there is no node `id` (a test's mistake).
    pub fn cluster(&self, id: NodeId) -> Cluster {
        match self.nodes.iter().find(|n| n.id() == id) {
            Some(node) => node.cluster(),
            None => panic!("no node {id} in the test cluster"),
        }
    }

    /// The API of the controller, once there is one (waits up to `timeout`).
    ///
    /// # Errors
    /// `RequestTimedOut`.
    pub async fn controller(&self, timeout: Duration) -> Result<Cluster> {
        let any = self.cluster(self.nodes.first().map_or(1, Node::id));
        let id = any.wait_for_controller(timeout).await?;
        Ok(self.cluster(id))
    }

    /// The API of the node that leads `topic`'s `partition`, as the controller sees it.
    pub fn leader_of(&self, topic: &str, partition: u32) -> Option<Cluster> {
        self.nodes.iter().map(Node::cluster).find(|c| {
            c.describe_topic(topic)
                .ok()
                .and_then(|t| {
                    t.partitions
                        .get(partition as usize)
                        .map(|p| p.leader == Some(c.node_id()))
                })
                .unwrap_or(false)
        })
    }

    /// Stops every node.
    pub async fn shutdown(self) {
        for node in self.nodes {
            node.shutdown().await;
        }
    }
}
