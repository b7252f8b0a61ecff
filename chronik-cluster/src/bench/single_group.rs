//! `bench single-group`: one raft group, 3 nodes in this process, memory engine,
//! in-process network; N closed-loop clients each propose an 8-byte entry and wait
//! until it is applied before the next. Ops/s and latency per client count, for our
//! scheduler and the naive driver. The common raft-library benchmark shape.

use std::time::Duration;

use super::load::{self, Shape};
use super::raftlevel::{local_endpoints, local_network, AnyCluster};
use super::{BenchError, Common, Report};

/// Flags of `bench single-group`.
#[derive(Debug, Clone, clap::Args)]
pub struct SingleGroupArgs {
    /// Client counts, one run each.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 64, 1024])]
    clients: Vec<usize>,
    /// Bytes per proposed entry.
    #[arg(long, default_value_t = 8)]
    entry_bytes: usize,
}

/// Runs the scenario (on a blocking thread: it owns runtimes).
pub fn run(common: &Common, args: SingleGroupArgs) -> Result<Report, BenchError> {
    if args.clients.contains(&0) || args.entry_bytes == 0 {
        return Err(BenchError::Usage(
            "--clients and --entry-bytes must be at least 1".into(),
        ));
    }
    let timing = common.timing();
    let duration = common.duration(2.0);
    let mut report = Report::new("single-group");
    report.setting("nodes", 3);
    report.setting("engine", "memory");
    report.setting("network", "in-process");
    report.setting("entry_bytes", args.entry_bytes as u64);
    report.setting("duration_secs", duration.as_secs_f64());
    report.setting(
        "clients",
        args.clients.iter().map(|&c| c as u64).collect::<Vec<_>>(),
    );
    timing.describe(&mut report);
    // The clients run on a runtime of their own, so neither driver lends them threads.
    let clients_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-client")
        .enable_time()
        .build()?;
    for driver in common.drivers() {
        let net = local_network();
        let cluster = AnyCluster::start(driver, local_endpoints(&net), timing, None, false)?;
        cluster.elect(1, Duration::from_secs(30))?;
        let mut acked = 0;
        for &count in &args.clients {
            let clients: Vec<_> = (0..count)
                .map(|_| cluster.client(1, vec![0; args.entry_bytes]))
                .collect();
            let shape = Shape {
                warmup: Duration::from_millis(300).min(duration),
                duration,
                rate: None,
                max_calls: None,
            };
            let what = format!("single-group {} {count} clients", driver.name());
            let outcome = clients_runtime.block_on(load::run(clients, shape, &what))?;
            acked += outcome.acked;
            let section = format!("{}_c{count}", driver.name());
            report.add(&section, "ops_per_sec", outcome.per_sec());
            report.add(&section, "p50_us", outcome.quantile_ms(0.5) * 1000.0);
            report.add(&section, "p99_us", outcome.quantile_ms(0.99) * 1000.0);
            report.add(&section, "p999_us", outcome.quantile_ms(0.999) * 1000.0);
            report.add(&section, "errors", outcome.errors as f64);
            report.add(&section, "cpu_percent", outcome.cpu_percent);
            report.add(&section, "nodes_behind", cluster.nodes_behind(acked) as f64);
        }
        drop(cluster);
    }
    clients_runtime.shutdown_timeout(Duration::from_secs(5));
    for &count in &args.clients {
        report.ratios(
            &format!("ours_c{count}"),
            &format!("naive_c{count}"),
            &["ops_per_sec"],
        );
    }
    Ok(report)
}
