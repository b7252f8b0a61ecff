//! The partition state machine: a Kafka partition applied from raft.

mod apply;
mod command;
mod config;
mod epochs;
mod fetch;
mod frame;
mod machine;
mod open;
mod producer;
mod reader;
mod response;
mod segment;
mod snapshot;
pub(crate) mod state;

pub use command::{
    AppendCommand, DeleteRecordsCommand, PartitionCommand, PartitionOp, ProducerInfo,
    RetentionCommand, COMMAND_VERSION,
};
pub use config::PartitionConfig;
pub use epochs::EpochEntry;
pub use fetch::{EpochEndOffset, FetchResult, FetchedBatch, ListedOffset, OffsetSpec};
pub use machine::PartitionStateMachine;
pub use producer::{ProducerBatch, ProducerEntry};
pub use reader::{PartitionReader, PartitionStats};
pub use response::{
    decode_append_response, decode_delete_records_response, decode_response,
    decode_retention_response, AppendResult, DeleteRecordsResult, ErrorResult, PartitionOutcome,
    PartitionResponse, RetentionResult,
};
pub use snapshot::PartitionSnapshot;
pub use state::{PartitionState, SegmentEntry};
