//! `LocalNetwork`: the handle tests hold to create endpoints, inject faults
//! and drive delivery.

use std::ops::{Bound, RangeBounds};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::endpoint::LocalTransport;
use super::node::NodeSlot;
use super::pump::PumpHandle;
use super::snapshot::{advance_all, Transfers};
use super::state::{NetState, PairStats};
use crate::NodeId;

/// Shared by the network handle, its endpoints and its pump.
pub(crate) struct Shared {
    pub(crate) state: Mutex<NetState>,
    /// Woken when a frame is queued or a fault changes (the pump waits on it).
    pub(crate) wakeup: Condvar,
    /// Held for a whole delivery, so frames of one pair reach the handler in
    /// queue order even if several threads drive delivery. Direct sends do not
    /// take it: they queue while a pair has frames queued or being handed over.
    pub(crate) delivery: Mutex<()>,
    /// Chunks buffered per snapshot transfer.
    pub(crate) snapshot_window: usize,
    /// Snapshot transfers in progress, advanced by each step.
    pub(crate) transfers: Mutex<Transfers>,
    /// Pumps running: direct delivery needs one (manual mode always queues,
    /// so tests stepping the network stay reproducible).
    pub(crate) pumps: AtomicUsize,
    /// See [`LocalNetworkBuilder::direct_delivery`].
    pub(crate) direct: bool,
}

/// Settings of a [`LocalNetwork`].
#[derive(Debug, Clone)]
pub struct LocalNetworkBuilder {
    seed: u64,
    queue_capacity: usize,
    snapshot_window: usize,
    auto_deliver: bool,
    direct: bool,
}

impl Default for LocalNetworkBuilder {
    fn default() -> Self {
        Self {
            seed: 0,
            queue_capacity: 1024,
            snapshot_window: 4,
            auto_deliver: false,
            direct: false,
        }
    }
}

impl LocalNetworkBuilder {
    /// The seed of the network's one RNG (drop, duplicate, delay, reorder).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Frames in flight per ordered pair before `send` answers `QueueFull` (default 1024).
    pub fn queue_capacity(mut self, frames: usize) -> Self {
        self.queue_capacity = frames.max(1);
        self
    }

    /// Chunks buffered per snapshot transfer (default 4).
    pub fn snapshot_window(mut self, chunks: usize) -> Self {
        self.snapshot_window = chunks.max(1);
        self
    }

    /// Deliver automatically on a background thread for the network's whole
    /// life (see [`LocalNetwork::spawn_pump`]); off by default (manual mode).
    pub fn auto_deliver(mut self, on: bool) -> Self {
        self.auto_deliver = on;
        self
    }

    /// While a pump runs and no fault is set, hand a frame whose pair has
    /// nothing queued to the receiver's handler at once, on the sender's
    /// thread, instead of queuing it for the pump: two thread hand-offs less
    /// per round trip, the way a kernel socket takes a datagram. Off by
    /// default. Only for handlers that keep the [`MessageHandler`] contract
    /// (quick, never blocking): a stalled handler would stall the sender.
    ///
    /// [`MessageHandler`]: crate::MessageHandler
    pub fn direct_delivery(mut self, on: bool) -> Self {
        self.direct = on;
        self
    }

    /// Builds the network.
    pub fn build(self) -> LocalNetwork {
        let network = LocalNetwork {
            shared: Arc::new(Shared {
                state: Mutex::new(NetState::new(self.seed, self.queue_capacity)),
                wakeup: Condvar::new(),
                delivery: Mutex::new(()),
                snapshot_window: self.snapshot_window,
                transfers: Mutex::new(Transfers::default()),
                pumps: AtomicUsize::new(0),
                direct: self.direct,
            }),
        };
        if self.auto_deliver {
            PumpHandle::spawn(&network.shared).detach();
        }
        network
    }
}

