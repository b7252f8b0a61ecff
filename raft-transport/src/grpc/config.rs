//! Settings of a [`GrpcTransport`](super::GrpcTransport).

use std::time::Duration;

use crate::{NodeId, TransportError};

/// PEM material for mutual TLS between nodes: every node presents a
/// certificate signed by the cluster's CA and accepts only peers that do.
#[derive(Clone)]
pub struct TlsConfig {
    /// The cluster CA certificate (PEM) that signs every node's certificate.
    pub ca_pem: Vec<u8>,
    /// This node's certificate chain (PEM).
    pub cert_pem: Vec<u8>,
    /// This node's private key (PEM).
    pub key_pem: Vec<u8>,
    /// The name every node certificate carries (checked by clients).
    pub server_name: String,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// Settings of a gRPC transport; build with [`GrpcConfig::new`] and the
/// chained setters.
#[derive(Clone, Debug)]
pub struct GrpcConfig {
    pub(crate) node_id: NodeId,
    pub(crate) cluster_id: u64,
    pub(crate) queue_capacity: usize,
    pub(crate) max_frame_size: usize,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) dead_after: Duration,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) snapshot_window: usize,
    pub(crate) snapshot_chunk_size: usize,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) tls: Option<TlsConfig>,
}

impl GrpcConfig {
    /// Defaults for node `node_id` of cluster `cluster_id`: 1024 batches per
    /// peer queue, 16 MiB frames, a heartbeat every 500 ms, unreachable
    /// after 2 s of silence, reconnect backoff 50 ms to 5 s, no TLS.
    pub fn new(node_id: NodeId, cluster_id: u64) -> Self {
        Self {
            node_id,
            cluster_id,
            queue_capacity: 1024,
            max_frame_size: 16 << 20,
            heartbeat_interval: Duration::from_millis(500),
            dead_after: Duration::from_secs(2),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            snapshot_window: 4,
            snapshot_chunk_size: 1 << 20,
            shutdown_timeout: Duration::from_secs(5),
            tls: None,
        }
    }

    /// Batches queued per peer before `send` drops and answers `QueueFull`.
    pub fn queue_capacity(mut self, batches: usize) -> Self {
        self.queue_capacity = batches;
        self
    }

    /// The largest frame sent or accepted, in bytes (also bounds snapshot chunks).
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// How often an idle link sends a liveness heartbeat.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Silence after which a peer is reported unreachable.
    pub fn dead_after(mut self, silence: Duration) -> Self {
        self.dead_after = silence;
        self
    }

    /// Reconnect backoff: starts at `min`, doubles up to `max`, with jitter.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max;
        self
    }

    /// Time allowed to establish a connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Snapshot chunks buffered per transfer on each side (flow control).
    pub fn snapshot_window(mut self, chunks: usize) -> Self {
        self.snapshot_window = chunks;
        self
    }

    /// Largest snapshot chunk on the wire; bigger chunks from the source are split.
    pub fn snapshot_chunk_size(mut self, bytes: usize) -> Self {
        self.snapshot_chunk_size = bytes;
        self
    }

    /// How long [`shutdown`](super::GrpcTransport::shutdown) waits for the server to drain.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Mutual TLS between nodes (off by default).
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The cluster id every frame must carry.
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`TransportError::Config`] naming the first bad field.
    pub fn validate(&self) -> Result<(), TransportError> {
        let bad = |field, problem| Err(TransportError::Config { field, problem });
        if self.queue_capacity == 0 {
            return bad("queue_capacity", "must be at least 1");
        }
        if self.max_frame_size < 1024 {
            return bad("max_frame_size", "must be at least 1024 bytes");
        }
        if self.max_frame_size > u32::MAX as usize {
            return bad("max_frame_size", "must fit in 32 bits");
        }
        if self.heartbeat_interval.is_zero() {
            return bad("heartbeat_interval", "must be positive");
        }
        if self.dead_after <= self.heartbeat_interval {
            return bad("dead_after", "must exceed heartbeat_interval");
        }
        if self.backoff_min.is_zero() || self.backoff_max < self.backoff_min {
            return bad("backoff", "need 0 < min <= max");
        }
        if self.tls.is_some() && !cfg!(feature = "tls") {
            return bad("tls", "the crate was built without the `tls` feature");
        }
        if self.snapshot_window == 0 {
            return bad("snapshot_window", "must be at least 1");
        }
        if self.snapshot_chunk_size == 0 || self.snapshot_chunk_size + 256 > self.max_frame_size {
            return bad("snapshot_chunk_size", "must be positive and fit in a frame");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        GrpcConfig::new(1, 2).validate().unwrap();
    }

    #[test]
    fn each_bad_field_is_named() {
        let field = |config: GrpcConfig| match config.validate() {
            Err(TransportError::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        };
        let base = || GrpcConfig::new(1, 2);
        assert_eq!(field(base().queue_capacity(0)), "queue_capacity");
        assert_eq!(field(base().max_frame_size(10)), "max_frame_size");
        assert_eq!(
            field(base().heartbeat_interval(Duration::ZERO)),
            "heartbeat_interval"
        );
        assert_eq!(
            field(base().dead_after(Duration::from_millis(100))),
            "dead_after"
        );
        let inverted = base().backoff(Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(field(inverted), "backoff");
        assert_eq!(field(base().snapshot_window(0)), "snapshot_window");
        assert_eq!(
            field(base().snapshot_chunk_size(16 << 20)),
            "snapshot_chunk_size"
        );
    }
}
