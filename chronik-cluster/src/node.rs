//! [`Node`]: one running member of the cluster, built from a [`NodeConfig`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;
use raft_fsm::{MetadataReader, MetadataStateMachine, PartitionReader};
use raft_multi::{GroupSpec, MultiConfig, MultiRaft};
use raft_storage::LogEngine;
use raft_transport::local::LocalNetwork;
use raft_transport::Transport;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::config::NodeConfig;
use crate::error::{ClusterError, Result};
use crate::{GroupId, NodeId, METADATA_GROUP};

/// A partition replica hosted on this node.
#[derive(Clone)]
pub(crate) struct LocalPartition {
    pub topic: String,
    pub partition: u32,
    pub reader: PartitionReader,
}

/// State shared by a node's API handle and its background tasks.
pub(crate) struct NodeInner {
    pub config: NodeConfig,
    pub multi: MultiRaft,
    pub engine: LogEngine,
    pub metadata: MetadataReader,
    pub partitions: RwLock<BTreeMap<GroupId, LocalPartition>>,
    /// Keep data in memory only (no partition files).
    pub in_memory: bool,
    pub stop: watch::Sender<bool>,
    /// Produce requests answered, and their total and largest latency (commit and
    /// apply on a quorum, as the caller waits for it).
    pub produce_latency: crate::latency::Latency,
    /// The gRPC transport, to teach it the addresses of nodes that join later.
    pub grpc: GrpcHandle,
}

impl NodeInner {
    pub(crate) fn node_id(&self) -> NodeId {
        self.config.node_id
    }

    pub(crate) fn partition_dir(&self, group: GroupId) -> PathBuf {
        self.config
            .data_dir
            .join("partitions")
            .join(group.to_string())
    }

    /// The metadata group's voters at bootstrap: this node and its configured peers.
    pub(crate) fn initial_voters(&self) -> Vec<NodeId> {
        let mut voters: Vec<NodeId> = self.config.peers.iter().map(|p| p.id).collect();
        voters.push(self.config.node_id);
        voters.sort_unstable();
        voters.dedup();
        voters
    }
}

/// Builds a [`Node`]: production nodes use gRPC and the write-ahead log; tests and
/// embedders can swap in the in-process network and memory.
#[derive(Debug)]
pub struct NodeBuilder {
    config: NodeConfig,
    network: Option<LocalNetwork>,
    in_memory: bool,
}

impl NodeBuilder {
    /// Connect through an in-process network instead of gRPC (every node of the test
    /// cluster must use the same network).
    pub fn local_network(mut self, network: LocalNetwork) -> Self {
        self.network = Some(network);
        self
    }

    /// Keep the log and partitions in memory (nothing survives a restart).
    pub fn in_memory(mut self) -> Self {
        self.in_memory = true;
        self
    }

    /// Starts the node: opens (or recovers) its log, connects to its peers, joins the
    /// metadata group and starts reconciling its partitions. Must run inside a tokio
    /// runtime.
    ///
    /// # Errors
    /// Bad configuration, a data directory or socket that cannot be used, or a log that
    /// cannot be recovered.
    pub async fn start(self) -> Result<Node> {
        let NodeBuilder {
            config,
            network,
            in_memory,
        } = self;
        config.validate()?;
        let in_memory = in_memory || !cfg!(feature = "wal");
        let engine = open_engine(&config, in_memory)?;
        let (transport, grpc) = match network {
            Some(network) => (network.endpoint(config.node_id) as Arc<dyn Transport>, None),
            None => start_grpc(&config).await?,
        };
        let mut multi_config = MultiConfig::new(config.node_id)
            .ticks(config.raft.heartbeat_ticks, config.raft.election_ticks)
            .hibernate_after_ticks(config.raft.hibernate_after_ticks);
        if config.raft.workers > 0 {
            multi_config = multi_config.workers(config.raft.workers);
        }
        let multi = MultiRaft::start(multi_config, engine.clone(), transport)
            .map_err(ClusterError::Replication)?;
        let metadata_machine = if in_memory {
            MetadataStateMachine::new()
        } else {
            MetadataStateMachine::open(config.data_dir.join("metadata"))?
        };
        let metadata = metadata_machine.reader();
        let (stop, _) = watch::channel(false);
        let inner = Arc::new(NodeInner {
            config,
            multi,
            engine,
            metadata,
            partitions: RwLock::new(BTreeMap::new()),
            in_memory,
            stop,
            produce_latency: Default::default(),
            grpc,
        });
        let spec = if inner.config.join {
            GroupSpec::joining(METADATA_GROUP, Box::new(metadata_machine))
        } else {
            GroupSpec::new(
                METADATA_GROUP,
                inner.initial_voters(),
                Box::new(metadata_machine),
            )
        };
        inner
            .multi
            .create_group(spec)
            .await
            .map_err(ClusterError::Replication)?;
        // The lowest initial voter asks for the first election at once; pre-vote keeps
        // this harmless when a leader already exists.
        if !inner.config.join && inner.initial_voters().first() == Some(&inner.node_id()) {
            let _ = inner.multi.campaign(METADATA_GROUP).await;
        }
        let service = start_service(&inner, inner.grpc.is_some()).await?;
        let tasks = [
            tokio::spawn(crate::background::tick(Arc::clone(&inner))),
            tokio::spawn(crate::reconcile::run(Arc::clone(&inner))),
            tokio::spawn(crate::controller::run(Arc::clone(&inner))),
        ]
        .into_iter()
        .chain(service)
        .chain(crate::join::start(&inner))
        .collect();
        tracing::info!(node = inner.node_id(), "node started");
        Ok(Node { inner, tasks })
    }
}

