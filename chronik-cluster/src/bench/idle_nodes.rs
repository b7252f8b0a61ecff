//! `bench idle --stack node`: the idle cost of real partitions. 3 chronik nodes in this
//! process over loopback gRPC with the write-ahead log and the Kafka partition state
//! machines, one topic of N partitions x 3 replicas, nothing produced. CPU and memory
//! as for the raft-level run; frames and messages from each node's scheduler counters
//! (its Prometheus `/metrics`). Ours only: the naive driver has no node stack.

use std::time::{Duration, Instant};

use chronik_cluster::TopicSpec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::nodes::{free_addresses, Nodes};
use super::probe::{resident_bytes, CpuClock};
use super::raftlevel::NODES;
use super::{BenchError, Common};

/// The topic of the scenario.
const TOPIC: &str = "idle";

/// Reads one counter from a node's `/metrics` (plain HTTP/1.0 on loopback).
async fn counter(address: std::net::SocketAddr, name: &str) -> Result<u64, BenchError> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    body.lines()
        .find_map(|line| {
            let (key, value) = line.split_once(' ')?;
            (key == name).then(|| value.trim().parse::<u64>().ok())?
        })
        .ok_or_else(|| BenchError::Check(format!("no {name} in /metrics of {address}")))
}

/// (frames, messages) sent by every node so far.
async fn sent(metrics: &[std::net::SocketAddr]) -> Result<(u64, u64), BenchError> {
    let mut total = (0, 0);
    for &address in metrics {
        total.0 += counter(address, "chronik_raft_frames_sent_total").await?;
        total.1 += counter(address, "chronik_raft_messages_sent_total").await?;
    }
    Ok(total)
}

/// Measures the node stack; the figures of section `ours`.
pub async fn measure(
    common: &Common,
    partitions: u64,
) -> Result<Vec<(&'static str, f64)>, BenchError> {
    let timing = common.timing();
    let window = common.duration(3.0);
    let dir = common.temp_dir()?;
    let metrics = free_addresses(NODES as usize)?;
    let mut nodes = Nodes::configure(NODES, dir.path(), timing)?;
    for (config, &address) in nodes.configs.iter_mut().zip(&metrics) {
        config.metrics_addr = Some(address);
    }
    nodes.start_all().await?;
    let outcome = async {
        let before = resident_bytes();
        let progress = super::load::bar(3, &format!("idle node: creating {partitions} partitions"));
        let started = Instant::now();
        let count = u32::try_from(partitions)
            .map_err(|_| BenchError::Usage("--partitions too large".into()))?;
        nodes.create_topic(TopicSpec::new(TOPIC, count, 3)).await?;
        let created = started.elapsed();
        progress.inc(1);
        let deadline = Duration::from_secs(60 + partitions / 20);
        if timing.hibernate_after_ticks > 0 {
            progress.set_message("idle node: waiting for every replica asleep");
            nodes
                .wait("every partition replica asleep", deadline, |c| {
                    c.status().local_hibernated >= partitions
                })
                .await?;
        }
        progress.inc(1);
        progress.set_message("idle node: measuring");
        tokio::time::sleep(timing.tick * 3).await;
        let after = resident_bytes();
        let sent0 = sent(&metrics).await?;
        let cpu0 = CpuClock::now();
        tokio::time::sleep(window).await;
        let cpu1 = CpuClock::now();
        let sent1 = sent(&metrics).await?;
        progress.finish_and_clear();
        let secs = window.as_secs_f64();
        let heartbeats = secs / (timing.tick.as_secs_f64() * timing.heartbeat_ticks as f64);
        let pairs = (NODES * (NODES - 1) / 2) as f64;
        let asleep: u64 = nodes
            .live()
            .iter()
            .map(|(_, c)| c.status().local_hibernated)
            .sum();
        Ok::<_, BenchError>(vec![
            ("groups", partitions as f64),
            ("create_and_lead_all_ms", created.as_secs_f64() * 1e3),
            ("cpu_percent", cpu1.percent_since(&cpu0)),
            (
                "mem_bytes_per_replica",
                after.saturating_sub(before) as f64 / (partitions * NODES) as f64,
            ),
            (
                "frames_per_pair_per_heartbeat",
                sent1.0.saturating_sub(sent0.0) as f64 / pairs / heartbeats,
            ),
            (
                "messages_per_pair_per_sec",
                sent1.1.saturating_sub(sent0.1) as f64 / pairs / secs,
            ),
            ("asleep_end", asleep as f64),
        ])
    }
    .await;
    nodes.shutdown().await;
    outcome
}
