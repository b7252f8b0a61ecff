//! `bench produce --sweep`: the same offered load (records/s) over 1, 64 and 1024
//! partitions (`--sweep-partitions`), each a topic of its own on one 3-node cluster;
//! throughput and latency per partition count, drawn as an SVG plot.

use std::time::Duration;

use chronik_cluster::TopicSpec;

use super::load::{self, Client, Shape};
use super::nodes::{Nodes, Producer};
use super::plot::{self, Point};
use super::produce::{batch, record, ProduceArgs};
use super::raftlevel::NODES;
use super::{BenchError, Common, Report, Timing};

/// A producer task that cycles over several partitions, one request at a time.
struct RoundRobin {
    producers: Vec<Producer>,
    next: usize,
}

impl Client for RoundRobin {
    async fn call(&mut self, _seq: u64) -> Result<(), String> {
        let count = self.producers.len().max(1);
        let i = self.next % count;
        self.next = self.next.wrapping_add(1);
        match self.producers.get_mut(i) {
            Some(producer) => producer.produce().await.map_err(|e| load::error_kind(&e)),
            None => Err("no_producer".to_owned()),
        }
    }
}

/// Runs the sweep into `report` (sections `sweep_p{N}`) and writes the plot.
pub async fn run(
    common: &Common,
    args: &ProduceArgs,
    timing: Timing,
    report: &mut Report,
) -> Result<(), BenchError> {
    if args.sweep_partitions.contains(&0) || args.sweep_producers == 0 {
        return Err(BenchError::Usage(
            "--sweep-partitions and --sweep-producers must be at least 1".into(),
        ));
    }
    let duration = common.duration(5.0);
    report.setting("sweep_offered_records_per_sec", args.sweep_rate);
    report.setting("sweep_producers", args.sweep_producers as u64);
    report.setting(
        "sweep_partitions",
        args.sweep_partitions
            .iter()
            .map(|&p| u64::from(p))
            .collect::<Vec<_>>(),
    );
    let dir = common.temp_dir()?;
    let nodes = Nodes::start(NODES, dir.path(), timing).await?;
    let outcome = sweep(&nodes, args, duration, report).await;
    nodes.shutdown().await;
    let points = outcome?;
    let path = common.plot_dir.join("bench-produce-sweep.svg");
    plot::sweep(&path, &points, args.sweep_rate)?;
    report.setting("sweep_plot", path.display().to_string());
    Ok(())
}

/// The partitions producer task `task` of `tasks` cycles over: every partition is
/// someone's, and with fewer partitions than tasks, several tasks share each.
fn assign(task: usize, tasks: usize, partitions: u32) -> Vec<u32> {
    if partitions as usize >= tasks {
        (0..partitions)
            .filter(|p| *p as usize % tasks == task)
            .collect()
    } else {
        vec![(task % partitions as usize) as u32]
    }
}

async fn sweep(
    nodes: &Nodes,
    args: &ProduceArgs,
    duration: Duration,
    report: &mut Report,
) -> Result<Vec<Point>, BenchError> {
    let records = batch(args.batch, args.record_size);
    let mut points = Vec::new();
    for &partitions in &args.sweep_partitions {
        let topic = format!("sweep-{partitions}");
        nodes
            .create_topic(TopicSpec::new(topic.clone(), partitions, 3))
            .await?;
        let live = nodes.live();
        let hints = nodes.leader_hints(&topic, partitions);
        let tasks = args.sweep_producers;
        let clients: Vec<RoundRobin> = (0..tasks)
            .map(|task| RoundRobin {
                producers: assign(task, tasks, partitions)
                    .into_iter()
                    .map(|partition| Producer {
                        nodes: live.clone(),
                        topic: topic.clone(),
                        partition,
                        records: records.clone(),
                        count: args.batch,
                        acks: args.acks.acks(),
                        hint: hints
                            .get(partition as usize)
                            .copied()
                            .unwrap_or(partition as usize),
                    })
                    .collect(),
                next: 0,
            })
            .collect();
        let shape = Shape {
            warmup: args.warmup_time().min(duration),
            duration,
            rate: Some(args.sweep_rate / f64::from(args.batch)),
            max_calls: None,
        };
        let what = format!("sweep {partitions} partitions");
        let outcome = load::run(clients, shape, &what).await?;
        let section = format!("sweep_p{partitions}");
        record(report, &section, &outcome, args.batch, args.record_size);
        points.push(Point {
            partitions,
            records_per_sec: outcome.per_sec() * f64::from(args.batch),
            p50_ms: outcome.quantile_ms(0.5),
            p99_ms: outcome.quantile_ms(0.99),
        });
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::assign;

    #[test]
    fn every_partition_has_a_producer_and_every_task_a_partition() {
        for (tasks, partitions) in [(64, 1), (64, 64), (64, 1024), (3, 10)] {
            let mut seen = vec![0usize; partitions as usize];
            for task in 0..tasks {
                let mine = assign(task, tasks, partitions);
                assert!(!mine.is_empty());
                for p in mine {
                    seen[p as usize] += 1;
                }
            }
            assert!(
                seen.iter().all(|&n| n > 0),
                "{tasks} tasks, {partitions} partitions"
            );
        }
    }
}
