//! `GrpcTransport`: the public handle of the gRPC transport.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;
use tonic::transport::server::{Connected, TcpIncoming};
use tonic::transport::Server;

use super::config::GrpcConfig;
use super::connector::Connector;
use super::inner::{stream_window, Inner};
use super::peer::{batch_size, Link, Peer, FRAME_OVERHEAD};
use super::proto::raft_transport_server::RaftTransportServer;
use super::server::Service;
use crate::{
    GroupMessage, MessageHandler, NodeId, OutgoingSnapshot, SnapshotDone, Transport,
    TransportError, TransportStats,
};

/// The tonic gRPC [`Transport`]. Create it inside a tokio runtime, add the
/// peers, serve on a listener, hand it to the scheduler as
/// `Arc<dyn Transport>`, and [`shutdown`](Self::shutdown) at the end
/// (dropping the last handle also stops its tasks, without draining).
pub struct GrpcTransport {
    inner: Arc<Inner>,
    liveness: Mutex<Option<JoinHandle<()>>>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for GrpcTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcTransport")
            .field("node_id", &self.inner.local_id())
            .field("cluster_id", &self.inner.config.cluster_id)
            .finish_non_exhaustive()
    }
}

impl GrpcTransport {
    /// A transport with `config`, its liveness monitor started.
    ///
    /// # Errors
    /// [`TransportError::Config`] for a bad setting, [`TransportError::NoRuntime`]
    /// outside a tokio runtime.
    pub fn new(config: GrpcConfig) -> Result<Arc<Self>, TransportError> {
        config.validate()?;
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| TransportError::NoRuntime)?;
        let inner = Arc::new(Inner::new(config, runtime.clone()));
        let liveness = runtime.spawn(monitor(Arc::clone(&inner)));
        Ok(Arc::new(Self {
            inner,
            liveness: Mutex::new(Some(liveness)),
            server: Mutex::new(None),
        }))
    }

    /// The settings.
    pub fn config(&self) -> &GrpcConfig {
        &self.inner.config
    }

    /// Adds (or replaces) peer `id` at `address` (`host:port`, or a full
    /// `http://`/`https://` URI) and starts its writer.
    ///
    /// # Errors
    /// [`TransportError::InvalidAddress`], or [`TransportError::Closed`] after shutdown.
    pub fn add_peer(&self, id: NodeId, address: impl Into<String>) -> Result<(), TransportError> {
        let address = address.into();
        let uri = if address.contains("://") {
            address
        } else if self.inner.config.tls.is_some() {
            format!("https://{address}")
        } else {
            format!("http://{address}")
        };
        self.start_peer(id, uri, None)
    }

    /// Adds (or replaces) peer `id`, reached through `connector` instead of
    /// TCP (for instance `tokio::io::duplex` in tests), and starts its writer.
    ///
    /// # Errors
    /// [`TransportError::Closed`] after shutdown.
    pub fn add_peer_with_connector(
        &self,
        id: NodeId,
        connector: Arc<dyn Connector>,
    ) -> Result<(), TransportError> {
        let scheme = if self.inner.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        self.start_peer(id, format!("{scheme}://node-{id}"), Some(connector))
    }

    fn start_peer(
        &self,
        id: NodeId,
        uri: String,
        connector: Option<Arc<dyn Connector>>,
    ) -> Result<(), TransportError> {
        if self.inner.is_closed() {
            return Err(TransportError::Closed);
        }
        // Checks the address before anything starts.
        self.inner.endpoint(id, &uri)?;
        let capacity = self.inner.config.queue_capacity;
        let (peer, queue) = Peer::new(id, uri, connector, capacity, self.inner.now_ms());
        let peer = Arc::new(peer);
        let writer = self.inner.runtime.spawn(super::writer::run(
            Arc::clone(&self.inner),
            Arc::clone(&peer),
            queue,
        ));
        *peer.writer.lock() = Some(writer);
        if let Some(old) = self.inner.peers.write().insert(id, peer) {
            old.stop();
        }
        Ok(())
    }

    /// Removes peer `id` and stops its writer; true if it was known.
    pub fn remove_peer(&self, id: NodeId) -> bool {
        let removed = self.inner.peers.write().remove(&id);
        removed.map(|peer| peer.stop()).is_some()
    }

    /// The known peers.
    pub fn peers(&self) -> Vec<NodeId> {
        let mut peers: Vec<NodeId> = self.inner.peers.read().keys().copied().collect();
        peers.sort_unstable();
        peers
    }

    /// True while the outbound stream to `peer` is up.
    pub fn is_connected(&self, peer: NodeId) -> bool {
        self.inner
            .peer(peer)
            .is_some_and(|peer| peer.link() == Link::Connected)
    }

    /// Serves inbound traffic on `listener` (bind `127.0.0.1:0` in tests)
    /// until [`shutdown`](Self::shutdown).
    ///
    /// # Errors
    /// [`TransportError::Tls`] if the TLS material is unusable, [`TransportError::Closed`] after shutdown.
    pub fn serve(&self, listener: tokio::net::TcpListener) -> Result<(), TransportError> {
        self.serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)))
    }

    /// Serves inbound traffic on any stream of connections.
    ///
    /// # Errors
    /// As [`serve`](Self::serve).
    pub fn serve_with_incoming<I, IO, IE>(&self, incoming: I) -> Result<(), TransportError>
    where
        I: futures::Stream<Item = Result<IO, IE>> + Send + 'static,
        IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
        IE: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
    {
        if self.inner.is_closed() {
            return Err(TransportError::Closed);
        }
        let config = &self.inner.config;
        let window = stream_window(config);
        let builder = Server::builder()
            .initial_stream_window_size(window)
            .initial_connection_window_size(window.saturating_mul(4))
            .http2_keepalive_interval(Some(config.heartbeat_interval))
            .http2_keepalive_timeout(Some(config.dead_after));
        #[cfg(feature = "tls")]
        let builder = match &config.tls {
            Some(tls) => builder
                .tls_config(super::tls::server_config(tls))
                .map_err(|error| TransportError::Tls {
                    context: "server configuration",
                    detail: super::error_chain(&error),
                })?,
            None => builder,
        };
        let mut builder = builder;
        let service = RaftTransportServer::new(Service {
            inner: Arc::clone(&self.inner),
        })
        .max_decoding_message_size(config.max_frame_size)
        .max_encoding_message_size(config.max_frame_size);
        let mut shutdown = self.inner.shutdown.subscribe();
        let signal = async move {
            let _ = shutdown.wait_for(|closed| *closed).await;
        };
        let node = self.inner.local_id();
        let router = builder.add_service(service);
        let server = self.inner.runtime.spawn(async move {
            if let Err(error) = router.serve_with_incoming_shutdown(incoming, signal).await {
                tracing::warn!(node, error = %super::error_chain(&error), "server stopped");
            }
        });
        if let Some(previous) = self.server.lock().replace(server) {
            previous.abort();
        }
        Ok(())
    }

    /// Stops everything: refuses new sends, stops the writers and the
    /// liveness monitor, and lets the server drain for up to
    /// `shutdown_timeout`. Idempotent.
    pub async fn shutdown(&self) {
        self.inner.close();
        self.stop_tasks();
        let server = self.server.lock().take();
        if let Some(mut server) = server {
            let timeout = self.inner.config.shutdown_timeout;
            if tokio::time::timeout(timeout, &mut server).await.is_err() {
                tracing::warn!(node = self.inner.local_id(), "server did not drain in time");
                server.abort();
            }
        }
    }

    fn stop_tasks(&self) {
        let peers: Vec<Arc<Peer>> = self.inner.peers.read().values().cloned().collect();
        for peer in peers {
            peer.stop();
        }
        if let Some(liveness) = self.liveness.lock().take() {
            liveness.abort();
        }
    }
}

