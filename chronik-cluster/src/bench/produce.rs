//! `bench produce`: 3 chronik nodes in this process, gRPC between them on loopback,
//! the real write-ahead log with sync; producers send record batches through the node
//! API to each partition's leader. Beside it, the naive driver on the same settings:
//! bare raft groups (a counting state machine, so the baseline is spared the partition
//! work), over the same loopback gRPC transport, a write-ahead log and a sync per
//! replica, proposing the same batches. `--sweep` then sweeps the partition count at a
//! fixed offered load and draws an SVG plot.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chronik_cluster::client::ChronikClient;
use chronik_cluster::{encode_records, Acks, ProduceRequest, TopicSpec};
use raft_transport::grpc::{GrpcConfig, GrpcTransport};
use raft_transport::Transport;

use super::load::{self, Client, Outcome, Shape};
use super::nodes::{free_addresses, Nodes, Producer};
use super::raftlevel::{AnyCluster, NODES};
use super::{sweep, BenchError, Common, Driver, Report, Timing};

/// Flags of `bench produce`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProduceArgs {
    /// Partitions (raft groups), 3 replicas each.
    #[arg(long, default_value_t = 64)]
    pub partitions: u32,
    /// Concurrent producers per partition, each waiting for its answer.
    #[arg(long, default_value_t = 4)]
    pub producers: usize,
    /// Bytes per record.
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// Records per produce request.
    #[arg(long, default_value_t = 100)]
    pub batch: u32,
    /// Acknowledgement level: all, leader or none.
    #[arg(long, default_value = "all")]
    pub acks: AcksArg,
    /// Offered load in records/s over all producers (0: as fast as answered).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Seconds of load before each measured window (the sweep's too), not measured: the
    /// nodes' first second or so of load is spent faulting in fresh memory. A paced
    /// client still behind when the window opens starts it on its schedule (the
    /// warm-up's backlog is not carried over).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Stop each run after this many records acknowledged (before `--duration`).
    #[arg(long)]
    pub records: Option<u64>,
    /// How our producers reach the leaders: `api` calls each node's `Cluster` in this
    /// process; `grpc` goes through `ChronikClient` and the nodes' client service.
    #[arg(long, default_value = "api")]
    pub via: Via,
    /// Also sweep the partition count at a fixed offered load (ours only) and plot it.
    #[arg(long)]
    pub sweep: bool,
    /// Partition counts of the sweep.
    #[arg(long, value_delimiter = ',', default_values_t = [1u32, 64, 1024])]
    pub sweep_partitions: Vec<u32>,
    /// Offered load of the sweep, records/s.
    #[arg(long, default_value_t = 100_000.0)]
    pub sweep_rate: f64,
    /// Producer tasks of the sweep (spread round-robin over the partitions).
    #[arg(long, default_value_t = 64)]
    pub sweep_producers: usize,
    /// Start our nodes' logs on prefilled segment files (`[raft] prefill_segments`), as
    /// a log that has run a while starts its segments on purged ones: syncs then write
    /// data only. Costs writing two segments of zeros per node before the run. The
    /// naive driver's logs (one per group) are unchanged.
    #[arg(long)]
    pub prefill_log: bool,
}

/// Figures a driver adds to the common ones.
type Extra = Vec<(&'static str, f64)>;

/// `--via`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    /// The node API in process.
    Api,
    /// The client gRPC service on loopback.
    Grpc,
}

/// A producer through the gRPC client, which finds and follows the leader itself.
struct ClientProducer {
    client: Arc<ChronikClient>,
    request: ProduceRequest,
}

impl Client for ClientProducer {
    async fn call(&mut self, _seq: u64) -> Result<(), String> {
        match self.client.produce(self.request.clone()).await {
            Ok(_) => Ok(()),
            Err(error) => Err(load::error_kind(&error)),
        }
    }
}

/// `--acks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AcksArg {
    /// Committed on a quorum and applied.
    All,
    /// Kafka's acks=1 (raft still commits on a quorum).
    Leader,
    /// Fire and forget.
    None,
}

impl AcksArg {
    /// The library's level.
    pub fn acks(self) -> Acks {
        match self {
            AcksArg::All => Acks::All,
            AcksArg::Leader => Acks::Leader,
            AcksArg::None => Acks::None,
        }
    }
}

impl ProduceArgs {
    /// `--warmup` as a duration (checked to be finite and not negative by `run`).
    pub fn warmup_time(&self) -> Duration {
        Duration::try_from_secs_f64(self.warmup).unwrap_or_default()
    }
}

/// The topic of the scenario.
pub const TOPIC: &str = "bench";

/// One record batch of `count` records of `size` bytes, as the node API takes it.
pub fn batch(count: u32, size: usize) -> Bytes {
    encode_records(&vec![vec![b'x'; size]; count as usize])
}

