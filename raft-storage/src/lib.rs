//! One write-ahead log per node, shared by every raft group, backing
//! raft-rs's `Storage` trait. (Under construction: see the raft-storage issue.)
#![deny(missing_docs)]
