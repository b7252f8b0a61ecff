//! The conformance suite on loopback gRPC, and the gRPC-only checks:
//! three endpoints, restart and reconnect, rejection of bad frames.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use raft_transport::grpc::{GrpcConfig, GrpcTransport};
use raft_transport::{PeerState, Transport};

use crate::suite::{Factory, Harness, WAIT};
use crate::support::{numbered, send_reliably, seq_of, wait_until, Recorder};

pub const CLUSTER: u64 = 0xC1;

/// Settings for tests: fast heartbeats and reconnects, small frames.
pub fn test_config(id: u64) -> GrpcConfig {
    GrpcConfig::new(id, CLUSTER)
        .queue_capacity(256)
        .max_frame_size(2 << 20)
        .heartbeat_interval(Duration::from_millis(50))
        .dead_after(Duration::from_millis(1_000))
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .connect_timeout(Duration::from_secs(1))
        .shutdown_timeout(Duration::from_secs(2))
}

/// Binds `addr`, retrying while the port is still held by the previous server.
pub async fn bind(addr: SocketAddr) -> tokio::net::TcpListener {
    let deadline = Instant::now() + WAIT;
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(error) => {
                assert!(Instant::now() < deadline, "cannot bind {addr}: {error}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

pub struct GrpcFactory;

pub struct GrpcHarness {
    pub addrs: Vec<SocketAddr>,
    pub nodes: Vec<Option<Arc<GrpcTransport>>>,
    pub recorders: Vec<Arc<Recorder>>,
}

impl GrpcHarness {
    /// Starts node `id` on its address with every other node as a peer.
    async fn start_node(&mut self, id: u64, listener: tokio::net::TcpListener) {
        let transport = GrpcTransport::new(test_config(id)).expect("valid config");
        transport.set_handler(self.recorders[id as usize - 1].clone());
        for (index, addr) in self.addrs.iter().enumerate() {
            let peer = index as u64 + 1;
            if peer != id {
                transport
                    .add_peer(peer, addr.to_string())
                    .expect("valid address");
            }
        }
        transport.serve(listener).expect("serving");
        self.nodes[id as usize - 1] = Some(transport);
    }

    /// Waits until every running node's stream to every running peer is up.
    async fn wait_connected(&self) {
        let running: Vec<(u64, Arc<GrpcTransport>)> = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(index, node)| node.clone().map(|node| (index as u64 + 1, node)))
            .collect();
        wait_until("all links up", WAIT, || {
            running.iter().all(|(id, node)| {
                running
                    .iter()
                    .all(|(peer, _)| peer == id || node.is_connected(*peer))
            })
        })
        .await;
    }

    pub fn grpc(&self, id: u64) -> Arc<GrpcTransport> {
        self.nodes[id as usize - 1].clone().expect("node running")
    }
}

#[async_trait::async_trait]
impl Factory for GrpcFactory {
    type H = GrpcHarness;
    async fn start(&self, nodes: u64) -> GrpcHarness {
        let mut listeners = Vec::new();
        for _ in 0..nodes {
            listeners.push(
                tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind"),
            );
        }
        let mut harness = GrpcHarness {
            addrs: listeners
                .iter()
                .map(|l| l.local_addr().expect("addr"))
                .collect(),
            nodes: (0..nodes).map(|_| None).collect(),
            recorders: (0..nodes).map(|_| Recorder::new()).collect(),
        };
        for (index, listener) in listeners.into_iter().enumerate() {
            harness.start_node(index as u64 + 1, listener).await;
        }
        harness.wait_connected().await;
        harness
    }
}

#[async_trait::async_trait]
impl Harness for GrpcHarness {
    fn node(&self, id: u64) -> Arc<dyn Transport> {
        self.grpc(id)
    }
    fn recorder(&self, id: u64) -> Arc<Recorder> {
        self.recorders[id as usize - 1].clone()
    }
    async fn take_down(&mut self, id: u64) {
        if let Some(node) = self.nodes[id as usize - 1].take() {
            node.shutdown().await;
        }
    }
    async fn bring_back(&mut self, id: u64) {
        let listener = bind(self.addrs[id as usize - 1]).await;
        self.start_node(id, listener).await;
        self.wait_connected().await;
    }
    fn snapshot_bound(&self) -> u64 {
        // 4-chunk windows on both sides plus the HTTP/2 stream window (2 MiB)
        // and encoder buffers: a handful of 1 MiB chunks, not the 100 MiB.
        16 << 20
    }
    async fn finish(self) {
        for node in self.nodes.into_iter().flatten() {
            node.shutdown().await;
        }
    }
}

crate::conformance!(crate::grpc::GrpcFactory);

/// Three endpoints: every node talks to every other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_endpoints_all_pairs() {
    let harness = GrpcFactory.start(3).await;
    for from in 1..=3u64 {
        for to in (1..=3u64).filter(|to| *to != from) {
            for seq in 0..50 {
                send_reliably(
                    harness.node(from).as_ref(),
                    to,
                    vec![numbered(from, seq, 64)],
                    WAIT,
                )
                .await;
            }
        }
    }
    for to in 1..=3u64 {
        let recorder = harness.recorder(to);
        for from in (1..=3u64).filter(|from| *from != to) {
            wait_until("50 messages", WAIT, || {
                recorder.messages_from(from).len() == 50
            })
            .await;
            let seqs: Vec<u64> = recorder.messages_from(from).iter().map(seq_of).collect();
            assert_eq!(seqs, (0..50).collect::<Vec<_>>());
        }
        assert_eq!(harness.node(to).stats().rejected.total(), 0);
    }
    harness.finish().await;
}

/// A server restarts on the same port: the peer's writer reconnects with
/// backoff, liveness flips and comes back, and traffic resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_restart_and_reconnect() {
    let mut harness = GrpcFactory.start(2).await;
    let client = harness.grpc(1);
    send_reliably(client.as_ref(), 2, vec![numbered(1, 1, 16)], WAIT).await;
    let recorder = harness.recorder(2);
    wait_until("first message", WAIT, || recorder.message_count() == 1).await;

    harness.take_down(2).await;
    wait_until("link down", WAIT, || !client.is_connected(2)).await;
    wait_until("2 unreachable", WAIT, || {
        harness.recorder(1).last_state(2) == Some(PeerState::Unreachable)
    })
    .await;
    assert!(
        client.send(2, vec![numbered(1, 2, 16)]).is_err(),
        "a down link refuses at once"
    );

    harness.bring_back(2).await;
    send_reliably(client.as_ref(), 2, vec![numbered(1, 3, 16)], WAIT).await;
    wait_until("message after restart", WAIT, || {
        recorder
            .messages_from(1)
            .iter()
            .any(|message| seq_of(message) == 3)
    })
    .await;
    wait_until("2 reachable", WAIT, || {
        harness.recorder(1).last_state(2) == Some(PeerState::Reachable)
    })
    .await;
    let stats = client.stats().peer(2);
    assert!(stats.connects >= 2, "{stats:?}");
    assert!(stats.connect_failures >= 1, "{stats:?}");
    harness.finish().await;
}

