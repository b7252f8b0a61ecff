//! The transport between the nodes of a Multi-Raft cluster.
//!
//! Thousands of raft groups share one link per pair of nodes: the scheduler
//! hands [`Transport::send`] one batch of messages of many groups for one
//! node per round, and the transport queues it on a bounded per-peer queue
//! without ever blocking (a full queue drops and counts; raft tolerates
//! loss). Inbound batches go to the [`MessageHandler`] the scheduler
//! registers, in order per sending peer. Snapshots stream in chunks with
//! flow control ([`Transport::send_snapshot`]). One heartbeat per node pair
//! (not per group) drives node-level liveness
//! ([`MessageHandler::on_peer_state`]), so idle groups can stay silent.
//!
//! Two implementations:
//! - [`grpc::GrpcTransport`] (feature `grpc`): tonic, one long-lived stream
//!   per peer pair, reconnect with backoff and jitter, cluster-id check on
//!   every frame, optional mutual TLS (feature `tls`);
//! - [`local::LocalNetwork`]: in-process, seeded faults, manual or automatic
//!   delivery, for the tests of every crate.
//!
//! Raft messages travel as raft-rs's own encoded `eraftpb::Message` bytes,
//! opaque here ([`GroupMessage::payload`]).
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use parking_lot::Mutex;
//! use raft_transport::local::LocalNetwork;
//! use raft_transport::{GroupMessage, IncomingSnapshot, MessageHandler, NodeId, PeerState, Transport};
//!
//! #[derive(Default)]
//! struct Inbox(Mutex<Vec<(NodeId, GroupMessage)>>);
//!
//! #[async_trait::async_trait]
//! impl MessageHandler for Inbox {
//!     fn on_messages(&self, from: NodeId, batch: Vec<GroupMessage>) {
//!         self.0.lock().extend(batch.into_iter().map(|m| (from, m)));
//!     }
//!     fn on_peer_state(&self, _peer: NodeId, _state: PeerState) {}
//!     async fn on_snapshot(&self, _snapshot: IncomingSnapshot) -> Result<(), String> {
//!         Err("no snapshots here".into())
//!     }
//! }
//!
//! let net = LocalNetwork::new(42); // manual delivery: reproducible
//! let (a, b) = (net.endpoint(1), net.endpoint(2));
//! let inbox = Arc::new(Inbox::default());
//! b.set_handler(inbox.clone());
//! let transport: Arc<dyn Transport> = a;
//! transport
//!     .send(2, vec![GroupMessage::new(7, &b"m1"[..]), GroupMessage::new(8, &b"m2"[..])])
//!     .unwrap();
//! assert_eq!(net.step(), 1); // one frame for both groups
//! assert_eq!(inbox.0.lock().len(), 2);
//! assert_eq!(net.pair_stats(1, 2).frames_delivered, 1);
//! ```
//!
//! # Feature flags
//! - `grpc` (default): the tonic gRPC transport. Without it the crate builds
//!   the traits and the in-process network only.
//! - `tls` (default, implies `grpc`): mutual TLS between nodes with rustls;
//!   off at run time unless configured.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![deny(missing_docs)]

mod error;
mod message;
mod stats;
mod transport;

pub mod local;

#[cfg(feature = "grpc")]
pub mod grpc;

pub use error::{Error, MalformedKind, RejectReason, Result, TransportError};
pub use message::{
    GroupMessage, IncomingSnapshot, OutgoingSnapshot, PeerState, SnapshotChunks, SnapshotDone,
};
pub use stats::{PeerStats, RejectStats, TransportStats};
pub use transport::{MessageHandler, Transport};

/// A node's id (as in raft-rs).
pub type NodeId = u64;
/// A raft group's id.
pub type GroupId = u64;
