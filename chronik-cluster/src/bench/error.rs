//! Why a benchmark could not run to the end.

/// A benchmark failure: the run stops and the CLI reports it on one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// Bad flags.
    #[error("bad arguments: {0}")]
    Usage(String),
    /// Local files, sockets, threads or runtimes.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The cluster library.
    #[error(transparent)]
    Cluster(#[from] chronik_cluster::ClusterError),
    /// The gRPC client.
    #[error(transparent)]
    Client(#[from] chronik_cluster::client::ClientError),
    /// The scheduler.
    #[error("replication: {0}")]
    Replication(#[from] raft_multi::Error),
    /// The write-ahead log.
    #[error("write-ahead log: {0}")]
    Storage(#[from] raft_storage::Error),
    /// The transport.
    #[error("transport: {0}")]
    Transport(#[from] raft_transport::TransportError),
    /// raft-rs itself (the naive driver).
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    /// Something expected did not happen in time.
    #[error("timed out after {seconds:.1} s waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: &'static str,
        /// How long.
        seconds: f64,
    },
    /// A run finished but its check failed (for example, records acknowledged but not
    /// applied on every node).
    #[error("check failed: {0}")]
    Check(String),
    /// The SVG plot could not be drawn.
    #[error("plot {path}: {message}")]
    Plot {
        /// The file.
        path: std::path::PathBuf,
        /// What plotters said.
        message: String,
    },
    /// A child run (one driver in a process of its own) failed.
    #[error("child run of driver {driver}: {message}")]
    Child {
        /// The driver.
        driver: &'static str,
        /// Its stderr tail or exit status.
        message: String,
    },
    /// A benchmark thread panicked.
    #[error("a benchmark thread panicked")]
    Panicked,
}
