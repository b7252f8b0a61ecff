//! Scenario `idle`: N groups x 3 replicas on 3 nodes, nothing proposed. What do they
//! cost once elected: CPU, memory per replica, frames between nodes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use raft_transport::local::LocalNetwork;

use crate::cluster::AnyCluster;
use crate::probe::{resident_bytes, CpuSample};
use crate::{env_u64, wait_for, Driver, Report, Settings, NODES};

/// Threads whose CPU is counted apart: the in-process network's delivery thread
/// stands in for the real transport and is the same code under both drivers.
pub const PUMP: &str = "local-net-pump";

/// (frames, messages) sent on each ordered pair of nodes (from, to).
type PairTotals = BTreeMap<(u64, u64), (u64, u64)>;

fn pair_totals(net: &LocalNetwork) -> PairTotals {
    let mut out = BTreeMap::new();
    for from in 1..=NODES {
        for to in 1..=NODES {
            if from != to {
                let s = net.pair_stats(from, to);
                out.insert((from, to), (s.frames_sent, s.messages_sent));
            }
        }
    }
    out
}

pub fn run(driver: Driver, settings: &Settings) -> Report {
    let groups = env_u64("BENCH_GROUPS", 1000);
    let window = Duration::from_secs(env_u64("BENCH_IDLE_SECS", 5));
    let deadline = Duration::from_secs(60 + groups / 50);
    let mut report = Report::default();
    let cluster = AnyCluster::start(driver, settings, None);
    let before = resident_bytes();
    let started = Instant::now();
    let name = driver.name();
    cluster.create_groups(1..=groups);
    eprintln!(
        "  idle/{name}: {groups} groups x {NODES} replicas created in {:.1?}",
        started.elapsed()
    );
    let campaign = Instant::now();
    cluster.campaign(1..=groups);
    wait_for("every group led", deadline, || cluster.leaders() >= groups);
    let elected = campaign.elapsed();
    eprintln!("  idle/{name}: all led {elected:.1?} after the campaigns were asked");
    if let AnyCluster::Ours(ours) = &cluster {
        for (node, m) in ours.metrics().iter().enumerate() {
            eprintln!(
                "  idle/{name}: node {}: {} rounds, {} frames, {} messages sent, {} dropped \
                 on send, {} inbound dropped (full mailbox)",
                node + 1,
                m.rounds,
                m.frames_sent,
                m.messages_sent,
                m.messages_dropped,
                m.inbound_dropped
            );
        }
    }
    if driver == Driver::Ours && settings.hibernate_after_ticks > 0 {
        wait_for("every replica asleep", deadline, || {
            cluster.hibernated() >= groups * NODES
        });
        eprintln!("  idle/{name}: all asleep after {:.1?}", started.elapsed());
    }
    // A few heartbeat intervals for the last elections' traffic to settle.
    std::thread::sleep(settings.tick * 3);
    let after = resident_bytes();
    let net = cluster.net();
    let pairs0 = pair_totals(net);
    let counters0 = cluster.counters();
    let cpu0 = CpuSample::now();
    std::thread::sleep(window);
    let cpu1 = CpuSample::now();
    let pairs1 = pair_totals(net);
    let counters1 = cluster.counters();
    let cpu = cpu1.since(&cpu0, &[PUMP]);
    let secs = window.as_secs_f64();
    let heartbeats = secs / (settings.tick.as_secs_f64() * settings.heartbeat_ticks as f64);
    // Both directions of each unordered pair.
    let mut frames_per_pair = Vec::new();
    let mut messages_per_pair = Vec::new();
    for a in 1..=NODES {
        for b in a + 1..=NODES {
            let delta = |from: u64, to: u64| {
                let find = |totals: &PairTotals| totals.get(&(from, to)).copied().unwrap_or((0, 0));
                let (f0, m0) = find(&pairs0);
                let (f1, m1) = find(&pairs1);
                (f1 - f0, m1 - m0)
            };
            let (fab, mab) = delta(a, b);
            let (fba, mba) = delta(b, a);
            frames_per_pair.push((fab + fba) as f64 / heartbeats);
            messages_per_pair.push((mab + mba) as f64 / secs);
        }
    }
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let (leaders_end, asleep_end) = (cluster.leaders(), cluster.hibernated());
    let (wake_p50, wake_max, wake_failed) = first_proposals(&cluster, groups);
    report.add("groups", groups as f64);
    report.add("elect_all_ms", elected.as_secs_f64() * 1e3);
    report.add("cpu_percent", cpu.percent);
    report.add("cpu_percent_pump", cpu.excluded_percent);
    report.add("cpu_percent_process", cpu.process_percent);
    report.add(
        "mem_bytes_per_replica",
        after.saturating_sub(before) as f64 / (groups * NODES) as f64,
    );
    report.add("frames_per_pair_per_heartbeat", max(&frames_per_pair));
    report.add("messages_per_pair_per_sec", max(&messages_per_pair));
    let pairs = (NODES * (NODES - 1) / 2) as f64;
    report.add(
        "driver_messages_per_pair_per_sec",
        (counters1.messages - counters0.messages) as f64 / pairs / secs,
    );
    report.add("leaders_end", leaders_end as f64);
    report.add("asleep_end", asleep_end as f64);
    report.add("first_proposal_p50_us", wake_p50 as f64);
    report.add("first_proposal_max_us", wake_max as f64);
    report.add("first_proposal_failed", wake_failed as f64);
    drop(cluster);
    report
}

/// After the quiet window, one proposal each to up to 100 groups spread over the range,
/// one after the other: under our scheduler each wakes a sleeping group. Returns the
/// latency p50 and max in microseconds, and how many failed (after retries for 5 s).
/// Stops sampling after 10 s in all (a saturated driver answers slowly).
fn first_proposals(cluster: &AnyCluster, groups: u64) -> (u64, u64, u64) {
    let proposer = cluster.proposer();
    let sample = groups.min(100);
    let mut latencies = Vec::new();
    let mut failed = 0;
    let budget = Instant::now() + Duration::from_secs(10);
    for i in 0..sample {
        if Instant::now() > budget {
            break;
        }
        let group = 1 + i * groups / sample;
        let mut hint = (group % NODES) as usize;
        let start = Instant::now();
        let until = start + Duration::from_secs(5);
        // Bounded by `until`.
        let ok = loop {
            if futures::executor::block_on(proposer.propose(group, vec![7; 8], &mut hint)) {
                break true;
            }
            if Instant::now() > until {
                break false;
            }
        };
        if ok {
            latencies.push(start.elapsed().as_micros() as u64);
        } else {
            failed += 1;
        }
    }
    latencies.sort_unstable();
    let p50 = latencies.get(latencies.len() / 2).copied().unwrap_or(0);
    (p50, latencies.last().copied().unwrap_or(0), failed)
}
