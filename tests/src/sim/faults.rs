//! The nemesis: a seeded schedule of faults. Network faults come one episode at a time
//! (an isolated node, a split, a one-way cut, a flapping link, lossy, duplicating,
//! reordering or slow links); crashes (clean, or with a torn log tail) and slow disks
//! come on their own. At most a minority of nodes is down at once, so the cluster can
//! make progress; the check at the end holds either way.

use raft_multi::GroupId;
use raft_transport::NodeId;
use rand::seq::SliceRandom;
use rand::Rng;

use super::Sim;

/// A network fault in progress and the step it ends at.
#[derive(Debug, Default)]
pub(crate) struct Nemesis {
    episode_until: u64,
    /// A link cut and restored every `period` steps: (a, b, period, cut now).
    flapping: Option<(NodeId, NodeId, u64, bool)>,
    /// Crashed nodes and the step each restarts at.
    crashed: Vec<(NodeId, u64)>,
}

impl Sim {
    /// One step of the nemesis.
    pub(crate) fn nemesis_step(&mut self) -> Result<(), super::SimError> {
        let now = self.now;
        // Restarts that are due.
        let due: Vec<NodeId> = self
            .nemesis
            .crashed
            .iter()
            .filter(|(_, at)| *at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.restart(id)?;
        }
        if let Some((a, b, period, cut)) = self.nemesis.flapping {
            if now % period == 0 {
                if cut {
                    self.network.heal();
                } else {
                    self.network.partition(&[a], &[b]);
                }
                self.nemesis.flapping = Some((a, b, period, !cut));
            }
        }
        if now >= self.nemesis.episode_until && self.nemesis.episode_until != 0 {
            self.end_network_episode();
        }
        if !self.config.faults || !self.rng.random_bool(0.01) {
            return Ok(());
        }
        match self.rng.random_range(0..10) {
            0..=5 => {
                if self.nemesis.episode_until == 0 {
                    self.start_network_episode();
                }
            }
            6..=8 => self.crash_one()?,
            _ => {
                let index = self.rng.random_range(0..self.nodes.len());
                let until = now + self.rng.random_range(50..400);
                self.nodes[index].slow_until = until;
                self.stats.slow_disks += 1;
            }
        }
        Ok(())
    }

    fn random_node(&mut self) -> NodeId {
        self.nodes[self.rng.random_range(0..self.nodes.len())].id
    }

    fn start_network_episode(&mut self) {
        let length = self.rng.random_range(30..300);
        self.nemesis.episode_until = self.now + length;
        self.stats.network_faults += 1;
        let ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        match self.rng.random_range(0..8) {
            0 => {
                let node = self.random_node();
                self.network.isolate(node);
            }
            1 => {
                let mut shuffled = ids.clone();
                shuffled.shuffle(&mut self.rng);
                let split = self.rng.random_range(1..shuffled.len());
                let (a, b) = shuffled.split_at(split);
                self.network.partition(a, b);
            }
            2 => {
                let from = self.random_node();
                let to = self.random_node();
                if from != to {
                    self.network.partition_one_way(from, to);
                }
            }
            3 => {
                let a = self.random_node();
                let b = self.random_node();
                if a != b {
                    let period = self.rng.random_range(5..40);
                    self.nemesis.flapping = Some((a, b, period, false));
                }
            }
            4 => self.network.set_drop_rate(self.rng.random_range(0.02..0.3)),
            5 => self
                .network
                .set_duplicate_rate(self.rng.random_range(0.02..0.3)),
            6 => self
                .network
                .set_reorder_rate(self.rng.random_range(0.05..0.5)),
            _ => {
                let high = self.rng.random_range(2..20);
                self.network.set_delay(0..=high);
            }
        }
    }

    fn end_network_episode(&mut self) {
        self.nemesis.episode_until = 0;
        self.nemesis.flapping = None;
        self.network.heal();
        self.network.set_drop_rate(0.0);
        self.network.set_duplicate_rate(0.0);
        self.network.set_reorder_rate(0.0);
        self.network.set_delay(0..=0);
    }

    fn crash_one(&mut self) -> Result<(), super::SimError> {
        let down = self.nodes.iter().filter(|n| n.up.is_none()).count();
        if (down + 1) * 2 > self.nodes.len() {
            return Ok(());
        }
        let index = self.rng.random_range(0..self.nodes.len());
        if self.nodes[index].up.is_none() {
            return Ok(());
        }
        let torn = self.rng.random_bool(0.5);
        let restart_at = self.now + self.rng.random_range(20..600);
        let id = self.nodes[index].id;
        if let Some(running) = &self.nodes[index].up {
            self.stats.snapshots_received += running.multi.metrics().snapshots_received;
        }
        self.nodes[index].crash(torn, &mut self.rng)?;
        self.trace(format_args!("crash {id} torn {torn}"));
        self.nemesis.crashed.push((id, restart_at));
        self.stats.crashes += 1;
        if torn {
            self.stats.torn_crashes += 1;
        }
        Ok(())
    }

    /// Restarts a crashed node on its directory.
    pub(crate) fn restart(&mut self, id: NodeId) -> Result<(), super::SimError> {
        self.nemesis.crashed.retain(|(n, _)| *n != id);
        // Like a controller reconciling assignments: every partition assigned here (at
        // creation, or by a reassignment) and not moved away since. One the log lost
        // is bootstrapped again with the same entries as on every other voter, or
        // waits to join again.
        let assigned: Vec<(GroupId, Option<Vec<NodeId>>)> = self
            .groups
            .iter()
            .filter(|(group, voters)| voters.contains(&id) && !self.left.contains(&(**group, id)))
            .map(|(group, voters)| (*group, Some(voters.clone())))
            .chain(
                self.joined
                    .iter()
                    .filter(|(group, node)| *node == id && !self.left.contains(&(*group, id)))
                    .map(|(group, _)| (*group, None)),
            )
            .collect();
        let now = self.now;
        let Some(node) = self.nodes.iter_mut().find(|n| n.id == id) else {
            return Ok(());
        };
        if node.up.is_none() {
            node.start(&self.network, &assigned, now)?;
            node.next_tick = now + 1;
            self.stats.restarts += 1;
            self.trace(format_args!("restart {id} assigned {assigned:?}"));
        }
        Ok(())
    }

    /// Ends every fault: heals the network and restarts every crashed node.
    pub(crate) fn heal_all(&mut self) -> Result<(), super::SimError> {
        self.end_network_episode();
        let crashed: Vec<NodeId> = self.nemesis.crashed.iter().map(|(id, _)| *id).collect();
        for id in crashed {
            self.restart(id)?;
        }
        for node in &mut self.nodes {
            node.slow_until = 0;
        }
        Ok(())
    }
}
