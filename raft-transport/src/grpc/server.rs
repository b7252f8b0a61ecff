//! The receiving side: the tonic service that checks every frame and hands
//! batches and snapshots to the registered handler.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::inner::Inner;
use super::peer::Peer;
use super::proto::{self, raft_transport_server::RaftTransport};
use crate::message::ChunkEvent;
use crate::stats::add;
use crate::{GroupMessage, IncomingSnapshot, MalformedKind, NodeId, RejectReason, TransportError};

/// The service behind the server; one per transport.
pub(crate) struct Service {
    pub(crate) inner: Arc<Inner>,
}

/// A rejection: its counter and the status the sender gets.
fn reject(inner: &Inner, error: TransportError) -> Status {
    let reason = match &error {
        TransportError::ClusterMismatch { .. } => RejectReason::ClusterMismatch,
        TransportError::UnknownSender { .. } => RejectReason::UnknownSender,
        TransportError::WrongDestination { .. } => RejectReason::WrongDestination,
        TransportError::FrameTooLarge { .. } => RejectReason::FrameTooLarge,
        TransportError::SnapshotRejected { reason, .. } => *reason,
        _ => RejectReason::Malformed,
    };
    inner.rejects.count(reason);
    tracing::debug!(node = inner.local_id(), %error, "rejected inbound");
    super::to_status(&error)
}

/// Checks the addressing of a frame or snapshot and finds the sender.
fn check(inner: &Inner, cluster_id: u64, from: NodeId, to: NodeId) -> Result<Arc<Peer>, Status> {
    let expected = inner.config.cluster_id;
    if cluster_id != expected {
        return Err(reject(
            inner,
            TransportError::ClusterMismatch {
                expected,
                got: cluster_id,
            },
        ));
    }
    let local = inner.local_id();
    if to != local {
        return Err(reject(
            inner,
            TransportError::WrongDestination { local, to },
        ));
    }
    inner
        .peer(from)
        .ok_or_else(|| reject(inner, TransportError::UnknownSender { from }))
}

/// Classifies a receive error: decode failures and oversize frames are the
/// sender's fault and counted; anything else is the link going away.
fn receive_error(inner: &Inner, from: Option<NodeId>, status: Status) -> Status {
    match status.code() {
        tonic::Code::OutOfRange | tonic::Code::ResourceExhausted => {
            inner.rejects.count(RejectReason::FrameTooLarge);
            status
        }
        // Every internal error while reading a peer's stream is bad framing from it:
        // undecodable messages, a compression flag without an encoding, a message cut
        // short by the end of the call.
        tonic::Code::Internal => {
            inner.rejects.count(RejectReason::Malformed);
            super::to_status(&TransportError::Malformed {
                from,
                kind: MalformedKind::Decode,
            })
        }
        _ => status,
    }
}

/// Delivers one accepted frame.
fn deliver(inner: &Inner, peer: &Peer, frame: proto::Frame) {
    inner.heard(peer);
    if frame.messages.is_empty() {
        add(&peer.counters.heartbeats_received, 1);
        return;
    }
    let Some(handler) = inner.handler() else {
        inner.rejects.count(RejectReason::NoHandler);
        return;
    };
    let mut bytes = 0;
    let batch: Vec<GroupMessage> = frame
        .messages
        .into_iter()
        .map(|message| {
            bytes += message.payload.len() as u64;
            GroupMessage {
                group_id: message.group_id,
                payload: message.payload,
            }
        })
        .collect();
    add(&peer.counters.frames_delivered, 1);
    add(&peer.counters.messages_delivered, batch.len() as u64);
    add(&peer.counters.bytes_received, bytes);
    handler.on_messages(peer.id, batch);
}

/// Reads one inbound stream until it ends, breaks, is rejected or the
/// transport shuts down.
async fn serve_stream(
    inner: Arc<Inner>,
    mut frames: Streaming<proto::Frame>,
) -> Result<(), Status> {
    let mut shutdown = inner.shutdown.subscribe();
    let mut sender: Option<NodeId> = None;
    loop {
        let frame = tokio::select! {
            frame = frames.message() => frame,
            _ = shutdown.wait_for(|closed| *closed) => return Ok(()),
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(()),
            Err(status) => return Err(receive_error(&inner, sender, status)),
        };
        // Every frame is checked: a peer removed meanwhile is refused at once.
        let peer = check(&inner, frame.cluster_id, frame.from, frame.to)?;
        sender = Some(peer.id);
        deliver(&inner, &peer, frame);
    }
}