/// An in-process network connecting any number of nodes, with faults driven
/// by one seeded RNG so a failing run replays.
///
/// Two ways to drive delivery:
/// - manual (the default): queued frames move only when the owner calls
///   [`step`](Self::step) or [`deliver`](Self::deliver), on one thread, in a
///   reproducible order; delays are counted in steps;
/// - automatic: [`spawn_pump`](Self::spawn_pump) (or
///   [`LocalNetworkBuilder::auto_deliver`]) steps on a background thread,
///   about one step per millisecond when idle. With
///   [`LocalNetworkBuilder::direct_delivery`], while no fault is set, a
///   frame whose pair has nothing queued is handed to the receiver's
///   handler at once, on the sender's thread; with any fault set every
///   frame goes through the queue.
///
/// Handlers are called without the network's lock held, so they may call
/// `send`; they must not call `step` or `deliver` themselves.
///
/// Snapshots move with the steps too: each step pulls a few chunks from
/// the sender's source into a small window and polls the receiver's
/// handler on the stepping thread (inside the tokio runtime that was
/// current at `send_snapshot`, if any); `done` runs there as well. A cut
/// aborts a transfer in progress.
#[derive(Clone)]
pub struct LocalNetwork {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for LocalNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("LocalNetwork")
            .field("nodes", &state.nodes.keys().collect::<Vec<_>>())
            .field("clock", &state.clock)
            .field("pending", &state.pending())
            .finish()
    }
}

impl LocalNetwork {
    /// A manual-mode network seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self::builder().seed(seed).build()
    }

    /// A builder for the other settings.
    pub fn builder() -> LocalNetworkBuilder {
        LocalNetworkBuilder::default()
    }

    /// The endpoint of node `id`, attaching the node on first use. Calling
    /// it again returns another handle to the same node.
    pub fn endpoint(&self, id: NodeId) -> Arc<LocalTransport> {
        let slot = {
            let mut state = self.shared.state.lock();
            let slot = Arc::clone(
                state
                    .nodes
                    .entry(id)
                    .or_insert_with(|| Arc::new(NodeSlot::new(id))),
            );
            state.refresh_views();
            slot
        };
        // A new node may owe others a liveness notice.
        self.shared.wakeup.notify_all();
        Arc::new(LocalTransport::new(Arc::clone(&self.shared), slot))
    }

    /// Cuts every link between the two sets, both ways.
    pub fn partition(&self, side_a: &[NodeId], side_b: &[NodeId]) {
        self.change_faults(|state| {
            for &a in side_a {
                for &b in side_b {
                    state.cut(a, b);
                    state.cut(b, a);
                }
            }
        });
    }

    /// Cuts the link from `from` to `to` only: `to` stops hearing `from`.
    pub fn partition_one_way(&self, from: NodeId, to: NodeId) {
        self.change_faults(|state| state.cut(from, to));
    }

    /// Cuts `node` from every other node, both ways.
    pub fn isolate(&self, node: NodeId) {
        self.change_faults(|state| state.isolate(node));
    }

    /// Removes every cut and isolation (rates and delays stay).
    pub fn heal(&self) {
        self.change_faults(NetState::heal);
    }

    /// Probability in `[0, 1]` that a frame is silently lost.
    pub fn set_drop_rate(&self, rate: f64) {
        self.change_faults(|state| state.faults.drop_rate = clamp_rate(rate));
    }

    /// Probability in `[0, 1]` that a frame is delivered twice.
    pub fn set_duplicate_rate(&self, rate: f64) {
        self.change_faults(|state| state.faults.duplicate_rate = clamp_rate(rate));
    }

    /// Probability in `[0, 1]` that a frame is held back so later frames overtake it.
    pub fn set_reorder_rate(&self, rate: f64) {
        self.change_faults(|state| state.faults.reorder_rate = clamp_rate(rate));
    }

    /// Delay of each frame in steps, drawn from `range` (order per pair is
    /// kept: a frame is never due before the one sent before it).
    pub fn set_delay(&self, range: impl RangeBounds<u64>) {
        let low = match range.start_bound() {
            Bound::Included(&low) => low,
            Bound::Excluded(&low) => low.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let high = match range.end_bound() {
            Bound::Included(&high) => high,
            Bound::Excluded(&high) => high.saturating_sub(1),
            Bound::Unbounded => low,
        };
        self.change_faults(|state| state.faults.delay = (low, high.max(low)));
    }

    /// Advances the clock by one step, delivers every frame due by then
    /// (and pending liveness notices) and moves snapshot transfers along.
    /// Returns the frames delivered.
    pub fn step(&self) -> usize {
        step(&self.shared)
    }

    /// Delivers up to `max` frames already due, without advancing the clock,
    /// and pending liveness notices. Returns the frames delivered.
    pub fn deliver(&self, max: usize) -> usize {
        deliver(&self.shared, max)
    }

    /// Steps until nothing is queued (frames, notices, snapshots) or
    /// `max_steps` were taken; returns the frames delivered.
    pub fn run_until_idle(&self, max_steps: u64) -> usize {
        let mut delivered = 0;
        for _ in 0..max_steps {
            let idle = self.shared.state.lock().notices.is_empty()
                && self.shared.transfers.lock().is_empty();
            if self.pending() == 0 && idle {
                break;
            }
            delivered += self.step();
        }
        delivered
    }

    /// Frames queued and not yet delivered.
    pub fn pending(&self) -> usize {
        self.shared.state.lock().pending()
    }

    /// The current step.
    pub fn clock(&self) -> u64 {
        self.shared.state.lock().clock
    }

    /// The counters of the ordered pair `from -> to`.
    pub fn pair_stats(&self, from: NodeId, to: NodeId) -> PairStats {
        let state = self.shared.state.lock();
        state
            .pairs
            .get(&(from, to))
            .map(|pair| pair.stats)
            .unwrap_or_default()
    }

    /// Starts delivering on a background thread until the handle is dropped.
    pub fn spawn_pump(&self) -> PumpHandle {
        PumpHandle::spawn(&self.shared)
    }

    fn change_faults(&self, change: impl FnOnce(&mut NetState)) {
        let mut state = self.shared.state.lock();
        change(&mut state);
        state.refresh_views();
        drop(state);
        self.shared.wakeup.notify_all();
    }
}

