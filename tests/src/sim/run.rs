//! The loop of a run: start, workload under faults, heal, barrier, settle, check.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use raft_multi::GroupId;
use raft_transport::local::LocalNetwork;
use raft_transport::NodeId;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::clients::{self, partition_id, Event, Producer};
use super::node::{read_log, SimNode};
use super::task::Pending;
use super::{Nemesis, Sim, SimConfig, SimError, SimReport};
use crate::history::{History, ProduceOutcome, ReplicaLog};

/// Steps between two ticks of a node (each node adds 0 to 2 steps of its own).
const TICK_STEPS: u64 = 4;
/// Steps the final phase may take to finish requests, agree and answer the barrier.
const SETTLE_STEPS: u64 = 20_000;

/// Runs one simulation and checks its history.
///
/// # Errors
/// [`SimError`] when a node cannot recover its directory or the cluster does not
/// recover once every fault is healed; a history that fails the check is reported in
/// the [`SimReport`].
pub fn run(config: &SimConfig) -> Result<SimReport, SimError> {
    let dir = temp_dir()?;
    let mut sim = Sim {
        config: config.clone(),
        rng: rand::rngs::StdRng::seed_from_u64(config.seed),
        network: LocalNetwork::new(config.seed),
        nodes: (1..=config.nodes)
            .map(|id| SimNode::new(id, dir.path(), config.workers, config.prefill_segments))
            .collect(),
        history: History::new(),
        producers: Vec::new(),
        groups: BTreeMap::new(),
        left: Default::default(),
        joined: Default::default(),
        now: 0,
        unexpected: Vec::new(),
        stats: Default::default(),
        admin: None,
        nemesis: Nemesis::default(),
        trace: std::env::var_os("SIM_TRACE").is_some(),
    };
    for index in 0..sim.nodes.len() {
        sim.nodes[index].start(&sim.network, &[], 0)?;
        sim.nodes[index].next_tick = sim.rng.random_range(1..=TICK_STEPS);
    }
    for _ in 0..config.partitions {
        sim.create_partition()?;
    }
    sim.stats.partitions_created = 0;
    for _ in 0..config.steps {
        sim.step(true)?;
    }
    sim.finish()
}

/// A fresh directory, on tmpfs when the machine has one (syncs cost nothing there).
fn temp_dir() -> std::io::Result<tempfile::TempDir> {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new()
            .prefix("chronik-sim-")
            .tempdir_in(shm)
        {
            return Ok(dir);
        }
    }
    tempfile::Builder::new().prefix("chronik-sim-").tempdir()
}

impl Sim {
    /// Adds a plain and an idempotent producer for `group`.
    pub(crate) fn add_producers(&mut self, group: GroupId) {
        let next = self.producers.len() as u64;
        self.producers.push(Producer::new(next, group, false));
        self.producers.push(Producer::new(next + 1, group, true));
    }

    /// One step of the world; with `workload`, clients, admin and nemesis act too.
    fn step(&mut self, workload: bool) -> Result<(), SimError> {
        self.now += 1;
        let now = self.now;
        self.network.step();
        let mut order: Vec<usize> = (0..self.nodes.len()).collect();
        order.shuffle(&mut self.rng);
        for index in order {
            let node = &mut self.nodes[index];
            if node.slow_until > now && self.rng.random_bool(0.7) {
                continue;
            }
            node.poll();
        }
        for index in 0..self.nodes.len() {
            let jitter = self.rng.random_range(0..=2);
            let node = &mut self.nodes[index];
            if let Some(running) = &node.up {
                if now >= node.next_tick {
                    running.multi.tick();
                    node.next_tick = now + TICK_STEPS + jitter;
                }
            }
        }
        for producer in &mut self.producers {
            if let Event::Unexpected(what) = producer.poll(&mut self.history, now) {
                self.unexpected.push(what);
            }
        }
        self.admin_step(workload)?;
        if !workload {
            return Ok(());
        }
        for index in 0..self.producers.len() {
            let producer = &mut self.producers[index];
            if producer.busy() || producer.backing_off(now) {
                continue;
            }
            if producer.owes_retry() || self.rng.random_bool(0.2) {
                let event = producer.send(&self.nodes, &mut self.history, &mut self.rng, now);
                if let Event::Unexpected(what) = event {
                    self.unexpected.push(what);
                }
            }
        }
        if self.rng.random_bool(0.3) {
            let groups: Vec<GroupId> = self.groups.keys().copied().collect();
            let group = groups[self.rng.random_range(0..groups.len())];
            clients::fetch(&self.nodes, group, &mut self.history, &mut self.rng);
        }
        self.nemesis_step()
    }

