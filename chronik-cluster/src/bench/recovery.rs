//! `bench recovery`: one chronik node with the real write-ahead log; produce until
//! the log holds `--wal-mb` MB, stop the node, start it again over its data and time
//! until it serves (every partition led and accepting a produce). Beside it, the
//! physical floor: reading the same log files sequentially (warm page cache, like the
//! restart: neither drops the cache).

use std::path::Path;
use std::time::{Duration, Instant};

use chronik_cluster::TopicSpec;

use super::load::{self, Shape};
use super::nodes::{Nodes, Producer};
use super::produce::{batch, TOPIC};
use super::{BenchError, Common, Report};

/// Flags of `bench recovery`.
#[derive(Debug, Clone, clap::Args)]
pub struct RecoveryArgs {
    /// Size of the write-ahead log to recover, MB.
    #[arg(long, default_value_t = 64)]
    wal_mb: u64,
    /// Partitions the log is spread over.
    #[arg(long, default_value_t = 8)]
    partitions: u32,
}

/// Bytes of the files under `dir` (recursively).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Reads every file under `dir` once; the bytes read.
fn read_all(dir: &Path) -> Result<u64, BenchError> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)?.flatten() {
        let path = entry.path();
        total += if path.is_dir() {
            read_all(&path)?
        } else {
            std::fs::read(&path)?.len() as u64
        };
    }
    Ok(total)
}

/// Runs the scenario.
pub async fn run(common: &Common, args: RecoveryArgs) -> Result<Report, BenchError> {
    if args.partitions == 0 || args.wal_mb == 0 {
        return Err(BenchError::Usage(
            "--partitions and --wal-mb must be at least 1".into(),
        ));
    }
    let timing = common.timing();
    let mut report = Report::new("recovery");
    report.setting("nodes", 1);
    report.setting("partitions", args.partitions);
    report.setting("target_wal_mb", args.wal_mb);
    report.setting("page_cache", "warm");
    timing.describe(&mut report);
    let dir = common.temp_dir()?;
    let mut nodes = Nodes::start(1, dir.path(), timing).await?;
    let outcome = recovery(&mut nodes, &args, dir.path(), &mut report).await;
    nodes.shutdown().await;
    outcome?;
    report.ratios("ours", "raw_read", &["mb_per_sec"]);
    Ok(report)
}

async fn recovery(
    nodes: &mut Nodes,
    args: &RecoveryArgs,
    dir: &Path,
    report: &mut Report,
) -> Result<(), BenchError> {
    nodes
        .create_topic(TopicSpec::new(TOPIC, args.partitions, 1))
        .await?;
    let wal = dir.join("node-1").join("wal");
    let target = args.wal_mb * 1_000_000;
    let records = batch(100, 1000);
    let filled = Instant::now();
    // Bounded: 20 rounds of 2 s at most.
    for _ in 0..20 {
        if dir_bytes(&wal) >= target {
            break;
        }
        let producers: Vec<Producer> = (0..args.partitions * 4)
            .map(|i| Producer {
                nodes: nodes.live(),
                topic: TOPIC.to_owned(),
                partition: i % args.partitions,
                records: records.clone(),
                count: 100,
                acks: chronik_cluster::Acks::All,
                hint: 0,
            })
            .collect();
        let shape = Shape {
            warmup: Duration::ZERO,
            duration: Duration::from_secs(2),
            rate: None,
            max_calls: Some((target.saturating_sub(dir_bytes(&wal)) / 100_000).max(1)),
        };
        load::run(producers, shape, "recovery: filling the log").await?;
    }
    let fill_secs = filled.elapsed().as_secs_f64();
    nodes.stop(1).await;
    let wal_bytes = dir_bytes(&wal);
    let progress = load::bar(1, "recovery: restarting");
    let started = Instant::now();
    nodes.restart(1).await?;
    let opened = started.elapsed();
    nodes
        .wait(
            "every partition led after the restart",
            Duration::from_secs(120),
            |c| {
                c.describe_topic(TOPIC)
                    .is_ok_and(|t| t.partitions.iter().all(|p| p.leader.is_some()))
            },
        )
        .await?;
    let mut producers: Vec<Producer> = (0..args.partitions)
        .map(|partition| Producer {
            nodes: nodes.live(),
            topic: TOPIC.to_owned(),
            partition,
            records: batch(1, 100),
            count: 1,
            acks: chronik_cluster::Acks::All,
            hint: 0,
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    for producer in &mut producers {
        // Bounded by `deadline`.
        while producer.produce().await.is_err() {
            if Instant::now() > deadline {
                return Err(BenchError::Timeout {
                    what: "a produce after the restart",
                    seconds: 60.0,
                });
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let serving = started.elapsed();
    progress.finish_and_clear();
    let read = Instant::now();
    let raw_bytes = read_all(&wal)?;
    let raw_secs = read.elapsed().as_secs_f64();
    let mb = wal_bytes as f64 / 1e6;
    report.add("ours", "wal_mb", mb);
    report.add("ours", "fill_secs", fill_secs);
    report.add("ours", "start_ms", opened.as_secs_f64() * 1e3);
    report.add("ours", "serving_ms", serving.as_secs_f64() * 1e3);
    report.add("ours", "mb_per_sec", mb / serving.as_secs_f64().max(1e-9));
    report.add("raw_read", "wal_mb", raw_bytes as f64 / 1e6);
    report.add("raw_read", "elapsed_ms", raw_secs * 1e3);
    report.add(
        "raw_read",
        "mb_per_sec",
        raw_bytes as f64 / 1e6 / raw_secs.max(1e-9),
    );
    Ok(())
}
