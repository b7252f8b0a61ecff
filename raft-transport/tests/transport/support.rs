//! Test helpers: a recording handler, condition waits with deadlines, and
//! snapshot sources that measure the bytes in flight.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::{Condvar, Mutex};
use raft_transport::{
    GroupMessage, IncomingSnapshot, MessageHandler, NodeId, PeerState, SnapshotChunks, Transport,
    TransportError,
};

/// Everything a node received.
#[derive(Default)]
pub struct Received {
    /// (from, message) in delivery order.
    pub messages: Vec<(NodeId, GroupMessage)>,
    /// Sizes of the delivered batches, in order.
    pub batch_sizes: Vec<usize>,
    /// The thread each batch was delivered on, in order.
    pub delivered_on: Vec<std::thread::ThreadId>,
    /// Liveness changes in order.
    pub peer_states: Vec<(NodeId, PeerState)>,
    /// Snapshots accepted: (from, group, header, bytes).
    pub snapshots: Vec<(NodeId, u64, Bytes, u64)>,
}

/// A handler that records everything, can stall delivery, and consumes
/// snapshots while counting bytes.
#[derive(Default)]
pub struct Recorder {
    pub received: Mutex<Received>,
    stalled: Mutex<bool>,
    unstalled: Condvar,
    /// Snapshot bytes consumed so far (shared with the sender's source).
    pub snapshot_consumed: Arc<AtomicU64>,
    /// When set, snapshots are refused.
    pub refuse_snapshots: AtomicBool,
}

/// Longest a stalled handler blocks, so a broken test cannot hang forever.
const MAX_STALL: Duration = Duration::from_secs(30);

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Blocks deliveries until [`unstall`](Self::unstall).
    pub fn stall(&self) {
        *self.stalled.lock() = true;
    }

    pub fn unstall(&self) {
        *self.stalled.lock() = false;
        self.unstalled.notify_all();
    }

    pub fn message_count(&self) -> usize {
        self.received.lock().messages.len()
    }

    pub fn messages_from(&self, from: NodeId) -> Vec<GroupMessage> {
        let received = self.received.lock();
        received
            .messages
            .iter()
            .filter(|(sender, _)| *sender == from)
            .map(|(_, message)| message.clone())
            .collect()
    }

    pub fn peer_states(&self) -> Vec<(NodeId, PeerState)> {
        self.received.lock().peer_states.clone()
    }

    /// The last state reported for `peer`.
    pub fn last_state(&self, peer: NodeId) -> Option<PeerState> {
        let received = self.received.lock();
        received
            .peer_states
            .iter()
            .rev()
            .find(|(id, _)| *id == peer)
            .map(|(_, state)| *state)
    }
}

#[async_trait::async_trait]
impl MessageHandler for Recorder {
    fn on_messages(&self, from: NodeId, batch: Vec<GroupMessage>) {
        {
            let deadline = Instant::now() + MAX_STALL;
            let mut stalled = self.stalled.lock();
            while *stalled && Instant::now() < deadline {
                self.unstalled.wait_until(&mut stalled, deadline);
            }
        }
        let mut received = self.received.lock();
        received.batch_sizes.push(batch.len());
        received.delivered_on.push(std::thread::current().id());
        received
            .messages
            .extend(batch.into_iter().map(|message| (from, message)));
    }

    fn on_peer_state(&self, peer: NodeId, state: PeerState) {
        self.received.lock().peer_states.push((peer, state));
    }

