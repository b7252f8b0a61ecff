//! The writer task of one peer: drains its bounded queue into one
//! long-lived stream, coalescing queued batches into frames, sends a
//! heartbeat on an idle link, and reconnects with backoff and jitter.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::Streaming;

use super::inner::Inner;
use super::peer::{batch_size, Link, Peer, FRAME_OVERHEAD};
use super::proto;
use crate::stats::add;
use crate::{GroupMessage, TransportError};

/// Frames buffered between the writer and the HTTP/2 stream.
const STREAM_BUFFER: usize = 2;

/// Exponential backoff with equal jitter.
struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            current: min,
        }
    }

    fn reset(&mut self) {
        self.current = self.min;
    }

    /// The next pause: half the current step plus a random half, then the
    /// step doubles up to `max`.
    fn next_pause(&mut self) -> Duration {
        let step = self.current;
        self.current = (self.current * 2).min(self.max);
        let half = step / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rand::rng().random_range(0..=jitter_ms))
    }
}

/// Why a connected stream ended.
enum StreamEnd {
    /// The peer was removed or the transport closed.
    Finished,
    /// The stream broke; reconnect.
    Broken(TransportError),
}

/// Runs until the peer's queue closes (peer removed) or the task is aborted.
pub(crate) async fn run(
    inner: Arc<Inner>,
    peer: Arc<Peer>,
    mut queue: mpsc::Receiver<Vec<GroupMessage>>,
) {
    let mut backoff = Backoff::new(inner.config.backoff_min, inner.config.backoff_max);
    let mut carry = None;
    while !inner.is_closed() {
        match open(&inner, &peer).await {
            Ok((frames, responses)) => {
                peer.set_link(Link::Connected);
                add(&peer.counters.connects, 1);
                backoff.reset();
                tracing::debug!(node = inner.local_id(), peer = peer.id, "stream up");
                match pump(&inner, &peer, &mut queue, &mut carry, frames, responses).await {
                    StreamEnd::Finished => return,
                    StreamEnd::Broken(error) => {
                        add(&peer.counters.connect_failures, 1);
                        tracing::debug!(node = inner.local_id(), peer = peer.id, %error, "stream broke");
                    }
                }
            }
            Err(error) => {
                add(&peer.counters.connect_failures, 1);
                tracing::debug!(node = inner.local_id(), peer = peer.id, %error, "connect failed");
            }
        }
        peer.set_link(Link::Down);
        peer.channel.lock().take();
        tokio::time::sleep(backoff.next_pause()).await;
    }
}

/// Connects and opens the batch stream.
async fn open(
    inner: &Inner,
    peer: &Peer,
) -> Result<(mpsc::Sender<proto::Frame>, Streaming<proto::Ack>), TransportError> {
    let endpoint = inner.endpoint(peer.id, &peer.uri)?;
    let connected = match &peer.connector {
        Some(connector) => super::connector::connect(&endpoint, connector, peer.id).await,
        None => endpoint.connect().await,
    };
    let channel = connected.map_err(|error| super::transport_error(peer.id, &error))?;
    *peer.channel.lock() = Some(channel.clone());
    let (frames, receiver) = mpsc::channel(STREAM_BUFFER);
    // Announce ourselves at once: the first frame is a heartbeat.
    let _ = frames.try_send(heartbeat(inner, peer));
    add(&peer.counters.heartbeats_sent, 1);
    let response = inner
        .client(channel)
        .batches(ReceiverStream::new(receiver))
        .await
        .map_err(|status| super::status_error(peer.id, &status))?;
    Ok((frames, response.into_inner()))
}

fn heartbeat(inner: &Inner, peer: &Peer) -> proto::Frame {
    proto::Frame {
        cluster_id: inner.config.cluster_id,
        from: inner.local_id(),
        to: peer.id,
        messages: Vec::new(),
    }
}

/// Moves batches from the queue to the stream until it breaks or the queue closes.
async fn pump(
    inner: &Inner,
    peer: &Peer,
    queue: &mut mpsc::Receiver<Vec<GroupMessage>>,
    carry: &mut Option<Vec<GroupMessage>>,
    frames: mpsc::Sender<proto::Frame>,
    mut responses: Streaming<proto::Ack>,
) -> StreamEnd {
    let interval = inner.config.heartbeat_interval;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_sent = Instant::now();
    loop {
        let batch = match carry.take() {
            Some(batch) => Some(batch),
            None => tokio::select! {
                biased;
                response = responses.message() => match response {
                    Ok(Some(_ack)) => continue,
                    Ok(None) => return StreamEnd::Broken(TransportError::Closed),
                    Err(status) => return StreamEnd::Broken(super::status_error(peer.id, &status)),
                },
                batch = queue.recv() => match batch {
                    Some(batch) => Some(batch),
                    None => return StreamEnd::Finished,
                },
                _ = ticker.tick() => None,
            },
        };
        let frame = match batch {
            Some(first) => coalesce(inner, peer, first, queue, carry),
            None if last_sent.elapsed() >= interval => heartbeat(inner, peer),
            None => continue,
        };
        let is_heartbeat = frame.messages.is_empty();
        tokio::select! {
            sent = frames.send(frame) => {
                if sent.is_err() {
                    return StreamEnd::Broken(TransportError::Closed);
                }
            }
            response = responses.message() => {
                let error = match response {
                    Err(status) => super::status_error(peer.id, &status),
                    Ok(_) => TransportError::Closed,
                };
                return StreamEnd::Broken(error);
            }
        }
        last_sent = Instant::now();
        let counter = if is_heartbeat {
            &peer.counters.heartbeats_sent
        } else {
            &peer.counters.frames_sent
        };
        add(counter, 1);
    }
}

/// One frame from `first` and whatever else is queued, up to the frame
/// size; a batch that does not fit waits in `carry` for the next frame.
fn coalesce(
    inner: &Inner,
    peer: &Peer,
    first: Vec<GroupMessage>,
    queue: &mut mpsc::Receiver<Vec<GroupMessage>>,
    carry: &mut Option<Vec<GroupMessage>>,
) -> proto::Frame {
    let budget = inner.config.max_frame_size.saturating_sub(FRAME_OVERHEAD);
    let mut size = batch_size(&first);
    let mut messages: Vec<proto::GroupMessage> = first.into_iter().map(to_wire).collect();
    // Bounded: the queue holds at most `queue_capacity` batches.
    while let Ok(next) = queue.try_recv() {
        let next_size = batch_size(&next);
        if size + next_size > budget {
            *carry = Some(next);
            break;
        }
        size += next_size;
        messages.extend(next.into_iter().map(to_wire));
    }
    proto::Frame {
        cluster_id: inner.config.cluster_id,
        from: inner.local_id(),
        to: peer.id,
        messages,
    }
}

fn to_wire(message: GroupMessage) -> proto::GroupMessage {
    proto::GroupMessage {
        group_id: message.group_id,
        payload: message.payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_max_with_bounded_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
        let mut step = Duration::from_millis(100);
        for _ in 0..10 {
            let pause = backoff.next_pause();
            assert!(
                pause >= step / 2 && pause <= step,
                "{pause:?} for step {step:?}"
            );
            step = (step * 2).min(Duration::from_millis(800));
        }
        backoff.reset();
        assert!(backoff.next_pause() <= Duration::from_millis(100));
    }
}
