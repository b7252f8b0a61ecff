//! Shared helpers: a 3-node cluster over real gRPC on loopback with the real WAL.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use chronik_cluster::{Node, NodeConfig, PeerConfig};

/// Free loopback ports, found by binding port 0.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// Configs of a 3-node cluster with data under `dir`.
pub fn configs(dir: &Path) -> Vec<NodeConfig> {
    let ports = free_ports(6);
    let raft = |i: usize| format!("127.0.0.1:{}", ports[i]);
    let client = |i: usize| format!("127.0.0.1:{}", ports[3 + i]);
    (0..3)
        .map(|i| {
            let id = i as u64 + 1;
            let mut c = NodeConfig::new(
                id,
                dir.join(format!("node-{id}")),
                raft(i).parse().unwrap(),
                client(i).parse().unwrap(),
            );
            c.raft.tick_ms = 20;
            c.peers = (0..3)
                .filter(|&j| j != i)
                .map(|j| PeerConfig {
                    id: j as u64 + 1,
                    raft_addr: raft(j),
                    client_addr: client(j),
                })
                .collect();
            c
        })
        .collect()
}

/// The config of node `id` that joins a running cluster through `via`.
pub fn joining(id: u64, dir: &Path, via: &NodeConfig) -> NodeConfig {
    let ports = free_ports(2);
    let mut config = NodeConfig::new(
        id,
        dir.join(format!("node-{id}")),
        format!("127.0.0.1:{}", ports[0]).parse().unwrap(),
        format!("127.0.0.1:{}", ports[1]).parse().unwrap(),
    );
    config.raft.tick_ms = 20;
    config.join = true;
    config.peers = vec![PeerConfig {
        id: via.node_id,
        raft_addr: via.raft_addr.to_string(),
        client_addr: via.client_addr.to_string(),
    }];
    config
}

pub async fn start(configs: &[NodeConfig]) -> Vec<Node> {
    let mut nodes = Vec::new();
    for c in configs {
        nodes.push(Node::builder(c.clone()).start().await.unwrap());
    }
    nodes
}

pub fn client_addresses(configs: &[NodeConfig]) -> Vec<String> {
    configs.iter().map(|c| c.client_addr.to_string()).collect()
}

/// Polls `probe` every 20 ms for up to 30 s.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