#[cfg(feature = "grpc")]
pub(crate) type GrpcHandle = Option<Arc<raft_transport::grpc::GrpcTransport>>;
#[cfg(not(feature = "grpc"))]
pub(crate) type GrpcHandle = Option<()>;

/// The client gRPC service (and `/metrics` when configured), served by nodes that
/// talk gRPC.
#[cfg(feature = "grpc")]
async fn start_service(inner: &Arc<NodeInner>, enabled: bool) -> Result<Vec<JoinHandle<()>>> {
    if !enabled {
        return Ok(Vec::new());
    }
    let mut tasks = vec![crate::service::serve(Arc::clone(inner)).await?];
    if let Some(address) = inner.config.metrics_addr {
        tasks.push(crate::metrics_http::serve(Arc::clone(inner), address).await?);
    }
    Ok(tasks)
}

#[cfg(not(feature = "grpc"))]
async fn start_service(_inner: &Arc<NodeInner>, _enabled: bool) -> Result<Vec<JoinHandle<()>>> {
    Ok(Vec::new())
}

#[cfg(feature = "grpc")]
async fn start_grpc(config: &NodeConfig) -> Result<(Arc<dyn Transport>, GrpcHandle)> {
    use raft_transport::grpc::{GrpcConfig, GrpcTransport};
    use std::time::Duration;
    let mut grpc_config = GrpcConfig::new(config.node_id, config.cluster_id)
        .heartbeat_interval(Duration::from_millis(config.raft.tick_ms.max(10) * 2))
        .dead_after(Duration::from_millis(
            config.raft.tick_ms.max(10) * config.raft.election_ticks as u64,
        ));
    if let Some(tls) = &config.tls {
        grpc_config = grpc_config.tls(crate::tls::load(tls)?);
    }
    let transport = GrpcTransport::new(grpc_config)?;
    for peer in &config.peers {
        transport.add_peer(peer.id, format!("http://{}", peer.raft_addr))?;
    }
    let listener = tokio::net::TcpListener::bind(config.raft_addr)
        .await
        .map_err(|source| ClusterError::Io {
            path: PathBuf::from(config.raft_addr.to_string()),
            source,
        })?;
    transport.serve(listener)?;
    Ok((
        Arc::clone(&transport) as Arc<dyn Transport>,
        Some(transport),
    ))
}

#[cfg(not(feature = "grpc"))]
async fn start_grpc(_config: &NodeConfig) -> Result<(Arc<dyn Transport>, GrpcHandle)> {
    Err(ClusterError::Config(crate::error::ConfigError::Invalid(
        "built without the `grpc` feature: use NodeBuilder::local_network".to_owned(),
    )))
}

fn open_engine(config: &NodeConfig, in_memory: bool) -> Result<LogEngine> {
    if in_memory {
        return Ok(LogEngine::in_memory());
    }
    #[cfg(feature = "wal")]
    {
        let dir = config.data_dir.join("wal");
        let engine_config = raft_storage::EngineConfig::new(dir)
            .segment_size(config.raft.segment_bytes)
            .max_log_bytes(config.raft.max_log_bytes)
            .recycle_segments(config.raft.recycle_segments)
            .prefill_segments(config.raft.prefill_segments);
        Ok(LogEngine::open(engine_config)?)
    }
    #[cfg(not(feature = "wal"))]
    {
        let _ = config;
        Ok(LogEngine::in_memory())
    }
}

/// One running node. Dropping it without [`Node::shutdown`] stops it abruptly (as a
/// crash would, minus the process exit).
pub struct Node {
    inner: Arc<NodeInner>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.inner.node_id())
            .finish_non_exhaustive()
    }
}

impl Node {
    /// A builder for a node with `config`.
    pub fn builder(config: NodeConfig) -> NodeBuilder {
        NodeBuilder {
            config,
            network: None,
            in_memory: false,
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.inner.node_id()
    }

    /// The API other Chronik crates call, served by this node.
    pub fn cluster(&self) -> Cluster {
        Cluster::new(Arc::clone(&self.inner))
    }

    /// Stops taking work, stops the background tasks and the scheduler (which answers
    /// waiting callers), closes the transport's streams. Everything acknowledged is
    /// already durable: each acknowledgement waited for a synced write.
    pub async fn shutdown(mut self) {
        let _ = self.inner.stop.send(true);
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        let multi = self.inner.multi.clone();
        let _ = tokio::task::spawn_blocking(move || multi.shutdown()).await;
        #[cfg(feature = "grpc")]
        if let Some(grpc) = &self.inner.grpc {
            grpc.shutdown().await;
        }
        tracing::info!(node = self.inner.node_id(), "node stopped");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
