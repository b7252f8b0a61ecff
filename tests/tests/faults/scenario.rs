//! One fault run: workload and faults, then the final logs and the check.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::clients::{fetcher, idempotent_producer, plain_producer, Shared};
use crate::harness::start;
use crate::read::{barrier, converge, read_every_replica};
use crate::schedule::{self, Fault};

/// What a run does.
pub struct Scenario {
    pub partitions: u32,
    pub plain_producers: usize,
    pub idempotent_producers: usize,
    pub fetchers: usize,
    pub faults: &'static [Fault],
    pub duration: Duration,
}

impl Scenario {
    /// Runs it with `seed` and panics (printing the faults) on any violation.
    pub async fn run(self, seed: u64) {
        let started = std::time::Instant::now();
        let (cluster, nodes) = start(seed, self.partitions).await;
        let shared = Shared::new(nodes.clone(), self.partitions);
        let mut tasks = Vec::new();
        let mut client_seed = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut next_seed = || {
            client_seed = client_seed.wrapping_add(1);
            client_seed
        };
        for p in 0..self.partitions {
            for c in 0..self.plain_producers {
                let task = plain_producer(shared.clone(), p, c, next_seed());
                tasks.push(tokio::spawn(task));
            }
            for c in 0..self.idempotent_producers {
                let client = self.plain_producers + c;
                let task = idempotent_producer(shared.clone(), p, client, next_seed());
                tasks.push(tokio::spawn(task));
            }
        }
        for _ in 0..self.fetchers {
            let task = fetcher(shared.clone(), self.partitions, next_seed());
            tasks.push(tokio::spawn(task));
        }
        let network = cluster.network().clone();
        let faults = schedule::run(
            &network,
            &nodes,
            self.partitions,
            self.faults,
            self.duration,
            seed,
        )
        .await;
        shared.stop.store(true, Ordering::Relaxed);
        for task in tasks {
            if let Err(e) = task.await {
                panic!("a client panicked: {e}; faults: {faults:#?}");
            }
        }
        let fail = |what: String| -> ! { panic!("seed {seed}: {what}; faults: {faults:#?}") };
        let mut at_least = Vec::new();
        for p in 0..self.partitions {
            at_least.push(barrier(&shared, p).await.unwrap_or_else(|e| fail(e)));
        }
        converge(&nodes, &at_least)
            .await
            .unwrap_or_else(|e| fail(e));
        let (logs, coverage) = read_every_replica(&network, &nodes, self.partitions)
            .await
            .unwrap_or_else(|e| fail(e));
        cluster.shutdown().await;
        let report = shared.history().check(&logs);
        println!(
            "seed {seed}: {report}; replicas read {coverage:?}; {:?}",
            started.elapsed()
        );
        if !report.is_ok() {
            fail(report.to_string());
        }
        let unexpected = shared.unexpected();
        if !unexpected.is_empty() {
            fail(format!("unexpected answers: {unexpected:#?}"));
        }
        if report.acknowledged == 0 || report.fetches == 0 {
            fail(format!("the workload did nothing: {report}"));
        }
    }
}
