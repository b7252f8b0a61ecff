//! Chronik's clustering layer: replicated Kafka topic-partitions, one raft group each,
//! on a Multi-Raft scheduler.
//!
//! A [`Node`] composes the layers: one write-ahead log for every group
//! (`raft-storage`), one connection per peer node (`raft-transport`), a small pool of
//! workers driving every group (`raft-multi`), and the state machines (`raft-fsm`): a
//! Kafka partition per partition group, and the cluster's catalogue in the metadata
//! group (group 0) on the initial voters. The metadata group's leader is the
//! controller: it places new topics' replicas evenly across nodes (rack aware), and
//! every node reconciles its local groups with the catalogue.
//!
//! Other Chronik crates call the [`Cluster`] API of their node: create, delete, list
//! and describe topics; produce (answered only once committed on a quorum and
//! applied); fetch (long-polling up to the high watermark); list offsets; commit
//! consumer offsets; who leads what. Errors carry Kafka's codes
//! ([`ClusterError::kafka_code`]).
//!
//! # Feature flags
//! - `grpc` (default): nodes talk over tonic gRPC, and each node serves the client
//!   gRPC service used by [`client::ChronikClient`] and the CLI.
//! - `wal` (default): the write-ahead log and partition files on disk.
//! - Without them: the in-process network ([`NodeBuilder::local_network`]) and memory.
//! - `test-util`: helpers for in-process test clusters.
//!
//! # Example
//!
//! A one-node cluster in memory on the in-process network:
//!
//! ```
//! use chronik_cluster::prelude::*;
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let network = chronik_cluster::LocalNetwork::new(1);
//! let config = NodeConfig::new(1, "/unused", "127.0.0.1:0".parse()?, "127.0.0.1:0".parse()?);
//! let node = Node::builder(config).local_network(network).in_memory().start().await?;
//! let cluster = node.cluster();
//! cluster.wait_for_controller(std::time::Duration::from_secs(10)).await?;
//! cluster.create_topic(TopicSpec::new("events", 2, 1)).await?;
//! cluster.wait_for_leaders("events", std::time::Duration::from_secs(10)).await?;
//! let produced = cluster.produce(ProduceRequest::new("events", 0, "hello".into(), 1)).await?;
//! assert_eq!(produced.base_offset, 0);
//! node.shutdown().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod api;
mod background;
mod cluster;
mod config;
mod controller;
mod error;
mod join;
mod latency;
mod node;
mod placement;
mod reassign;
mod reconcile;
mod records;
#[cfg(feature = "test-util")]
pub mod testing;
mod wait;

#[cfg(feature = "grpc")]
pub mod client;
#[cfg(feature = "grpc")]
mod metrics_http;
#[cfg(feature = "grpc")]
mod service;
#[cfg(feature = "grpc")]
mod tls;

pub use api::{
    Acks, ClusterStatus, FetchRequest, FetchResponse, LocalPartitionStatus, NodeDescription,
    OffsetQuery, PartitionDescription, PartitionRaftStatus, ProduceRequest, ProduceResponse,
    ProducerIdentity, RecordBatch, ReplicaChange, TopicDescription, TopicSpec,
};
pub use cluster::Cluster;
pub use config::{NodeConfig, PeerConfig, RaftSettings, TlsSettings};
pub use error::{ClusterError, ConfigError, InvalidRequest, Result};
pub use node::{Node, NodeBuilder};
pub use placement::{assign as place_replicas, Candidate};
/// The in-process network, for tests and embedding without gRPC.
pub use raft_transport::local::LocalNetwork;
pub use records::{decode_records, encode_records};

/// Identifies a node.
pub type NodeId = u64;
/// Identifies a raft group.
pub type GroupId = u64;

/// The metadata group: the cluster's catalogue, led by the controller.
pub const METADATA_GROUP: GroupId = 0;

/// The types most users need.
pub mod prelude {
    pub use crate::{
        Acks, Cluster, ClusterError, FetchRequest, Node, NodeConfig, OffsetQuery, ProduceRequest,
        TopicSpec,
    };
}
