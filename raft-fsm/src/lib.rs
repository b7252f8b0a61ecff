//! The state machines applied by Chronik's raft groups.
//!
//! Every topic-partition of Chronik is its own raft group, and the cluster
//! catalogue is one more. This crate holds what those groups *apply*:
//!
//! - [`StateMachine`]: the trait the scheduler (raft-multi) drives. It
//!   applies every committed entry strictly in order and returns one
//!   response per entry, reports the applied index that survives a crash
//!   ([`StateMachine::durable_index`], the point up to which the raft log may
//!   be compacted), streams a consistent snapshot in chunks while apply goes
//!   on, and restores from one.
//! - [`PartitionStateMachine`]: a Kafka partition. Offsets are assigned at
//!   apply time (never on the leader before consensus), the high watermark
//!   is the next offset, the leader epoch is the raft term, idempotent
//!   producers are deduplicated on every replica, and applied batches go to
//!   the partition's own segment files, synced lazily by
//!   [`StateMachine::flush`]. Reads go through a [`PartitionReader`].
//! - [`MetadataStateMachine`]: the catalogue (nodes, topics, partitions with
//!   their raft group and replicas, consumer offsets), read through a
//!   [`MetadataReader`].
//!
//! Both are deterministic: the same entries give the same state, the same
//! responses and the same snapshot bytes on every replica (no clock, no
//! randomness, `BTreeMap` order). Command-level rejections (Kafka errors such
//! as `OutOfOrderSequence` or `TopicAlreadyExists`) are encoded in the
//! response; an `Err` from [`StateMachine::apply`] is fatal for the group.
//!
//! This crate depends on no other crate of the workspace and not on `raft`:
//! the scheduler translates raft entries into [`LogEntry`].
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use raft_fsm::{decode_append_response, collect_chunks, LogEntry, PartitionCommand};
//! use raft_fsm::{PartitionConfig, PartitionStateMachine, ProducerInfo, StateMachine};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let mut leader = PartitionStateMachine::open(dir.path(), PartitionConfig::default())?;
//! leader.apply(&LogEntry::empty(1, 1))?; // a new leader's entry: epoch 1
//!
//! // An idempotent producer's batch of 3 records, and its retry.
//! let producer = ProducerInfo { producer_id: 7, producer_epoch: 0, base_sequence: 0 };
//! let command = PartitionCommand::append_idempotent(Bytes::from_static(b"kafka batch"), 3, 1_000, 1_000, producer);
//! let first = decode_append_response(&leader.apply(&LogEntry::normal(2, 1, &command.encode()))?)?;
//! let retry = decode_append_response(&leader.apply(&LogEntry::normal(3, 1, &command.encode()))?)?;
//! assert_eq!((first.base_offset, retry.base_offset, retry.duplicate), (0, 0, true));
//!
//! // Reads never pass the high watermark.
//! let reader = leader.reader();
//! assert_eq!(reader.high_watermark(), 3);
//! assert_eq!(reader.fetch(0, 1 << 20)?.batches.len(), 1);
//!
//! // Lazy durability: the raft log may be compacted up to the durable index.
//! assert_eq!(leader.durable_index(), 0);
//! assert_eq!(leader.flush()?, 3);
//!
//! // A follower catches up from a snapshot streamed in chunks.
//! let mut source = leader.snapshot()?;
//! let meta = source.meta();
//! let chunks = collect_chunks(source.as_mut())?;
//! let mut follower = PartitionStateMachine::in_memory(PartitionConfig::default());
//! follower.restore(meta, &mut chunks.into_iter().map(Ok))?;
//! assert_eq!(follower.reader().fetch(0, 1 << 20)?, reader.fetch(0, 1 << 20)?);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod entry;
mod error;
pub mod metadata;
pub mod partition;
mod state_machine;

pub use entry::{EntryKind, GroupId, LogEntry, NodeId, SnapshotMeta};
pub use error::{
    CorruptReason, CorruptionKind, FsmError, InvalidRecordReason, MetadataError, PartitionError,
    Result,
};
pub use metadata::*;
pub use partition::*;
pub use state_machine::{collect_chunks, MemorySnapshot, SnapshotSource, StateMachine};

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send + 'static>() {}

    #[test]
    fn handles_cross_threads_and_machines_are_boxable() {
        assert_send_sync::<PartitionReader>();
        assert_send_sync::<MetadataReader>();
        assert_send::<PartitionSnapshot>();
        let machines: Vec<Box<dyn StateMachine>> = vec![
            Box::new(PartitionStateMachine::in_memory(PartitionConfig::default())),
            Box::new(MetadataStateMachine::new()),
        ];
        assert!(machines.iter().all(|m| m.applied_index() == 0));
    }
}
