//! Counters: plain structs of numbers for callers, atomics inside.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{NodeId, RejectReason};

/// Defines a plain counters struct and its atomic twin with `load()`.
macro_rules! counters {
    (
        $(#[$meta:meta])* pub struct $name:ident / $atomic:ident {
            $( $(#[$field_meta:meta])* $field:ident ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: u64, )*
        }

        /// Live atomic counters behind the plain struct.
        #[derive(Debug, Default)]
        pub(crate) struct $atomic {
            $( pub(crate) $field: AtomicU64, )*
        }

        impl $atomic {
            /// A consistent-enough copy (each counter read once, relaxed).
            pub(crate) fn load(&self) -> $name {
                $name { $( $field: self.$field.load(Ordering::Relaxed), )* }
            }
        }
    };
}

counters! {
    /// Counters of the traffic with one peer. "Sent" and "dropped" count this
    /// node's outbound traffic to the peer; "delivered" and "received" count
    /// the peer's inbound traffic handed to this node's handler.
    pub struct PeerStats / PeerCounters {
        /// Batches accepted by `send`.
        batches_sent,
        /// Frames put on the wire (the gRPC writer coalesces queued batches
        /// into one frame; on the local network one batch is one frame).
        frames_sent,
        /// Raft messages accepted by `send`.
        messages_sent,
        /// Payload bytes accepted by `send`.
        bytes_sent,
        /// Batches dropped (queue full, unreachable, fault injection, lost on a broken stream).
        batches_dropped,
        /// Raft messages in dropped batches.
        messages_dropped,
        /// Liveness heartbeats sent (empty frames on an idle link).
        heartbeats_sent,
        /// Inbound frames from the peer handed to the handler.
        frames_delivered,
        /// Inbound raft messages from the peer handed to the handler.
        messages_delivered,
        /// Inbound payload bytes from the peer handed to the handler.
        bytes_received,
        /// Liveness heartbeats received.
        heartbeats_received,
        /// Snapshots sent and accepted by the peer.
        snapshots_sent,
        /// Snapshots to the peer that failed or were refused.
        snapshots_failed,
        /// Snapshots from the peer accepted by the handler.
        snapshots_received,
        /// Connections established to the peer (gRPC).
        connects,
        /// Failed connection attempts and broken streams (gRPC).
        connect_failures,
    }
}

counters! {
    /// Inbound frames (or connections) rejected, by reason.
    pub struct RejectStats / RejectCounters {
        /// Frames naming another cluster.
        cluster_mismatch,
        /// Frames from a node that is not a known peer.
        unknown_sender,
        /// Frames addressed to another node.
        wrong_destination,
        /// Frames over the maximum frame size.
        frame_too_large,
        /// Frames that did not decode or broke the protocol.
        malformed,
        /// Batches that arrived before a handler was registered.
        no_handler,
    }
}

impl RejectStats {
    /// All rejections, whatever the reason.
    pub fn total(&self) -> u64 {
        self.cluster_mismatch
            + self.unknown_sender
            + self.wrong_destination
            + self.frame_too_large
            + self.malformed
            + self.no_handler
    }
}

impl RejectCounters {
    /// Counts one rejection for `reason`.
    pub(crate) fn count(&self, reason: RejectReason) {
        let counter = match reason {
            RejectReason::ClusterMismatch => &self.cluster_mismatch,
            RejectReason::UnknownSender => &self.unknown_sender,
            RejectReason::WrongDestination => &self.wrong_destination,
            RejectReason::FrameTooLarge => &self.frame_too_large,
            RejectReason::Malformed => &self.malformed,
            RejectReason::NoHandler => &self.no_handler,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Adds `value` to an atomic counter.
pub(crate) fn add(counter: &AtomicU64, value: u64) {
    counter.fetch_add(value, Ordering::Relaxed);
}

/// All counters of one transport endpoint. A plain struct of numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportStats {
    /// Per peer.
    pub peers: BTreeMap<NodeId, PeerStats>,
    /// Rejected inbound frames by reason.
    pub rejected: RejectStats,
}

impl TransportStats {
    /// The counters for `peer` (zero if never seen).
    pub fn peer(&self, peer: NodeId) -> PeerStats {
        self.peers.get(&peer).copied().unwrap_or_default()
    }

    /// The sum over all peers.
    pub fn total(&self) -> PeerStats {
        let total = PeerCounters::default();
        for stats in self.peers.values() {
            total.accumulate(stats);
        }
        total.load()
    }
}

impl PeerCounters {
    /// Adds every counter of `stats` into `self`.
    pub(crate) fn accumulate(&self, stats: &PeerStats) {
        add(&self.batches_sent, stats.batches_sent);
        add(&self.frames_sent, stats.frames_sent);
        add(&self.messages_sent, stats.messages_sent);
        add(&self.bytes_sent, stats.bytes_sent);
        add(&self.batches_dropped, stats.batches_dropped);
        add(&self.messages_dropped, stats.messages_dropped);
        add(&self.heartbeats_sent, stats.heartbeats_sent);
        add(&self.frames_delivered, stats.frames_delivered);
        add(&self.messages_delivered, stats.messages_delivered);
        add(&self.bytes_received, stats.bytes_received);
        add(&self.heartbeats_received, stats.heartbeats_received);
        add(&self.snapshots_sent, stats.snapshots_sent);
        add(&self.snapshots_failed, stats.snapshots_failed);
        add(&self.snapshots_received, stats.snapshots_received);
        add(&self.connects, stats.connects);
        add(&self.connect_failures, stats.connect_failures);
    }
}
