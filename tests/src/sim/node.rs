//! One simulated node: a write-ahead log in a directory, a manually driven scheduler
//! and a partition state machine per hosted group. A crash drops all of it at once; a
//! torn crash first lets a round write without syncing and then cuts the log's tail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use raft_fsm::partition::{PartitionConfig, PartitionReader, PartitionStateMachine};
use raft_multi::{Driver, GroupId, GroupSpec, MultiConfig, MultiRaft};
use raft_storage::{EngineConfig, LogEngine};
use raft_transport::local::LocalNetwork;
use raft_transport::NodeId;
use rand::rngs::StdRng;
use rand::Rng;

use super::clients::partition_id;
use super::records;
use super::task::Pending;
use super::SimError;
use crate::history::{Batch, ReplicaLog};

/// A node that is up.
pub(crate) struct Running {
    pub multi: MultiRaft,
    pub driver: Driver,
    pub engine: LogEngine,
    /// Readers of the partitions hosted here.
    pub readers: BTreeMap<GroupId, PartitionReader>,
    /// Groups being created or resumed (answered once durable).
    pub creating: Vec<(GroupId, Pending<raft_multi::Result<()>>)>,
}

/// A node of the simulation, up or down.
pub(crate) struct SimNode {
    pub id: NodeId,
    dir: PathBuf,
    workers: usize,
    prefill_segments: bool,
    pub up: Option<Running>,
    /// The step until which this node's disk (and CPU) is slow.
    pub slow_until: u64,
    /// The step of this node's next tick.
    pub next_tick: u64,
}

/// The scheduler settings of every simulated node: no election jitter
/// (raft-rs would draw it from an unseeded generator), small logs so compaction,
/// snapshots and purges happen within a short run.
fn multi_config(id: NodeId, workers: usize) -> MultiConfig {
    MultiConfig::new(id)
        .workers(workers)
        .ticks(1, 10)
        .election_jitter(false)
        .hibernate_after_ticks(10)
        .compact_after_entries(16)
        .maintenance_ticks(15)
}

fn partition_config() -> PartitionConfig {
    PartitionConfig::default()
        .with_segment_bytes(16 * 1024)
        .with_snapshot_chunk_bytes(4 * 1024)
}

impl SimNode {
    pub(crate) fn new(id: NodeId, root: &Path, workers: usize, prefill_segments: bool) -> SimNode {
        SimNode {
            id,
            dir: root.join(format!("node-{id}")),
            workers,
            prefill_segments,
            up: None,
            slow_until: 0,
            next_tick: 0,
        }
    }

    fn wal_dir(&self) -> PathBuf {
        self.dir.join("wal")
    }

    fn fsm_dir(&self, group: GroupId) -> PathBuf {
        self.dir.join(format!("partition-{group}"))
    }

    /// True if this node ever held a replica of `group` (its machine's directory
    /// exists): such a node is not chosen again for it.
    pub(crate) fn has_hosted(&self, group: GroupId) -> bool {
        self.fsm_dir(group).exists()
    }

    /// Starts the node: opens the log (recovering it), and resumes every group found
    /// there; then hosts each of `assigned` the log does not hold (bootstrapped with
    /// its voters, or joining when `None`), as a controller reconciling its
    /// assignments would.
    pub(crate) fn start(
        &mut self,
        network: &LocalNetwork,
        assigned: &[(GroupId, Option<Vec<NodeId>>)],
        now: u64,
    ) -> Result<(), SimError> {
        let config = EngineConfig::new(self.wal_dir())
            .segment_size(32 * 1024)
            .prefill_segments(self.prefill_segments);
        let engine = LogEngine::open(config)
            .map_err(|e| SimError::Node(self.id, format!("recovery failed: {e}")))?;
        let (multi, driver) = MultiRaft::start_manual(
            multi_config(self.id, self.workers),
            engine.clone(),
            network.endpoint(self.id),
        )
        .map_err(|e| SimError::Node(self.id, e.to_string()))?;
        let mut running = Running {
            multi,
            driver,
            engine,
            readers: BTreeMap::new(),
            creating: Vec::new(),
        };
        let in_log = running.engine.group_ids();
        for group in &in_log {
            self.host(&mut running, *group, None, now)?;
        }
        for (group, voters) in assigned {
            if !in_log.contains(group) {
                self.host(&mut running, *group, voters.clone(), now)?;
            }
        }
        self.up = Some(running);
        Ok(())
    }

    /// Opens the group's machine and asks the scheduler to host it: bootstrapped with
    /// `voters`, or resumed/joining without.
    fn host(
        &self,
        running: &mut Running,
        group: GroupId,
        voters: Option<Vec<NodeId>>,
        now: u64,
    ) -> Result<(), SimError> {
        let fsm = PartitionStateMachine::open(self.fsm_dir(group), partition_config())
            .map_err(|e| SimError::Node(self.id, format!("partition {group}: {e}")))?;
        running.readers.insert(group, fsm.reader());
        let spec = match voters {
            Some(voters) => GroupSpec::new(group, voters, Box::new(fsm)),
            None => GroupSpec::joining(group, Box::new(fsm)),
        };
        let multi = running.multi.clone();
        let (pending, done) = Pending::start(async move { multi.create_group(spec).await }, now);
        if done.is_none() {
            running.creating.push((group, pending));
        }
        Ok(())
    }