/// Runs the scenario.
pub async fn run(common: &Common, args: ProduceArgs) -> Result<Report, BenchError> {
    if args.partitions == 0 || args.producers == 0 || args.batch == 0 || args.record_size == 0 {
        return Err(BenchError::Usage(
            "--partitions, --producers, --batch and --record-size must be at least 1".into(),
        ));
    }
    if !(args.warmup.is_finite() && args.warmup >= 0.0) {
        return Err(BenchError::Usage(
            "--warmup must be a number of seconds, 0 or more".into(),
        ));
    }
    let timing = common.timing();
    let duration = common.duration(5.0);
    let mut report = Report::new("produce");
    report.setting("nodes", NODES);
    report.setting("transport", "grpc-loopback");
    report.setting("wal_sync", true);
    report.setting("partitions", args.partitions);
    report.setting("replicas", 3);
    report.setting("producers_per_partition", args.producers as u64);
    report.setting("record_bytes", args.record_size as u64);
    report.setting("batch_records", args.batch);
    report.setting("acks", format!("{:?}", args.acks).to_lowercase());
    report.setting("via", format!("{:?}", args.via).to_lowercase());
    report.setting("offered_records_per_sec", args.rate);
    report.setting("duration_secs", duration.as_secs_f64());
    report.setting("prefill_log", args.prefill_log);
    let warmup = args.warmup_time().min(duration);
    report.setting("warmup_secs", warmup.as_secs_f64());
    timing.describe(&mut report);
    let shape = Shape {
        warmup,
        duration,
        rate: (args.rate > 0.0).then(|| args.rate / f64::from(args.batch)),
        max_calls: args.records.map(|r| r.div_ceil(u64::from(args.batch))),
    };
    for driver in common.drivers() {
        let dir = common.temp_dir()?;
        let (outcome, extra) = match driver {
            Driver::Ours => ours(&args, timing, shape, dir.path()).await?,
            Driver::Naive => {
                let (args, path) = (args.clone(), dir.path().to_path_buf());
                let handle = tokio::runtime::Handle::current();
                super::blocking(move || naive(&args, timing, shape, &path, &handle)).await?
            }
        };
        record(
            &mut report,
            driver.name(),
            &outcome,
            args.batch,
            args.record_size,
        );
        for (name, value) in extra {
            report.add(driver.name(), name, value);
        }
    }
    report.ratios(
        "ours",
        "naive",
        &[
            "records_per_sec",
            "mb_per_sec",
            "p50_ms",
            "p99_ms",
            "cpu_percent",
        ],
    );
    if args.sweep {
        sweep::run(common, &args, timing, &mut report).await?;
    }
    Ok(report)
}

/// The figures of one run into `section`.
pub fn record(report: &mut Report, section: &str, outcome: &Outcome, batch: u32, size: usize) {
    let records = outcome.per_sec() * f64::from(batch);
    report.add(section, "records_per_sec", records);
    report.add(section, "mb_per_sec", records * size as f64 / 1e6);
    report.add(section, "requests_per_sec", outcome.per_sec());
    report.add(section, "p50_ms", outcome.quantile_ms(0.5));
    report.add(section, "p99_ms", outcome.quantile_ms(0.99));
    report.add(section, "p999_ms", outcome.quantile_ms(0.999));
    report.add(section, "errors", outcome.errors as f64);
    for (kind, n) in &outcome.error_kinds {
        report.add(section, &format!("errors_{kind}"), *n as f64);
    }
    report.add(section, "cpu_percent", outcome.cpu_percent);
}

