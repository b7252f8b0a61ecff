//! `LocalTransport`: one node's endpoint on the in-process network.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::network::Shared;
use super::node::NodeSlot;
use super::state::Enqueue;
use crate::message::{ChunkEvent, ChunkSender};
use crate::stats::{add, PeerCounters};
use crate::{
    GroupMessage, IncomingSnapshot, MessageHandler, NodeId, OutgoingSnapshot, SnapshotChunks,
    SnapshotDone, Transport, TransportError, TransportStats,
};

/// One node's endpoint on a [`LocalNetwork`](super::LocalNetwork); implements [`Transport`].
pub struct LocalTransport {
    shared: Arc<Shared>,
    slot: Arc<NodeSlot>,
}

impl std::fmt::Debug for LocalTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTransport")
            .field("id", &self.slot.id)
            .finish_non_exhaustive()
    }
}

impl LocalTransport {
    pub(crate) fn new(shared: Arc<Shared>, slot: Arc<NodeSlot>) -> Self {
        Self { shared, slot }
    }
}

impl Transport for LocalTransport {
    fn local_id(&self) -> NodeId {
        self.slot.id
    }

    fn set_handler(&self, handler: Arc<dyn MessageHandler>) {
        *self.slot.handler.write() = Some(handler);
    }

    fn send(&self, to: NodeId, batch: Vec<GroupMessage>) -> Result<(), TransportError> {
        let outcome = self.shared.state.lock().enqueue(self.slot.id, to, batch);
        match outcome {
            Enqueue::Accepted => {
                self.shared.wakeup.notify_one();
                Ok(())
            }
            Enqueue::Unreachable => Err(TransportError::Unreachable { to }),
            Enqueue::QueueFull => Err(TransportError::QueueFull { to }),
        }
    }

    fn send_snapshot(&self, to: NodeId, snapshot: OutgoingSnapshot, done: SnapshotDone) {
        let from = self.slot.id;
        let handler = {
            let state = self.shared.state.lock();
            if state.can_send(from, to) {
                state.nodes.get(&to).and_then(|slot| slot.handler())
            } else {
                None
            }
        };
        let transfer = Transfer {
            shared: Arc::clone(&self.shared),
            from,
            to,
            sender_counters: self.slot.snapshot_counters(to),
            receiver_counters: {
                let state = self.shared.state.lock();
                state
                    .nodes
                    .get(&to)
                    .map(|slot| slot.snapshot_counters(from))
            },
        };
        let future = async move {
            let result = transfer.run(snapshot, handler).await;
            done(result);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(future);
            }
            Err(_) => {
                let spawned = std::thread::Builder::new()
                    .name("local-net-snapshot".into())
                    .spawn(move || futures::executor::block_on(future));
                if let Err(error) = spawned {
                    tracing::error!(%error, "could not start a snapshot thread");
                }
            }
        }
    }

    fn stats(&self) -> TransportStats {
        let me = self.slot.id;
        let mut stats = TransportStats::default();
        {
            let state = self.shared.state.lock();
            for (&(from, to), pair) in &state.pairs {
                let (peer, outbound) = match (from == me, to == me) {
                    (true, _) => (to, true),
                    (_, true) => (from, false),
                    _ => continue,
                };
                let entry = stats.peers.entry(peer).or_default();
                if outbound {
                    entry.batches_sent += pair.stats.frames_sent;
                    entry.frames_sent += pair.stats.frames_sent;
                    entry.messages_sent += pair.stats.messages_sent;
                    entry.bytes_sent += pair.stats.bytes_sent;
                    entry.batches_dropped += pair.stats.frames_dropped;
                    entry.messages_dropped += pair.stats.messages_dropped;
                } else {
                    entry.frames_delivered += pair.stats.frames_delivered;
                    entry.messages_delivered += pair.stats.messages_delivered;
                }
            }
        }
        for (&peer, counters) in self.slot.snapshots.lock().iter() {
            let snapshots = counters.load();
            let entry = stats.peers.entry(peer).or_default();
            entry.snapshots_sent += snapshots.snapshots_sent;
            entry.snapshots_failed += snapshots.snapshots_failed;
            entry.snapshots_received += snapshots.snapshots_received;
        }
        stats.rejected = self.slot.rejects.load();
        stats
    }
}

