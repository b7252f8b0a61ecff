//! One node's slot on the local network: its handler and its own counters.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::stats::{PeerCounters, RejectCounters};
use crate::{MessageHandler, NodeId};

/// A node attached to a [`LocalNetwork`](super::LocalNetwork).
pub(crate) struct NodeSlot {
    pub(crate) id: NodeId,
    pub(crate) handler: RwLock<Option<Arc<dyn MessageHandler>>>,
    pub(crate) rejects: RejectCounters,
    /// Snapshot counters per peer (frame counters live in the network's pairs).
    pub(crate) snapshots: Mutex<BTreeMap<NodeId, Arc<PeerCounters>>>,
}

impl NodeSlot {
    pub(crate) fn new(id: NodeId) -> Self {
        Self {
            id,
            handler: RwLock::new(None),
            rejects: RejectCounters::default(),
            snapshots: Mutex::new(BTreeMap::new()),
        }
    }

    /// The registered handler, if any.
    pub(crate) fn handler(&self) -> Option<Arc<dyn MessageHandler>> {
        self.handler.read().clone()
    }

    /// The snapshot counters for `peer`.
    pub(crate) fn snapshot_counters(&self, peer: NodeId) -> Arc<PeerCounters> {
        Arc::clone(self.snapshots.lock().entry(peer).or_default())
    }
}
