//! Outbound I/O from outside: a [`Connector`] opens the byte stream to a
//! peer instead of TCP, so the same transport runs over
//! `tokio::io::duplex` in tests or a simulated network.

use std::sync::Arc;

use futures::future::BoxFuture;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::transport::{Channel, Endpoint, Uri};

use crate::NodeId;

/// A byte stream to a peer.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T> Io for T where T: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

/// Opens byte streams to peers in place of TCP; pair it with
/// [`GrpcTransport::serve_with_incoming`](super::GrpcTransport::serve_with_incoming)
/// on the other side.
pub trait Connector: Send + Sync + 'static {
    /// A new stream to `peer`.
    ///
    /// # Errors
    /// Any I/O error; the writer backs off and tries again.
    fn connect(&self, peer: NodeId) -> BoxFuture<'static, std::io::Result<Box<dyn Io>>>;
}

/// Connects `endpoint` through `connector` (HTTP/2 and TLS on top as usual).
pub(crate) async fn connect(
    endpoint: &Endpoint,
    connector: &Arc<dyn Connector>,
    peer: NodeId,
) -> Result<Channel, tonic::transport::Error> {
    let connector = Arc::clone(connector);
    let service = tower::service_fn(move |_uri: Uri| {
        let connector = Arc::clone(&connector);
        async move { connector.connect(peer).await.map(TokioIo::new) }
    });
    endpoint.connect_with_connector(service).await
}