/// Shutdown is graceful and final: it returns promptly with peers
/// connected, and afterwards every call answers `Closed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_is_prompt_and_final() {
    let harness = GrpcFactory.start(2).await;
    let node = harness.grpc(1);
    let started = Instant::now();
    node.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert!(matches!(
        node.send(2, vec![numbered(1, 1, 8)]),
        Err(raft_transport::TransportError::Closed)
    ));
    assert!(node.add_peer(3, "127.0.0.1:1").is_err());
    harness.finish().await;
}

/// A batch larger than a frame is refused on send with a typed error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_batch_refused_on_send() {
    let harness = GrpcFactory.start(2).await;
    let big = vec![numbered(1, 1, 3 << 20)];
    match harness.node(1).send(2, big) {
        Err(raft_transport::TransportError::FrameTooLarge { size, max }) => {
            assert!(size > max && max == 2 << 20);
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    harness.finish().await;
}

/// Bad configurations are refused with the field named.
#[tokio::test(flavor = "current_thread")]
async fn config_validation() {
    let bad = GrpcConfig::new(1, 1)
        .dead_after(Duration::from_millis(10))
        .heartbeat_interval(Duration::from_millis(50));
    match GrpcTransport::new(bad) {
        Err(raft_transport::TransportError::Config {
            field: "dead_after",
            ..
        }) => {}
        other => panic!("expected a config error, got {other:?}"),
    }
    assert!(GrpcTransport::new(GrpcConfig::new(1, 1).queue_capacity(0)).is_err());
    let transport = GrpcTransport::new(GrpcConfig::new(1, 1)).unwrap();
    assert!(matches!(
        transport.add_peer(2, "http://[bad"),
        Err(raft_transport::TransportError::InvalidAddress { node: 2, .. })
    ));
    transport.shutdown().await;
}

/// A removed peer is refused from its next frame on, and sending to it
/// answers `Unreachable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn removed_peer_is_refused() {
    let harness = GrpcFactory.start(2).await;
    let (one, two) = (harness.grpc(1), harness.grpc(2));
    send_reliably(two.as_ref(), 1, vec![numbered(1, 1, 8)], WAIT).await;
    wait_until("first message", WAIT, || {
        harness.recorder(1).message_count() == 1
    })
    .await;
    assert!(one.remove_peer(2));
    assert!(!one.remove_peer(2));
    assert_eq!(one.peers(), Vec::<u64>::new());
    assert!(matches!(
        one.send(2, vec![numbered(1, 2, 8)]),
        Err(raft_transport::TransportError::Unreachable { to: 2 })
    ));
    // Node 2's next frame (at the latest its heartbeat) is refused.
    wait_until("a rejection", WAIT, || {
        one.stats().rejected.unknown_sender >= 1
    })
    .await;
    assert_eq!(harness.recorder(1).message_count(), 1);
    harness.finish().await;
}
