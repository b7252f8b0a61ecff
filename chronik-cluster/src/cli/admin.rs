//! Client commands: `topic`, `produce`, `consume`, `status`.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::time::Duration;

use chronik_cluster::client::ChronikClient;
use chronik_cluster::{decode_records, encode_records, FetchRequest, ProduceRequest, TopicSpec};

use super::CliError;

/// Which cluster to talk to.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// Client addresses of one or more nodes (comma-separated).
    #[arg(
        long,
        env = "CHRONIK_BOOTSTRAP",
        default_value = "127.0.0.1:7201",
        value_delimiter = ',',
        global = true
    )]
    bootstrap: Vec<String>,
}

impl Target {
    async fn connect(&self) -> Result<ChronikClient, CliError> {
        Ok(ChronikClient::connect(&self.bootstrap)
            .await?
            .with_timeout(Duration::from_secs(15)))
    }
}

/// `topic` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        /// Its name.
        name: String,
        /// Number of partitions.
        #[arg(long, default_value_t = 1)]
        partitions: u32,
        /// Replicas per partition.
        #[arg(long, default_value_t = 3)]
        replication_factor: u32,
        /// Topic configs as key=value (repeatable).
        #[arg(long = "config", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
    },
    /// List topics.
    List,
    /// Show a topic's partitions, replicas and leaders.
    Describe {
        /// Its name.
        name: String,
    },
    /// Delete a topic.
    Delete {
        /// Its name.
        name: String,
    },
    /// Move a partition to another set of replicas (the first is the preferred leader).
    Reassign {
        /// The topic.
        name: String,
        /// The partition.
        #[arg(long)]
        partition: u32,
        /// The new replicas, comma-separated node ids.
        #[arg(long, value_delimiter = ',', required = true)]
        replicas: Vec<u64>,
    },
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected key=value, got {s:?}"))
}

pub async fn topic(command: TopicCommand, target: Target) -> Result<(), CliError> {
    let client = target.connect().await?;
    let mut out = std::io::stdout().lock();
    match command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            let mut spec = TopicSpec::new(name, partitions, replication_factor);
            spec.configs = configs.into_iter().collect();
            let topic = client.create_topic(spec).await?;
            writeln!(
                out,
                "created {} with {} partitions",
                topic.name,
                topic.partitions.len()
            )?;
        }
        TopicCommand::List => {
            for topic in client.list_topics().await? {
                writeln!(
                    out,
                    "{}\t{} partitions\treplication {}",
                    topic.name,
                    topic.partitions.len(),
                    topic.replication_factor
                )?;
            }
        }
        TopicCommand::Describe { name } => {
            let topic = client
                .list_topics()
                .await?
                .into_iter()
                .find(|t| t.name == name)
                .ok_or_else(|| CliError::Usage(format!("unknown topic {name:?}")))?;
            writeln!(
                out,
                "topic {} (replication {}) {:?}",
                topic.name, topic.replication_factor, topic.configs
            )?;
            for p in topic.partitions {
                let leader = p.leader.map_or("none".to_owned(), |l| l.to_string());
                writeln!(
                    out,
                    "  partition {}\tgroup {}\treplicas {:?}\tleader {leader}",
                    p.partition, p.group_id, p.replicas
                )?;
            }
        }
        TopicCommand::Delete { name } => {
            client.delete_topic(&name).await?;
            writeln!(out, "deleted {name}")?;
        }
        TopicCommand::Reassign {
            name,
            partition,
            replicas,
        } => {
            client
                .reassign_partition(&name, partition, replicas.clone())
                .await?;
            writeln!(out, "{name}-{partition} now on {replicas:?}")?;
        }
    }
    Ok(())
}

/// Arguments of `produce`.
#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    /// The topic.
    topic: String,
    /// The partition.
    #[arg(long, default_value_t = 0)]
    partition: u32,
    /// Lines per batch.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    #[command(flatten)]
    target: Target,
}

