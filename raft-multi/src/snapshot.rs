//! Snapshot streams: a leader's state machine snapshot sent in chunks through the
//! transport, and its restore on a follower, off the worker thread.

use bytes::Bytes;
use raft::eraftpb::Message;
use raft_fsm::{FsmError, SnapshotMeta, SnapshotSource, StateMachine};
use raft_transport::SnapshotChunks;
use tokio::sync::mpsc;

use crate::command::Reply;

/// Adapts a state machine's snapshot source to the transport's chunk source.
pub(crate) struct FsmChunks(pub Box<dyn SnapshotSource>);

impl SnapshotChunks for FsmChunks {
    fn next_chunk(&mut self) -> std::io::Result<Option<Bytes>> {
        self.0.next_chunk().map_err(std::io::Error::other)
    }
}

/// The outcome of a restore, handed back to the worker that owns the group.
pub(crate) struct Restored {
    pub fsm: Box<dyn StateMachine>,
    pub outcome: Result<(), FsmError>,
    pub message: Box<Message>,
    pub reply: Reply<()>,
}

/// Restores `fsm` from the chunks arriving on `chunks` (pumped by the transport's
/// handler), then makes the restored state durable. Runs on its own thread: a
/// snapshot may take long, and the worker must keep driving its other groups.
pub(crate) fn restore(
    fsm: Box<dyn StateMachine>,
    meta: SnapshotMeta,
    mut chunks: mpsc::Receiver<Result<Bytes, String>>,
) -> (Box<dyn StateMachine>, Result<(), FsmError>) {
    restore_from(fsm, meta, std::iter::from_fn(|| chunks.blocking_recv()))
}

/// Restores `fsm` from chunks already at hand (or pulled as the iterator goes), then
/// flushes it.
pub(crate) fn restore_from(
    mut fsm: Box<dyn StateMachine>,
    meta: SnapshotMeta,
    chunks: impl Iterator<Item = Result<Bytes, String>>,
) -> (Box<dyn StateMachine>, Result<(), FsmError>) {
    let mut iter = chunks.map(|item| {
        item.map_err(|reason| FsmError::Io {
            path: "<snapshot stream>".into(),
            source: std::io::Error::other(reason),
        })
    });
    let outcome = fsm
        .restore(meta, &mut iter)
        .and_then(|()| fsm.flush().map(|_| ()));
    (fsm, outcome)
}
