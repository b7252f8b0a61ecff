//! The Multi-Raft scheduler: a small pool of workers drives every raft group of a
//! node, on raft-rs `RawNode`s.
//!
//! A node hosts hundreds to tens of thousands of groups (one per Kafka partition).
//! Running each as its own task with its own timer, storage and connections does not
//! scale; here the groups of a node share:
//!
//! - **workers**: a fixed pool of threads (default: one per core); each group belongs
//!   to one worker, chosen from its id, and is only ever touched by it;
//! - **one write per round**: in each round a worker gathers the `Ready` of every
//!   group that has one and writes all their entries and hard states in ONE
//!   [`raft_storage::LogBatch`] with one sync (concurrent workers merge further in the
//!   engine's group commit);
//! - **pipelined syncs**: with a durable log the sync runs on the worker's sync thread
//!   while the worker goes on with the next round; one sync covers every write made
//!   while the previous one ran;
//! - **one frame per peer per round**: messages for the same node leave together;
//! - **hibernation**: a leader whose group is idle and whose followers are caught up
//!   puts the group to sleep on every replica (no ticks, no heartbeats); a message, a
//!   proposal or a read wakes it, and so does the transport's node-level liveness signal
//!   when the leader's node is lost.
//!
//! Each round follows raft-rs's documented order: leaders send `messages()` at once;
//! snapshot, entries and hard state are written (readable at once); a ready that must
//! be durable is handed back with `advance_append_async` and its `persisted_messages()`
//! wait until the sync thread reports the write durable (`on_persist_ready`); any other
//! ready is finished with `advance_append` and its `LightReady`. Committed entries are
//! applied in order (raft hands out only locally durable ones) and `advance_apply`
//! follows. Nothing is answered before the write holding it is durable.
//!
//! The scheduler does no I/O of its own: storage and network come through
//! [`raft_storage::LogEngine`] and [`raft_transport::Transport`], and time through
//! [`MultiRaft::tick`].
//!
//! # Example
//!
//! A one-node group on the in-memory engine and the in-process network:
//!
//! ```
//! # use std::sync::Arc;
//! # use raft_multi::{GroupSpec, MultiConfig, MultiRaft};
//! # use raft_storage::LogEngine;
//! # use raft_transport::local::LocalNetwork;
//! # use raft_multi::testing::MemoryStateMachine;
//! # futures::executor::block_on(async {
//! let network = LocalNetwork::new(7);
//! let multi = MultiRaft::start(MultiConfig::new(1).workers(1), LogEngine::in_memory(), network.endpoint(1))?;
//! multi.create_group(GroupSpec::new(10, vec![1], Box::new(MemoryStateMachine::new()))).await?;
//! multi.campaign(10).await?;
//! let response = multi.propose(10, b"hello".to_vec()).await?;
//! // The machine answers with the raft index the command was applied at.
//! assert!(MemoryStateMachine::decode_response(&response).is_some());
//! multi.shutdown();
//! # Ok::<(), raft_multi::Error>(())
//! # }).unwrap();
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod command;
mod config;
mod driver;
mod error;
mod handler;
mod leaders;
mod logger;
mod metrics;
mod multi;
mod outbox;
mod peer;
mod router;
mod snapshot;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
mod types;
mod worker;

pub use config::MultiConfig;
pub use driver::Driver;
pub use error::{Error, Result, SnapshotRejection};
pub use logger::raft_logger;
pub use metrics::MultiMetrics;
pub use multi::MultiRaft;
pub use types::{GroupSpec, GroupStatus, MembershipChange, Role};

/// Identifies a raft group (one per partition, plus the metadata group).
pub type GroupId = u64;
/// Identifies a node of the cluster.
pub use raft_transport::NodeId;
