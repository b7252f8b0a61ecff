//! The workload's producers and fetchers. Every produce is recorded in the history
//! (invoked, then acknowledged with offsets, failed or unknown) and every fetch with
//! what it returned.

use bytes::Bytes;
use raft_fsm::partition::{decode_append_response, PartitionCommand, ProducerInfo};
use raft_multi::GroupId;
use raft_transport::NodeId;
use rand::rngs::StdRng;
use rand::Rng;

use super::node::SimNode;
use super::records;
use super::task::Pending;
use crate::history::{Batch, FetchOp, History, OpId, PartitionId, ProduceOutcome};

/// Steps a produce may take before the client gives up on it (outcome unknown).
const PRODUCE_TIMEOUT_STEPS: u64 = 400;

/// Steps a client waits after a failed request before it sends again.
const BACKOFF_STEPS: u64 = 8;

/// The topic name the simulation's partitions are recorded under.
pub(crate) const TOPIC: &str = "sim";

/// The history's name of a group.
pub(crate) fn partition_id(group: GroupId) -> PartitionId {
    PartitionId::new(TOPIC, group as u32)
}

type Answer = raft_multi::Result<Bytes>;

/// One producer, bound to one partition.
pub(crate) struct Producer {
    id: u64,
    pub group: GroupId,
    /// Idempotent producers: (producer id, next sequence).
    idempotent: Option<(i64, i32)>,
    /// The op an idempotent producer retries until it is acknowledged.
    unacked: Option<OpId>,
    in_flight: Option<(OpId, Pending<Answer>)>,
    sent: u64,
    /// After a failure the client backs off until this step, like a real client.
    not_before: u64,
}

/// What a finished produce tells the simulation.
pub(crate) enum Event {
    /// Nothing worth reporting.
    None,
    /// An answer no correct cluster gives (a test failure).
    Unexpected(String),
}

impl Producer {
    pub(crate) fn new(id: u64, group: GroupId, idempotent: bool) -> Producer {
        Producer {
            id,
            group,
            idempotent: idempotent.then_some((1000 + id as i64, 0)),
            unacked: None,
            in_flight: None,
            sent: 0,
            not_before: 0,
        }
    }

    /// True while a request is outstanding.
    pub(crate) fn busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// True while backing off after a failure.
    pub(crate) fn backing_off(&self, now: u64) -> bool {
        now < self.not_before
    }

    /// True when an idempotent producer still owes a retry.
    pub(crate) fn owes_retry(&self) -> bool {
        self.unacked.is_some()
    }

    /// Sends the next batch (or the retry) to the node that `nodes` think leads.
    pub(crate) fn send(
        &mut self,
        nodes: &[SimNode],
        history: &mut History,
        rng: &mut StdRng,
        now: u64,
    ) -> Event {
        let Some(target) = pick_target(nodes, self.group, rng) else {
            return Event::None;
        };
        let op = match self.unacked {
            Some(first) => match history.retry_invoked(first) {
                Some(op) => op,
                None => return Event::Unexpected(format!("retry of unknown op {first:?}")),
            },
            None => {
                let count = rng.random_range(1..=4);
                let records: Vec<Bytes> = (0..count)
                    .map(|i| Bytes::from(format!("p{}-{}-{i}", self.id, self.sent)))
                    .collect();
                self.sent += 1;
                history.produce_invoked(partition_id(self.group), records)
            }
        };
        let Some(records) = history.produces().get(op.0).map(|p| p.records.clone()) else {
            return Event::Unexpected(format!("op {op:?} vanished"));
        };
        let count = records.len() as u32;
        let batch = records::encode(&records);
        let command = match self.idempotent {
            Some((producer_id, sequence)) => PartitionCommand::append_idempotent(
                batch,
                count,
                now as i64,
                now as i64,
                ProducerInfo {
                    producer_id,
                    producer_epoch: 0,
                    base_sequence: sequence,
                },
            ),
            None => PartitionCommand::append(batch, count, now as i64, now as i64),
        };
        if self.idempotent.is_some() {
            self.unacked = Some(op);
        }
        let Some(multi) = nodes
            .iter()
            .find(|n| n.id == target)
            .and_then(|n| n.up.as_ref())
            .map(|r| r.multi.clone())
        else {
            return Event::None;
        };
        let group = self.group;
        let data = command.encode().to_vec();
        let (pending, done) = Pending::start(async move { multi.propose(group, data).await }, now);
        match done {
            Some(answer) => self.finish(op, answer, history, now),
            None => {
                self.in_flight = Some((op, pending));
                Event::None
            }
        }
    }

