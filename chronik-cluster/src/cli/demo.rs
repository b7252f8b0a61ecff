//! `chronik-cluster demo`: a local 3-node cluster over real gRPC on loopback with the
//! real write-ahead log, a topic, producers and a consumer check, then a clean stop.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chronik_cluster::client::ChronikClient;
use chronik_cluster::{
    decode_records, encode_records, FetchRequest, Node, NodeConfig, PeerConfig, ProduceRequest,
    TopicSpec,
};
use indicatif::{ProgressBar, ProgressStyle};

use super::CliError;

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// How long to produce, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Where the nodes keep their data (default: a temporary directory, removed after).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Partitions of the demo topic.
    #[arg(long, default_value_t = 6)]
    partitions: u32,
    /// Records per produce request.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Bytes per record.
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// Concurrent producers per partition.
    #[arg(long, default_value_t = 2)]
    producers: usize,
}

const TOPIC: &str = "demo";

/// Free loopback ports, found by binding port 0.
fn free_ports(n: usize) -> Result<Vec<u16>, CliError> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    Ok(listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()?)
}

async fn start_nodes(dir: &std::path::Path) -> Result<(Vec<Node>, Vec<String>), CliError> {
    let ports = free_ports(6)?;
    let raft = |i: usize| format!("127.0.0.1:{}", ports[i]);
    let client = |i: usize| format!("127.0.0.1:{}", ports[3 + i]);
    let mut nodes = Vec::new();
    for i in 0..3 {
        let id = i as u64 + 1;
        let parse = |s: String| s.parse().map_err(|e| CliError::Usage(format!("{s}: {e}")));
        let mut config = NodeConfig::new(
            id,
            dir.join(format!("node-{id}")),
            parse(raft(i))?,
            parse(client(i))?,
        );
        config.raft.tick_ms = 50;
        config.peers = (0..3)
            .filter(|&j| j != i)
            .map(|j| PeerConfig {
                id: j as u64 + 1,
                raft_addr: raft(j),
                client_addr: client(j),
            })
            .collect();
        nodes.push(Node::builder(config).start().await?);
        eprintln!(
            "node {id}: raft {} client {} data {}",
            raft(i),
            client(i),
            dir.join(format!("node-{id}")).display()
        );
    }
    Ok((nodes, (0..3).map(client).collect()))
}

pub async fn run(args: DemoArgs) -> Result<(), CliError> {
    if args.partitions == 0 || args.batch == 0 || args.producers == 0 {
        return Err(CliError::Usage(
            "--partitions, --batch and --producers must be at least 1".to_owned(),
        ));
    }
    let temp = match &args.data_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir()?),
    };
    let dir = args
        .data_dir
        .clone()
        .or_else(|| temp.as_ref().map(|t| t.path().to_path_buf()))
        .unwrap_or_default();
    eprintln!(
        "starting a 3-node cluster (gRPC on loopback, write-ahead log in {})",
        dir.display()
    );
    let (nodes, addresses) = start_nodes(&dir).await?;
    let outcome = drive(&args, &addresses).await;
    eprintln!("stopping the cluster");
    for node in nodes {
        node.shutdown().await;
    }
    outcome
}

