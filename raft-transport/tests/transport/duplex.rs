//! The conformance suite on gRPC over in-memory `tokio::io::duplex` pipes:
//! the transport takes its I/O from outside (a `Connector` on the client
//! side, `serve_with_incoming` on the server side), no sockets at all.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use raft_transport::grpc::{Connector, GrpcTransport, Io};
use raft_transport::{NodeId, Transport};
use tokio::io::DuplexStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::grpc::test_config;
use crate::suite::{Factory, Harness, WAIT};
use crate::support::{wait_until, Recorder};

/// Bytes buffered in each direction of a pipe.
const PIPE: usize = 1 << 20;

/// Where each running node accepts new pipes.
#[derive(Clone, Default)]
struct Switchboard(Arc<Mutex<HashMap<NodeId, mpsc::UnboundedSender<DuplexStream>>>>);

impl Connector for Switchboard {
    fn connect(&self, peer: NodeId) -> BoxFuture<'static, std::io::Result<Box<dyn Io>>> {
        let server = self.0.lock().get(&peer).cloned();
        Box::pin(async move {
            let server = server.ok_or(std::io::ErrorKind::ConnectionRefused)?;
            let (client_end, server_end) = tokio::io::duplex(PIPE);
            server
                .send(server_end)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::ConnectionRefused))?;
            Ok(Box::new(client_end) as Box<dyn Io>)
        })
    }
}

pub struct DuplexFactory;

pub struct DuplexHarness {
    board: Switchboard,
    nodes: Vec<Option<Arc<GrpcTransport>>>,
    recorders: Vec<Arc<Recorder>>,
}

impl DuplexHarness {
    fn start_node(&mut self, id: u64) {
        let transport = GrpcTransport::new(test_config(id)).expect("valid config");
        transport.set_handler(self.recorders[id as usize - 1].clone());
        for peer in 1..=self.nodes.len() as u64 {
            if peer != id {
                transport
                    .add_peer_with_connector(peer, Arc::new(self.board.clone()))
                    .expect("peer added");
            }
        }
        let (pipes, incoming) = mpsc::unbounded_channel();
        let incoming = futures::StreamExt::map(
            UnboundedReceiverStream::new(incoming),
            Ok::<_, std::io::Error>,
        );
        transport.serve_with_incoming(incoming).expect("serving");
        self.board.0.lock().insert(id, pipes);
        self.nodes[id as usize - 1] = Some(transport);
    }

    async fn wait_connected(&self) {
        let running: Vec<(u64, Arc<GrpcTransport>)> = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(index, node)| node.clone().map(|node| (index as u64 + 1, node)))
            .collect();
        wait_until("all pipes up", WAIT, || {
            running.iter().all(|(id, node)| {
                running
                    .iter()
                    .all(|(peer, _)| peer == id || node.is_connected(*peer))
            })
        })
        .await;
    }
}

#[async_trait::async_trait]
impl Factory for DuplexFactory {
    type H = DuplexHarness;
    async fn start(&self, nodes: u64) -> DuplexHarness {
        let mut harness = DuplexHarness {
            board: Switchboard::default(),
            nodes: (0..nodes).map(|_| None).collect(),
            recorders: (0..nodes).map(|_| Recorder::new()).collect(),
        };
        for id in 1..=nodes {
            harness.start_node(id);
        }
        harness.wait_connected().await;
        harness
    }
}

#[async_trait::async_trait]
impl Harness for DuplexHarness {
    fn node(&self, id: u64) -> Arc<dyn Transport> {
        self.nodes[id as usize - 1].clone().expect("node running")
    }
    fn recorder(&self, id: u64) -> Arc<Recorder> {
        self.recorders[id as usize - 1].clone()
    }
    async fn take_down(&mut self, id: u64) {
        self.board.0.lock().remove(&id);
        if let Some(node) = self.nodes[id as usize - 1].take() {
            node.shutdown().await;
        }
    }
    async fn bring_back(&mut self, id: u64) {
        self.start_node(id);
        self.wait_connected().await;
    }
    fn snapshot_bound(&self) -> u64 {
        // As over TCP, plus the pipe's own buffer.
        17 << 20
    }
    async fn finish(self) {
        for node in self.nodes.into_iter().flatten() {
            node.shutdown().await;
        }
    }
}

crate::conformance!(crate::duplex::DuplexFactory);