async fn ours(
    args: &ProduceArgs,
    timing: Timing,
    shape: Shape,
    dir: &std::path::Path,
) -> Result<(Outcome, Extra), BenchError> {
    let mut nodes = Nodes::configure(NODES, dir, timing)?;
    for config in &mut nodes.configs {
        config.raft.prefill_segments = args.prefill_log;
    }
    nodes.start_all().await?;
    let outcome = async {
        nodes
            .create_topic(TopicSpec::new(TOPIC, args.partitions, 3))
            .await?;
        let records = batch(args.batch, args.record_size);
        let live = nodes.live();
        // (syncs, bytes written, slow syncs, slowest sync in µs) of every node's
        // write-ahead log.
        let syncs = |live: &[(u64, chronik_cluster::Cluster)]| -> (u64, u64, u64, u64) {
            live.iter()
                .map(|(_, c)| c.status())
                .fold((0, 0, 0, 0), |(s, b, slow, max), st| {
                    (
                        s + st.wal_syncs,
                        b + st.wal_bytes_written,
                        slow + st.wal_slow_syncs,
                        max.max(st.wal_sync_max_micros),
                    )
                })
        };
        let before = syncs(&live);
        let hints = nodes.leader_hints(TOPIC, args.partitions);
        let producers: Vec<Producer> = (0..args.partitions)
            .flat_map(|partition| (0..args.producers).map(move |_| partition))
            .map(|partition| Producer {
                nodes: live.clone(),
                topic: TOPIC.to_owned(),
                partition,
                records: records.clone(),
                count: args.batch,
                acks: args.acks.acks(),
                hint: hints
                    .get(partition as usize)
                    .copied()
                    .unwrap_or(partition as usize),
            })
            .collect();
        let outcome = match args.via {
            Via::Api => load::run(producers, shape, "produce ours").await?,
            Via::Grpc => {
                let addresses: Vec<String> = nodes
                    .configs
                    .iter()
                    .map(|c| c.client_addr.to_string())
                    .collect();
                let client = Arc::new(
                    ChronikClient::connect(&addresses)
                        .await?
                        .with_timeout(Duration::from_secs(10)),
                );
                let producers: Vec<ClientProducer> = producers
                    .into_iter()
                    .map(|p| {
                        let mut request =
                            ProduceRequest::new(TOPIC, p.partition, p.records, p.count);
                        request.acks = p.acks;
                        ClientProducer {
                            client: Arc::clone(&client),
                            request,
                        }
                    })
                    .collect();
                load::run(producers, shape, "produce ours (gRPC client)").await?
            }
        };
        let after = syncs(&live);
        let secs = (shape.warmup.as_secs_f64() + outcome.secs).max(1e-9);
        let synced = after.0.saturating_sub(before.0) as f64;
        let written = after.1.saturating_sub(before.1) as f64;
        Ok::<_, BenchError>((
            outcome,
            vec![
                ("wal_syncs_per_sec", synced / secs),
                ("wal_mb_written_per_sec", written / 1e6 / secs),
                // Syncs of 100 ms or more in the run, and the slowest since the start.
                ("wal_slow_syncs", after.2.saturating_sub(before.2) as f64),
                ("wal_sync_max_ms", after.3 as f64 / 1e3),
            ],
        ))
    }
    .await;
    nodes.shutdown().await;
    outcome
}

/// Three gRPC endpoints on loopback, each knowing the others.
async fn grpc_endpoints(timing: Timing) -> Result<Vec<Arc<GrpcTransport>>, BenchError> {
    let addresses = free_addresses(NODES as usize)?;
    let mut endpoints = Vec::new();
    for id in 1..=NODES {
        let tick = timing.tick.max(Duration::from_millis(10));
        let config = GrpcConfig::new(id, 1)
            .heartbeat_interval(tick * 2)
            .dead_after(tick * timing.election_ticks as u32);
        let transport = GrpcTransport::new(config)?;
        for peer in 1..=NODES {
            if peer != id {
                transport.add_peer(peer, format!("http://{}", addresses[peer as usize - 1]))?;
            }
        }
        let listener = tokio::net::TcpListener::bind(addresses[id as usize - 1]).await?;
        transport.serve(listener)?;
        endpoints.push(transport);
    }
    Ok(endpoints)
}

/// The naive side, on a blocking thread (it owns a runtime); `handle` is the main
/// runtime, where the transports and the producers run, as for ours.
fn naive(
    args: &ProduceArgs,
    timing: Timing,
    shape: Shape,
    dir: &std::path::Path,
    handle: &tokio::runtime::Handle,
) -> Result<(Outcome, Extra), BenchError> {
    let endpoints = handle.block_on(grpc_endpoints(timing))?;
    let dynamic: Vec<Arc<dyn Transport>> = endpoints
        .iter()
        .map(|e| Arc::clone(e) as Arc<dyn Transport>)
        .collect();
    let outcome = (|| {
        let cluster = AnyCluster::start(Driver::Naive, dynamic, timing, Some(dir.into()), true)?;
        let groups = u64::from(args.partitions);
        cluster.elect(groups, Duration::from_secs(60 + groups / 10))?;
        let data = batch(args.batch, args.record_size).to_vec();
        let clients: Vec<_> = (1..=groups)
            .flat_map(|group| (0..args.producers).map(move |_| group))
            .map(|group| cluster.client(group, data.clone()))
            .collect();
        let before = cluster.syncs();
        let outcome = handle.block_on(load::run(clients, shape, "produce naive"))?;
        let syncs = cluster.syncs().saturating_sub(before) as f64;
        let secs = shape.warmup.as_secs_f64() + outcome.secs;
        let behind = cluster.nodes_behind(outcome.acked) as f64;
        drop(cluster);
        Ok::<_, BenchError>((
            outcome,
            vec![
                ("wal_syncs_per_sec", syncs / secs.max(1e-9)),
                ("nodes_behind", behind),
            ],
        ))
    })();
    for endpoint in &endpoints {
        handle.block_on(endpoint.shutdown());
    }
    outcome
}
