//! Integration tests of raft-transport: the conformance suite on both
//! implementations, and each implementation's own checks.

mod local;
mod suite;
mod support;

#[cfg(feature = "grpc")]
mod duplex;
#[cfg(feature = "grpc")]
mod grpc;
#[cfg(feature = "grpc")]
mod grpc_rejects;
#[cfg(feature = "tls")]
mod tls;