impl Drop for GrpcTransport {
    fn drop(&mut self) {
        self.inner.close();
        self.stop_tasks();
        if let Some(server) = self.server.lock().take() {
            server.abort();
        }
        self.inner.peers.write().clear();
    }
}

impl Transport for GrpcTransport {
    fn local_id(&self) -> NodeId {
        self.inner.local_id()
    }

    fn set_handler(&self, handler: Arc<dyn MessageHandler>) {
        self.inner.set_handler(handler);
    }

    fn send(&self, to: NodeId, batch: Vec<GroupMessage>) -> Result<(), TransportError> {
        if self.inner.is_closed() {
            return Err(TransportError::Closed);
        }
        let peer = self
            .inner
            .peer(to)
            .ok_or(TransportError::Unreachable { to })?;
        let size = batch_size(&batch) + FRAME_OVERHEAD;
        let max = self.inner.config.max_frame_size;
        if size > max {
            return Err(TransportError::FrameTooLarge { size, max });
        }
        peer.enqueue(batch)
    }

    fn send_snapshot(&self, to: NodeId, snapshot: OutgoingSnapshot, done: SnapshotDone) {
        let inner = Arc::clone(&self.inner);
        self.inner.runtime.spawn(async move {
            let result = match inner.peer(to) {
                Some(_) if inner.is_closed() => Err(TransportError::Closed),
                Some(peer) => super::snapshot::send(Arc::clone(&inner), peer, snapshot).await,
                None => Err(TransportError::Unreachable { to }),
            };
            done(result);
        });
    }

    fn stats(&self) -> TransportStats {
        let mut stats = TransportStats::default();
        for (&id, peer) in self.inner.peers.read().iter() {
            stats.peers.insert(id, peer.counters.load());
        }
        stats.rejected = self.inner.rejects.load();
        stats
    }
}

/// Marks peers unreachable after `dead_after` of silence; the inbound path
/// marks them reachable again.
async fn monitor(inner: Arc<Inner>) {
    let period = (inner.config.heartbeat_interval / 2).max(Duration::from_millis(5));
    let dead_ms = u64::try_from(inner.config.dead_after.as_millis()).unwrap_or(u64::MAX);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !inner.is_closed() {
        ticker.tick().await;
        let now = inner.now_ms();
        let peers: Vec<Arc<Peer>> = inner.peers.read().values().cloned().collect();
        for peer in peers {
            if let Some(state) = peer.check(now, dead_ms) {
                inner.notify(peer.id, state);
            }
        }
    }
}