    /// Heals, lets requests finish, acknowledges a barrier on every partition, waits
    /// for every replica to agree, and checks.
    fn finish(mut self) -> Result<SimReport, SimError> {
        self.heal_all()?;
        let deadline = self.now + SETTLE_STEPS;
        // Outstanding requests and the administrative operation end (or time out).
        while self.producers.iter().any(Producer::busy) || self.admin.is_some() {
            if self.now > deadline {
                let statuses = self.describe();
                return Err(SimError::NotLive(format!(
                    "requests did not finish; {statuses}"
                )));
            }
            self.step(false)?;
        }
        // One acknowledged barrier per partition: each has a leader that commits.
        let groups: Vec<GroupId> = self.groups.keys().copied().collect();
        for group in groups {
            let mut barrier = Producer::new(1_000_000 + group, group, false);
            let mut acked = false;
            while !acked {
                if self.now > deadline {
                    return Err(SimError::NotLive(format!(
                        "partition {group}: no barrier acknowledged by step {}",
                        self.now
                    )));
                }
                if !barrier.busy() && !barrier.backing_off(self.now) {
                    let event =
                        barrier.send(&self.nodes, &mut self.history, &mut self.rng, self.now);
                    if let Event::Unexpected(what) = event {
                        self.unexpected.push(what);
                    }
                }
                self.step(false)?;
                barrier.poll(&mut self.history, self.now);
                acked = self.history.produces().last().is_some_and(|op| {
                    op.partition == partition_id(group)
                        && matches!(op.outcome, ProduceOutcome::Acknowledged { .. })
                }) && !barrier.busy();
            }
        }
        let logs = self.settle(deadline)?;
        let report = self.history.check(&logs);
        let mut hasher = std::hash::DefaultHasher::new();
        format!("{:?}", self.history.produces()).hash(&mut hasher);
        format!("{:?}", self.history.fetches()).hash(&mut hasher);
        format!("{logs:?}").hash(&mut hasher);
        self.now.hash(&mut hasher);
        self.stats.snapshots_received += self
            .nodes
            .iter()
            .filter_map(|n| n.up.as_ref())
            .map(|r| r.multi.metrics().snapshots_received)
            .sum::<u64>();
        Ok(SimReport {
            seed: self.config.seed,
            fingerprint: hasher.finish(),
            steps: self.now,
            report,
            unexpected: self.unexpected,
            stats: self.stats,
        })
    }

    /// Steps until every member of every partition's configuration has applied the
    /// same high watermark; returns every member's log.
    fn settle(&mut self, deadline: u64) -> Result<Vec<ReplicaLog>, SimError> {
        let groups: Vec<GroupId> = self.groups.keys().copied().collect();
        let mut members: BTreeMap<GroupId, Vec<NodeId>> = BTreeMap::new();
        for &group in &groups {
            members.insert(group, self.members(group, deadline)?);
        }
        loop {
            let agreed = groups.iter().all(|group| {
                let marks: Vec<Option<u64>> = members[group]
                    .iter()
                    .map(|id| self.reader_mark(*id, *group))
                    .collect();
                marks.iter().all(|m| m.is_some() && *m == marks[0])
            });
            if agreed {
                break;
            }
            if self.now > deadline {
                let marks: Vec<String> = members
                    .iter()
                    .map(|(group, ids)| {
                        let each: Vec<String> = ids
                            .iter()
                            .map(|id| format!("{id}:{:?}", self.reader_mark(*id, *group)))
                            .collect();
                        format!("partition {group} [{}]", each.join(" "))
                    })
                    .collect();
                let statuses = self.describe();
                return Err(SimError::NotLive(format!(
                    "replicas did not agree by step {}: high watermarks {}; {statuses}",
                    self.now,
                    marks.join(", ")
                )));
            }
            self.step(false)?;
        }
        let mut logs = Vec::new();
        for (group, ids) in members {
            for id in ids {
                let Some(reader) = self
                    .nodes
                    .iter()
                    .find(|n| n.id == id)
                    .and_then(|n| n.up.as_ref())
                    .and_then(|r| r.readers.get(&group))
                else {
                    continue;
                };
                let Some(log) = read_log(reader, group, id) else {
                    return Err(SimError::NotLive(format!(
                        "partition {group} on {id}: unreadable"
                    )));
                };
                logs.push(log);
            }
        }
        Ok(logs)
    }

    /// Every replica's raft status, for a failure's message.
    fn describe(&mut self) -> String {
        let mut lines = Vec::new();
        for index in 0..self.nodes.len() {
            let Some(multi) = self.nodes[index].up.as_ref().map(|r| r.multi.clone()) else {
                lines.push(format!("node {} down", self.nodes[index].id));
                continue;
            };
            let (mut pending, mut done) =
                Pending::start(async move { multi.statuses().await }, self.now);
            for _ in 0..100 {
                if done.is_some() {
                    break;
                }
                if self.step(false).is_err() {
                    break;
                }
                done = pending.poll();
            }
            for status in done.unwrap_or_default() {
                lines.push(format!("node {}: {status:?}", self.nodes[index].id));
            }
        }
        format!("statuses:\n{}", lines.join("\n"))
    }

    fn reader_mark(&self, id: NodeId, group: GroupId) -> Option<u64> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .and_then(|n| n.up.as_ref())
            .and_then(|r| r.readers.get(&group))
            .map(|reader| reader.high_watermark())
    }

    /// The voters and learners of `group`, as its leader sees them.
    fn members(&mut self, group: GroupId, deadline: u64) -> Result<Vec<NodeId>, SimError> {
        while self.now <= deadline {
            let leader = self.nodes.iter().find_map(|n| {
                let running = n.up.as_ref()?;
                running
                    .multi
                    .is_leader(group)
                    .then(|| running.multi.clone())
            });
            if let Some(multi) = leader {
                let (mut pending, mut done) =
                    Pending::start(async move { multi.status(group).await }, self.now);
                for _ in 0..100 {
                    if done.is_some() {
                        break;
                    }
                    self.step(false)?;
                    done = pending.poll();
                }
                if let Some(Ok(status)) = done {
                    if status.role == raft_multi::Role::Leader {
                        let mut ids = status.voters;
                        ids.extend(status.learners);
                        ids.sort_unstable();
                        return Ok(ids);
                    }
                }
            }
            self.step(false)?;
        }
        Err(SimError::NotLive(format!(
            "partition {group}: no leader to ask for members"
        )))
    }
}
