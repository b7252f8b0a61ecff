//! The `Transport` trait the scheduler sends through and the
//! `MessageHandler` trait it receives with.

use std::sync::Arc;

use crate::{
    GroupMessage, IncomingSnapshot, NodeId, OutgoingSnapshot, PeerState, SnapshotDone,
    TransportError, TransportStats,
};

/// Sends raft traffic of many groups to other nodes. Object-safe: used as
/// `Arc<dyn Transport>`.
///
/// # Correctness
/// Raft tolerates loss, duplication and reordering, so the transport may
/// drop (it counts every drop); it never blocks the caller on the network.
/// Batches to one peer are delivered in the order they were sent, unless a
/// fault injector reorders them on purpose.
pub trait Transport: Send + Sync + 'static {
    /// This node's id.
    fn local_id(&self) -> NodeId;

    /// Registers the inbound handler; the scheduler does this once at start.
    /// Inbound batches that arrive before are dropped and counted
    /// ([`RejectStats::no_handler`](crate::RejectStats::no_handler)).
    fn set_handler(&self, handler: Arc<dyn MessageHandler>);

    /// Queues one batch (messages of many groups) for node `to`.
    ///
    /// Never waits on the network and never blocks: the per-peer queue is
    /// bounded.
    ///
    /// # Errors
    /// - [`TransportError::QueueFull`]: the queue is full; the batch was
    ///   dropped and counted. Call `report_unreachable` for its groups.
    /// - [`TransportError::Unreachable`]: `to` is unknown or currently
    ///   unreachable; nothing was queued.
    /// - [`TransportError::FrameTooLarge`]: the batch alone exceeds the
    ///   maximum frame size.
    /// - [`TransportError::Closed`]: the transport was shut down.
    ///
    /// # Panics
    /// Never, whatever the input.
    fn send(&self, to: NodeId, batch: Vec<GroupMessage>) -> Result<(), TransportError>;

    /// Streams a snapshot to `to` chunk by chunk with flow control (memory
    /// bounded whatever its size). Returns at once; `done` is called exactly
    /// once with the outcome: `Ok` when the receiver's handler accepted it,
    /// [`TransportError::Remote`] when it refused, another error when the
    /// transfer failed.
    ///
    /// # Correctness
    /// `done` may run on another thread, and may run before this call
    /// returns; it must not take a lock the caller holds while calling.
    fn send_snapshot(&self, to: NodeId, snapshot: OutgoingSnapshot, done: SnapshotDone);

    /// A copy of the counters.
    fn stats(&self) -> TransportStats;
}

/// Receives inbound traffic; implemented by the scheduler.
///
/// # Correctness
/// `on_messages` and `on_peer_state` must be quick and must not block (push
/// into mailboxes): they run on the transport's delivery path, and a slow
/// callback stalls every later frame from that peer.
#[async_trait::async_trait]
pub trait MessageHandler: Send + Sync + 'static {
    /// A batch from node `from`, in the order that node sent them.
    fn on_messages(&self, from: NodeId, batch: Vec<GroupMessage>);

    /// Node-level liveness changed for `peer`.
    fn on_peer_state(&self, peer: NodeId, state: PeerState);

    /// A snapshot arrives: consume its chunks.
    ///
    /// # Errors
    /// `Err(reason)` refuses it: the sender's `done` gets
    /// [`TransportError::Remote`] with that reason. `Ok` gives it `Ok`.
    async fn on_snapshot(&self, snapshot: IncomingSnapshot) -> Result<(), String>;
}
