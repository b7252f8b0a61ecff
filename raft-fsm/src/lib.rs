//! The state machines applied by Chronik's raft groups: a Kafka partition and
//! the cluster metadata catalogue. (Under construction: see the raft-fsm issue.)
#![deny(missing_docs)]
