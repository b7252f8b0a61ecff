//! Upkeep between rounds: ticks, periodic maintenance (purging the log, compacting
//! the groups that hold it back) and reactions to a peer node's liveness.

use std::sync::Arc;

use raft_transport::{NodeId, PeerState};

use super::Worker;
use crate::command::Command;
use crate::GroupId;

/// Under pressure (writes refused for lack of room) maintenance runs every this share of
/// its period.
const PRESSURE_SHARE: u64 = 8;

impl Worker {
    pub(super) fn tick(&mut self) {
        self.ticks += 1;
        // Raft asked for snapshots the engine did not have: make them now.
        for (group, _request_index) in self.engine.take_snapshot_requests() {
            if self.peers.contains_key(&group) {
                self.handle(Command::Compact { group });
            } else {
                self.router.send_to_owner(group, Command::Compact { group });
            }
        }
        let awake: Vec<GroupId> = self.awake.iter().copied().collect();
        {
            let (mut ctx, peers) = self.ctx();
            for group in &awake {
                if let Some(peer) = peers.get_mut(group) {
                    peer.tick(&mut ctx);
                }
            }
        }
        for group in awake {
            self.touch(group);
        }
        let period = self.config.maintenance_ticks as u64;
        if period > 0 && self.index == 0 {
            // A log refusing writes frees space at once: compactions staged by one pass
            // are purged by the next, a few ticks later rather than a period later.
            let soon = self.ticks >= self.maintained_at + (period / PRESSURE_SHARE).max(1);
            if self.ticks % period == 0 || soon && self.room.take_pressure() {
                self.maintained_at = self.ticks;
                self.maintenance();
            }
        }
    }

    /// Periodic work of worker 0: purging the log, and compacting the groups that hold
    /// the purge back.
    fn maintenance(&mut self) {
        match self.engine.purge_expired() {
            Ok(mut holding) => {
                holding.sort_unstable();
                for group in holding {
                    self.router.send_to_owner(group, Command::Compact { group });
                }
            }
            Err(error) => tracing::warn!(%error, "purging the write-ahead log failed"),
        }
    }

    pub(super) fn peer_state(&mut self, node: NodeId, state: PeerState) {
        if state != PeerState::Unreachable {
            return;
        }
        let metrics = Arc::clone(&self.metrics);
        let woken: Vec<GroupId> = self
            .peers
            .iter_mut()
            .filter_map(|(&group, peer)| peer.on_node_lost(node, &metrics).then_some(group))
            .collect();
        if !woken.is_empty() {
            tracing::info!(
                node,
                groups = woken.len(),
                "peer lost: waking the groups it led"
            );
        }
        for group in woken {
            self.touch(group);
        }
    }
}
