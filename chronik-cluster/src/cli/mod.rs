//! Command-line interface of the `chronik-cluster` binary.

use clap::{Parser, Subcommand};

mod admin;
#[path = "../bench/mod.rs"]
pub mod bench;
mod demo;
mod node;

/// Chronik's clustering layer: replicated Kafka partitions on Multi-Raft.
#[derive(Debug, Parser)]
#[command(name = "chronik-cluster", version, about)]
pub struct Cli {
    /// Log filter (tracing syntax), also from CHRONIK_LOG.
    #[arg(long, global = true, default_value = "warn")]
    pub log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one node from a config file.
    Node(node::NodeArgs),
    /// Start a local 3-node cluster, produce and consume for a while, print figures.
    Demo(demo::DemoArgs),
    /// Create, list, describe or delete topics.
    Topic {
        #[command(subcommand)]
        command: admin::TopicCommand,
        #[command(flatten)]
        target: admin::Target,
    },
    /// Produce lines from stdin to a partition (one record per line).
    Produce(admin::ProduceArgs),
    /// Print a partition's records to stdout.
    Consume(admin::ConsumeArgs),
    /// Show nodes, partitions, leaders and high watermarks.
    Status {
        #[command(flatten)]
        target: admin::Target,
    },
    /// Run a benchmark scenario: figures next to a naive baseline measured in the same run.
    Bench(bench::BenchArgs),
}

/// Errors the CLI reports to the user (one line, non-zero exit).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// From the cluster library.
    #[error(transparent)]
    Cluster(#[from] chronik_cluster::ClusterError),
    /// From the client.
    #[error(transparent)]
    Client(#[from] chronik_cluster::client::ClientError),
    /// Reading stdin or writing stdout.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// The demo's check failed.
    #[error("demo check failed: {0}")]
    Demo(String),
    /// A benchmark could not run to the end.
    #[error("bench: {0}")]
    Bench(#[from] bench::BenchError),
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Node(args) => node::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Topic { command, target } => admin::topic(command, target).await,
        Command::Produce(args) => admin::produce(args).await,
        Command::Consume(args) => admin::consume(args).await,
        Command::Status { target } => admin::status(target).await,
        Command::Bench(args) => {
            let json = bench::wants_json(&args);
            let report = bench::run(args).await?;
            bench::print(&report, json);
            Ok(())
        }
    }
}
