//! Real processes: `chronik-cluster node` processes on loopback with their write-ahead
//! logs, killed with SIGKILL and restarted on the same data dirs and ports while
//! clients produce (`acks=all`, plain and idempotent) and fetch; then every replica's
//! final log is checked against the history (`chronik_cluster_tests::history`).
//!
//! `PROCESS_TEST_SECS=n` runs the faults for `n` seconds (60 by default);
//! `PROCESS_TEST_NODES=n` runs 3 to 5 nodes (3 by default; partitions keep 3 replicas);
//! `SEED=n` replays a run's schedule of kills (not its timing);
//! `CHRONIK_CLUSTER_BIN=path` runs another build of the binary (a copy, say, that a
//! concurrent `cargo build` cannot replace during a long run).

#[path = "../common.rs"]
mod common;
mod procs;
mod quota;
mod verify;
mod workload;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chronik_cluster::client::ChronikClient;
use chronik_cluster::TopicSpec;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use procs::Processes;
use verify::{
    barrier, converge, describe, leaders_of, read_every_replica, statuses, wait_for, WAIT,
};
use workload::{fetcher, idempotent_producer, plain_producer, Shared, TOPIC};

/// Replicas per partition.
const REPLICAS: usize = 3;
const PARTITIONS: u32 = 3;

/// Node processes: `PROCESS_TEST_NODES` (3 to 5), 3 by default.
fn nodes() -> usize {
    let n = env_or("PROCESS_TEST_NODES", REPLICAS as u64) as usize;
    assert!((3..=5).contains(&n), "PROCESS_TEST_NODES must be 3, 4 or 5");
    n
}

/// `name` from the environment as a number, else `default`.
fn env_or(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => match text.trim().parse() {
            Ok(n) => n,
            Err(_) => panic!("{name}={text:?} is not a number"),
        },
        Err(_) => default,
    }
}

/// Prints the seed and the replay command if the test panics.
struct SeedGuard(u64, &'static str);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "FAILED with seed {seed}; replay: SEED={seed} cargo test -p chronik-cluster \
                 --test processes {test}",
                seed = self.0,
                test = self.1
            );
        }
    }
}

fn seed() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    env_or("SEED", now % 1_000_000)
}

/// Starts the processes, waits for them, creates the topic and waits for its leaders.
async fn start(quotas: &[u64], partitions: u32) -> (Processes, ChronikClient) {
    let mut procs = Processes::start(quotas);
    procs.wait_all_up().await.unwrap();
    let admin = ChronikClient::connect(&procs.client_addresses())
        .await
        .unwrap()
        .with_timeout(WAIT);
    admin
        .create_topic(TopicSpec::new(TOPIC, partitions, REPLICAS as u32))
        .await
        .unwrap();
    wait_for("a leader for every partition", WAIT, || async {
        let all = statuses(&procs).await;
        (0..partitions)
            .all(|p| !leaders_of(&all, p).is_empty())
            .then_some(())
    })
    .await
    .unwrap();
    (procs, admin)
}

/// Time between restarts of every node at once (the first comes halfway through a
/// shorter run).
const ALL_AT_ONCE_EVERY: Duration = Duration::from_secs(30);

/// Kills random nodes (one at a time, each restarted before the next) for `length`,
/// and every node at once halfway through or every 30 s, whichever comes first.
/// Returns what it did.
async fn faults(procs: &mut Processes, length: Duration, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut next_all = (length / 2).min(ALL_AT_ONCE_EVERY);
    let mut done = Vec::new();
    while started.elapsed() < length {
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..2_000))).await;
        let at = started.elapsed();
        if at >= next_all {
            next_all += ALL_AT_ONCE_EVERY;
            for id in procs.ids() {
                procs.kill(id);
            }
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..1_000))).await;
            for id in procs.ids() {
                procs.spawn(id);
            }
            procs.wait_all_up().await.unwrap();
            done.push(format!("{at:.1?}: killed and restarted every node"));
            continue;
        }
        let victim = rng.random_range(1..=procs.ids().len() as u64);
        let down = Duration::from_millis(rng.random_range(50..2_500));
        procs.kill(victim);
        tokio::time::sleep(down).await;
        procs.spawn(victim);
        procs.wait_up(victim).await.unwrap();
        done.push(format!("{at:.1?}: killed node {victim}, down {down:.1?}"));
    }
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkilled_nodes_lose_no_acknowledged_record() {
    let seed = seed();
    let _guard = SeedGuard(seed, "sigkilled_nodes_lose_no_acknowledged_record");
    let length = Duration::from_secs(env_or("PROCESS_TEST_SECS", 60));
    let nodes = nodes();
    println!("seed {seed}; {nodes} nodes; faults for {length:?}");
    let started = Instant::now();
    let (mut procs, admin) = start(&vec![0; nodes], PARTITIONS).await;
    let shared = Shared::new(&procs.client_addresses(), PARTITIONS);
    let mut tasks = Vec::new();
    let mut client_seed = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut next_seed = || {
        client_seed = client_seed.wrapping_add(1);
        client_seed
    };
    for p in 0..PARTITIONS {
        tasks.push(tokio::spawn(plain_producer(
            shared.clone(),
            p,
            0,
            next_seed(),
        )));
        let task = idempotent_producer(shared.clone(), p, 1, next_seed());
        tasks.push(tokio::spawn(task));
    }
    for _ in 0..2 {
        tasks.push(tokio::spawn(fetcher(
            shared.clone(),
            PARTITIONS,
            next_seed(),
        )));
    }
    let done = faults(&mut procs, length, seed).await;
    shared.stop.store(true, Ordering::Relaxed);
    for task in tasks {
        match tokio::time::timeout(WAIT, task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("a client panicked: {e}"),
            Err(_) => panic!("a client did not stop within {WAIT:?}"),
        }
    }
    let fail = |what: String| -> ! { panic!("seed {seed}: {what}; faults: {done:#?}") };
    procs.wait_all_up().await.unwrap_or_else(|e| fail(e));
    let mut at_least = Vec::new();
    for p in 0..PARTITIONS {
        match barrier(&shared, p).await {
            Ok(hw) => at_least.push(hw),
            Err(e) => fail(format!("{e}\n{}", describe(&procs, p).await)),
        }
    }
    converge(&procs, REPLICAS, &at_least)
        .await
        .unwrap_or_else(|e| fail(e));
    let logs = read_every_replica(&procs, &admin, PARTITIONS)
        .await
        .unwrap_or_else(|e| fail(e));
    let report = shared.history().check(&logs);
    println!(
        "seed {seed}: {report}; {} kills ({} events); {:?} in all",
        procs.kills,
        done.len(),
        started.elapsed()
    );
    if !report.is_ok() {
        fail(report.to_string());
    }
    let unexpected = workload::lock(&shared.unexpected).clone();
    if !unexpected.is_empty() {
        fail(format!("unexpected answers: {unexpected:#?}"));
    }
    if report.acknowledged == 0 || report.fetches == 0 || procs.kills < nodes {
        fail(format!("the run did too little: {report}"));
    }
}
