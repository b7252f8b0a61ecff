//! `bench idle`: N partitions (raft groups) x 3 replicas on 3 nodes in this process,
//! nothing proposed, on the in-process network with memory engines and the counting
//! state machine. What they cost once elected: CPU (`/proc/self/stat`), resident
//! memory per replica (`/proc/self/statm` after minus before), and transport frames
//! per node pair per heartbeat interval (the transports' own counters). Each driver
//! runs in a child process of its own (this binary with `--driver`), so CPU and memory
//! figures do not mix.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use raft_transport::Transport;

use super::probe::{resident_bytes, CpuClock};
use super::raftlevel::{local_endpoints, local_network, wait_until, AnyCluster, NODES};
use super::{BenchError, Common, Driver, Report};

/// Named figures of one driver.
type Figures = Vec<(&'static str, f64)>;

/// Flags of `bench idle`.
#[derive(Debug, Clone, clap::Args)]
pub struct IdleArgs {
    /// Partitions (raft groups), 3 replicas each.
    #[arg(long, default_value_t = 1000)]
    partitions: u64,
    /// `raft`: bare raft groups, both drivers; `node`: real chronik nodes (gRPC, the
    /// write-ahead log, partition state machines), ours only.
    #[arg(long, default_value = "raft")]
    stack: Stack,
}

/// `--stack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Stack {
    /// Raft groups with the counting machine on the in-process network.
    Raft,
    /// Chronik nodes over loopback gRPC.
    Node,
}

/// Runs the scenario: each driver in a child process, or the one `--driver` names
/// here.
pub async fn run(common: &Common, args: IdleArgs) -> Result<Report, BenchError> {
    if args.partitions == 0 {
        return Err(BenchError::Usage("--partitions must be at least 1".into()));
    }
    let timing = common.timing();
    let window = common.duration(3.0);
    let mut report = Report::new("idle");
    report.setting("nodes", NODES);
    report.setting("partitions", args.partitions);
    report.setting("replicas", 3);
    report.setting("window_secs", window.as_secs_f64());
    timing.describe(&mut report);
    if args.stack == Stack::Node {
        report.setting("stack", "node");
        report.setting("engine", "wal");
        report.setting("network", "grpc-loopback");
        for (name, value) in super::idle_nodes::measure(common, args.partitions).await? {
            report.add("ours", name, value);
        }
        report.note(
            "cpu_percent: the whole process (3 nodes, their gRPC transports, tokio); \
             frames and messages: the schedulers' counters from /metrics (the transport's \
             own liveness heartbeats are not in them)",
        );
        return Ok(report);
    }
    report.setting("stack", "raft");
    report.setting("engine", "memory");
    report.setting("network", "in-process");
    if let Some(driver) = common.driver {
        let common = common.clone();
        let (section, figures) = super::blocking(move || measure(driver, &common, &args)).await?;
        for (name, value) in figures {
            report.add(section, name, value);
        }
        return Ok(report);
    }
    for driver in common.drivers() {
        let common = common.clone();
        let args = args.clone();
        let child = super::blocking(move || child(driver, &common, &args)).await?;
        for (name, value) in child {
            report.add(driver.name(), &name, value);
        }
    }
    report.ratios(
        "naive",
        "ours",
        &[
            "cpu_percent",
            "mem_bytes_per_replica",
            "mem_bytes_per_replica_end",
            "frames_per_pair_per_heartbeat",
        ],
    );
    report.note(
        "cpu_percent: the process (/proc/self/stat utime+stime over the window) minus the \
         in-process network's delivery thread (cpu_percent_network_thread: it stands in for \
         the transport, the same code under both drivers); mem_bytes_per_replica: resident \
         bytes (/proc/self/statm) after electing minus before creating the groups \
         (_end: the same at the end of the idle window)",
    );
    Ok(report)
}

/// Runs `bench idle --driver D --json` with the same settings in a child process and
/// returns the figures of its JSON line.
fn child(
    driver: Driver,
    common: &Common,
    args: &IdleArgs,
) -> Result<Vec<(String, f64)>, BenchError> {
    let failed = |message: String| BenchError::Child {
        driver: driver.name(),
        message,
    };
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["bench", "idle", "--json", "--driver", driver.name()])
        .args(["--partitions", &args.partitions.to_string()])
        .args(["--tick-ms", &common.tick_ms.to_string()])
        .args(["--workers", &common.workers.to_string()])
        .args(["--hibernate-ticks", &common.hibernate_ticks.to_string()]);
    if let Some(duration) = common.duration {
        command.args(["--duration", &duration.to_string()]);
    }
    let mut process = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(900);
    // Bounded by `deadline`; the child is killed past it.
    let status = loop {
        if let Some(status) = process.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = process.kill();
            let _ = process.wait();
            return Err(failed("no answer within 900 s".into()));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    if let Some(mut out) = process.stdout.take() {
        out.read_to_string(&mut stdout)?;
    }
    if !status.success() {
        return Err(failed(format!("exited with {status}")));
    }
    let line = stdout.lines().last().unwrap_or_default();
    let json: serde_json::Value =
        serde_json::from_str(line).map_err(|e| failed(format!("bad JSON line ({e}): {line}")))?;
    let figures = json
        .get(driver.name())
        .and_then(|v| v.as_object())
        .ok_or_else(|| failed(format!("no `{}` figures in {line}", driver.name())))?;
    Ok(figures
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
        .collect())
}

