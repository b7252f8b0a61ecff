//! Producers (plain and idempotent) and fetchers that record what they did and saw.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use chronik_cluster::{
    decode_records, encode_records, Cluster, ClusterError, FetchRequest, ProduceRequest,
    ProducerIdentity,
};
use chronik_cluster_tests::history::{Batch, FetchOp, History, OpId, PartitionId, ProduceOutcome};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::harness::{claimed_leaders, TOPIC};

/// How long a produce waits for its answer before its outcome is unknown.
const PRODUCE_TIMEOUT: Duration = Duration::from_millis(600);
/// Requests per client at most (clients also stop when told to).
const MAX_REQUESTS: usize = 5_000;

/// Kafka's DUPLICATE_SEQUENCE_NUMBER: the batch was written already.
const DUPLICATE_SEQUENCE: i16 = 46;

/// What the clients share: the nodes, the history, and the stop flag.
pub struct Shared {
    pub nodes: Vec<Cluster>,
    pub history: Mutex<History>,
    pub stop: AtomicBool,
    /// Answers no correct cluster gives here (each a test failure).
    pub unexpected: Mutex<Vec<String>>,
    /// The highest high watermark a fetch saw, per partition.
    high_watermarks: Mutex<Vec<u64>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Shared {
    pub fn new(nodes: Vec<Cluster>, partitions: u32) -> Arc<Shared> {
        Arc::new(Shared {
            nodes,
            history: Mutex::new(History::new()),
            stop: AtomicBool::new(false),
            unexpected: Mutex::new(Vec::new()),
            high_watermarks: Mutex::new(vec![0; partitions as usize]),
        })
    }

    pub fn history(&self) -> MutexGuard<'_, History> {
        lock(&self.history)
    }

    pub fn unexpected(&self) -> Vec<String> {
        lock(&self.unexpected).clone()
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn record(&self, op: OpId, outcome: ProduceOutcome, unexpected: Option<String>) {
        self.history().complete(op, outcome);
        if let Some(what) = unexpected {
            lock(&self.unexpected).push(what);
        }
    }

    /// A node that believes it leads `partition`, chosen at random among claimants.
    fn leader(&self, partition: u32, rng: &mut StdRng) -> Option<Cluster> {
        let leaders = claimed_leaders(&self.nodes, partition, &[]);
        (!leaders.is_empty()).then(|| leaders[rng.random_range(0..leaders.len())].clone())
    }
}

/// Sends one produce to `node` and says what became of it.
pub async fn send(
    node: &Cluster,
    partition: u32,
    records: &[Bytes],
    producer: Option<ProducerIdentity>,
) -> (ProduceOutcome, Option<String>) {
    let mut request = ProduceRequest::new(
        TOPIC,
        partition,
        encode_records(records),
        records.len() as u32,
    );
    request.timeout = PRODUCE_TIMEOUT;
    request.producer = producer;
    let answer = tokio::time::timeout(PRODUCE_TIMEOUT * 3, node.produce(request)).await;
    let error = match answer {
        Err(_) => return (ProduceOutcome::Unknown, None),
        Ok(Ok(r)) if r.base_offset >= 0 && r.last_offset >= r.base_offset => {
            let outcome = ProduceOutcome::Acknowledged {
                base_offset: r.base_offset as u64,
                last_offset: r.last_offset as u64,
            };
            return (outcome, None);
        }
        Ok(Ok(r)) => {
            let what = format!("acknowledged with offsets {r:?}");
            return (ProduceOutcome::Unknown, Some(what));
        }
        Ok(Err(e)) => e,
    };
    let what = format!("node {} p{partition}: {error}", node.node_id());
    match error {
        // Refused before the entry reached the log, or the entry was overwritten.
        ClusterError::NotLeaderOrFollower { .. }
        | ClusterError::NotEnoughReplicas { .. }
        | ClusterError::Busy => (ProduceOutcome::Failed, None),
        ClusterError::RequestTimedOut => (ProduceOutcome::Unknown, None),
        ClusterError::Partition(_) if error.kafka_code() == DUPLICATE_SEQUENCE => {
            (ProduceOutcome::AlreadyWritten, None)
        }
        // Refused by the partition (an out-of-order sequence): decided, but a bug here.
        ClusterError::Partition(_) => (ProduceOutcome::Failed, Some(what)),
        _ => (ProduceOutcome::Unknown, Some(what)),
    }
}

async fn pause(rng: &mut StdRng) {
    tokio::time::sleep(Duration::from_millis(rng.random_range(5..25))).await;
}

fn next_records(rng: &mut StdRng, partition: u32, client: usize, n: &mut u64) -> Vec<Bytes> {
    (0..rng.random_range(1..=3))
        .map(|_| {
            *n += 1;
            Bytes::from(format!("p{partition}-c{client}-{n}"))
        })
        .collect()
}

/// A plain producer: each attempt carries new records (a retry would be a new record).
pub async fn plain_producer(shared: Arc<Shared>, partition: u32, client: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut n = 0;
    for _ in 0..MAX_REQUESTS {
        if shared.stopped() {
            break;
        }
        let Some(leader) = shared.leader(partition, &mut rng) else {
            pause(&mut rng).await;
            continue;
        };
        let records = next_records(&mut rng, partition, client, &mut n);
        let id = PartitionId::new(TOPIC, partition);
        let op = shared.history().produce_invoked(id, records.clone());
        let (outcome, unexpected) = send(&leader, partition, &records, None).await;
        shared.record(op, outcome, unexpected);
        if !matches!(outcome, ProduceOutcome::Acknowledged { .. }) {
            pause(&mut rng).await;
        }
    }
}

/// An idempotent producer: a batch is retried with the same sequence until it is
/// acknowledged, so it must land exactly once.
pub async fn idempotent_producer(shared: Arc<Shared>, partition: u32, client: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let producer_id = 1_000 + i64::from(partition) * 100 + client as i64;
    let (mut n, mut sequence, mut requests) = (0, 0i32, 0);
    'batches: while requests < MAX_REQUESTS {
        let records = next_records(&mut rng, partition, client, &mut n);
        let mut first: Option<OpId> = None;
        loop {
            requests += 1;
            if shared.stopped() || requests >= MAX_REQUESTS {
                break 'batches;
            }
            let Some(leader) = shared.leader(partition, &mut rng) else {
                pause(&mut rng).await;
                continue;
            };
            let op = {
                let mut history = shared.history();
                match first {
                    Some(first) => history.retry_invoked(first),
                    None => Some(
                        history
                            .produce_invoked(PartitionId::new(TOPIC, partition), records.clone()),
                    ),
                }
            };
            let Some(op) = op else {
                panic!("the history lost attempt {first:?}");
            };
            first.get_or_insert(op);
            let identity = ProducerIdentity {
                producer_id,
                producer_epoch: 0,
                base_sequence: sequence,
            };
            let (outcome, unexpected) = send(&leader, partition, &records, Some(identity)).await;
            let give_up = unexpected.is_some();
            shared.record(op, outcome, unexpected);
            match outcome {
                ProduceOutcome::Acknowledged { .. } | ProduceOutcome::AlreadyWritten => {
                    sequence += records.len() as i32;
                    continue 'batches;
                }
                _ if give_up => break 'batches,
                _ => pause(&mut rng).await,
            }
        }
    }
}

