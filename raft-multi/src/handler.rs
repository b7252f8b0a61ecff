//! The transport's inbound side: decodes group messages and hands them to workers.

use bytes::Bytes;
use raft_transport::{GroupMessage, IncomingSnapshot, MessageHandler, NodeId, PeerState};
use tokio::sync::{mpsc, oneshot};

use crate::command::{decode, Command, SnapshotHeader};
use crate::router::Router;

/// Registered with the transport by [`crate::MultiRaft::start`].
pub(crate) struct Inbound {
    pub router: Router,
}

#[async_trait::async_trait]
impl MessageHandler for Inbound {
    fn on_messages(&self, from: NodeId, batch: Vec<GroupMessage>) {
        let metrics = &self.router.metrics;
        metrics.add(&metrics.messages_received, batch.len() as u64);
        // One command per worker per inbound frame, not one per message.
        let mut per_worker: Vec<Vec<_>> = (0..self.router.workers()).map(|_| Vec::new()).collect();
        for message in batch {
            match decode(&message.payload) {
                Some(inbound) => {
                    let owner = self.router.owner(message.group_id);
                    if let Some(list) = per_worker.get_mut(owner) {
                        list.push((message.group_id, inbound));
                    }
                }
                None => metrics.add(&metrics.inbound_malformed, 1),
            }
        }
        for (index, messages) in per_worker.into_iter().enumerate() {
            if messages.is_empty() {
                continue;
            }
            let count = messages.len() as u64;
            let group = messages.first().map_or(0, |(g, _)| *g);
            // A full mailbox drops: raft retransmits, the scheduler never blocks here.
            if self
                .router
                .send(index, Command::Inbound { from, messages }, group)
                .is_err()
            {
                metrics.add(&metrics.inbound_dropped, count);
            }
        }
    }

    fn on_peer_state(&self, peer: NodeId, state: PeerState) {
        self.router.broadcast(|| Command::PeerState { peer, state });
    }

    async fn on_snapshot(&self, mut snapshot: IncomingSnapshot) -> Result<(), String> {
        let group = snapshot.group_id;
        let Some(header) = SnapshotHeader::decode(&snapshot.header) else {
            self.router
                .metrics
                .add(&self.router.metrics.inbound_malformed, 1);
            return Err("malformed snapshot header".to_owned());
        };
        let (chunks_tx, chunks_rx) = mpsc::channel::<Result<Bytes, String>>(4);
        let (reply_tx, reply_rx) = oneshot::channel();
        let command = Command::SnapshotReceived {
            group,
            header,
            chunks: chunks_rx,
            reply: reply_tx,
        };
        self.router
            .send(self.router.owner(group), command, group)
            .map_err(|e| e.to_string())?;
        // Pump chunks to the restoring thread; the bounded channel is the flow control.
        loop {
            let next = snapshot.next_chunk().await;
            let item = match next {
                Ok(Some(chunk)) => Ok(chunk),
                Ok(None) => break,
                Err(error) => Err(error.to_string()),
            };
            let is_err = item.is_err();
            if chunks_tx.send(item).await.is_err() || is_err {
                break; // the worker refused or gave up: its answer says why
            }
        }
        drop(chunks_tx);
        match reply_rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("scheduler stopped".to_owned()),
        }
    }
}