fn clamp_rate(rate: f64) -> f64 {
    if rate.is_nan() {
        0.0
    } else {
        rate.clamp(0.0, 1.0)
    }
}

/// One step: the clock, due frames and notices, then snapshot transfers.
pub(crate) fn step(shared: &Shared) -> usize {
    shared.state.lock().clock += 1;
    let delivered = deliver(shared, usize::MAX);
    advance_all(shared, &shared.transfers);
    delivered
}

/// Delivers pending notices and up to `max` due frames; returns the frames delivered.
///
/// While a frame's handler call runs, its pair counts it as being handed over,
/// and notices being told are counted too: a direct send (which does not take
/// the delivery lock) sees them and queues behind them, so each pair's frames
/// and the notices before them still arrive in order.
pub(crate) fn deliver(shared: &Shared, max: usize) -> usize {
    let _delivery = shared.delivery.lock();
    let (notices, frames) = {
        let mut state = shared.state.lock();
        let notices: Vec<_> = state.notices.drain(..).collect();
        state.notices_handing_over += notices.len();
        let frames = state.take_due(max);
        let mut ready = Vec::with_capacity(frames.len());
        for frame in frames {
            let target = state.nodes.get(&frame.to).cloned();
            let cut = state.is_cut(frame.from, frame.to);
            let pair = state.pairs.entry((frame.from, frame.to)).or_default();
            let messages = frame.batch.len() as u64;
            match target.and_then(|slot| slot.handler().map(|handler| (slot, handler))) {
                _ if cut => {
                    pair.stats.frames_dropped += 1;
                    pair.stats.messages_dropped += messages;
                }
                None => {
                    pair.stats.frames_unhandled += 1;
                    if let Some(slot) = state.nodes.get(&frame.to) {
                        slot.rejects.count(crate::RejectReason::NoHandler);
                    }
                }
                Some((_, handler)) => {
                    pair.stats.frames_delivered += 1;
                    pair.stats.messages_delivered += messages;
                    pair.handing_over += 1;
                    ready.push((handler, frame));
                }
            }
        }
        (notices, ready)
    };
    let told = notices.len();
    for notice in notices {
        if let Some(handler) = notice.observer.handler() {
            handler.on_peer_state(notice.peer, notice.state);
        }
    }
    if told > 0 {
        let mut state = shared.state.lock();
        state.notices_handing_over = state.notices_handing_over.saturating_sub(told);
    }
    let delivered = frames.len();
    for (handler, frame) in frames {
        let pair = (frame.from, frame.to);
        handler.on_messages(frame.from, frame.batch);
        if let Some(pair) = shared.state.lock().pairs.get_mut(&pair) {
            pair.handing_over = pair.handing_over.saturating_sub(1);
        }
    }
    delivered
}
