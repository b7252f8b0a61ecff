//! The in-process network's state: one queue, one seeded RNG, the faults,
//! the counters and each node's view of the others' liveness. Everything
//! here runs under one lock, so a run with a given seed and a given order of
//! calls replays exactly.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::node::NodeSlot;
use crate::{GroupMessage, MessageHandler, NodeId, PeerState};

/// Counters of one ordered node pair on the local network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PairStats {
    /// Frames (batches) accepted by `send`.
    pub frames_sent: u64,
    /// Raft messages accepted by `send`.
    pub messages_sent: u64,
    /// Payload bytes accepted by `send`.
    pub bytes_sent: u64,
    /// Frames dropped: queue full, cut link, drop rate, or cut while in flight.
    pub frames_dropped: u64,
    /// Raft messages in dropped frames.
    pub messages_dropped: u64,
    /// Frames handed to the receiver's handler (duplicates count twice).
    pub frames_delivered: u64,
    /// Raft messages handed to the receiver's handler.
    pub messages_delivered: u64,
    /// Frames that arrived before the receiver had a handler.
    pub frames_unhandled: u64,
}

/// A frame on its way.
#[derive(Debug)]
pub(crate) struct InFlight {
    pub(crate) from: NodeId,
    pub(crate) to: NodeId,
    pub(crate) batch: Vec<GroupMessage>,
}

/// Per ordered pair bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct Pair {
    pub(crate) stats: PairStats,
    /// Frames queued and not yet delivered or dropped.
    pub(crate) in_flight: usize,
    /// Frames a delivery driver took off the queue whose handler call has not
    /// returned yet: a direct send waits behind them (it queues).
    pub(crate) handing_over: usize,
    /// Due step of the last in-order frame: later frames are never due
    /// earlier, which keeps FIFO per pair under random delays.
    pub(crate) last_due: u64,
}

/// The injected faults.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Faults {
    pub(crate) drop_rate: f64,
    pub(crate) duplicate_rate: f64,
    pub(crate) reorder_rate: f64,
    /// Inclusive delay range in steps.
    pub(crate) delay: (u64, u64),
}

/// Outcome of enqueuing a frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Enqueue {
    /// Queued (possibly twice, or dropped by the drop rate: raft cannot tell).
    Accepted,
    /// The destination is unknown or cut off from the sender.
    Unreachable,
    /// The pair's queue is full.
    QueueFull,
}

/// A liveness notification waiting for delivery.
pub(crate) struct Notice {
    pub(crate) observer: Arc<NodeSlot>,
    pub(crate) peer: NodeId,
    pub(crate) state: PeerState,
}

/// Everything behind the network's lock.
pub(crate) struct NetState {
    pub(crate) rng: StdRng,
    pub(crate) clock: u64,
    next_seq: u64,
    /// Frames by (due step, sequence).
    queue: BTreeMap<(u64, u64), InFlight>,
    pub(crate) nodes: BTreeMap<NodeId, Arc<NodeSlot>>,
    pub(crate) pairs: BTreeMap<(NodeId, NodeId), Pair>,
    /// Directed cuts: (from, to) means `to` does not receive from `from`.
    cuts: BTreeSet<(NodeId, NodeId)>,
    isolated: BTreeSet<NodeId>,
    pub(crate) faults: Faults,
    /// (observer, peer) -> last state told to the observer.
    views: BTreeMap<(NodeId, NodeId), PeerState>,
    pub(crate) notices: VecDeque<Notice>,
    /// Notices a delivery driver took whose handler call has not returned yet.
    pub(crate) notices_handing_over: usize,
    pub(crate) queue_capacity: usize,
}

