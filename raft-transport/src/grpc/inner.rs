//! State shared by the transport handle, its server and its tasks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tonic::transport::{Channel, Endpoint};

use super::config::GrpcConfig;
use super::peer::Peer;
use super::proto::raft_transport_client::RaftTransportClient;
use crate::stats::RejectCounters;
use crate::{MessageHandler, NodeId, PeerState, TransportError};

/// Shared state of one gRPC transport endpoint.
pub(crate) struct Inner {
    pub(crate) config: GrpcConfig,
    pub(crate) runtime: Handle,
    pub(crate) peers: RwLock<HashMap<NodeId, Arc<Peer>>>,
    handler: RwLock<Option<Arc<dyn MessageHandler>>>,
    pub(crate) rejects: RejectCounters,
    epoch: Instant,
    closed: AtomicBool,
    /// Flips to `true` on shutdown; the server and inbound streams watch it.
    pub(crate) shutdown: watch::Sender<bool>,
}

impl Inner {
    pub(crate) fn new(config: GrpcConfig, runtime: Handle) -> Self {
        Self {
            config,
            runtime,
            peers: RwLock::new(HashMap::new()),
            handler: RwLock::new(None),
            rejects: RejectCounters::default(),
            epoch: Instant::now(),
            closed: AtomicBool::new(false),
            shutdown: watch::Sender::new(false),
        }
    }

    pub(crate) fn local_id(&self) -> NodeId {
        self.config.node_id
    }

    /// Milliseconds since this transport started (the liveness clock).
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Marks the transport closed; true the first time.
    pub(crate) fn close(&self) -> bool {
        let first = !self.closed.swap(true, Ordering::AcqRel);
        self.shutdown.send_replace(true);
        first
    }

    pub(crate) fn handler(&self) -> Option<Arc<dyn MessageHandler>> {
        self.handler.read().clone()
    }

    pub(crate) fn set_handler(&self, handler: Arc<dyn MessageHandler>) {
        *self.handler.write() = Some(handler);
    }

    pub(crate) fn peer(&self, id: NodeId) -> Option<Arc<Peer>> {
        self.peers.read().get(&id).cloned()
    }

    /// Tells the handler (if any) about a liveness change.
    pub(crate) fn notify(&self, peer: NodeId, state: PeerState) {
        tracing::debug!(
            node = self.local_id(),
            peer,
            ?state,
            "peer liveness changed"
        );
        if let Some(handler) = self.handler() {
            handler.on_peer_state(peer, state);
        }
    }

    /// Records that `peer` was heard from, telling the handler if it is news.
    pub(crate) fn heard(&self, peer: &Peer) {
        if let Some(state) = peer.heard(self.now_ms()) {
            self.notify(peer.id, state);
        }
    }

    /// The endpoint to reach `uri` with this transport's settings (and TLS).
    pub(crate) fn endpoint(&self, peer: NodeId, uri: &str) -> Result<Endpoint, TransportError> {
        let invalid = || TransportError::InvalidAddress {
            node: peer,
            address: uri.to_owned(),
        };
        let endpoint = Endpoint::from_shared(uri.to_owned()).map_err(|_| invalid())?;
        let window = stream_window(&self.config);
        let endpoint = endpoint
            .connect_timeout(self.config.connect_timeout)
            .tcp_nodelay(true)
            .initial_stream_window_size(window)
            .initial_connection_window_size(window.saturating_mul(4))
            .http2_keep_alive_interval(self.config.heartbeat_interval)
            .keep_alive_timeout(self.config.dead_after)
            .keep_alive_while_idle(true);
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.config.tls {
            return endpoint
                .tls_config(super::tls::client_config(tls))
                .map_err(|error| TransportError::Tls {
                    context: "client configuration",
                    detail: super::error_chain(&error),
                });
        }
        Ok(endpoint)
    }

    /// A client on `channel` with the frame limits applied.
    pub(crate) fn client(&self, channel: Channel) -> RaftTransportClient<Channel> {
        RaftTransportClient::new(channel)
            .max_decoding_message_size(self.config.max_frame_size)
            .max_encoding_message_size(self.config.max_frame_size)
    }
}

/// HTTP/2 stream window: enough for a full frame, capped so a stalled
/// receiver holds little.
pub(crate) fn stream_window(config: &GrpcConfig) -> u32 {
    let wanted = config.max_frame_size.clamp(1 << 20, 4 << 20);
    u32::try_from(wanted).unwrap_or(u32::MAX)
}
