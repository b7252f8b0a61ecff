//! Chronik's clustering layer: replicated Kafka topic-partitions, one raft
//! group each, on a Multi-Raft scheduler. (Under construction: see the
//! chronik-cluster issue.)
#![deny(missing_docs)]
