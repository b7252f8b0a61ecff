//! The in-process network: any number of nodes in one process, with faults
//! (partitions, also one-way; isolation; drop, delay, duplicate, reorder)
//! driven by one seeded RNG so a failing run replays.
//!
//! ```
//! use std::sync::Arc;
//! use raft_transport::local::LocalNetwork;
//! use raft_transport::{GroupMessage, Transport};
//!
//! let net = LocalNetwork::new(7);
//! let (a, b) = (net.endpoint(1), net.endpoint(2));
//! a.send(2, vec![GroupMessage::new(10, &b"raft bytes"[..])]).unwrap();
//! net.partition(&[1], &[2]);
//! assert!(a.send(2, vec![GroupMessage::new(10, &b"lost"[..])]).is_err());
//! net.heal();
//! net.step();
//! assert_eq!(net.pair_stats(1, 2).frames_dropped, 1);
//! # let _ = b;
//! ```

mod endpoint;
mod network;
mod node;
mod pump;
mod snapshot;
mod state;

pub use endpoint::LocalTransport;
pub use network::{LocalNetwork, LocalNetworkBuilder};
pub use pump::PumpHandle;
pub use state::PairStats;
