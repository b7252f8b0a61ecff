//! The tonic gRPC transport (feature `grpc`).
//!
//! One long-lived stream per ordered pair of nodes carries every batch: a
//! writer task per peer drains the peer's bounded queue, coalescing queued
//! batches into frames up to the maximum frame size, sends a heartbeat when
//! the link is idle, and reconnects with exponential backoff and jitter.
//! Every frame carries the cluster id, the sender and the receiver; the
//! server rejects (and counts) frames from another cluster, from unknown
//! senders, to another node, oversized or malformed ones, and never panics.
//! Snapshots use one client-streaming call each, paced by HTTP/2 flow
//! control and a small chunk window. Mutual TLS (feature `tls`) is optional.
//!
//! The server runs on a listener the caller provides, so tests bind
//! `127.0.0.1:0`:
//!
//! ```no_run
//! # async fn run() -> Result<(), raft_transport::TransportError> {
//! use raft_transport::grpc::{GrpcConfig, GrpcTransport};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let transport = GrpcTransport::new(GrpcConfig::new(1, 0xC1))?;
//! transport.add_peer(2, "127.0.0.1:7002")?;
//! transport.serve(listener)?;
//! // ... hand `transport` to the scheduler as Arc<dyn Transport> ...
//! transport.shutdown().await;
//! # Ok(()) }
//! ```

mod config;
mod connector;
mod inner;
mod peer;
mod server;
mod snapshot;
#[cfg(feature = "tls")]
mod tls;
mod transport;
mod writer;

pub use config::{GrpcConfig, TlsConfig};
pub use connector::{Connector, Io};
pub use transport::GrpcTransport;

/// The wire format (generated from `proto/transport.proto`): exposed so
/// tests and benchmarks can speak raw frames.
#[allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]
pub mod proto {
    tonic::include_proto!("chronik.raft.transport.v1");
}

use tonic::Status;

use crate::{NodeId, TransportError};

/// The status a rejected sender gets for `error`.
pub(crate) fn to_status(error: &TransportError) -> Status {
    let message = error.to_string();
    match error {
        TransportError::ClusterMismatch { .. } => Status::failed_precondition(message),
        TransportError::UnknownSender { .. } | TransportError::WrongDestination { .. } => {
            Status::permission_denied(message)
        }
        TransportError::FrameTooLarge { .. } => Status::out_of_range(message),
        TransportError::Malformed { .. } => Status::invalid_argument(message),
        TransportError::SnapshotRejected { .. } | TransportError::Closed => {
            Status::unavailable(message)
        }
        _ => Status::internal(message),
    }
}

/// The typed error for a status received from `peer`.
pub(crate) fn status_error(peer: NodeId, status: &Status) -> TransportError {
    match status.code() {
        tonic::Code::Unavailable => TransportError::Unreachable { to: peer },
        tonic::Code::DeadlineExceeded => TransportError::Timeout { to: peer },
        tonic::Code::Aborted => TransportError::Remote {
            peer,
            reason: status.message().to_owned(),
        },
        tonic::Code::Cancelled => TransportError::Closed,
        code => TransportError::Rpc {
            peer,
            code: code as i32,
            message: status.message().to_owned(),
        },
    }
}

/// The typed error for a failed connection to `peer`.
pub(crate) fn transport_error(peer: NodeId, error: &tonic::transport::Error) -> TransportError {
    TransportError::Rpc {
        peer,
        code: tonic::Code::Unavailable as i32,
        message: error_chain(error),
    }
}

/// An error and its sources on one line.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    // Bounded: error chains are short, and capped at 16 links.
    for _ in 0..16 {
        let Some(cause) = source else { break };
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
