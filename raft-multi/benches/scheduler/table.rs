//! The tables the parent prints: each figure for both drivers and their ratio.

use std::collections::BTreeMap;

use crate::{env_list, Settings};

type Figures = BTreeMap<String, f64>;

/// Which way the ratio is taken: how many times better ours is.
#[derive(Clone, Copy)]
enum Better {
    /// Higher is better: ours / naive.
    Higher,
    /// Lower is better: naive / ours.
    Lower,
    /// No ratio.
    None,
}

fn fmt(value: Option<f64>) -> String {
    match value {
        None => "-".to_owned(),
        Some(v) if v.abs() >= 100.0 || v == v.trunc() => format!("{v:.0}"),
        Some(v) if v.abs() >= 1.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.4}"),
    }
}

fn ratio(ours: Option<f64>, naive: Option<f64>, better: Better) -> Option<f64> {
    let (o, n) = (ours?, naive?);
    match better {
        Better::Higher if n > 0.0 => Some(o / n),
        Better::Lower if o > 0.0 => Some(n / o),
        _ => None,
    }
}

fn row(label: &str, key: &str, ours: Option<&Figures>, naive: Option<&Figures>, better: Better) {
    let o = ours.and_then(|f| f.get(key).copied());
    let n = naive.and_then(|f| f.get(key).copied());
    let r = ratio(o, n, better).map_or("-".to_owned(), |r| format!("{r:.1}x"));
    println!(
        "| {label:<50} | {:>12} | {:>12} | {r:>10} |",
        fmt(o),
        fmt(n)
    );
}

fn header(title: &str) {
    println!("\n## {title}\n");
    println!(
        "| {:<50} | {:>12} | {:>12} | {:>10} |",
        "figure", "ours", "naive", "ours better"
    );
    println!("|{:-<52}|{:-<14}|{:-<14}|{:-<12}|", "", "", "", "");
}

fn target(text: &str, value: Option<f64>, met: impl Fn(f64) -> bool) {
    match value {
        Some(v) => println!(
            "target: {text}: measured {} -> {}",
            fmt(Some(v)),
            if met(v) { "met" } else { "NOT met" }
        ),
        None => println!("target: {text}: not measured"),
    }
}

fn rows(list: &[(String, String, Better)], ours: Option<&Figures>, naive: Option<&Figures>) {
    for (label, key, better) in list {
        row(label, key, ours, naive, *better);
    }
}

fn spec(label: &str, key: &str, better: Better) -> (String, String, Better) {
    (label.to_owned(), key.to_owned(), better)
}