    /// Polls the outstanding request; gives up on it after a timeout.
    pub(crate) fn poll(&mut self, history: &mut History, now: u64) -> Event {
        let Some((op, pending)) = &mut self.in_flight else {
            return Event::None;
        };
        let op = *op;
        if let Some(answer) = pending.poll() {
            self.in_flight = None;
            return self.finish(op, answer, history, now);
        }
        if now.saturating_sub(pending.started) > PRODUCE_TIMEOUT_STEPS {
            self.in_flight = None;
            history.complete(op, ProduceOutcome::Unknown);
            self.not_before = now + BACKOFF_STEPS;
        }
        Event::None
    }

    fn finish(&mut self, op: OpId, answer: Answer, history: &mut History, now: u64) -> Event {
        match answer {
            Ok(response) => match decode_append_response(&response) {
                Ok(result) => {
                    history.acknowledged(op, result.base_offset, result.last_offset);
                    if let Some((_, sequence)) = &mut self.idempotent {
                        let count = history.produces().get(op.0).map_or(0, |p| p.records.len());
                        *sequence += count as i32;
                        self.unacked = None;
                    }
                    Event::None
                }
                Err(error) => {
                    // Applied as a rejection (the same on every replica): nothing written.
                    history.complete(op, ProduceOutcome::Failed);
                    Event::Unexpected(format!(
                        "producer {}: partition refused a batch: {error}",
                        self.id
                    ))
                }
            },
            Err(error) => {
                let definite =
                    error.is_retriable() || matches!(error, raft_multi::Error::GroupNotFound(_));
                let outcome = if definite {
                    ProduceOutcome::Failed
                } else {
                    ProduceOutcome::Unknown
                };
                history.complete(op, outcome);
                self.not_before = now + BACKOFF_STEPS;
                Event::None
            }
        }
    }
}

/// The node a client sends a partition's requests to: the leader some replica knows
/// of, if it is up, otherwise any replica that is up.
pub(crate) fn pick_target(nodes: &[SimNode], group: GroupId, rng: &mut StdRng) -> Option<NodeId> {
    let hosting: Vec<&SimNode> = nodes
        .iter()
        .filter(|n| {
            n.up.as_ref()
                .is_some_and(|r| r.readers.contains_key(&group))
        })
        .collect();
    let up = |id: NodeId| nodes.iter().any(|n| n.id == id && n.up.is_some());
    let hinted = hosting
        .iter()
        .filter_map(|n| n.up.as_ref().and_then(|r| r.multi.leader_of(group)))
        .find(|&leader| up(leader));
    if hinted.is_some() && rng.random_bool(0.9) {
        return hinted;
    }
    if hosting.is_empty() {
        return None;
    }
    Some(hosting[rng.random_range(0..hosting.len())].id)
}

/// Reads a random slice of a partition from a random replica that is up.
pub(crate) fn fetch(nodes: &[SimNode], group: GroupId, history: &mut History, rng: &mut StdRng) {
    let readers: Vec<(NodeId, &raft_fsm::partition::PartitionReader)> = nodes
        .iter()
        .filter_map(|n| {
            n.up.as_ref()
                .and_then(|r| r.readers.get(&group))
                .map(|reader| (n.id, reader))
        })
        .collect();
    if readers.is_empty() {
        return;
    }
    let (replica, reader) = readers[rng.random_range(0..readers.len())];
    let start = reader.log_start_offset();
    let high = reader.high_watermark();
    let offset = rng.random_range(start..=high);
    let Ok(result) = reader.fetch(offset, rng.random_range(64..4096)) else {
        return;
    };
    let batches = result
        .batches
        .into_iter()
        .map(|b| Batch {
            base_offset: b.base_offset,
            last_offset: b.last_offset,
            records: records::decode(b.records).unwrap_or_default(),
        })
        .collect();
    history.fetched(FetchOp {
        partition: partition_id(group),
        replica,
        offset,
        high_watermark: result.high_watermark,
        batches,
    });
}
