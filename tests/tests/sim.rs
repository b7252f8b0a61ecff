//! Deterministic simulation of whole clusters (`chronik_cluster_tests::sim`).
//!
//! `seeds` runs `SIM_SEEDS` seeds (default 200) from `SIM_FIRST_SEED` (default 1) on
//! every core; a failure prints the seed and the command that replays it. `replay`
//! runs the one seed in `SIM_SEED` with the verdict of every step's counts.
//! `a_seed_replays_exactly` runs one seed twice and compares everything.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use chronik_cluster_tests::sim::{run, SimConfig};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(no message)".to_owned())
}

fn replay_command(seed: u64) -> String {
    format!(
        "SIM_SEED={seed} cargo test --release -p chronik-cluster-tests --test sim -- --exact replay --nocapture"
    )
}

#[test]
fn seeds() {
    let first = env_u64("SIM_FIRST_SEED", 1);
    let count = env_u64("SIM_SEEDS", 200);
    let next = AtomicU64::new(first);
    let failures = Mutex::new(Vec::new());
    let totals = Mutex::new((0usize, 0usize, 0u64, 0u64));
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= first + count {
                    break;
                }
                let config = SimConfig::for_seed(seed);
                let outcome = std::panic::catch_unwind(|| run(&config));
                let failure = match outcome {
                    Err(panic) => Some(format!("panicked: {}", panic_text(&panic))),
                    Ok(Err(error)) => Some(error.to_string()),
                    Ok(Ok(report)) => {
                        let mut t = totals.lock().unwrap();
                        t.0 += report.report.acknowledged;
                        t.1 += report.report.fetches;
                        t.2 += report.stats.crashes;
                        t.3 += report.stats.network_faults;
                        report.failure()
                    }
                };
                if let Some(why) = failure {
                    eprintln!(
                        "seed {seed} FAILED: {why}\n  replay: {}",
                        replay_command(seed)
                    );
                    failures.lock().unwrap().push(seed);
                }
            });
        }
    });
    let (acked, fetches, crashes, faults) = *totals.lock().unwrap();
    eprintln!(
        "{count} seeds from {first} in {:.1} s: {acked} acknowledged produces, {fetches} fetches, {crashes} crashes, {faults} network faults",
        started.elapsed().as_secs_f64()
    );
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "failing seeds: {failures:?}; replay one with: {}",
        replay_command(failures[0])
    );
}

#[test]
fn replay() {
    // RUST_LOG=raft=debug,raft_multi=debug shows what every replica did.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let seed = env_u64("SIM_SEED", 1);
    let report = run(&SimConfig::for_seed(seed)).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    eprintln!("{}", report.summary());
    assert!(report.failure().is_none(), "{}", report.summary());
}

/// Runs that once failed, with the settings they failed under:
/// - 576, 720, 2244: a removed node that had become leader before its removal was
///   applied panicked raft-rs (raft-multi now steps it down between readies);
/// - 336: a leader that lost leadership kept a membership change's caller waiting
///   for an entry that was gone (now answered `Unknown`);
/// - 1082: a follower that had committed past a snapshot refused it as stale without
///   telling raft, and the leader resent it forever (now raft answers).
/// - 1588: a replica restored from a leader's snapshot newer than the raft snapshot
///   crashed before raft applied the membership changes in between; its restart
///   started raft at the state machine's index and never learned them, and the group
///   lost a voter (now raft starts at the stored configuration's index).
/// - 857: the commit index a `LightReady` carries was never stored; a compaction up
///   to what it committed passed the stored commit and the restart refused the log.
/// - 1820: a pipelined ready installing a raft snapshot left raft's applied index
///   behind the log's new first index until it was durable, and an election timeout
///   meanwhile read entries the snapshot had removed (now such a round waits).
#[test]
fn regressions() {
    let now = |seed: u64| {
        let c = SimConfig::for_seed(seed);
        (seed, c.nodes, c.partitions, c.workers)
    };
    let old = [(576, 5, 2, 1), (720, 5, 2, 1), (2244, 5, 2, 1)];
    for (seed, nodes, partitions, workers) in
        old.into_iter()
            .chain([now(336), now(1082), now(1588), now(857), now(1820)])
    {
        let mut config = SimConfig::for_seed(seed);
        config.nodes = nodes;
        config.partitions = partitions;
        config.workers = workers;
        let report = run(&config).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(report.failure().is_none(), "{}", report.summary());
    }
}

#[test]
fn a_seed_replays_exactly() {
    let config = SimConfig::for_seed(3).steps(1_000);
    let a = run(&config).unwrap();
    let b = run(&config).unwrap();
    assert_eq!(a.steps, b.steps);
    assert_eq!(a.stats, b.stats);
    assert_eq!(
        a.fingerprint,
        b.fingerprint,
        "{}\n{}",
        a.summary(),
        b.summary()
    );
    // And the seed matters: another seed runs differently.
    let c = run(&SimConfig::for_seed(6).steps(1_000)).unwrap();
    assert_ne!(a.fingerprint, c.fingerprint);
}