/// How the producing side of a snapshot transfer ended.
enum Produced {
    /// Every chunk went out, or the receiver stopped reading (its verdict rules).
    Finished,
    /// The link was cut mid-transfer.
    Cut,
    /// The source failed.
    Source(std::io::Error),
}

/// One snapshot transfer between two local nodes.
struct Transfer {
    shared: Arc<Shared>,
    from: NodeId,
    to: NodeId,
    sender_counters: Arc<PeerCounters>,
    receiver_counters: Option<Arc<PeerCounters>>,
}

impl Transfer {
    async fn run(
        self,
        snapshot: OutgoingSnapshot,
        handler: Option<Arc<dyn MessageHandler>>,
    ) -> Result<(), TransportError> {
        let result = self.transfer(snapshot, handler).await;
        if result.is_ok() {
            add(&self.sender_counters.snapshots_sent, 1);
            if let Some(counters) = &self.receiver_counters {
                add(&counters.snapshots_received, 1);
            }
        } else {
            add(&self.sender_counters.snapshots_failed, 1);
        }
        result
    }

    async fn transfer(
        &self,
        snapshot: OutgoingSnapshot,
        handler: Option<Arc<dyn MessageHandler>>,
    ) -> Result<(), TransportError> {
        let to = self.to;
        let handler = handler.ok_or(TransportError::Unreachable { to })?;
        let (incoming, sender) = IncomingSnapshot::channel(
            self.from,
            snapshot.group_id,
            snapshot.header,
            self.shared.snapshot_window,
        );
        let (outcome_sender, outcome) = oneshot::channel();
        let shared = Arc::clone(&self.shared);
        let (from, chunks) = (self.from, snapshot.chunks);
        std::thread::Builder::new()
            .name("local-net-snapshot-source".into())
            .spawn(move || {
                let produced = produce(&shared, from, to, chunks, &sender);
                let _ = outcome_sender.send(produced);
            })?;
        let verdict = handler.on_snapshot(incoming).await;
        match outcome.await {
            Ok(Produced::Source(error)) => Err(TransportError::SnapshotSource(error)),
            Ok(Produced::Cut) => Err(TransportError::Unreachable { to }),
            Err(_) => Err(TransportError::Closed),
            Ok(Produced::Finished) => {
                verdict.map_err(|reason| TransportError::Remote { peer: to, reason })
            }
        }
    }
}

/// Pulls chunks from the source into the bounded channel (blocking: runs
/// on its own thread) until the end, a cut, a source error or the receiver
/// going away.
fn produce(
    shared: &Shared,
    from: NodeId,
    to: NodeId,
    mut chunks: Box<dyn SnapshotChunks>,
    sender: &ChunkSender,
) -> Produced {
    loop {
        if shared.state.lock().is_cut(from, to) {
            let _ = sender.blocking_send(ChunkEvent::Failed(TransportError::Unreachable { to }));
            return Produced::Cut;
        }
        match chunks.next_chunk() {
            Ok(Some(data)) => {
                if sender.blocking_send(ChunkEvent::Data(data)).is_err() {
                    return Produced::Finished;
                }
            }
            Ok(None) => {
                let _ = sender.blocking_send(ChunkEvent::End);
                return Produced::Finished;
            }
            Err(error) => {
                let copy = std::io::Error::new(error.kind(), error.to_string());
                let _ =
                    sender.blocking_send(ChunkEvent::Failed(TransportError::SnapshotSource(copy)));
                return Produced::Source(error);
            }
        }
    }
}
