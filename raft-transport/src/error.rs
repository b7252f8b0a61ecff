//! The crate's one error type.

use crate::{GroupId, NodeId};

/// Why a frame or a connection was rejected on receipt. Each reason has its
/// own counter in [`RejectStats`](crate::RejectStats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// The frame named another cluster.
    ClusterMismatch,
    /// The sender is not a known peer.
    UnknownSender,
    /// The frame was addressed to another node.
    WrongDestination,
    /// The frame exceeded the maximum frame size.
    FrameTooLarge,
    /// The frame could not be decoded or broke the protocol.
    Malformed,
    /// The frame arrived before a handler was registered.
    NoHandler,
}

/// What was wrong with a malformed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MalformedKind {
    /// The bytes did not decode as the expected protobuf message.
    Decode,
    /// A snapshot stream did not start with its header.
    MissingSnapshotHeader,
    /// A snapshot stream carried a second header.
    DuplicateSnapshotHeader,
    /// A snapshot's last chunk counted other bytes than arrived.
    SnapshotLength,
}

/// Errors of the transport.
///
/// The variants say what the caller should do: `Unreachable`, `QueueFull`,
/// `Timeout` and `Closed` mean "report the peer unreachable and retry
/// later"; `Remote` means the peer answered and refused; the rejections
/// (`ClusterMismatch`, `UnknownSender`, ...) describe bad input that was
/// counted and dropped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The peer is unknown or currently unreachable; nothing was queued.
    #[error("node {to} is unreachable")]
    Unreachable {
        /// The destination.
        to: NodeId,
    },
    /// The bounded queue to the peer is full; the batch was dropped and counted.
    #[error("queue to node {to} is full; batch dropped")]
    QueueFull {
        /// The destination.
        to: NodeId,
    },
    /// The transport (or the stream) was shut down.
    #[error("transport closed")]
    Closed,
    /// An operation with the peer did not finish in time.
    #[error("timed out talking to node {to}")]
    Timeout {
        /// The peer.
        to: NodeId,
    },
    /// The peer answered and refused (for a snapshot: its handler's reason).
    #[error("node {peer} refused: {reason}")]
    Remote {
        /// The peer that refused.
        peer: NodeId,
        /// The peer's reason, as it gave it.
        reason: String,
    },
    /// A frame named another cluster.
    #[error("cluster id mismatch: expected {expected}, got {got}")]
    ClusterMismatch {
        /// Our cluster id.
        expected: u64,
        /// The frame's cluster id.
        got: u64,
    },
    /// A frame came from a node that is not a known peer.
    #[error("frame from unknown node {from}")]
    UnknownSender {
        /// The claimed sender.
        from: NodeId,
    },
    /// A frame was addressed to another node.
    #[error("frame for node {to} arrived at node {local}")]
    WrongDestination {
        /// This node.
        local: NodeId,
        /// The frame's destination.
        to: NodeId,
    },
    /// A frame (or a batch to send) exceeds the maximum frame size.
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Its size in bytes (encoded, or an upper bound when refused on send).
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A frame could not be decoded or broke the protocol.
    #[error("malformed frame from node {from:?}: {kind:?}")]
    Malformed {
        /// The sender when known.
        from: Option<NodeId>,
        /// What was wrong.
        kind: MalformedKind,
    },
    /// A snapshot of a group was refused before it started (e.g. no handler).
    #[error("snapshot of group {group_id} refused: {reason:?}")]
    SnapshotRejected {
        /// The group.
        group_id: GroupId,
        /// Why.
        reason: RejectReason,
    },
    /// The local snapshot source failed to produce a chunk.
    #[error("reading snapshot chunk: {0}")]
    SnapshotSource(#[source] std::io::Error),
    /// An invalid configuration value.
    #[error("invalid configuration: {field}: {problem}")]
    Config {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A peer address that does not parse as a URI.
    #[error("invalid address for node {node}: {address}")]
    InvalidAddress {
        /// The peer.
        node: NodeId,
        /// The address given.
        address: String,
    },
    /// A transport-level failure talking to a peer (connect, TLS, HTTP/2),
    /// with the gRPC status code and message.
    #[error("rpc to node {peer} failed ({code}): {message}")]
    Rpc {
        /// The peer.
        peer: NodeId,
        /// The gRPC status code as a number (see `tonic::Code`).
        code: i32,
        /// The status message.
        message: String,
    },
    /// A TLS certificate or key could not be used.
    #[error("tls {context}: {detail}")]
    Tls {
        /// What was being set up.
        context: &'static str,
        /// The underlying error, as text.
        detail: String,
    },
    /// The gRPC transport was created outside a tokio runtime.
    #[error("no tokio runtime: create the transport inside one")]
    NoRuntime,
    /// Local I/O (binding a listener, ...).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl TransportError {
    /// True when the caller should treat the peer as unreachable for now
    /// (`report_unreachable`) and retry later.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. }
                | Self::QueueFull { .. }
                | Self::Timeout { .. }
                | Self::Closed
                | Self::Rpc { .. }
        )
    }
}

/// The crate's error type under its conventional name.
pub type Error = TransportError;

/// `Result` with [`TransportError`] as the default error.
pub type Result<T, E = TransportError> = std::result::Result<T, E>;