#[tonic::async_trait]
impl RaftTransport for Service {
    type BatchesStream = ReceiverStream<Result<proto::Ack, Status>>;

    async fn batches(
        &self,
        request: Request<Streaming<proto::Frame>>,
    ) -> Result<Response<Self::BatchesStream>, Status> {
        let frames = request.into_inner();
        let (replies, stream) = mpsc::channel(1);
        let inner = Arc::clone(&self.inner);
        self.inner.runtime.spawn(async move {
            if let Err(status) = serve_stream(inner, frames).await {
                let _ = replies.send(Err(status)).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(stream)))
    }

    async fn snapshot(
        &self,
        request: Request<Streaming<proto::SnapshotChunk>>,
    ) -> Result<Response<proto::SnapshotAck>, Status> {
        let inner = &self.inner;
        let mut chunks = request.into_inner();
        let first = match chunks.message().await {
            Ok(Some(first)) => first,
            Ok(None) => {
                return Err(reject(
                    inner,
                    malformed(None, MalformedKind::MissingSnapshotHeader),
                ))
            }
            Err(status) => return Err(receive_error(inner, None, status)),
        };
        let Some(header) = first.header else {
            return Err(reject(
                inner,
                malformed(None, MalformedKind::MissingSnapshotHeader),
            ));
        };
        let peer = check(inner, header.cluster_id, header.from, header.to)?;
        inner.heard(&peer);
        let Some(handler) = inner.handler() else {
            let group_id = header.group_id;
            return Err(reject(
                inner,
                TransportError::SnapshotRejected {
                    group_id,
                    reason: RejectReason::NoHandler,
                },
            ));
        };
        let (incoming, sender) = IncomingSnapshot::channel(
            peer.id,
            header.group_id,
            header.header,
            inner.config.snapshot_window,
        );
        let forward_inner = Arc::clone(inner);
        let from = peer.id;
        let forward = inner.runtime.spawn(async move {
            let mut received = first.data.len() as u64;
            if !first.data.is_empty() && sender.send(ChunkEvent::Data(first.data)).await.is_err() {
                return;
            }
            // Bounded by the stream: ends at its end, on an error or when the handler stops reading.
            loop {
                let event = match chunks.message().await {
                    Ok(Some(chunk)) if chunk.header.is_some() => {
                        forward_inner.rejects.count(RejectReason::Malformed);
                        let kind = MalformedKind::DuplicateSnapshotHeader;
                        ChunkEvent::Failed(malformed(Some(from), kind))
                    }
                    Ok(Some(chunk)) if chunk.last => {
                        received += chunk.data.len() as u64;
                        if chunk.total_bytes == received {
                            ChunkEvent::End
                        } else {
                            forward_inner.rejects.count(RejectReason::Malformed);
                            let kind = MalformedKind::SnapshotLength;
                            ChunkEvent::Failed(malformed(Some(from), kind))
                        }
                    }
                    Ok(Some(chunk)) => {
                        received += chunk.data.len() as u64;
                        ChunkEvent::Data(chunk.data)
                    }
                    // Ended without its last chunk: cut short, never a whole snapshot.
                    Ok(None) => ChunkEvent::Failed(TransportError::Closed),
                    Err(status) => {
                        let status = receive_error(&forward_inner, Some(from), status);
                        ChunkEvent::Failed(super::status_error(from, &status))
                    }
                };
                let last = !matches!(event, ChunkEvent::Data(_));
                if sender.send(event).await.is_err() || last {
                    return;
                }
            }
        });
        let verdict = handler.on_snapshot(incoming).await;
        forward.abort();
        match verdict {
            Ok(()) => {
                add(&peer.counters.snapshots_received, 1);
                Ok(Response::new(proto::SnapshotAck {}))
            }
            Err(reason) => Err(Status::aborted(reason)),
        }
    }

    async fn unary(&self, request: Request<proto::Frame>) -> Result<Response<proto::Ack>, Status> {
        let frame = request.into_inner();
        let peer = check(&self.inner, frame.cluster_id, frame.from, frame.to)?;
        deliver(&self.inner, &peer, frame);
        Ok(Response::new(proto::Ack {}))
    }
}

fn malformed(from: Option<NodeId>, kind: MalformedKind) -> TransportError {
    TransportError::Malformed { from, kind }
}
