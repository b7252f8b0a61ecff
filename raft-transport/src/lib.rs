//! The transport between nodes of a Multi-Raft cluster: a pluggable
//! `Transport` trait, a tonic gRPC implementation and an in-process network
//! that injects faults for tests. (Under construction: see the raft-transport issue.)
#![deny(missing_docs)]
