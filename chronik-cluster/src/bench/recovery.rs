//! `bench recovery`: one chronik node with the real write-ahead log; produce until
//! the log holds `--wal-mb` MB, stop the node, start it again over its data and time
//! until it serves (every partition led and accepting a produce). Beside it, the
//! physical floor: reading the same log files sequentially. With `--cold` both start
//! with the log's files dropped from the page cache (GNU `dd iflag=nocache`).

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
    /// Drop the log's files from the page cache before the restart and before the raw
    /// read (GNU `dd iflag=nocache`; reported as `page_cache` in the settings).
    #[arg(long)]
    cold: bool,
}

/// Files under `dir` (recursively).
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => files(&e.path()),
            Ok(_) => vec![e.path()],
            Err(_) => Vec::new(),
        })
        .collect()
}

/// Asks GNU dd to drop every file under `dir` from the page cache; false if it could
/// not (no GNU dd, or a file it could not open).
fn drop_page_cache(dir: &Path) -> bool {
    files(dir).iter().all(|file| {
        let mut input = std::ffi::OsString::from("if=");
        input.push(file);
        std::process::Command::new("dd")
            .arg(input)
            .args(["iflag=nocache", "count=0", "status=none"])
            .status()
            .is_ok_and(|status| status.success())
    })
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
    let cold = args.cold && drop_page_cache(&wal);
    report.setting("page_cache", if cold { "cold" } else { "warm" });
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
    if cold {
        drop_page_cache(&wal);
    }
    let read = Instant::now();
    let raw_bytes = read_all(&wal)?;
    let raw_secs = read.elapsed().as_secs_f64();
    let mb = wal_bytes as f64 / 1e6;
    report.add("ours", "wal_mb", mb);
    report.add("ours", "fill_secs", fill_secs);
    report.add("ours", "start_ms", opened.as_secs_f64() * 1e3);
    report.add("ours", "serving_ms", serving.as_secs_f64() * 1e3);
    // Until serving: the log replayed, the partitions reopened, elections held.
    report.add("ours", "mb_per_sec", mb / serving.as_secs_f64().max(1e-9));
    // Until `Node::start` returned: the log replayed and the metadata group restored.
    report.add(
        "ours",
        "start_mb_per_sec",
        mb / opened.as_secs_f64().max(1e-9),
    );
    report.add("raw_read", "wal_mb", raw_bytes as f64 / 1e6);
    report.add("raw_read", "elapsed_ms", raw_secs * 1e3);
    report.add(
        "raw_read",
        "mb_per_sec",
        raw_bytes as f64 / 1e6 / raw_secs.max(1e-9),
    );
    Ok(())
}
