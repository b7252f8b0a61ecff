//! `chronik-cluster bench SCENARIO` at tiny sizes, through the binary as a user runs
//! it: each scenario must finish, print its table, and end with one JSON line holding
//! its settings and figures (with the baseline and the ratio where it has one).

use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;

/// Runs `bench ARGS --json` and returns the parsed last line of stdout.
fn bench(args: &[&str]) -> Value {
    let output = Command::cargo_bin("chronik-cluster")
        .unwrap()
        .arg("bench")
        .args(args)
        .arg("--json")
        .timeout(Duration::from_secs(180))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench {args:?} failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(stdout.contains("== bench "), "no table in:\n{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}"))
}

/// The figure `section.name`, which must be a finite number.
fn figure(json: &Value, section: &str, name: &str) -> f64 {
    let value = json[section][name]
        .as_f64()
        .unwrap_or_else(|| panic!("no {section}.{name} in {json}"));
    assert!(value.is_finite(), "{section}.{name} = {value}");
    value
}

#[test]
fn single_group_measures_both_drivers_and_their_ratio() {
    let json = bench(&["single-group", "--clients", "1,4", "--duration", "0.4"]);
    assert_eq!(json["scenario"], "single-group");
    assert_eq!(json["settings"]["entry_bytes"], 8);
    for section in ["ours_c1", "ours_c4", "naive_c1", "naive_c4"] {
        assert!(figure(&json, section, "ops_per_sec") > 0.0, "{json}");
        assert!(figure(&json, section, "p99_us") >= figure(&json, section, "p50_us"));
        assert_eq!(figure(&json, section, "nodes_behind"), 0.0, "{json}");
    }
    assert!(figure(&json, "ratio_ours_c4_over_naive_c4", "ops_per_sec") > 0.0);
}

