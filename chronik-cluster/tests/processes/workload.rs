//! Producers (plain and idempotent) and fetchers over the gRPC client, recording every
//! attempt and every answer in a history for the checker.
//!
//! The client gets a 1 ms retry deadline, so each call makes exactly one attempt: a
//! plain produce retried inside the client after an ambiguous failure could land twice,
//! which is Kafka's at-least-once, not a bug. Retries happen here, recorded (an
//! idempotent retry reuses its sequence, a plain retry sends new records), and each
//! task routes with a client of its own ([`Route`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use chronik_cluster::client::{ChronikClient, ClientError};
use chronik_cluster::{
    decode_records, encode_records, FetchRequest, ProduceRequest, ProduceResponse, ProducerIdentity,
};
use chronik_cluster_tests::history::{Batch, FetchOp, History, OpId, PartitionId, ProduceOutcome};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The topic every process test writes.
pub const TOPIC: &str = "procs";
/// How long the node may take to commit a produce.
const PRODUCE_TIMEOUT: Duration = Duration::from_millis(1500);
/// Requests per client at most (clients also stop when told to).
const MAX_REQUESTS: usize = 100_000;

/// What the clients share.
pub struct Shared {
    /// Every node's client address.
    pub addresses: Vec<String>,
    pub history: Mutex<History>,
    pub stop: AtomicBool,
    /// Answers no correct cluster gives (each a test failure).
    pub unexpected: Mutex<Vec<String>>,
    /// Refusals because a node's log was full.
    pub storage_full: Mutex<Vec<String>>,
    /// The last answer that was not an acknowledgement (for failure messages).
    pub last_error: Mutex<String>,
    high_watermarks: Mutex<Vec<u64>>,
}

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Shared {
    /// The shared state of clients of the nodes at `addresses`.
    pub fn new(addresses: &[String], partitions: u32) -> Arc<Shared> {
        Arc::new(Shared {
            addresses: addresses.to_vec(),
            history: Mutex::new(History::new()),
            stop: AtomicBool::new(false),
            unexpected: Mutex::new(Vec::new()),
            storage_full: Mutex::new(Vec::new()),
            last_error: Mutex::new(String::new()),
            high_watermarks: Mutex::new(vec![0; partitions as usize]),
        })
    }

    pub fn history(&self) -> MutexGuard<'_, History> {
        lock(&self.history)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sends one produce through `route` and records what became of it. Returns the
    /// outcome.
    pub async fn produce(
        &self,
        route: &mut Route,
        op: OpId,
        partition: u32,
        records: &[Bytes],
        producer: Option<ProducerIdentity>,
    ) -> ProduceOutcome {
        let Some(client) = route.client(&self.addresses).await else {
            // Nothing was sent.
            *lock(&self.last_error) = format!("p{partition}: no node reachable");
            self.history().complete(op, ProduceOutcome::Failed);
            return ProduceOutcome::Failed;
        };
        let mut request = ProduceRequest::new(
            TOPIC,
            partition,
            encode_records(records),
            records.len() as u32,
        );
        request.timeout = PRODUCE_TIMEOUT;
        request.producer = producer;
        let answer = tokio::time::timeout(PRODUCE_TIMEOUT * 2, client.produce(request)).await;
        match &answer {
            Ok(Err(e @ ClientError::StorageFull { .. })) => {
                lock(&self.storage_full).push(e.to_string());
            }
            Ok(Err(e)) => *lock(&self.last_error) = format!("p{partition}: {e}"),
            Err(_) => *lock(&self.last_error) = format!("p{partition}: no answer"),
            Ok(Ok(_)) => {}
        }
        let (outcome, unexpected) = classify(answer, partition);
        self.history().complete(op, outcome);
        if let Some(what) = unexpected {
            lock(&self.unexpected).push(what);
        }
        if !matches!(outcome, ProduceOutcome::Acknowledged { .. }) {
            route.failed();
        }
        outcome
    }
}

/// A client of one task's own. The client gets a 1 ms retry deadline, so it never
/// follows a leader hint and keeps what it learned when it connected: after a failure
/// the task connects anew, asking another node first (the node asked first tells the
/// client who leads what).
#[derive(Default)]
pub struct Route {
    client: Option<ChronikClient>,
    turn: usize,
}

impl Route {
    /// The client, connecting if there is none (None when no node answers in time).
    pub async fn client(&mut self, addresses: &[String]) -> Option<&ChronikClient> {
        if self.client.is_none() {
            let n = addresses.len();
            let order: Vec<String> = (0..n)
                .map(|i| addresses[(self.turn + i) % n].clone())
                .collect();
            self.turn += 1;
            let connect = ChronikClient::connect(&order);
            self.client = match tokio::time::timeout(Duration::from_secs(2), connect).await {
                Ok(Ok(client)) => Some(client.with_timeout(Duration::from_millis(1))),
                _ => None,
            };
        }
        self.client.as_ref()
    }

    /// Drops the client after a failure: the next call connects anew.
    pub fn failed(&mut self) {
        self.client = None;
    }
}

