//! The values that cross the transport: messages, peer states and snapshots.

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::{GroupId, NodeId, TransportError};

/// One raft message of one group: raft-rs's own protobuf-2 encoded
/// `eraftpb::Message` bytes, opaque to the transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMessage {
    /// The raft group the message belongs to.
    pub group_id: GroupId,
    /// The encoded `eraftpb::Message`.
    pub payload: Bytes,
}

impl GroupMessage {
    /// A message of `group_id` carrying `payload`.
    pub fn new(group_id: GroupId, payload: impl Into<Bytes>) -> Self {
        Self {
            group_id,
            payload: payload.into(),
        }
    }
}

/// Whether a peer node is heard from, as seen by node-level liveness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerState {
    /// The peer was heard from within `dead_after`.
    Reachable,
    /// Nothing was heard from the peer for `dead_after` (or the network is cut).
    Unreachable,
}

/// Called exactly once with the outcome of [`Transport::send_snapshot`](crate::Transport::send_snapshot).
pub type SnapshotDone = Box<dyn FnOnce(Result<(), TransportError>) + Send>;

/// A pull source of snapshot chunks.
///
/// The transport calls it off the async threads (a blocking read from a
/// file is fine), one chunk at a time, and only when the receiver has room:
/// memory stays bounded whatever the snapshot's size.
pub trait SnapshotChunks: Send + 'static {
    /// The next chunk, or `None` at the end.
    ///
    /// # Errors
    /// An I/O error aborts the transfer; the sender's `done` gets
    /// [`TransportError::SnapshotSource`].
    fn next_chunk(&mut self) -> std::io::Result<Option<Bytes>>;
}

impl<I> SnapshotChunks for I
where
    I: Iterator<Item = Bytes> + Send + 'static,
{
    fn next_chunk(&mut self) -> std::io::Result<Option<Bytes>> {
        Ok(self.next())
    }
}

/// A snapshot to stream to one peer.
pub struct OutgoingSnapshot {
    /// The group whose snapshot this is.
    pub group_id: GroupId,
    /// Opaque header (the scheduler puts the encoded raft `MsgSnapshot` here).
    pub header: Bytes,
    /// The data, pulled lazily chunk by chunk.
    pub chunks: Box<dyn SnapshotChunks>,
}

impl std::fmt::Debug for OutgoingSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingSnapshot")
            .field("group_id", &self.group_id)
            .field("header_len", &self.header.len())
            .finish_non_exhaustive()
    }
}

/// What travels from the sending side to an [`IncomingSnapshot`].
#[derive(Debug)]
pub(crate) enum ChunkEvent {
    /// A piece of data.
    Data(Bytes),
    /// The sender reached the end: every chunk was delivered.
    End,
    /// The transfer broke.
    Failed(TransportError),
}

/// The sending half feeding an [`IncomingSnapshot`].
pub(crate) type ChunkSender = mpsc::Sender<ChunkEvent>;

/// A snapshot arriving from a peer, handed to
/// [`MessageHandler::on_snapshot`](crate::MessageHandler::on_snapshot).
/// Chunks are pulled with [`IncomingSnapshot::next_chunk`]; the sender only
/// sends more as they are consumed (flow control).
#[derive(Debug)]
pub struct IncomingSnapshot {
    /// The sending node.
    pub from: NodeId,
    /// The group whose snapshot this is.
    pub group_id: GroupId,
    /// The sender's opaque header.
    pub header: Bytes,
    chunks: mpsc::Receiver<ChunkEvent>,
    finished: bool,
}

impl IncomingSnapshot {
    /// A snapshot whose chunks arrive through a channel holding at most
    /// `capacity` chunks.
    pub(crate) fn channel(
        from: NodeId,
        group_id: GroupId,
        header: Bytes,
        capacity: usize,
    ) -> (Self, ChunkSender) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let snapshot = Self {
            from,
            group_id,
            header,
            chunks: receiver,
            finished: false,
        };
        (snapshot, sender)
    }

    /// The next chunk, `Ok(None)` after the last one.
    ///
    /// # Errors
    /// [`TransportError::Closed`] if the stream broke before its end, or the
    /// error that broke it (for instance the sender's source failed).
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, TransportError> {
        if self.finished {
            return Ok(None);
        }
        match self.chunks.recv().await {
            Some(ChunkEvent::Data(data)) => Ok(Some(data)),
            Some(ChunkEvent::End) => {
                self.finished = true;
                Ok(None)
            }
            Some(ChunkEvent::Failed(error)) => Err(error),
            None => Err(TransportError::Closed),
        }
    }

    /// True once [`next_chunk`](Self::next_chunk) returned `Ok(None)`.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn incoming_snapshot_distinguishes_end_from_a_broken_stream() {
        let (mut complete, sender) = IncomingSnapshot::channel(1, 2, Bytes::new(), 2);
        sender
            .send(ChunkEvent::Data(Bytes::from_static(b"a")))
            .await
            .unwrap();
        sender.send(ChunkEvent::End).await.unwrap();
        assert_eq!(
            complete.next_chunk().await.unwrap(),
            Some(Bytes::from_static(b"a"))
        );
        assert_eq!(complete.next_chunk().await.unwrap(), None);
        assert!(complete.is_finished());
        assert_eq!(complete.next_chunk().await.unwrap(), None);

        let (mut broken, sender) = IncomingSnapshot::channel(1, 2, Bytes::new(), 2);
        sender
            .send(ChunkEvent::Data(Bytes::from_static(b"a")))
            .await
            .unwrap();
        drop(sender);
        assert!(broken.next_chunk().await.unwrap().is_some());
        assert!(matches!(
            broken.next_chunk().await,
            Err(TransportError::Closed)
        ));
    }

    #[test]
    fn iterators_are_chunk_sources() {
        let mut source = vec![Bytes::from_static(b"x")].into_iter();
        // Fully qualified: `Iterator::next_chunk` exists unstably in std.
        let chunk = SnapshotChunks::next_chunk(&mut source).unwrap();
        assert_eq!(chunk, Some(Bytes::from_static(b"x")));
        assert_eq!(SnapshotChunks::next_chunk(&mut source).unwrap(), None);
    }
}