/// Frames and messages sent on each ordered node pair, from the transports' counters.
fn pair_totals(endpoints: &[Arc<dyn Transport>]) -> BTreeMap<(u64, u64), (u64, u64)> {
    let mut totals = BTreeMap::new();
    for endpoint in endpoints {
        let stats = endpoint.stats();
        for (&peer, peer_stats) in &stats.peers {
            let frames = peer_stats.frames_sent + peer_stats.heartbeats_sent;
            totals.insert(
                (endpoint.local_id(), peer),
                (frames, peer_stats.messages_sent),
            );
        }
    }
    totals
}

/// One driver, here.
fn measure(
    driver: Driver,
    common: &Common,
    args: &IdleArgs,
) -> Result<(&'static str, Figures), BenchError> {
    let timing = common.timing();
    let window = common.duration(3.0);
    let groups = args.partitions;
    let replicas = groups * NODES;
    let net = local_network();
    let endpoints = local_endpoints(&net);
    let cluster = AnyCluster::start(driver, endpoints.clone(), timing, None, false)?;
    let before = resident_bytes();
    let deadline = Duration::from_secs(60 + groups / 50);
    let progress = super::load::bar(
        3,
        &format!("idle {}: electing {groups} groups", driver.name()),
    );
    let elected = cluster.elect(groups, deadline)?;
    progress.inc(1);
    if driver == Driver::Ours && timing.hibernate_after_ticks > 0 {
        progress.set_message(format!(
            "idle {}: waiting for every replica asleep",
            driver.name()
        ));
        wait_until("every replica asleep", deadline, || {
            cluster.hibernated() >= replicas
        })?;
    }
    progress.inc(1);
    progress.set_message(format!("idle {}: measuring", driver.name()));
    // A few heartbeat intervals for the last elections' traffic to settle.
    std::thread::sleep(timing.tick * 3);
    let after = resident_bytes();
    let pairs0 = pair_totals(&endpoints);
    let cpu0 = CpuClock::now();
    std::thread::sleep(window);
    let cpu1 = CpuClock::now();
    let pairs1 = pair_totals(&endpoints);
    // Again after the idle window: memory the allocator freed during the
    // elections may go back to the system only after a delay.
    let end = resident_bytes();
    progress.finish_and_clear();
    let secs = window.as_secs_f64();
    let heartbeats = secs / (timing.tick.as_secs_f64() * timing.heartbeat_ticks as f64);
    let (mut frames, mut messages) = (0.0f64, 0.0f64);
    for a in 1..=NODES {
        for b in a + 1..=NODES {
            let delta = |from: u64, to: u64| {
                let (f0, m0) = pairs0.get(&(from, to)).copied().unwrap_or_default();
                let (f1, m1) = pairs1.get(&(from, to)).copied().unwrap_or_default();
                (f1.saturating_sub(f0), m1.saturating_sub(m0))
            };
            let ((fab, mab), (fba, mba)) = (delta(a, b), delta(b, a));
            frames = frames.max((fab + fba) as f64 / heartbeats);
            messages = messages.max((mab + mba) as f64 / secs);
        }
    }
    let figures = vec![
        ("groups", groups as f64),
        ("elect_all_ms", elected.as_secs_f64() * 1e3),
        (
            "cpu_percent",
            (cpu1.percent_since(&cpu0) - cpu1.network_percent_since(&cpu0)).max(0.0),
        ),
        ("cpu_percent_process", cpu1.percent_since(&cpu0)),
        (
            "cpu_percent_network_thread",
            cpu1.network_percent_since(&cpu0),
        ),
        (
            "mem_bytes_per_replica",
            after.saturating_sub(before) as f64 / replicas as f64,
        ),
        (
            "mem_bytes_per_replica_end",
            end.saturating_sub(before) as f64 / replicas as f64,
        ),
        ("frames_per_pair_per_heartbeat", frames),
        ("messages_per_pair_per_sec", messages),
        ("leaders_end", cluster.leaders() as f64),
        ("asleep_end", cluster.hibernated() as f64),
    ];
    drop(cluster);
    Ok((driver.name(), figures))
}
