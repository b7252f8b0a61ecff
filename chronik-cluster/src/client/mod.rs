//! [`ChronikClient`]: a Rust client of the client gRPC service that follows leaders.
//!
//! Data requests go to the partition's leader and admin requests to the controller;
//! when a node answers "not the leader" with a hint, the client retries there (with a
//! bounded number of attempts and a deadline).

use std::collections::BTreeMap;
use std::time::Duration;

use parking_lot::Mutex;
use tonic::transport::{Channel, Endpoint};

use crate::api::{ClusterStatus, NodeDescription, TopicDescription, TopicSpec};
use crate::service::proto::{self, chronik_client::ChronikClient as Rpc};
use crate::service::MAX_MESSAGE_BYTES;
use crate::NodeId;

mod admin;
mod convert;
mod data;

use convert::{status_from_proto, topic_from_proto};

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The cluster answered with a Kafka error.
    #[error("{message} (Kafka error {code})")]
    Cluster {
        /// Kafka's error code.
        code: i16,
        /// The node's explanation.
        message: String,
        /// Where to retry, if known.
        leader: Option<NodeId>,
    },
    /// The node's write-ahead log is full (Kafka error 56, `KAFKA_STORAGE_ERROR`): the
    /// write was refused before it reached the log and will never appear. Not retried:
    /// writes succeed again once the node has compacted and purged its log.
    #[error("{message} (Kafka error 56)")]
    StorageFull {
        /// The node's explanation (bytes used and the limit).
        message: String,
    },
    /// No node at these addresses answered.
    #[error("no node reachable at {addresses:?}")]
    Unreachable {
        /// The addresses tried.
        addresses: Vec<String>,
    },
    /// A node failed the call at the RPC level.
    #[error("rpc to {address} failed: {message}")]
    Rpc {
        /// The node's address.
        address: String,
        /// gRPC status code.
        code: i32,
        /// Its message.
        message: String,
    },
    /// Leadership kept moving, or the node kept failing, until the deadline.
    #[error("gave up after {attempts} attempts: {last}")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: Box<ClientError>,
    },
}

impl ClientError {
    fn is_retriable(&self) -> bool {
        match self {
            // NOT_LEADER_OR_FOLLOWER, NOT_CONTROLLER, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS
            // and UNKNOWN_TOPIC (a catalogue that has not caught up yet).
            ClientError::Cluster { code, .. } => matches!(code, 6 | 41 | 7 | 19 | 8 | 3),
            ClientError::Rpc { .. } | ClientError::Unreachable { .. } => true,
            ClientError::GaveUp { .. } | ClientError::StorageFull { .. } => false,
        }
    }

    /// The Kafka error code, when the cluster answered with one.
    pub fn kafka_code(&self) -> Option<i16> {
        match self {
            ClientError::Cluster { code, .. } => Some(*code),
            ClientError::StorageFull { .. } => Some(STORAGE_ERROR),
            ClientError::GaveUp { last, .. } => last.kafka_code(),
            _ => None,
        }
    }
}

/// Result of client calls.
pub type ClientResult<T> = std::result::Result<T, ClientError>;

/// A client of a cluster, from any of its nodes' client addresses.
#[derive(Debug)]
pub struct ChronikClient {
    bootstrap: Vec<String>,
    channels: Mutex<BTreeMap<String, Channel>>,
    /// Client address of each node, learned from `Status`.
    nodes: Mutex<BTreeMap<NodeId, String>>,
    /// The last known leader of each (topic, partition), and the controller.
    leaders: Mutex<BTreeMap<(String, u32), NodeId>>,
    /// The replicas of each (topic, partition): where to look when no leader is known
    /// (a node that does not host a partition does not know its leader).
    replicas: Mutex<BTreeMap<(String, u32), Vec<NodeId>>>,
    controller: Mutex<Option<NodeId>>,
    timeout: Duration,
}

/// Kafka's KAFKA_STORAGE_ERROR, which a node answers when its log is full.
const STORAGE_ERROR: i16 = 56;

fn check(outcome: Option<proto::Outcome>) -> ClientResult<()> {
    match outcome {
        Some(o) if o.error_code == i32::from(STORAGE_ERROR) => Err(ClientError::StorageFull {
            message: o.error_message,
        }),
        Some(o) if o.error_code != 0 => Err(ClientError::Cluster {
            code: i16::try_from(o.error_code).unwrap_or(-1),
            message: o.error_message,
            leader: (o.leader_hint != 0).then_some(o.leader_hint),
        }),
        _ => Ok(()),
    }
}

enum Target {
    Controller,
    Leader(String, u32),
    Any,
}