#[test]
fn produce_measures_both_drivers_and_the_sweep_draws_a_plot() {
    let plots = tempfile::tempdir().unwrap();
    let json = bench(&[
        "produce",
        "--partitions",
        "2",
        "--producers",
        "2",
        "--batch",
        "10",
        "--duration",
        "0.5",
        "--sweep",
        "--sweep-partitions",
        "1,3",
        "--sweep-rate",
        "2000",
        "--sweep-producers",
        "2",
        "--plot-dir",
        plots.path().to_str().unwrap(),
    ]);
    assert_eq!(json["settings"]["partitions"], 2);
    assert_eq!(json["settings"]["acks"], "all");
    for section in ["ours", "naive", "sweep_p1", "sweep_p3"] {
        assert!(figure(&json, section, "records_per_sec") > 0.0, "{json}");
        assert!(figure(&json, section, "p999_ms") >= figure(&json, section, "p50_ms"));
        figure(&json, section, "mb_per_sec");
        figure(&json, section, "cpu_percent");
    }
    assert_eq!(figure(&json, "naive", "nodes_behind"), 0.0);
    // The WAL's syncs: counted, the slowest one known (the slow ones may be none).
    assert!(figure(&json, "ours", "wal_syncs_per_sec") > 0.0, "{json}");
    assert!(figure(&json, "ours", "wal_sync_max_ms") > 0.0, "{json}");
    assert!(figure(&json, "ours", "wal_slow_syncs") >= 0.0, "{json}");
    assert!(figure(&json, "ratio_ours_over_naive", "records_per_sec") > 0.0);
    let svg = std::fs::read_to_string(plots.path().join("bench-produce-sweep.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("partitions"));
}

#[test]
fn produce_through_the_grpc_client() {
    let json = bench(&[
        "produce",
        "--via",
        "grpc",
        "--no-baseline",
        "--partitions",
        "2",
        "--producers",
        "2",
        "--batch",
        "10",
        "--duration",
        "0.5",
    ]);
    assert_eq!(json["settings"]["via"], "grpc");
    assert!(figure(&json, "ours", "records_per_sec") > 0.0, "{json}");
    assert!(json.get("naive").is_none(), "{json}");
}

#[test]
fn idle_measures_each_driver_in_a_child_process() {
    let json = bench(&["idle", "--partitions", "10", "--duration", "0.5"]);
    assert_eq!(json["settings"]["partitions"], 10);
    for driver in ["ours", "naive"] {
        assert_eq!(figure(&json, driver, "leaders_end"), 10.0, "{json}");
        figure(&json, driver, "cpu_percent");
        figure(&json, driver, "mem_bytes_per_replica");
        figure(&json, driver, "mem_bytes_per_replica_end");
    }
    // Ours sleeps: every replica hibernated, and no raft traffic between nodes.
    assert_eq!(figure(&json, "ours", "asleep_end"), 30.0, "{json}");
    assert_eq!(
        figure(&json, "ours", "messages_per_pair_per_sec"),
        0.0,
        "{json}"
    );
    assert!(
        figure(&json, "naive", "frames_per_pair_per_heartbeat") > 0.0,
        "{json}"
    );
}

#[test]
fn idle_over_real_nodes() {
    let json = bench(&[
        "idle",
        "--stack",
        "node",
        "--partitions",
        "4",
        "--duration",
        "0.5",
    ]);
    assert_eq!(json["settings"]["stack"], "node");
    // 4 partitions x 3 replicas asleep (the metadata group may sleep too).
    assert!(figure(&json, "ours", "asleep_end") >= 12.0, "{json}");
    // The target: at most 2 frames per node pair per heartbeat interval.
    assert!(
        figure(&json, "ours", "frames_per_pair_per_heartbeat") <= 2.0,
        "{json}"
    );
    figure(&json, "ours", "messages_per_pair_per_sec");
    figure(&json, "ours", "cpu_percent");
    figure(&json, "ours", "mem_bytes_per_replica");
}

#[test]
fn failover_times_new_leaders_and_produce() {
    let json = bench(&[
        "failover",
        "--partitions",
        "3",
        "--settle-ms",
        "200",
        "--tick-ms",
        "20",
    ]);
    assert_eq!(json["settings"]["election_timeout_ms"], 200);
    let led = figure(&json, "ours", "all_led_ms");
    assert!(
        led > 0.0 && figure(&json, "ours", "all_produce_ok_ms") >= led,
        "{json}"
    );
    assert!(
        figure(&json, "ours", "victim_led_partitions") >= 1.0,
        "{json}"
    );
}

#[test]
fn recovery_replays_the_log_and_serves() {
    let json = bench(&["recovery", "--wal-mb", "2", "--partitions", "2", "--cold"]);
    assert!(figure(&json, "ours", "wal_mb") >= 2.0, "{json}");
    assert!(figure(&json, "ours", "mb_per_sec") > 0.0);
    assert!(figure(&json, "ours", "start_mb_per_sec") >= figure(&json, "ours", "mb_per_sec"));
    assert!(figure(&json, "raw_read", "mb_per_sec") > 0.0);
    assert!(json["settings"]["page_cache"].is_string(), "{json}");
    figure(&json, "ratio_ours_over_raw_read", "mb_per_sec");
}

#[test]
fn wal_compares_group_commit_with_per_write_sync_and_the_raw_disk() {
    let json = bench(&[
        "wal",
        "--writers",
        "1,4",
        "--duration",
        "0.2",
        "--bandwidth-mib",
        "1",
    ]);
    for section in ["writers_1", "writers_4"] {
        assert!(figure(&json, section, "group_commit_writes_per_sec") > 0.0);
        assert!(figure(&json, section, "per_write_fdatasync_writes_per_sec") > 0.0);
        assert!(figure(&json, section, "writes_per_sync") >= 1.0);
    }
    assert!(figure(&json, "ratio_engine_over_raw_disk", "mb_per_sec") > 0.0);
}

#[test]
fn bad_flags_are_refused_with_a_message() {
    let output = Command::cargo_bin("chronik-cluster")
        .unwrap()
        .args(["bench", "produce", "--partitions", "0"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--partitions"));
    let output = Command::cargo_bin("chronik-cluster")
        .unwrap()
        .args(["bench", "produce", "--warmup=-1"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--warmup"));
}
