//! Cross-crate tests of chronik-cluster: a checker of produce/fetch histories, a
//! deterministic simulation of whole clusters ([`sim`], run by `tests/sim.rs`), and
//! the fault-injection tests on real threads (`tests/faults`).
//!
//! [`history`] records what clients did and saw, then checks it against the final
//! log of every replica: no acknowledged record lost, moved or duplicated, offsets
//! contiguous, every fetch a slice of the one final log.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use chronik_cluster_tests::history::{Batch, History, PartitionId, ReplicaLog};
//!
//! let p = PartitionId::new("events", 0);
//! let mut history = History::new();
//! let op = history.produce_invoked(p.clone(), vec![Bytes::from("a"), Bytes::from("b")]);
//! history.acknowledged(op, 0, 1);
//! let log = ReplicaLog {
//!     partition: p.clone(),
//!     replica: 1,
//!     log_start_offset: 0,
//!     high_watermark: 2,
//!     batches: vec![Batch { base_offset: 0, last_offset: 1, records: vec!["a".into(), "b".into()] }],
//! };
//! assert!(history.check(&[log.clone()]).is_ok());
//!
//! // The same log without "b": the acknowledged record is lost.
//! let lost = ReplicaLog {
//!     high_watermark: 1,
//!     batches: vec![Batch { base_offset: 0, last_offset: 0, records: vec!["a".into()] }],
//!     ..log
//! };
//! assert!(!history.check(&[lost]).is_ok());
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod history;
pub mod sim;
