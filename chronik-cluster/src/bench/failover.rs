//! `bench failover`: 3 chronik nodes over loopback gRPC with the real write-ahead
//! log; stop the node that leads the most partitions (about a third, as leaders are
//! balanced); time until every partition has a leader again, and until a produce
//! succeeds on every partition.

use std::time::{Duration, Instant};

use chronik_cluster::{Acks, NodeId, TopicSpec};

use super::nodes::{Nodes, Producer};
use super::produce::{batch, TOPIC};
use super::raftlevel::NODES;
use super::{BenchError, Common, Report};

/// Flags of `bench failover`.
#[derive(Debug, Clone, clap::Args)]
pub struct FailoverArgs {
    /// Partitions, 3 replicas each.
    #[arg(long, default_value_t = 30)]
    partitions: u32,
    /// Milliseconds to leave the groups idle (asleep) before the stop.
    #[arg(long, default_value_t = 2000)]
    settle_ms: u64,
    /// Stop the controller (the metadata group's leader) if it leads as many
    /// partitions as another node; by default another node is picked then, so the run
    /// measures partition failover alone.
    #[arg(long)]
    kill_controller: bool,
}

/// Runs the scenario.
pub async fn run(common: &Common, args: FailoverArgs) -> Result<Report, BenchError> {
    if args.partitions == 0 {
        return Err(BenchError::Usage("--partitions must be at least 1".into()));
    }
    let timing = common.timing();
    let mut report = Report::new("failover");
    report.setting("nodes", NODES);
    report.setting("transport", "grpc-loopback");
    report.setting("partitions", args.partitions);
    report.setting("replicas", 3);
    report.setting(
        "election_timeout_ms",
        (timing.tick * timing.election_ticks as u32).as_millis() as u64,
    );
    report.setting("settle_ms", args.settle_ms);
    report.setting("kill_controller", args.kill_controller);
    timing.describe(&mut report);
    let dir = common.temp_dir()?;
    let mut nodes = Nodes::start(NODES, dir.path(), timing).await?;
    let outcome = failover(&mut nodes, &args, &mut report).await;
    nodes.shutdown().await;
    outcome?;
    Ok(report)
}

/// Who leads each partition, as `cluster` sees it.
fn leaders(nodes: &Nodes) -> Vec<Option<NodeId>> {
    nodes
        .live()
        .first()
        .and_then(|(_, c)| c.describe_topic(TOPIC).ok())
        .map(|t| t.partitions.iter().map(|p| p.leader).collect())
        .unwrap_or_default()
}

async fn failover(
    nodes: &mut Nodes,
    args: &FailoverArgs,
    report: &mut Report,
) -> Result<(), BenchError> {
    let progress = super::load::bar(4, "failover: creating the topic");
    nodes
        .create_topic(TopicSpec::new(TOPIC, args.partitions, 3))
        .await?;
    // One produce per partition, so every group has data and a leader that served.
    let records = batch(10, 100);
    let producer = |nodes: &Nodes, partition: u32| Producer {
        nodes: nodes.live(),
        topic: TOPIC.to_owned(),
        partition,
        records: records.clone(),
        count: 10,
        acks: Acks::All,
        hint: partition as usize,
    };
    produce_everywhere(nodes, args.partitions, &producer, Duration::from_secs(30)).await?;
    progress.inc(1);
    progress.set_message("failover: groups settling");
    tokio::time::sleep(Duration::from_millis(args.settle_ms)).await;
    let before = leaders(nodes);
    let mut led: Vec<(NodeId, usize)> = (1..=NODES)
        .map(|id| (id, before.iter().filter(|l| **l == Some(id)).count()))
        .collect();
    let controller = nodes.live().first().and_then(|(_, c)| c.controller());
    // Most partitions led first; among equals, the controller last unless asked for.
    let spare = |id: NodeId| controller == Some(id) && !args.kill_controller;
    led.sort_by_key(|&(id, count)| (std::cmp::Reverse(count), spare(id), id));
    let (victim, victim_led) = led.first().copied().unwrap_or((1, 0));
    progress.inc(1);
    progress.set_message(format!("failover: stopping node {victim}"));
    let stopped = Instant::now();
    nodes.stop(victim).await;
    let stop_took = stopped.elapsed();
    let all_led = nodes
        .wait(
            "every partition led by a live node",
            Duration::from_secs(60),
            |c| {
                c.describe_topic(TOPIC).is_ok_and(|t| {
                    t.partitions
                        .iter()
                        .all(|p| p.leader.is_some_and(|l| l != victim))
                })
            },
        )
        .await?;
    let all_led = stopped.elapsed().min(stop_took + all_led);
    progress.inc(1);
    progress.set_message("failover: producing to every partition");
    produce_everywhere(nodes, args.partitions, &producer, Duration::from_secs(60)).await?;
    let all_produced = stopped.elapsed();
    progress.finish_and_clear();
    report.add("ours", "victim_node", victim as f64);
    report.add("ours", "victim_led_partitions", victim_led as f64);
    report.add(
        "ours",
        "victim_was_controller",
        f64::from(u8::from(controller == Some(victim))),
    );
    report.add("ours", "stop_ms", stop_took.as_secs_f64() * 1e3);
    report.add("ours", "all_led_ms", all_led.as_secs_f64() * 1e3);
    report.add(
        "ours",
        "all_produce_ok_ms",
        all_produced.as_secs_f64() * 1e3,
    );
    Ok(())
}

/// Produces to every partition at once, each retrying (1 ms apart) until it succeeds
/// or `deadline` passes.
async fn produce_everywhere(
    nodes: &Nodes,
    partitions: u32,
    producer: &impl Fn(&Nodes, u32) -> Producer,
    deadline: Duration,
) -> Result<(), BenchError> {
    let until = Instant::now() + deadline;
    let tasks: Vec<_> = (0..partitions)
        .map(|partition| {
            let mut producer = producer(nodes, partition);
            tokio::spawn(async move {
                // Bounded by `until`.
                loop {
                    if producer.produce().await.is_ok() {
                        return true;
                    }
                    if Instant::now() > until {
                        return false;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();
    for task in tasks {
        if !task.await.map_err(|_| BenchError::Panicked)? {
            return Err(BenchError::Timeout {
                what: "a produce to succeed on every partition",
                seconds: deadline.as_secs_f64(),
            });
        }
    }
    Ok(())
}