    /// Hosts a new replica on this running node.
    pub(crate) fn add_group(
        &mut self,
        group: GroupId,
        voters: Option<Vec<NodeId>>,
        now: u64,
    ) -> Result<(), SimError> {
        let Some(mut running) = self.up.take() else {
            return Ok(());
        };
        let outcome = self.host(&mut running, group, voters, now);
        self.up = Some(running);
        outcome
    }

    /// Forgets a replica's machine after the scheduler removed the group.
    pub(crate) fn drop_group(&mut self, group: GroupId) {
        if let Some(running) = &mut self.up {
            running.readers.remove(&group);
        }
    }

    /// One turn of the node's worker (and of its pending creations).
    pub(crate) fn poll(&mut self) -> bool {
        let Some(running) = &mut self.up else {
            return false;
        };
        let worked = running.driver.poll();
        running
            .creating
            .retain_mut(|(_, pending)| pending.poll().is_none());
        worked
    }

    /// Crashes the node. A torn crash makes the next round's sync fail (the worker
    /// stops without acknowledging it), then cuts the newest log segment at a random
    /// point of what that round wrote, sometimes followed by garbage: the state a power
    /// cut leaves.
    pub(crate) fn crash(&mut self, torn: bool, rng: &mut StdRng) -> Result<(), SimError> {
        let Some(mut running) = self.up.take() else {
            return Ok(());
        };
        let mut cut = None;
        if torn {
            let before = newest_segment(&self.wal_dir());
            running.engine.inject_sync_failure();
            running.driver.poll();
            if let (Some((path, before)), Some((newest, after))) =
                (before, newest_segment(&self.wal_dir()))
            {
                // The bytes the failed round changed (it may have reused a purged
                // segment's file, whose old bytes follow the frames).
                let first = before.iter().zip(&after).position(|(a, b)| a != b);
                let first = first.unwrap_or(before.len().min(after.len()));
                if path == newest && first < after.len() {
                    cut = Some((newest, before, after, first));
                }
            }
        }
        drop(running);
        if let Some((path, before, after, first)) = cut {
            let keep = rng.random_range(first..after.len());
            let garbage = rng.random_bool(0.3);
            tear(&path, &before, &after, keep, garbage, rng)
                .map_err(|e| SimError::Node(self.id, format!("tearing the log: {e}")))?;
        }
        Ok(())
    }
}

/// The newest segment file of a log directory and its bytes.
fn newest_segment(dir: &Path) -> Option<(PathBuf, Vec<u8>)> {
    let mut newest: Option<PathBuf> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "log") && newest.as_ref().is_none_or(|n| path > *n)
        {
            newest = Some(path);
        }
    }
    let path = newest?;
    let bytes = std::fs::read(&path).ok()?;
    Some((path, bytes))
}

/// What a power cut leaves of a write that turned `before` into `after`: its bytes up to
/// `keep` reached the disk, the rest did not (the file reads as before there, or ends),
/// then maybe a few random bytes at `keep` (a page half written).
fn tear(
    path: &Path,
    before: &[u8],
    after: &[u8],
    keep: usize,
    garbage: bool,
    rng: &mut StdRng,
) -> std::io::Result<()> {
    let mut bytes = after[..keep].to_vec();
    if before.len() > keep {
        bytes.extend_from_slice(&before[keep..]);
    }
    if garbage {
        let noise: Vec<u8> = (0..rng.random_range(1..64)).map(|_| rng.random()).collect();
        for (i, byte) in noise.into_iter().enumerate() {
            match bytes.get_mut(keep + i) {
                Some(slot) => *slot = byte,
                None => bytes.push(byte),
            }
        }
    }
    std::fs::write(path, bytes)
}

/// Reads a replica's whole log through its reader.
pub(crate) fn read_log(
    reader: &PartitionReader,
    group: GroupId,
    replica: NodeId,
) -> Option<ReplicaLog> {
    let log_start_offset = reader.log_start_offset();
    let high_watermark = reader.high_watermark();
    let mut batches = Vec::new();
    let mut offset = log_start_offset;
    for _ in 0..100_000 {
        if offset >= high_watermark {
            break;
        }
        let fetched = reader.fetch(offset, 1 << 20).ok()?;
        let Some(last) = fetched.batches.last().map(|b| b.last_offset) else {
            break;
        };
        for batch in fetched.batches {
            batches.push(Batch {
                base_offset: batch.base_offset,
                last_offset: batch.last_offset,
                records: records::decode(batch.records).unwrap_or_default(),
            });
        }
        offset = last + 1;
    }
    Some(ReplicaLog {
        partition: partition_id(group),
        replica,
        log_start_offset,
        high_watermark,
        batches,
    })
}
