//! Snapshot transfers on the local network, driven by steps like frames:
//! each step pulls chunks from the sender's source into a small window and
//! polls the receiver's handler, on the stepping thread, so a manual-mode
//! run stays single-threaded and replays.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::Mutex;

use super::network::Shared;
use crate::message::{ChunkEvent, ChunkSender};
use crate::stats::{add, PeerCounters};
use crate::{NodeId, SnapshotChunks, SnapshotDone, TransportError};

/// Round trips (fill the window, poll the handler) per transfer per step:
/// bounds the time one step spends on one snapshot.
const ROUNDS_PER_STEP: usize = 64;

/// The receiving handler's future.
pub(crate) type Verdict = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// How the sending side stands.
enum Source {
    /// More chunks may come.
    Open(Box<dyn SnapshotChunks>),
    /// Every chunk and the end marker are in the window.
    Ended,
    /// The source failed; the error is kept for `done`.
    Failed(std::io::Error),
}

/// One snapshot on its way.
pub(crate) struct Transfer {
    from: NodeId,
    to: NodeId,
    source: Source,
    /// A chunk or marker pulled but not yet in the window.
    pending: Option<ChunkEvent>,
    chunks: Option<ChunkSender>,
    verdict: Option<Verdict>,
    /// Set when the transfer failed before it started.
    refused: Option<TransportError>,
    done: Option<SnapshotDone>,
    runtime: Option<tokio::runtime::Handle>,
    sender_counters: Arc<PeerCounters>,
    receiver_counters: Option<Arc<PeerCounters>>,
}

/// Transfers in progress, by start order.
#[derive(Default)]
pub(crate) struct Transfers {
    next_id: u64,
    active: BTreeMap<u64, Transfer>,
}

impl Transfer {
    /// A transfer that streams `source` into `chunks` for the handler's `verdict`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        from: NodeId,
        to: NodeId,
        source: Box<dyn SnapshotChunks>,
        chunks: ChunkSender,
        verdict: Verdict,
        done: SnapshotDone,
        sender_counters: Arc<PeerCounters>,
        receiver_counters: Option<Arc<PeerCounters>>,
    ) -> Self {
        Self {
            from,
            to,
            source: Source::Open(source),
            pending: None,
            chunks: Some(chunks),
            verdict: Some(verdict),
            refused: None,
            done: Some(done),
            runtime: tokio::runtime::Handle::try_current().ok(),
            sender_counters,
            receiver_counters,
        }
    }

    /// A transfer that fails with `error` at the next step (so `done` never
    /// runs inside `send_snapshot`).
    pub(crate) fn refused(
        to: NodeId,
        error: TransportError,
        done: SnapshotDone,
        sender_counters: Arc<PeerCounters>,
    ) -> Self {
        Self {
            from: 0,
            to,
            source: Source::Ended,
            pending: None,
            chunks: None,
            verdict: None,
            refused: Some(error),
            done: Some(done),
            runtime: None,
            sender_counters,
            receiver_counters: None,
        }
    }

    /// Moves the transfer along; `Some(outcome)` once it is over.
    fn advance(&mut self, shared: &Shared) -> Option<Result<(), TransportError>> {
        if let Some(error) = self.refused.take() {
            return Some(Err(error));
        }
        let to = self.to;
        if shared.state.lock().is_cut(self.from, to) {
            // Like a broken connection: the receiver's side is dropped.
            return Some(Err(TransportError::Unreachable { to }));
        }
        let _runtime = self.runtime.as_ref().map(tokio::runtime::Handle::enter);
        let waker = futures::task::noop_waker();
        let mut context = Context::from_waker(&waker);
        for _ in 0..ROUNDS_PER_STEP {
            let moved = self.fill();
            let verdict = self.verdict.as_mut()?;
            if let Poll::Ready(verdict) = verdict.as_mut().poll(&mut context) {
                return Some(match std::mem::replace(&mut self.source, Source::Ended) {
                    Source::Failed(error) => Err(TransportError::SnapshotSource(error)),
                    _ => verdict.map_err(|reason| TransportError::Remote { peer: to, reason }),
                });
            }
            if !moved {
                break;
            }
        }
        None
    }

    /// Puts chunks into the window while it has room; true if any moved.
    fn fill(&mut self) -> bool {
        let mut moved = false;
        // Bounded by the window: stops at the first full send.
        loop {
            let event = match self.pending.take() {
                Some(event) => event,
                None => match &mut self.source {
                    Source::Open(source) => match source.next_chunk() {
                        Ok(Some(data)) => ChunkEvent::Data(data),
                        Ok(None) => {
                            self.source = Source::Ended;
                            ChunkEvent::End
                        }
                        Err(error) => {
                            let copy = std::io::Error::new(error.kind(), error.to_string());
                            self.source = Source::Failed(error);
                            ChunkEvent::Failed(TransportError::SnapshotSource(copy))
                        }
                    },
                    Source::Ended | Source::Failed(_) => return moved,
                },
            };
            let Some(chunks) = &self.chunks else {
                return moved;
            };
            match chunks.try_send(event) {
                Ok(()) => moved = true,
                Err(tokio::sync::mpsc::error::TrySendError::Full(event)) => {
                    self.pending = Some(event);
                    return moved;
                }
                // The handler stopped reading: its verdict decides.
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
                    self.chunks = None;
                    return moved;
                }
            }
        }
    }

    fn finish(mut self, outcome: Result<(), TransportError>) {
        // The handler's side goes first, so it sees the end before `done` runs.
        self.verdict = None;
        self.chunks = None;
        if outcome.is_ok() {
            add(&self.sender_counters.snapshots_sent, 1);
            if let Some(counters) = &self.receiver_counters {
                add(&counters.snapshots_received, 1);
            }
        } else {
            add(&self.sender_counters.snapshots_failed, 1);
        }
        if let Some(done) = self.done.take() {
            done(outcome);
        }
    }
}

impl Transfers {
    pub(crate) fn start(&mut self, transfer: Transfer) {
        self.active.insert(self.next_id, transfer);
        self.next_id += 1;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.active.is_empty()
    }
}

/// Advances every transfer once, in start order; runs handlers and `done`
/// callbacks without holding the transfers' lock.
pub(crate) fn advance_all(shared: &Shared, transfers: &Mutex<Transfers>) {
    let active = std::mem::take(&mut transfers.lock().active);
    let mut unfinished = BTreeMap::new();
    for (id, mut transfer) in active {
        match transfer.advance(shared) {
            Some(outcome) => transfer.finish(outcome),
            None => {
                unfinished.insert(id, transfer);
            }
        }
    }
    transfers.lock().active.extend(unfinished);
}