impl ChronikClient {
    /// A client that reaches the cluster through `addresses` (`host:port` of client
    /// services). Checks that one of them answers.
    ///
    /// # Errors
    /// `Unreachable` when none answers.
    pub async fn connect(addresses: &[String]) -> ClientResult<ChronikClient> {
        let client = ChronikClient {
            bootstrap: addresses.to_vec(),
            channels: Mutex::new(BTreeMap::new()),
            nodes: Mutex::new(BTreeMap::new()),
            leaders: Mutex::new(BTreeMap::new()),
            replicas: Mutex::new(BTreeMap::new()),
            controller: Mutex::new(None),
            timeout: Duration::from_secs(30),
        };
        client.refresh().await?;
        Ok(client)
    }

    /// Sets how long a call may retry before giving up (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn rpc(&self, address: &str) -> ClientResult<Rpc<Channel>> {
        let channel = {
            let mut channels = self.channels.lock();
            match channels.get(address) {
                Some(c) => c.clone(),
                None => {
                    let endpoint =
                        Endpoint::from_shared(format!("http://{address}")).map_err(|e| {
                            ClientError::Rpc {
                                address: address.to_owned(),
                                code: 3,
                                message: e.to_string(),
                            }
                        })?;
                    let channel = endpoint
                        .connect_timeout(Duration::from_secs(2))
                        .connect_lazy();
                    channels.insert(address.to_owned(), channel.clone());
                    channel
                }
            }
        };
        Ok(Rpc::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    fn rpc_error(&self, address: &str, status: tonic::Status) -> ClientError {
        // A broken connection is re-made on the next call.
        self.channels.lock().remove(address);
        ClientError::Rpc {
            address: address.to_owned(),
            code: status.code() as i32,
            message: status.message().to_owned(),
        }
    }

    /// Asks any reachable node for the cluster's layout.
    async fn refresh(&self) -> ClientResult<ClusterStatus> {
        let mut addresses: Vec<String> = self.nodes.lock().values().cloned().collect();
        addresses.extend(self.bootstrap.iter().cloned());
        for address in &addresses {
            let Ok(mut rpc) = self.rpc(address) else {
                continue;
            };
            match rpc.status(proto::StatusRequest {}).await {
                Ok(reply) => {
                    let status = status_from_proto(reply.into_inner());
                    self.learn(&status);
                    return Ok(status);
                }
                Err(status) => {
                    let _ = self.rpc_error(address, status);
                }
            }
        }
        Err(ClientError::Unreachable { addresses })
    }

    fn learn(&self, status: &ClusterStatus) {
        let mut nodes = self.nodes.lock();
        for n in &status.nodes {
            nodes.insert(n.id, n.client_address.clone());
        }
        let mut leaders = self.leaders.lock();
        let mut replicas = self.replicas.lock();
        for p in &status.partitions {
            if let Some(l) = p.leader {
                leaders.insert((p.topic.clone(), p.partition), l);
            }
            replicas.insert((p.topic.clone(), p.partition), p.replicas.clone());
        }
        for p in status.local_partitions.iter().filter(|p| p.leader) {
            leaders.insert((p.topic.clone(), p.partition), status.node_id);
        }
        *self.controller.lock() = status.controller;
    }

    /// The node to ask; with no leader known, a partition's replicas in turn.
    fn address_of(&self, target: &Target, attempt: u32) -> Option<String> {
        let node = match target {
            Target::Controller => *self.controller.lock(),
            Target::Leader(t, p) => {
                let key = (t.clone(), *p);
                let leader = self.leaders.lock().get(&key).copied();
                leader.or_else(|| {
                    let replicas = self.replicas.lock();
                    let list = replicas.get(&key)?;
                    list.get(attempt as usize % list.len().max(1)).copied()
                })
            }
            Target::Any => None,
        };
        match node {
            Some(id) => self.nodes.lock().get(&id).cloned(),
            None => self.bootstrap.first().cloned(),
        }
    }

    fn follow(&self, target: &Target, leader: Option<NodeId>) {
        match (target, leader) {
            (Target::Controller, l) => *self.controller.lock() = l,
            (Target::Leader(t, p), Some(l)) => {
                self.leaders.lock().insert((t.clone(), *p), l);
            }
            (Target::Leader(t, p), None) => {
                self.leaders.lock().remove(&(t.clone(), *p));
            }
            (Target::Any, _) => {}
        }
    }

    /// Runs `call` against the target's node, following hints and refreshing the
    /// layout, until it succeeds, fails for good, or the deadline passes.
    async fn with_retry<T, F, Fut>(&self, target: Target, call: F) -> ClientResult<T>
    where
        F: Fn(Rpc<Channel>, String) -> Fut,
        Fut: std::future::Future<Output = ClientResult<T>>,
    {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut backoff = Duration::from_millis(20);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let error = match self.address_of(&target, attempts) {
                Some(address) => match self.rpc(&address) {
                    Ok(rpc) => match call(rpc, address).await {
                        Ok(value) => return Ok(value),
                        Err(e) => e,
                    },
                    Err(e) => e,
                },
                None => ClientError::Unreachable {
                    addresses: self.bootstrap.clone(),
                },
            };
            // An unknown topic may be a catalogue that has not caught up yet: worth a few
            // quick retries, not the whole deadline.
            let unknown_topic = error.kafka_code() == Some(3);
            if !error.is_retriable() || unknown_topic && attempts >= 5 {
                return Err(error);
            }
            if tokio::time::Instant::now() + backoff > deadline || attempts >= 200 {
                return Err(ClientError::GaveUp {
                    attempts,
                    last: Box::new(error),
                });
            }
            match &error {
                ClientError::Cluster {
                    leader: Some(l), ..
                } if self.nodes.lock().contains_key(l) => {
                    self.follow(&target, Some(*l));
                }
                _ => {
                    self.follow(&target, None);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                    let _ = self.refresh().await;
                }
            }
        }
    }