impl NetState {
    pub(crate) fn new(seed: u64, queue_capacity: usize) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            clock: 0,
            next_seq: 0,
            queue: BTreeMap::new(),
            nodes: BTreeMap::new(),
            pairs: BTreeMap::new(),
            cuts: BTreeSet::new(),
            isolated: BTreeSet::new(),
            faults: Faults::default(),
            views: BTreeMap::new(),
            notices: VecDeque::new(),
            notices_handing_over: 0,
            queue_capacity: queue_capacity.max(1),
        }
    }

    /// True when frames from `from` do not reach `to`.
    pub(crate) fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        from != to
            && (self.isolated.contains(&from)
                || self.isolated.contains(&to)
                || self.cuts.contains(&(from, to)))
    }

    /// True when `from` may send to `to` right now.
    pub(crate) fn can_send(&self, from: NodeId, to: NodeId) -> bool {
        self.nodes.contains_key(&to) && !self.is_cut(from, to)
    }

    pub(crate) fn cut(&mut self, from: NodeId, to: NodeId) {
        if from != to {
            self.cuts.insert((from, to));
        }
    }

    pub(crate) fn isolate(&mut self, node: NodeId) {
        self.isolated.insert(node);
    }

    pub(crate) fn heal(&mut self) {
        self.cuts.clear();
        self.isolated.clear();
    }

    /// Decides a frame's fate with the seeded RNG and queues it.
    pub(crate) fn enqueue(
        &mut self,
        from: NodeId,
        to: NodeId,
        batch: Vec<GroupMessage>,
    ) -> Enqueue {
        let messages = batch.len() as u64;
        let bytes: u64 = batch
            .iter()
            .map(|message| message.payload.len() as u64)
            .sum();
        if !self.can_send(from, to) {
            let pair = self.pairs.entry((from, to)).or_default();
            pair.stats.frames_dropped += 1;
            pair.stats.messages_dropped += messages;
            return Enqueue::Unreachable;
        }
        let capacity = self.queue_capacity;
        let pair = self.pairs.entry((from, to)).or_default();
        if pair.in_flight >= capacity {
            pair.stats.frames_dropped += 1;
            pair.stats.messages_dropped += messages;
            return Enqueue::QueueFull;
        }
        pair.stats.frames_sent += 1;
        pair.stats.messages_sent += messages;
        pair.stats.bytes_sent += bytes;
        let faults = self.faults;
        if faults.drop_rate > 0.0 && self.rng.random::<f64>() < faults.drop_rate {
            let pair = self.pairs.entry((from, to)).or_default();
            pair.stats.frames_dropped += 1;
            pair.stats.messages_dropped += messages;
            return Enqueue::Accepted;
        }
        let duplicate =
            faults.duplicate_rate > 0.0 && self.rng.random::<f64>() < faults.duplicate_rate;
        let mut copies = Vec::with_capacity(2);
        if duplicate {
            copies.push(batch.clone());
        }
        copies.push(batch);
        for batch in copies {
            let delay = if faults.delay.1 > faults.delay.0 {
                self.rng.random_range(faults.delay.0..=faults.delay.1)
            } else {
                faults.delay.0
            };
            let reorder =
                faults.reorder_rate > 0.0 && self.rng.random::<f64>() < faults.reorder_rate;
            let extra = self.rng.random_range(1..=3);
            let clock = self.clock;
            let pair = self.pairs.entry((from, to)).or_default();
            let due = if reorder {
                // Held back a few steps and outside the FIFO chain, so the
                // frames sent after it overtake it.
                clock + delay + extra
            } else {
                let due = (clock + delay).max(pair.last_due);
                pair.last_due = due;
                due
            };
            pair.in_flight += 1;
            self.queue
                .insert((due, self.next_seq), InFlight { from, to, batch });
            self.next_seq += 1;
        }
        Enqueue::Accepted
    }

    /// Takes a frame for delivery on the sender's thread, bypassing the queue,
    /// when nothing could tell the difference: no fault is set, the link is
    /// up, nothing of this pair is queued or being handed over by a delivery
    /// driver (FIFO holds) and no liveness notice is waiting or being told (it
    /// is told before later frames). Counts the frame as sent
    /// and delivered and returns the receiver's handler; `None` leaves
    /// everything untouched and the frame must be queued.
    pub(crate) fn take_direct(
        &mut self,
        from: NodeId,
        to: NodeId,
        batch: &[GroupMessage],
    ) -> Option<Arc<dyn MessageHandler>> {
        let faults = self.faults;
        let fault_free = faults.drop_rate <= 0.0
            && faults.duplicate_rate <= 0.0
            && faults.reorder_rate <= 0.0
            && faults.delay == (0, 0);
        let notices_pending = !self.notices.is_empty() || self.notices_handing_over > 0;
        if !fault_free || notices_pending || self.is_cut(from, to) {
            return None;
        }
        let handler = self.nodes.get(&to)?.handler()?;
        let pair = self.pairs.entry((from, to)).or_default();
        if pair.in_flight > 0 || pair.handing_over > 0 {
            return None;
        }
        let messages = batch.len() as u64;
        pair.stats.frames_sent += 1;
        pair.stats.messages_sent += messages;
        pair.stats.bytes_sent += batch
            .iter()
            .map(|message| message.payload.len() as u64)
            .sum::<u64>();
        pair.stats.frames_delivered += 1;
        pair.stats.messages_delivered += messages;
        Some(handler)
    }

    /// Removes up to `max` frames due by now, oldest first.
    pub(crate) fn take_due(&mut self, max: usize) -> Vec<InFlight> {
        let mut due = Vec::new();
        while due.len() < max {
            let Some(entry) = self.queue.first_entry() else {
                break;
            };
            if entry.key().0 > self.clock {
                break;
            }
            let frame = entry.remove();
            if let Some(pair) = self.pairs.get_mut(&(frame.from, frame.to)) {
                pair.in_flight = pair.in_flight.saturating_sub(1);
            }
            due.push(frame);
        }
        due
    }

    /// Frames queued, due or not.
    pub(crate) fn pending(&self) -> usize {
        self.queue.len()
    }

    /// True if a frame is due at `step` or earlier.
    pub(crate) fn has_due_by(&self, step: u64) -> bool {
        self.queue
            .keys()
            .next()
            .is_some_and(|(due, _)| *due <= step)
    }

    /// Recomputes every node's view of every other after a fault change or a
    /// new node, queuing a notice for each change. A node hears a peer when
    /// frames from the peer reach it (one-way cuts are seen one way).
    pub(crate) fn refresh_views(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for &observer in &ids {
            for &peer in &ids {
                if observer == peer {
                    continue;
                }
                let state = if self.is_cut(peer, observer) {
                    PeerState::Unreachable
                } else {
                    PeerState::Reachable
                };
                let previous = self.views.insert((observer, peer), state);
                let changed = match previous {
                    Some(previous) => previous != state,
                    // Nothing is said for a peer first seen reachable.
                    None => state == PeerState::Unreachable,
                };
                if changed {
                    if let Some(slot) = self.nodes.get(&observer) {
                        self.notices.push_back(Notice {
                            observer: Arc::clone(slot),
                            peer,
                            state,
                        });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: u8) -> Vec<GroupMessage> {
        vec![GroupMessage::new(1, vec![seq])]
    }

    fn state_with_nodes(seed: u64, capacity: usize) -> NetState {
        let mut state = NetState::new(seed, capacity);
        for id in [1, 2] {
            state.nodes.insert(id, Arc::new(NodeSlot::new(id)));
        }
        state
    }

    #[test]
    fn random_delays_keep_fifo_per_pair() {
        let mut state = state_with_nodes(7, 1024);
        state.faults.delay = (0, 5);
        for seq in 0..100 {
            assert_eq!(state.enqueue(1, 2, message(seq)), Enqueue::Accepted);
        }
        state.clock = 100;
        let order: Vec<u8> = state
            .take_due(usize::MAX)
            .iter()
            .map(|f| f.batch[0].payload[0])
            .collect();
        assert_eq!(order, (0..100).collect::<Vec<u8>>());
    }

    #[test]
    fn capacity_bounds_frames_in_flight() {
        let mut state = state_with_nodes(1, 3);
        for seq in 0..3 {
            assert_eq!(state.enqueue(1, 2, message(seq)), Enqueue::Accepted);
        }
        assert_eq!(state.enqueue(1, 2, message(9)), Enqueue::QueueFull);
        assert_eq!(state.take_due(1).len(), 1);
        assert_eq!(state.enqueue(1, 2, message(9)), Enqueue::Accepted);
        let stats = state.pairs[&(1, 2)].stats;
        assert_eq!((stats.frames_sent, stats.frames_dropped), (4, 1));
    }

    #[test]
    fn unknown_and_cut_destinations_are_unreachable() {
        let mut state = state_with_nodes(1, 8);
        assert_eq!(state.enqueue(1, 3, message(0)), Enqueue::Unreachable);
        state.cut(1, 2);
        assert_eq!(state.enqueue(1, 2, message(0)), Enqueue::Unreachable);
        assert!(state.can_send(2, 1), "a cut is one way");
        state.heal();
        assert_eq!(state.enqueue(1, 2, message(0)), Enqueue::Accepted);
    }
}