pub fn print(scenario: &str, settings: &Settings, ours: Option<&Figures>, naive: Option<&Figures>) {
    let get = |f: Option<&Figures>, key: &str| f.and_then(|f| f.get(key).copied());
    match scenario {
        "idle" => {
            let groups = get(ours, "groups").or(get(naive, "groups")).unwrap_or(0.0);
            header(&format!(
                "idle: {groups} groups x 3 replicas, nothing proposed (heartbeat {:?})",
                settings.tick * settings.heartbeat_ticks as u32
            ));
            rows(
                &[
                    spec(
                        "CPU % of one core (without network pump)",
                        "cpu_percent",
                        Better::Lower,
                    ),
                    spec(
                        "CPU % of one core (whole process)",
                        "cpu_percent_process",
                        Better::Lower,
                    ),
                    spec(
                        "CPU % of the in-process network pump",
                        "cpu_percent_pump",
                        Better::Lower,
                    ),
                    spec(
                        "resident memory per replica (bytes)",
                        "mem_bytes_per_replica",
                        Better::Lower,
                    ),
                    spec(
                        "frames per node pair per heartbeat interval",
                        "frames_per_pair_per_heartbeat",
                        Better::Lower,
                    ),
                    spec(
                        "raft messages per node pair per second",
                        "messages_per_pair_per_sec",
                        Better::Lower,
                    ),
                    spec(
                        "  same, from the driver's own counters (mean)",
                        "driver_messages_per_pair_per_sec",
                        Better::Lower,
                    ),
                    spec(
                        "time to elect every group (ms)",
                        "elect_all_ms",
                        Better::Lower,
                    ),
                    spec("groups led at the end", "leaders_end", Better::None),
                    spec("replicas asleep at the end", "asleep_end", Better::None),
                    spec(
                        "then a first proposal to <=100 groups: p50 (us)",
                        "first_proposal_p50_us",
                        Better::Lower,
                    ),
                    spec("  max (us)", "first_proposal_max_us", Better::Lower),
                    spec("  failed", "first_proposal_failed", Better::None),
                ],
                ours,
                naive,
            );
            let cpu_ratio = ratio(
                get(ours, "cpu_percent"),
                get(naive, "cpu_percent"),
                Better::Lower,
            );
            println!();
            target("naive CPU / ours CPU >= 50", cpu_ratio, |r| r >= 50.0);
            target(
                "ours CPU <= 2% of one core",
                get(ours, "cpu_percent"),
                |v| v <= 2.0,
            );
            target(
                "ours frames per pair per heartbeat <= 2",
                get(ours, "frames_per_pair_per_heartbeat"),
                |v| v <= 2.0,
            );
            target(
                "ours memory per replica <= 8 KiB",
                get(ours, "mem_bytes_per_replica"),
                |v| v <= 8192.0,
            );
        }
        "single-group" => {
            header("single-group: 1 group, 3 nodes, memory engine, 8-byte entries, closed loop");
            for clients in env_list("BENCH_CLIENTS", &[1, 64, 1024]) {
                let line = |what: &str, key: &str, better| {
                    spec(
                        &format!("{clients} clients: {what}"),
                        &format!("c{clients}_{key}"),
                        better,
                    )
                };
                rows(
                    &[
                        line("ops/s", "ops_per_sec", Better::Higher),
                        line("latency p50 (us)", "p50_us", Better::Lower),
                        line("latency p99 (us)", "p99_us", Better::Lower),
                        line("failed proposals", "errors", Better::None),
                        line("CPU % of one core (process)", "cpu_percent", Better::None),
                        line("nodes missing acked entries", "nodes_behind", Better::None),
                    ],
                    ours,
                    naive,
                );
            }
            let one = get(ours, "c1_p50_us");
            target("ours with 1 client: p50 latency < 40 us", one, |v| v < 40.0);
            let most = get(ours, "c1024_ops_per_sec");
            target("ours with 1024 clients: >= 2,000,000 ops/s", most, |v| {
                v >= 2e6
            });
        }
        "produce" => {
            let g = get(ours, "groups").unwrap_or(0.0);
            let c = get(ours, "clients").unwrap_or(0.0);
            let b = get(ours, "entry_bytes").unwrap_or(0.0);
            header(&format!(
                "produce: {g} groups, {c} clients, {b}-byte entries, write-ahead log with sync"
            ));
            rows(
                &[
                    spec("entries/s", "entries_per_sec", Better::Higher),
                    spec("MB/s (payload)", "mb_per_sec", Better::Higher),
                    spec("latency p50 (us)", "p50_us", Better::Lower),
                    spec("latency p99 (us)", "p99_us", Better::Lower),
                    spec("synced writes (incl. warm-up)", "syncs", Better::Lower),
                    spec(
                        "raft messages sent (incl. warm-up)",
                        "messages",
                        Better::None,
                    ),
                    spec("failed proposals", "errors", Better::None),
                    spec("CPU % of one core (process)", "cpu_percent", Better::None),
                    spec(
                        "nodes missing acked entries after 10 s",
                        "nodes_behind",
                        Better::None,
                    ),
                ],
                ours,
                naive,
            );
            let speedup = ratio(
                get(ours, "entries_per_sec"),
                get(naive, "entries_per_sec"),
                Better::Higher,
            );
            println!();
            target("ours entries/s >= 10x naive", speedup, |r| r >= 10.0);
        }
        _ => {}
    }
}
