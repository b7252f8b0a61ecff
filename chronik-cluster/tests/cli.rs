//! The binary driven as a user would: the demo, topic administration, produce,
//! consume and status against a running cluster, and clear errors for mistakes.

mod common;

use assert_cmd::Command;
use predicates::prelude::*;

fn chronik() -> Command {
    Command::cargo_bin("chronik-cluster").unwrap()
}

#[test]
fn the_demo_runs_and_checks_itself() {
    chronik()
        .args(["demo", "--seconds", "2", "--partitions", "3"])
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .success()
        .stdout(predicate::str::contains("all acknowledged records present"))
        .stdout(predicate::str::contains("leads"));
}

#[test]
fn topic_produce_consume_and_status_against_a_running_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let configs = common::configs(dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let nodes = runtime.block_on(common::start(&configs));
    let bootstrap = common::client_addresses(&configs).join(",");
    let run = |args: &[&str]| {
        let mut cmd = chronik();
        cmd.args(args)
            .args(["--bootstrap", &bootstrap])
            .timeout(std::time::Duration::from_secs(60));
        cmd
    };
    // The cluster needs its three nodes registered before a 3-replica topic fits: the
    // CLI retries that for us through the client's deadline.
    run(&[
        "topic",
        "create",
        "logs",
        "--partitions",
        "2",
        "--replication-factor",
        "3",
    ])
    .assert()
    .success()
    .stdout(predicate::str::contains("created logs with 2 partitions"));
    run(&["topic", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("logs\t2 partitions"));
    run(&["topic", "describe", "logs"])
        .assert()
        .success()
        .stdout(predicate::str::contains("partition 1"));
    run(&["produce", "logs", "--partition", "1", "--batch", "2"])
        .write_stdin("alpha\nbeta\ngamma\n")
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "produced 3 records; last offset 2",
        ));
    run(&["consume", "logs", "--partition", "1", "--from", "1"])
        .assert()
        .success()
        .stdout(predicate::eq("beta\ngamma\n"));
    run(&["status"])
        .assert()
        .success()
        .stdout(predicate::str::contains("controller:"))
        .stdout(predicate::str::contains("logs-0").and(predicate::str::contains("logs-1")))
        .stdout(
            predicate::str::is_match("logs-1\tleader [1-3]\thigh watermark 3\t.*\tlag [1-3]:0")
                .unwrap(),
        );
    run(&["topic", "create", "logs"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("already exists"));
    run(&["topic", "delete", "logs"]).assert().success();
    runtime.block_on(async {
        for node in nodes {
            node.shutdown().await;
        }
    });
}

#[test]
fn user_mistakes_get_one_clear_line_and_a_failure_code() {
    let no_panic = || predicate::str::contains("panicked").not();
    chronik()
        .args(["node", "--config", "/nonexistent/node.toml"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("error: cannot read config"))
        .stderr(no_panic());
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "node_id = 0\ndata_dir = \"/tmp/x\"\nraft_addr = \"127.0.0.1:1\"\nclient_addr = \"127.0.0.1:2\"\n").unwrap();
    chronik()
        .args(["node", "--config", bad.to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("node_id must be 1 or more"))
        .stderr(no_panic());
    let port = common::free_ports(1)[0];
    chronik()
        .args(["topic", "list", "--bootstrap", &format!("127.0.0.1:{port}")])
        .assert()
        .failure()
        .stderr(predicate::str::contains("error: no node reachable"))
        .stderr(no_panic());
}
