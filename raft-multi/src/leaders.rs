//! Who leads each group, as last seen by this node: read-mostly, written only when a
//! replica's leader changes, so callers (fetch routing, client hints) can ask without
//! a round trip to the worker.

use std::collections::HashMap;

use parking_lot::RwLock;
use raft_transport::NodeId;

use crate::GroupId;

#[derive(Debug, Default)]
pub(crate) struct LeaderTable {
    leaders: RwLock<HashMap<GroupId, NodeId>>,
}

impl LeaderTable {
    /// Records `leader` for `group` (0: none known).
    pub(crate) fn set(&self, group: GroupId, leader: NodeId) {
        let mut leaders = self.leaders.write();
        if leader == 0 {
            leaders.remove(&group);
        } else {
            leaders.insert(group, leader);
        }
    }

    pub(crate) fn remove(&self, group: GroupId) {
        self.leaders.write().remove(&group);
    }

    pub(crate) fn get(&self, group: GroupId) -> Option<NodeId> {
        self.leaders.read().get(&group).copied()
    }

    pub(crate) fn count_led_by(&self, node: NodeId) -> usize {
        self.leaders.read().values().filter(|&&l| l == node).count()
    }
}
