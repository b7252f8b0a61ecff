//! The sending side of a snapshot: pulls chunks from the source on a
//! blocking thread into a small window and streams them in one
//! client-streaming call, so memory stays bounded whatever the size.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::inner::Inner;
use super::peer::Peer;
use super::proto;
use crate::stats::add;
use crate::{OutgoingSnapshot, SnapshotChunks, TransportError};

/// What the source thread hands the stream.
enum Piece {
    Data(Bytes),
    /// The source is exhausted: every chunk was handed over.
    End,
    Failed(std::io::Error),
}

/// Streams `snapshot` to `peer` and returns the receiver's verdict.
pub(crate) async fn send(
    inner: Arc<Inner>,
    peer: Arc<Peer>,
    snapshot: OutgoingSnapshot,
) -> Result<(), TransportError> {
    let result = transfer(&inner, &peer, snapshot).await;
    let counter = if result.is_ok() {
        &peer.counters.snapshots_sent
    } else {
        &peer.counters.snapshots_failed
    };
    add(counter, 1);
    result
}

async fn transfer(
    inner: &Arc<Inner>,
    peer: &Peer,
    snapshot: OutgoingSnapshot,
) -> Result<(), TransportError> {
    let to = peer.id;
    let channel = peer
        .channel
        .lock()
        .clone()
        .ok_or(TransportError::Unreachable { to })?;
    let header = proto::SnapshotChunk {
        header: Some(proto::SnapshotHeader {
            cluster_id: inner.config.cluster_id,
            from: inner.local_id(),
            to,
            group_id: snapshot.group_id,
            header: snapshot.header,
        }),
        data: Bytes::new(),
        last: false,
        total_bytes: 0,
    };
    let (pieces, receiver) = mpsc::channel(inner.config.snapshot_window);
    let chunk_size = inner.config.snapshot_chunk_size;
    let source = snapshot.chunks;
    let reader = inner
        .runtime
        .spawn_blocking(move || read_source(source, &pieces, chunk_size));
    let (failed_sender, failed) = oneshot::channel();
    let stream = futures::stream::once(async move { header }).chain(body(receiver, failed_sender));
    let mut client = inner.client(channel);
    let outcome = tokio::select! {
        response = client.snapshot(stream) => {
            response.map(|_| ()).map_err(|status| super::status_error(to, &status))
        }
        // The source failed: dropping the call resets the stream, so the
        // receiver sees an error, never a clean (truncated) end.
        Ok(error) = failed => Err(TransportError::SnapshotSource(error)),
    };
    reader.abort();
    outcome
}

/// The data chunks as a stream, closed by a `last` chunk with the byte
/// count. On a source failure (or a source thread that died) it reports the
/// error and stalls, so the caller cancels the call and the receiver never
/// sees a clean end.
fn body(
    receiver: mpsc::Receiver<Piece>,
    failed: oneshot::Sender<std::io::Error>,
) -> impl futures::Stream<Item = proto::SnapshotChunk> + Send + 'static {
    let state = (receiver, Some(failed), 0u64, false);
    futures::stream::unfold(
        state,
        |(mut receiver, mut failed, total, ended)| async move {
            if ended {
                return None;
            }
            let error = match receiver.recv().await {
                Some(Piece::Data(data)) => {
                    let total = total + data.len() as u64;
                    let chunk = proto::SnapshotChunk {
                        header: None,
                        data,
                        last: false,
                        total_bytes: 0,
                    };
                    return Some((chunk, (receiver, failed, total, false)));
                }
                Some(Piece::End) => {
                    let chunk = proto::SnapshotChunk {
                        header: None,
                        data: Bytes::new(),
                        last: true,
                        total_bytes: total,
                    };
                    return Some((chunk, (receiver, failed, total, true)));
                }
                Some(Piece::Failed(error)) => error,
                None => std::io::Error::other("snapshot source thread ended without finishing"),
            };
            if let Some(failed) = failed.take() {
                let _ = failed.send(error);
            }
            futures::future::pending::<()>().await;
            None
        },
    )
}

/// Pulls the source (blocking) into the window, splitting chunks to fit a frame.
fn read_source(
    mut source: Box<dyn SnapshotChunks>,
    pieces: &mpsc::Sender<Piece>,
    chunk_size: usize,
) {
    loop {
        match source.next_chunk() {
            Ok(Some(mut data)) => {
                while !data.is_empty() {
                    let piece = data.split_to(data.len().min(chunk_size));
                    if pieces.blocking_send(Piece::Data(piece)).is_err() {
                        return;
                    }
                }
            }
            Ok(None) => {
                let _ = pieces.blocking_send(Piece::End);
                return;
            }
            Err(error) => {
                let _ = pieces.blocking_send(Piece::Failed(error));
                return;
            }
        }
    }
}
