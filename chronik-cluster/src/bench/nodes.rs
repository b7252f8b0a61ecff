//! A cluster of real chronik nodes in this process: gRPC between them on loopback, the
//! real write-ahead log with sync, the partition state machines. The shape of `demo`,
//! for `produce`, `failover` and `recovery`.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chronik_cluster::{
    Acks, Cluster, ClusterError, Node, NodeConfig, NodeId, PeerConfig, ProduceRequest, TopicSpec,
};

use super::load::{self, Client};
use super::{BenchError, Timing};

/// Nodes started in this process, by id (`None` once stopped).
pub struct Nodes {
    /// Node `i + 1` at index `i`.
    pub nodes: Vec<Option<Node>>,
    /// Their configurations, to restart them.
    pub configs: Vec<NodeConfig>,
}

/// Free loopback ports, found by binding port 0.
fn free_ports(n: usize) -> Result<Vec<u16>, BenchError> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    Ok(listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()?)
}

/// Loopback addresses on free ports, `n` of them.
pub fn free_addresses(n: usize) -> Result<Vec<std::net::SocketAddr>, BenchError> {
    Ok(free_ports(n)?
        .into_iter()
        .map(|port| std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .collect())
}

impl Nodes {
    /// Starts `count` nodes with their data under `dir`, all initial voters of the
    /// metadata group, and waits until each is registered with the controller.
    pub async fn start(count: u64, dir: &Path, timing: Timing) -> Result<Nodes, BenchError> {
        let mut nodes = Nodes::configure(count, dir, timing)?;
        nodes.start_all().await?;
        Ok(nodes)
    }

    /// The configurations of `count` nodes under `dir`, none started yet.
    pub fn configure(count: u64, dir: &Path, timing: Timing) -> Result<Nodes, BenchError> {
        let addresses = free_addresses(2 * count as usize)?;
        let raft = |i: u64| addresses[i as usize];
        let client = |i: u64| addresses[(count + i) as usize];
        let mut configs = Vec::new();
        for i in 0..count {
            let id = i + 1;
            let mut config =
                NodeConfig::new(id, dir.join(format!("node-{id}")), raft(i), client(i));
            config.raft.tick_ms = timing.tick.as_millis() as u64;
            config.raft.heartbeat_ticks = timing.heartbeat_ticks;
            config.raft.election_ticks = timing.election_ticks;
            config.raft.hibernate_after_ticks = timing.hibernate_after_ticks;
            config.raft.workers = timing.workers;
            config.peers = (0..count)
                .filter(|&j| j != i)
                .map(|j| PeerConfig {
                    id: j + 1,
                    raft_addr: raft(j).to_string(),
                    client_addr: client(j).to_string(),
                })
                .collect();
            configs.push(config);
        }
        Ok(Nodes {
            nodes: configs.iter().map(|_| None).collect(),
            configs,
        })
    }

    /// Starts every configured node and waits until each is registered with the
    /// controller.
    pub async fn start_all(&mut self) -> Result<(), BenchError> {
        let count = self.configs.len() as u64;
        for (slot, config) in self.nodes.iter_mut().zip(&self.configs) {
            *slot = Some(Node::builder(config.clone()).start().await?);
        }
        let deadline = Duration::from_secs(30);
        self.wait("every node registered", deadline, |c| {
            c.controller().is_some() && c.nodes().len() as u64 >= count
        })
        .await?;
        Ok(())
    }

    /// The running nodes' cluster handles, with their ids.
    pub fn live(&self) -> Vec<(NodeId, Cluster)> {
        self.nodes
            .iter()
            .flatten()
            .map(|n| (n.id(), n.cluster()))
            .collect()
    }

    /// For each partition of `topic`, the index in [`live`](Self::live) of the node
    /// that leads it now, where its producers start (as a Kafka client starts from a
    /// metadata request); partition `p` falls back to index `p`.
    pub fn leader_hints(&self, topic: &str, partitions: u32) -> Vec<usize> {
        let live = self.live();
        let described = live.first().and_then(|(_, c)| c.describe_topic(topic).ok());
        (0..partitions)
            .map(|partition| {
                described
                    .as_ref()
                    .and_then(|t| t.partitions.get(partition as usize))
                    .and_then(|p| p.leader)
                    .and_then(|leader| live.iter().position(|(id, _)| *id == leader))
                    .unwrap_or(partition as usize)
            })
            .collect()
    }

    /// Polls every 10 ms until `done` holds on every running node, or `deadline`.
    pub async fn wait(
        &self,
        what: &'static str,
        deadline: Duration,
        done: impl Fn(&Cluster) -> bool,
    ) -> Result<Duration, BenchError> {
        let start = Instant::now();
        let live = self.live();
        // Bounded by `deadline`.
        while !live.iter().all(|(_, c)| done(c)) {
            if start.elapsed() > deadline {
                return Err(BenchError::Timeout {
                    what,
                    seconds: deadline.as_secs_f64(),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(start.elapsed())
    }

    /// Creates a topic on the controller and waits until every partition is led.
    pub async fn create_topic(&self, spec: TopicSpec) -> Result<(), BenchError> {
        let name = spec.name.clone();
        let partitions = spec.partitions as usize;
        let deadline = Instant::now() + Duration::from_secs(60);
        // Bounded: the controller is retried until the deadline.
        loop {
            let controller = self
                .live()
                .into_iter()
                .find(|(id, c)| c.controller() == Some(*id));
            if let Some((_, cluster)) = controller {
                match cluster.create_topic(spec.clone()).await {
                    Ok(_) => break,
                    Err(ClusterError::NotController { .. }) => {}
                    // A retry after a lost answer finds the topic there.
                    Err(_) if cluster.describe_topic(&name).is_ok() => break,
                    Err(e) => return Err(e.into()),
                }
            }
            if Instant::now() > deadline {
                return Err(BenchError::Timeout {
                    what: "the controller to create the topic",
                    seconds: 60.0,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let wait = Duration::from_secs(60 + partitions as u64 / 20);
        self.wait("every partition led", wait, |c| {
            c.describe_topic(&name).is_ok_and(|t| {
                t.partitions.len() == partitions && t.partitions.iter().all(|p| p.leader.is_some())
            })
        })
        .await?;
        // The nodes hand leadership back to each partition's preferred replica every
        // 2 s (a few per pass): wait for it, so no run measures leaders moving. Best
        // effort: a run that must start anyway starts after 30 s.
        let preferred = |c: &Cluster| {
            c.describe_topic(&name).is_ok_and(|t| {
                t.partitions
                    .iter()
                    .all(|p| p.leader.is_some() && p.leader == p.replicas.first().copied())
            })
        };
        if self
            .wait("preferred leaders", Duration::from_secs(30), preferred)
            .await
            .is_err()
        {
            tracing::warn!(topic = %name, "leaders not all on their preferred replica after 30 s");
        }
        Ok(())
    }

    /// Stops node `id` cleanly (its data stays).
    pub async fn stop(&mut self, id: NodeId) {
        let index = (id as usize).saturating_sub(1);
        let slot = self.nodes.get_mut(index).and_then(Option::take);
        if let Some(node) = slot {
            node.shutdown().await;
        }
    }

    /// Restarts node `id` over its data.
    pub async fn restart(&mut self, id: NodeId) -> Result<(), BenchError> {
        let index = (id as usize).saturating_sub(1);
        let (Some(config), true) = (self.configs.get(index).cloned(), index < self.nodes.len())
        else {
            return Err(BenchError::Usage(format!("no node {id}")));
        };
        let node = Node::builder(config).start().await?;
        self.nodes[index] = Some(node);
        Ok(())
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        for slot in &mut self.nodes {
            if let Some(node) = slot.take() {
                node.shutdown().await;
            }
        }
    }
}

/// A producer of one partition through the node API: sends to the node it believes
/// leads, follows `NotLeaderOrFollower` hints.
pub struct Producer {
    /// The running nodes' handles.
    pub nodes: Vec<(NodeId, Cluster)>,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// The encoded record batch.
    pub records: Bytes,
    /// Records in it.
    pub count: u32,
    /// Acknowledgement level.
    pub acks: Acks,
    /// Index into `nodes` tried first.
    pub hint: usize,
}

impl Producer {
    /// One produce; `Ok` once acknowledged.
    pub async fn produce(&mut self) -> Result<(), ClusterError> {
        let index = self.hint % self.nodes.len().max(1);
        let Some((_, cluster)) = self.nodes.get(index) else {
            return Err(ClusterError::ShuttingDown);
        };
        let mut request = ProduceRequest::new(
            self.topic.clone(),
            self.partition,
            self.records.clone(),
            self.count,
        );
        request.acks = self.acks;
        request.timeout = Duration::from_secs(10);
        match cluster.produce(request).await {
            Ok(_) => Ok(()),
            Err(error) => {
                tracing::debug!(partition = self.partition, %error, "bench produce refused");
                let leader = match &error {
                    ClusterError::NotLeaderOrFollower { leader, .. } => *leader,
                    _ => None,
                };
                self.hint = leader
                    .and_then(|l| self.nodes.iter().position(|(id, _)| *id == l))
                    .unwrap_or(index + 1);
                Err(error)
            }
        }
    }
}

impl Client for Producer {
    async fn call(&mut self, _seq: u64) -> Result<(), String> {
        self.produce().await.map_err(|e| load::error_kind(&e))
    }
}
