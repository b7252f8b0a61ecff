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
        // Raft asked for snapshots the engine did not have: make them first.
        for (group, _request_index) in self.engine.take_snapshot_requests() {
            if self.peers.contains_key(&group) {
                self.queue_compaction(group, true);
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

    /// Queues a forced compaction of `group` (once; an `urgent` one, which a follower
    /// waits for as a snapshot, goes first).
    pub(super) fn queue_compaction(&mut self, group: GroupId, urgent: bool) {
        if !self.compactions_queued.insert(group) {
            if !urgent {
                return;
            }
            self.compactions.retain(|&g| g != group);
        }
        if urgent {
            self.compactions.push_front(group);
        } else {
            self.compactions.push_back(group);
        }
    }

    /// Runs queued compactions for up to `COMPACTION_BUDGET` (at least one): each
    /// flushes a state machine to its files, so a purge that asks every group at once
    /// costs each round a little instead of one round all of it.
    pub(super) fn run_compactions(&mut self) {
        if self.stopped.is_some() {
            // A stopped worker writes nothing more; its groups compact after a restart.
            self.compactions.clear();
            self.compactions_queued.clear();
            return;
        }
        let started = std::time::Instant::now();
        while let Some(group) = self.compactions.pop_front() {
            self.compactions_queued.remove(&group);
            let (mut ctx, peers) = self.ctx();
            let outcome = peers
                .get_mut(&group)
                .map(|peer| peer.maybe_compact(&mut ctx, true));
            match outcome {
                Some(Ok(true)) => self.save_snapshot(group),
                Some(Err(error)) => self.stop_group(group, error),
                _ => {}
            }
            if started.elapsed() >= super::COMPACTION_BUDGET {
                break;
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