pub async fn produce(args: ProduceArgs) -> Result<(), CliError> {
    let client = args.target.connect().await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<String>>(1024);
    // stdin is blocking: read it on its own thread.
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    let mut batch = Vec::with_capacity(args.batch);
    let mut total = 0usize;
    let mut last = None;
    loop {
        let line = rx.recv().await;
        let done = line.is_none();
        if let Some(line) = line {
            batch.push(line?);
        }
        if batch.len() >= args.batch.max(1) || done && !batch.is_empty() {
            let count = batch.len() as u32;
            let request = ProduceRequest::new(
                args.topic.clone(),
                args.partition,
                encode_records(&batch),
                count,
            );
            let response = client.produce(request).await?;
            total += batch.len();
            last = Some(response.last_offset);
            batch.clear();
        }
        if done {
            break;
        }
    }
    eprintln!(
        "produced {total} records; last offset {}",
        last.map_or("none".to_owned(), |o| o.to_string())
    );
    Ok(())
}

/// Arguments of `consume`.
#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    /// The topic.
    topic: String,
    /// The partition.
    #[arg(long, default_value_t = 0)]
    partition: u32,
    /// First offset.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Keep waiting for new records (until Ctrl-C).
    #[arg(long)]
    follow: bool,
    #[command(flatten)]
    target: Target,
}

pub async fn consume(args: ConsumeArgs) -> Result<(), CliError> {
    let client = args.target.connect().await?;
    let mut offset = args.from;
    let mut out = std::io::stdout().lock();
    loop {
        let request = FetchRequest {
            topic: args.topic.clone(),
            partition: args.partition,
            offset,
            max_bytes: 1 << 20,
            max_wait: if args.follow {
                Duration::from_millis(500)
            } else {
                Duration::ZERO
            },
        };
        let fetched = tokio::select! {
            fetched = client.fetch(request) => fetched?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        for batch in &fetched.batches {
            match decode_records(batch.records.clone()) {
                Some(records) => {
                    // A batch may start before the offset asked for: skip its head.
                    for (i, record) in records.iter().enumerate() {
                        if batch.base_offset + i as u64 >= offset {
                            out.write_all(record)?;
                            out.write_all(b"\n")?;
                        }
                    }
                }
                None => writeln!(
                    out,
                    "<batch at {}: {} bytes>",
                    batch.base_offset,
                    batch.records.len()
                )?,
            }
            offset = batch.last_offset + 1;
        }
        out.flush()?;
        if !args.follow && offset >= fetched.high_watermark {
            return Ok(());
        }
    }
}

pub async fn status(target: Target) -> Result<(), CliError> {
    let client = target.connect().await?;
    let status = client.status(None).await?;
    let mut out = std::io::stdout().lock();
    let controller = status
        .controller
        .map_or("none".to_owned(), |c| c.to_string());
    writeln!(out, "controller: {controller}")?;
    // Each node knows the leaders of the partitions it hosts: ask every node, and take
    // each partition's leader and high watermark from the node that leads it.
    let mut leaders: BTreeMap<(String, u32), (u64, u64)> = BTreeMap::new();
    let mut led: BTreeMap<u64, usize> = BTreeMap::new();
    for node in &status.nodes {
        let detail = match client.status(Some(node.id)).await {
            Ok(s) => {
                for p in s.local_partitions.iter().filter(|p| p.leader) {
                    leaders.insert((p.topic.clone(), p.partition), (node.id, p.high_watermark));
                    *led.entry(node.id).or_default() += 1;
                }
                format!(
                    "{} groups, {} leaders, {} hibernated, {} WAL syncs",
                    s.local_groups, s.local_leaders, s.local_hibernated, s.wal_syncs
                )
            }
            Err(e) => format!("unreachable ({e})"),
        };
        let count = led.get(&node.id).copied().unwrap_or(0);
        writeln!(
            out,
            "node {} raft {} client {}: leads {count} partitions; {detail}",
            node.id, node.raft_address, node.client_address
        )?;
    }
    for p in &status.partitions {
        let (leader, hw) = match leaders.get(&(p.topic.clone(), p.partition)) {
            Some((l, hw)) => (l.to_string(), hw.to_string()),
            None => ("none".to_owned(), "?".to_owned()),
        };
        // Lag: raft entries each replica is behind the leader's commit index.
        let lag = match client.partition_status(&p.topic, p.partition).await {
            Ok(raft) => raft
                .matched
                .iter()
                .map(|(node, matched)| format!("{node}:{}", raft.commit.saturating_sub(*matched)))
                .collect::<Vec<_>>()
                .join(" "),
            Err(_) => "?".to_owned(),
        };
        writeln!(
            out,
            "{}-{}\tleader {leader}\thigh watermark {hw}\treplicas {:?}\tlag {lag}",
            p.topic, p.partition, p.replicas
        )?;
    }
    Ok(())
}
