//! `LocalTransport`: one node's endpoint on the in-process network.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::network::Shared;
use super::node::NodeSlot;
use super::snapshot::Transfer;
use super::state::Enqueue;
use crate::{
    GroupMessage, IncomingSnapshot, MessageHandler, NodeId, OutgoingSnapshot, SnapshotDone,
    Transport, TransportError, TransportStats,
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

    /// Wakes the pump after a transfer was started. Taking the state lock
    /// first orders this after a pump that is between checking for
    /// transfers and going to sleep (it holds that lock until it sleeps).
    fn wake_pump(&self) {
        drop(self.shared.state.lock());
        self.shared.wakeup.notify_all();
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
        let from = self.slot.id;
        if self.shared.direct && self.shared.pumps.load(Ordering::Relaxed) > 0 {
            // Only when nothing of this pair is queued or being handed over by
            // the pump (and no notice is pending), so the pair's frames still
            // reach the handler in order; otherwise queue behind them. Direct
            // sends of different pairs, or concurrent sends of one pair (which
            // have no order), may run at the same time.
            let handler = self.shared.state.lock().take_direct(from, to, &batch);
            if let Some(handler) = handler {
                handler.on_messages(from, batch);
                return Ok(());
            }
        }
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
        let sender_counters = self.slot.snapshot_counters(to);
        let target = {
            let state = self.shared.state.lock();
            if state.can_send(from, to) {
                state.nodes.get(&to).cloned()
            } else {
                None
            }
        };
        let Some((slot, handler)) = target.and_then(|slot| slot.handler().map(|h| (slot, h)))
        else {
            let error = TransportError::Unreachable { to };
            self.shared
                .transfers
                .lock()
                .start(Transfer::refused(to, error, done, sender_counters));
            self.wake_pump();
            return;
        };
        let (incoming, chunks) = IncomingSnapshot::channel(
            from,
            snapshot.group_id,
            snapshot.header,
            self.shared.snapshot_window,
        );
        let verdict = Box::pin(async move { handler.on_snapshot(incoming).await });
        let transfer = Transfer::new(
            from,
            to,
            snapshot.chunks,
            chunks,
            verdict,
            done,
            sender_counters,
            Some(slot.snapshot_counters(from)),
        );
        self.shared.transfers.lock().start(transfer);
        self.wake_pump();
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
