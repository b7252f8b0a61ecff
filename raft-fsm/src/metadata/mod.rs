//! The metadata state machine: the cluster catalogue.

mod apply;
mod catalog;
mod command;
mod machine;

pub use catalog::{
    Catalog, CommittedOffset, GroupOffsets, NodeInfo, PartitionInfo, TopicInfo, TopicOffsets,
};
pub use command::{
    decode_metadata_response, AlterReplicas, CommitOffsets, CreateTopic, DeleteTopic,
    MetadataCommand, MetadataErrorWire, MetadataOp, MetadataResponse, OffsetCommit, UpdateConfigs,
    METADATA_COMMAND_VERSION,
};
pub use machine::{MetadataReader, MetadataStateMachine};
