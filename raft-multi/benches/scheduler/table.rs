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
        "| {label:<44} | {:>12} | {:>12} | {r:>10} |",
        fmt(o),
        fmt(n)
    );
}

fn header(title: &str) {
    println!("\n## {title}\n");
    println!(
        "| {:<44} | {:>12} | {:>12} | {:>10} |",
        "figure", "ours", "naive", "ours better"
    );
    println!("|{:-<46}|{:-<14}|{:-<14}|{:-<12}|", "", "", "", "");
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

pub fn print(scenario: &str, settings: &Settings, ours: Option<&Figures>, naive: Option<&Figures>) {
    let get = |f: Option<&Figures>, key: &str| f.and_then(|f| f.get(key).copied());
    match scenario {
        "idle" => {
            let groups = get(ours, "groups").or(get(naive, "groups")).unwrap_or(0.0);
            header(&format!(
                "idle: {groups} groups x 3 replicas, nothing proposed (heartbeat {:?})",
                settings.tick * settings.heartbeat_ticks as u32
            ));
            row(
                "CPU % of one core (without network pump)",
                "cpu_percent",
                ours,
                naive,
                Better::Lower,
            );
            row(
                "CPU % of one core (whole process)",
                "cpu_percent_process",
                ours,
                naive,
                Better::Lower,
            );
            row(
                "CPU % of the in-process network pump",
                "cpu_percent_pump",
                ours,
                naive,
                Better::Lower,
            );
            row(
                "resident memory per replica (bytes)",
                "mem_bytes_per_replica",
                ours,
                naive,
                Better::Lower,
            );
            row(
                "frames per node pair per heartbeat interval",
                "frames_per_pair_per_heartbeat",
                ours,
                naive,
                Better::Lower,
            );
            row(
                "raft messages per node pair per second",
                "messages_per_pair_per_sec",
                ours,
                naive,
                Better::Lower,
            );
            row(
                "groups led at the end",
                "leaders_end",
                ours,
                naive,
                Better::None,
            );
            row(
                "replicas asleep at the end",
                "asleep_end",
                ours,
                naive,
                Better::None,
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
                let key = |what: &str| format!("c{clients}_{what}");
                row(
                    &format!("{clients} clients: ops/s"),
                    &key("ops_per_sec"),
                    ours,
                    naive,
                    Better::Higher,
                );
                row(
                    &format!("{clients} clients: latency p50 (us)"),
                    &key("p50_us"),
                    ours,
                    naive,
                    Better::Lower,
                );
                row(
                    &format!("{clients} clients: latency p99 (us)"),
                    &key("p99_us"),
                    ours,
                    naive,
                    Better::Lower,
                );
                row(
                    &format!("{clients} clients: failed proposals"),
                    &key("errors"),
                    ours,
                    naive,
                    Better::None,
                );
            }
        }
        "produce" => {
            let g = get(ours, "groups").unwrap_or(0.0);
            let c = get(ours, "clients").unwrap_or(0.0);
            let b = get(ours, "entry_bytes").unwrap_or(0.0);
            header(&format!(
                "produce: {g} groups, {c} clients, {b}-byte entries, write-ahead log with sync"
            ));
            row("entries/s", "entries_per_sec", ours, naive, Better::Higher);
            row("MB/s (payload)", "mb_per_sec", ours, naive, Better::Higher);
            row("latency p50 (us)", "p50_us", ours, naive, Better::Lower);
            row("latency p99 (us)", "p99_us", ours, naive, Better::Lower);
            row(
                "synced writes (incl. warm-up)",
                "syncs",
                ours,
                naive,
                Better::Lower,
            );
            row(
                "raft messages sent (incl. warm-up)",
                "messages",
                ours,
                naive,
                Better::None,
            );
            row("failed proposals", "errors", ours, naive, Better::None);
        }
        _ => {}
    }
}
