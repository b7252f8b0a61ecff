//! One remote node as seen by a [`GrpcTransport`](super::GrpcTransport):
//! its bounded queue, its link state, its liveness and its counters.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use super::connector::Connector;
use crate::stats::{add, PeerCounters};
use crate::{GroupMessage, NodeId, PeerState, TransportError};

/// Bytes a group message may take on the wire beyond its payload (tags,
/// lengths, group id): an upper bound used to keep frames under the limit.
pub(crate) const MESSAGE_OVERHEAD: usize = 24;
/// Bytes a frame may take beyond its messages (cluster id, from, to).
pub(crate) const FRAME_OVERHEAD: usize = 64;

/// The state of the outbound stream to a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Link {
    /// First connection in progress: batches are queued.
    Connecting = 0,
    /// The stream is up.
    Connected = 1,
    /// The last attempt failed or the stream broke: `send` answers `Unreachable`.
    Down = 2,
}

const LIVENESS_UNKNOWN: u8 = 0;
const LIVENESS_REACHABLE: u8 = 1;
const LIVENESS_UNREACHABLE: u8 = 2;

/// A remote node.
pub(crate) struct Peer {
    pub(crate) id: NodeId,
    pub(crate) uri: String,
    /// Opens the byte stream instead of TCP when set.
    pub(crate) connector: Option<Arc<dyn Connector>>,
    queue: mpsc::Sender<Vec<GroupMessage>>,
    pub(crate) counters: PeerCounters,
    link: AtomicU8,
    /// Milliseconds since the transport's epoch when the peer was last heard
    /// from (or added).
    last_heard: AtomicU64,
    liveness: AtomicU8,
    /// The connected channel, shared with snapshot transfers.
    pub(crate) channel: Mutex<Option<Channel>>,
    pub(crate) writer: Mutex<Option<JoinHandle<()>>>,
}

impl Peer {
    /// A peer at `uri`; returns the receiving end of its queue for the writer.
    pub(crate) fn new(
        id: NodeId,
        uri: String,
        connector: Option<Arc<dyn Connector>>,
        capacity: usize,
        now_ms: u64,
    ) -> (Self, mpsc::Receiver<Vec<GroupMessage>>) {
        let (queue, receiver) = mpsc::channel(capacity.max(1));
        let peer = Self {
            id,
            uri,
            connector,
            queue,
            counters: PeerCounters::default(),
            link: AtomicU8::new(Link::Connecting as u8),
            last_heard: AtomicU64::new(now_ms),
            liveness: AtomicU8::new(LIVENESS_UNKNOWN),
            channel: Mutex::new(None),
            writer: Mutex::new(None),
        };
        (peer, receiver)
    }

    pub(crate) fn link(&self) -> Link {
        match self.link.load(Ordering::Acquire) {
            0 => Link::Connecting,
            1 => Link::Connected,
            _ => Link::Down,
        }
    }

    pub(crate) fn set_link(&self, link: Link) {
        self.link.store(link as u8, Ordering::Release);
    }

    /// Queues a batch without waiting.
    pub(crate) fn enqueue(&self, batch: Vec<GroupMessage>) -> Result<(), TransportError> {
        let to = self.id;
        let messages = batch.len() as u64;
        if self.link() == Link::Down {
            add(&self.counters.batches_dropped, 1);
            add(&self.counters.messages_dropped, messages);
            return Err(TransportError::Unreachable { to });
        }
        let bytes: u64 = batch.iter().map(|m| m.payload.len() as u64).sum();
        match self.queue.try_send(batch) {
            Ok(()) => {
                add(&self.counters.batches_sent, 1);
                add(&self.counters.messages_sent, messages);
                add(&self.counters.bytes_sent, bytes);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                add(&self.counters.batches_dropped, 1);
                add(&self.counters.messages_dropped, messages);
                Err(TransportError::QueueFull { to })
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                add(&self.counters.batches_dropped, 1);
                add(&self.counters.messages_dropped, messages);
                Err(TransportError::Closed)
            }
        }
    }

    /// Records that the peer was heard from; `Some(Reachable)` if that is news.
    pub(crate) fn heard(&self, now_ms: u64) -> Option<PeerState> {
        self.last_heard.fetch_max(now_ms, Ordering::AcqRel);
        let previous = self.liveness.swap(LIVENESS_REACHABLE, Ordering::AcqRel);
        (previous != LIVENESS_REACHABLE).then_some(PeerState::Reachable)
    }

    /// `Some(Unreachable)` if the peer just crossed `dead_ms` of silence.
    pub(crate) fn check(&self, now_ms: u64, dead_ms: u64) -> Option<PeerState> {
        let silent = now_ms.saturating_sub(self.last_heard.load(Ordering::Acquire));
        if silent < dead_ms {
            return None;
        }
        let previous = self.liveness.swap(LIVENESS_UNREACHABLE, Ordering::AcqRel);
        (previous != LIVENESS_UNREACHABLE).then_some(PeerState::Unreachable)
    }

    /// Stops the writer task.
    pub(crate) fn stop(&self) {
        if let Some(writer) = self.writer.lock().take() {
            writer.abort();
        }
        self.channel.lock().take();
    }
}

/// An upper bound of the wire size of a batch's messages.
pub(crate) fn batch_size(batch: &[GroupMessage]) -> usize {
    batch
        .iter()
        .map(|message| message.payload.len() + MESSAGE_OVERHEAD)
        .sum()
}