    /// Creates a topic through the controller.
    ///
    /// # Errors
    /// The cluster's refusal (`TopicAlreadyExists` is code 36), or `GaveUp`.
    pub async fn create_topic(&self, spec: TopicSpec) -> ClientResult<TopicDescription> {
        let request = proto::CreateTopicRequest {
            name: spec.name,
            partitions: spec.partitions,
            replication_factor: spec.replication_factor,
            configs: spec.configs.into_iter().collect(),
        };
        let topic = self
            .with_retry(Target::Controller, |mut rpc, address| {
                let request = request.clone();
                async move {
                    let reply = rpc
                        .create_topic(request)
                        .await
                        .map_err(|s| self.rpc_error(&address, s))?;
                    let reply = reply.into_inner();
                    check(reply.outcome)?;
                    Ok(reply.topic.map(topic_from_proto))
                }
            })
            .await?;
        let _ = self.refresh().await;
        topic.ok_or(ClientError::Cluster {
            code: -1,
            message: "empty reply".to_owned(),
            leader: None,
        })
    }

    /// Deletes a topic through the controller.
    ///
    /// # Errors
    /// The cluster's refusal, or `GaveUp`.
    pub async fn delete_topic(&self, name: &str) -> ClientResult<()> {
        let request = proto::DeleteTopicRequest {
            name: name.to_owned(),
        };
        self.with_retry(Target::Controller, |mut rpc, address| {
            let request = request.clone();
            async move {
                let reply = rpc
                    .delete_topic(request)
                    .await
                    .map_err(|s| self.rpc_error(&address, s))?;
                check(Some(reply.into_inner()))
            }
        })
        .await
    }

    /// Every topic.
    ///
    /// # Errors
    /// `GaveUp` when no node answers.
    pub async fn list_topics(&self) -> ClientResult<Vec<TopicDescription>> {
        self.with_retry(Target::Any, |mut rpc, address| async move {
            let reply = rpc
                .list_topics(proto::ListTopicsRequest {})
                .await
                .map_err(|s| self.rpc_error(&address, s))?;
            Ok(reply
                .into_inner()
                .topics
                .into_iter()
                .map(topic_from_proto)
                .collect())
        })
        .await
    }

    /// Registers a node with the controller (what a joining node does).
    ///
    /// # Errors
    /// The controller's refusal, or `GaveUp`.
    pub async fn register_node(&self, node: NodeDescription) -> ClientResult<()> {
        let wire = proto::Node {
            id: node.id,
            raft_address: node.raft_address,
            client_address: node.client_address,
            rack: node.rack.unwrap_or_default(),
        };
        self.with_retry(Target::Controller, |mut rpc, address| {
            let wire = wire.clone();
            async move {
                let reply = rpc
                    .register_node(wire)
                    .await
                    .map_err(|s| self.rpc_error(&address, s))?;
                check(Some(reply.into_inner()))
            }
        })
        .await
    }

    /// The status as one node (`node`, or any) sees it.
    ///
    /// # Errors
    /// `Unreachable` when the node does not answer.
    pub async fn status(&self, node: Option<NodeId>) -> ClientResult<ClusterStatus> {
        let Some(node) = node else {
            return self.refresh().await;
        };
        let address = self
            .nodes
            .lock()
            .get(&node)
            .cloned()
            .ok_or(ClientError::Unreachable {
                addresses: vec![format!("node {node}")],
            })?;
        let mut rpc = self.rpc(&address)?;
        let reply = rpc
            .status(proto::StatusRequest {})
            .await
            .map_err(|s| self.rpc_error(&address, s))?;
        Ok(status_from_proto(reply.into_inner()))
    }
}
