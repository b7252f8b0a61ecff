//! The Multi-Raft scheduler: a small pool of workers drives every raft group
//! of a node, with one storage sync per round, one transport frame per peer
//! per round and hibernation of idle groups. (Under construction: see the
//! raft-multi issue.)
#![deny(missing_docs)]