async fn drive(args: &DemoArgs, addresses: &[String]) -> Result<(), CliError> {
    let client = Arc::new(
        ChronikClient::connect(addresses)
            .await?
            .with_timeout(Duration::from_secs(20)),
    );
    // All three nodes must be registered before a topic with three replicas fits.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if client.status(None).await.is_ok_and(|s| s.nodes.len() == 3) {
            break;
        }
        if Instant::now() > deadline {
            return Err(CliError::Demo(
                "the nodes did not register within 20 s".to_owned(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let topic = client
        .create_topic(TopicSpec::new(TOPIC, args.partitions, 3))
        .await?;
    eprintln!(
        "created topic {TOPIC:?}: {} partitions x 3 replicas",
        topic.partitions.len()
    );

    let acked: Arc<Vec<AtomicU64>> =
        Arc::new((0..args.partitions).map(|_| AtomicU64::new(0)).collect());
    let total = Arc::new(AtomicU64::new(0));
    let stop_at = Instant::now() + Duration::from_secs(args.seconds);
    let bar = ProgressBar::new(args.seconds);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len}s {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let record = vec![b'x'; args.record_size];
    let batch = encode_records(&vec![record; args.batch]);
    let mut producers = Vec::new();
    for partition in 0..args.partitions {
        for _ in 0..args.producers {
            let (client, acked, total, batch) = (
                Arc::clone(&client),
                Arc::clone(&acked),
                Arc::clone(&total),
                batch.clone(),
            );
            let count = args.batch as u32;
            producers.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < stop_at {
                    let started = Instant::now();
                    let request = ProduceRequest::new(TOPIC, partition, batch.clone(), count);
                    client.produce(request).await?;
                    latencies.push(started.elapsed());
                    acked[partition as usize].fetch_add(u64::from(count), Ordering::Relaxed);
                    total.fetch_add(u64::from(count), Ordering::Relaxed);
                }
                Ok::<_, chronik_cluster::client::ClientError>(latencies)
            }));
        }
    }
    let started = Instant::now();
    let mut interrupted = false;
    while Instant::now() < stop_at {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = tokio::signal::ctrl_c() => { interrupted = true; break; }
        }
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let n = total.load(Ordering::Relaxed);
        bar.set_position(started.elapsed().as_secs().min(args.seconds));
        bar.set_message(format!(
            "{n} records acked, {:.0} records/s",
            n as f64 / secs
        ));
    }
    if interrupted {
        for p in &producers {
            p.abort();
        }
    }
    let mut latencies = Vec::new();
    for p in producers {
        match p.await {
            Ok(Ok(l)) => latencies.extend(l),
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => {} // aborted by Ctrl-C
        }
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let produced = total.load(Ordering::Relaxed);
    latencies.sort_unstable();
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
    };
    println!(
        "produced {produced} records ({:.1} MB) in {elapsed:.1} s: {:.0} records/s, {:.1} MB/s; request latency p50 {:?} p99 {:?}",
        produced as f64 * args.record_size as f64 / 1e6,
        produced as f64 / elapsed,
        produced as f64 * args.record_size as f64 / 1e6 / elapsed,
        pct(0.50).copied().unwrap_or_default(),
        pct(0.99).copied().unwrap_or_default(),
    );

    // Every acknowledged record must be there, exactly once, in offset order.
    for partition in 0..args.partitions {
        let expected = acked[partition as usize].load(Ordering::Relaxed);
        let consumed = consume_all(&client, partition).await?;
        if consumed < expected {
            return Err(CliError::Demo(format!(
                "partition {partition}: {consumed} records read, {expected} acknowledged"
            )));
        }
    }
    println!("consumed every partition back: all acknowledged records present");

    let status = client.status(None).await?;
    let mut per_node: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for p in status.partitions.iter().filter(|p| p.topic == TOPIC) {
        if let Some(l) = p.leader {
            per_node.entry(l).or_default().push(p.partition);
        }
    }
    for node in &status.nodes {
        let led = per_node.get(&node.id).cloned().unwrap_or_default();
        println!("node {} leads {} partitions {:?}", node.id, led.len(), led);
    }
    Ok(())
}

/// Reads a partition from offset 0 to its high watermark; returns the records read.
async fn consume_all(client: &ChronikClient, partition: u32) -> Result<u64, CliError> {
    let mut offset = 0;
    let mut records = 0u64;
    // Bounded: each pass advances past at least one batch or ends at the watermark.
    loop {
        let request = FetchRequest {
            topic: TOPIC.to_owned(),
            partition,
            offset,
            max_bytes: 4 << 20,
            max_wait: Duration::ZERO,
        };
        let fetched = client.fetch(request).await?;
        for batch in &fetched.batches {
            if batch.base_offset != offset {
                return Err(CliError::Demo(format!(
                    "partition {partition}: gap before offset {}",
                    batch.base_offset
                )));
            }
            let n = decode_records(batch.records.clone()).map_or(0, |r| r.len() as u64);
            if n != batch.last_offset - batch.base_offset + 1 {
                return Err(CliError::Demo(format!(
                    "partition {partition}: batch at {offset} holds {n} records"
                )));
            }
            records += n;
            offset = batch.last_offset + 1;
        }
        if fetched.batches.is_empty() || offset >= fetched.high_watermark {
            return Ok(records);
        }
    }
}