/// Kafka's DUPLICATE_SEQUENCE_NUMBER: the batch was written already.
const DUPLICATE_SEQUENCE: i16 = 46;

/// What a produce's answer says about its records.
fn classify(
    answer: Result<Result<ProduceResponse, ClientError>, tokio::time::error::Elapsed>,
    partition: u32,
) -> (ProduceOutcome, Option<String>) {
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
            let what = format!("p{partition}: acknowledged with offsets {r:?}");
            return (ProduceOutcome::Unknown, Some(what));
        }
        Ok(Err(e)) => e,
    };
    match error.kafka_code() {
        // Refused before the entry reached the log (not the leader, too few replicas,
        // the log full, the catalogue not caught up), or the entry was overwritten.
        Some(6 | 19 | 56 | 3) => (ProduceOutcome::Failed, None),
        Some(DUPLICATE_SEQUENCE) => (ProduceOutcome::AlreadyWritten, None),
        // Timed out or busy (one code for both), shutting down: may still land.
        Some(7 | 8) | None => (ProduceOutcome::Unknown, None),
        Some(_) => (
            ProduceOutcome::Unknown,
            Some(format!("p{partition}: {error}")),
        ),
    }
}

async fn pause(rng: &mut StdRng) {
    tokio::time::sleep(Duration::from_millis(rng.random_range(2..15))).await;
}

fn next_records(rng: &mut StdRng, partition: u32, client: usize, n: &mut u64) -> Vec<Bytes> {
    (0..rng.random_range(1..=3))
        .map(|_| {
            *n += 1;
            Bytes::from(format!("p{partition}-c{client}-{n}"))
        })
        .collect()
}

/// A plain producer: every attempt carries new records.
pub async fn plain_producer(shared: Arc<Shared>, partition: u32, client: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut route = Route::default();
    let mut n = 0;
    for _ in 0..MAX_REQUESTS {
        if shared.stopped() {
            break;
        }
        let records = next_records(&mut rng, partition, client, &mut n);
        let id = PartitionId::new(TOPIC, partition);
        let op = shared.history().produce_invoked(id, records.clone());
        let outcome = shared
            .produce(&mut route, op, partition, &records, None)
            .await;
        if !matches!(outcome, ProduceOutcome::Acknowledged { .. }) {
            pause(&mut rng).await;
        }
    }
}

/// An idempotent producer: a batch is retried with its sequence until acknowledged, so
/// it must land exactly once.
pub async fn idempotent_producer(shared: Arc<Shared>, partition: u32, client: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut route = Route::default();
    let producer_id = 5_000 + i64::from(partition) * 100 + client as i64;
    let (mut n, mut sequence, mut requests) = (0, 0i32, 0);
    'batches: while requests < MAX_REQUESTS && !shared.stopped() {
        let records = next_records(&mut rng, partition, client, &mut n);
        let mut first: Option<OpId> = None;
        while requests < MAX_REQUESTS {
            requests += 1;
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
            let sent = shared.produce(&mut route, op, partition, &records, Some(identity));
            match sent.await {
                ProduceOutcome::Acknowledged { .. } | ProduceOutcome::AlreadyWritten => {
                    sequence += records.len() as i32;
                    continue 'batches;
                }
                // An unsettled batch stays unknown; no later batch follows it.
                _ if shared.stopped() => break 'batches,
                _ => pause(&mut rng).await,
            }
        }
    }
}

/// Reads random partitions at random offsets up to the highest high watermark seen.
pub async fn fetcher(shared: Arc<Shared>, partitions: u32, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut route = Route::default();
    for _ in 0..MAX_REQUESTS {
        if shared.stopped() {
            break;
        }
        let Some(client) = route.client(&shared.addresses).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let partition = rng.random_range(0..partitions);
        let known = lock(&shared.high_watermarks)[partition as usize];
        let request = FetchRequest {
            topic: TOPIC.into(),
            partition,
            offset: rng.random_range(0..=known),
            max_bytes: rng.random_range(64..4096),
            max_wait: Duration::from_millis(rng.random_range(0..50)),
        };
        let offset = request.offset;
        let answer = tokio::time::timeout(Duration::from_secs(1), client.fetch(request));
        if let Ok(Ok(response)) = answer.await {
            {
                let mut seen = lock(&shared.high_watermarks);
                let hw = &mut seen[partition as usize];
                *hw = (*hw).max(response.high_watermark);
            }
            shared.history().fetched(FetchOp {
                partition: PartitionId::new(TOPIC, partition),
                // The client follows leaders: which node answered is not known here.
                replica: 0,
                offset,
                high_watermark: response.high_watermark,
                batches: response.batches.into_iter().map(to_batch).collect(),
            });
        } else {
            route.failed();
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(5..30))).await;
    }
}

/// A stored batch as the checker sees it (a batch that does not split is kept whole,
/// so the checker reports it as a foreign record).
pub fn to_batch(batch: chronik_cluster::RecordBatch) -> Batch {
    let raw = batch.records.clone();
    Batch {
        base_offset: batch.base_offset,
        last_offset: batch.last_offset,
        records: decode_records(batch.records).unwrap_or_else(|| vec![raw]),
    }
}