    async fn on_snapshot(&self, mut snapshot: IncomingSnapshot) -> Result<(), String> {
        if self.refuse_snapshots.load(Ordering::SeqCst) {
            return Err(format!("group {} refused", snapshot.group_id));
        }
        let mut total = 0u64;
        let mut index = 0u64;
        // Bounded by the sender's source, which is finite.
        while let Some(chunk) = snapshot.next_chunk().await.map_err(|e| e.to_string())? {
            if chunk.len() >= 8 {
                let mut tag = [0u8; 8];
                tag.copy_from_slice(&chunk[..8]);
                if u64::from_be_bytes(tag) != index {
                    return Err(format!("chunk {index} out of order"));
                }
            }
            index += 1;
            total += chunk.len() as u64;
            self.snapshot_consumed
                .fetch_add(chunk.len() as u64, Ordering::SeqCst);
        }
        self.received.lock().snapshots.push((
            snapshot.from,
            snapshot.group_id,
            snapshot.header.clone(),
            total,
        ));
        Ok(())
    }
}

/// Polls `condition` every few milliseconds until it holds or `timeout`
/// passes; panics with `what` on timeout.
pub async fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sends, retrying while the queue is full or the link is still coming up,
/// so the test controls order exactly. Panics after `timeout`.
pub async fn send_reliably(
    transport: &dyn Transport,
    to: NodeId,
    batch: Vec<GroupMessage>,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        match transport.send(to, batch.clone()) {
            Ok(()) => return,
            Err(TransportError::QueueFull { .. } | TransportError::Unreachable { .. }) => {
                assert!(
                    Instant::now() < deadline,
                    "could not send to {to} within {timeout:?}"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(other) => panic!("send to {to} failed: {other}"),
        }
    }
}

/// A message whose payload starts with `seq` (big endian), padded to `size`.
pub fn numbered(group_id: u64, seq: u64, size: usize) -> GroupMessage {
    let mut payload = BytesMut::with_capacity(size.max(8));
    payload.put_u64(seq);
    payload.resize(size.max(8), 0xAB);
    GroupMessage::new(group_id, payload.freeze())
}

pub fn seq_of(message: &GroupMessage) -> u64 {
    let mut tag = [0u8; 8];
    tag.copy_from_slice(&message.payload[..8]);
    u64::from_be_bytes(tag)
}

/// A snapshot source of `chunks` chunks of `chunk_size` bytes, tagged with
/// their index, recording the most bytes ever produced and not yet consumed.
pub struct MeteredSource {
    pub chunk_size: usize,
    pub chunks: u64,
    pub next: u64,
    pub produced: u64,
    pub consumed: Arc<AtomicU64>,
    pub max_in_flight: Arc<AtomicU64>,
    /// Fail with an I/O error at this chunk.
    pub fail_at: Option<u64>,
    template: Bytes,
}

impl MeteredSource {
    pub fn new(chunk_size: usize, chunks: u64, consumed: Arc<AtomicU64>) -> Self {
        Self {
            chunk_size,
            chunks,
            next: 0,
            produced: 0,
            consumed,
            max_in_flight: Arc::new(AtomicU64::new(0)),
            fail_at: None,
            template: Bytes::from(vec![0x5A; chunk_size]),
        }
    }
}

impl SnapshotChunks for MeteredSource {
    fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        if self.fail_at == Some(self.next) {
            return Err(io::Error::other("disk on fire"));
        }
        if self.next == self.chunks {
            return Ok(None);
        }
        let in_flight = self.produced - self.consumed.load(Ordering::SeqCst).min(self.produced);
        self.max_in_flight.fetch_max(in_flight, Ordering::SeqCst);
        let mut chunk = BytesMut::with_capacity(self.chunk_size);
        chunk.put_u64(self.next);
        chunk.extend_from_slice(&self.template[8..]);
        self.next += 1;
        self.produced += self.chunk_size as u64;
        Ok(Some(chunk.freeze()))
    }
}

/// A `done` callback that reports through a oneshot channel.
pub fn done_channel() -> (
    raft_transport::SnapshotDone,
    tokio::sync::oneshot::Receiver<Result<(), TransportError>>,
) {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let done: raft_transport::SnapshotDone = Box::new(move |result| {
        let _ = sender.send(result);
    });
    (done, receiver)
}