/// Reads random partitions at random offsets up to the highest high watermark seen,
/// mostly from a node that believes it leads, sometimes from any node.
pub async fn fetcher(shared: Arc<Shared>, partitions: u32, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..MAX_REQUESTS {
        if shared.stopped() {
            break;
        }
        let partition = rng.random_range(0..partitions);
        let node = match shared.leader(partition, &mut rng) {
            Some(leader) if rng.random_bool(0.9) => leader,
            _ => shared.nodes[rng.random_range(0..shared.nodes.len())].clone(),
        };
        let known = lock(&shared.high_watermarks)[partition as usize];
        let request = FetchRequest {
            topic: TOPIC.into(),
            partition,
            offset: rng.random_range(0..=known),
            max_bytes: rng.random_range(64..4096),
            max_wait: Duration::from_millis(rng.random_range(0..50)),
        };
        let offset = request.offset;
        let answer = tokio::time::timeout(Duration::from_secs(1), node.fetch(request)).await;
        if let Ok(Ok(response)) = answer {
            {
                let mut seen = lock(&shared.high_watermarks);
                let hw = &mut seen[partition as usize];
                *hw = (*hw).max(response.high_watermark);
            }
            let batches = response.batches.into_iter().map(to_batch).collect();
            shared.history().fetched(FetchOp {
                partition: PartitionId::new(TOPIC, partition),
                replica: node.node_id(),
                offset,
                high_watermark: response.high_watermark,
                batches,
            });
        }
        pause(&mut rng).await;
    }
}

/// A stored batch as the checker sees it: its records split out (a batch that does
/// not split is kept whole, so the checker reports it as a foreign record).
pub fn to_batch(batch: chronik_cluster::RecordBatch) -> Batch {
    let raw = batch.records.clone();
    Batch {
        base_offset: batch.base_offset,
        last_offset: batch.last_offset,
        records: decode_records(batch.records).unwrap_or_else(|| vec![raw]),
    }
}
