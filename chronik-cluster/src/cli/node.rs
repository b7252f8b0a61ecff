//! `chronik-cluster node --config FILE`.

use std::net::SocketAddr;
use std::path::PathBuf;

use chronik_cluster::{Node, NodeConfig};

use super::CliError;

/// Arguments of `node`.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// The node's TOML config file.
    #[arg(long)]
    config: PathBuf,
    /// Override the node id.
    #[arg(long)]
    node_id: Option<u64>,
    /// Override the data directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Override the raft listen address.
    #[arg(long)]
    raft_addr: Option<SocketAddr>,
    /// Override the client listen address.
    #[arg(long)]
    client_addr: Option<SocketAddr>,
}

pub async fn run(args: NodeArgs) -> Result<(), CliError> {
    let mut config = NodeConfig::load(&args.config).map_err(chronik_cluster::ClusterError::from)?;
    if let Some(id) = args.node_id {
        config.node_id = id;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(addr) = args.raft_addr {
        config.raft_addr = addr;
    }
    if let Some(addr) = args.client_addr {
        config.client_addr = addr;
    }
    config
        .validate()
        .map_err(chronik_cluster::ClusterError::from)?;
    let (id, client) = (config.node_id, config.client_addr);
    let node = Node::builder(config).start().await?;
    eprintln!("node {id} running; clients connect to {client}; Ctrl-C stops it");
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("stopping node {id}");
    node.shutdown().await;
    Ok(())
}
