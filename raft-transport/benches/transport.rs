//! Loopback gRPC between two endpoints, in one run:
//! - small (100-byte) raft messages per second through our transport
//!   (batched, one stream per peer pair) against one unary RPC per message
//!   (the shape to avoid), printed as ratios;
//! - snapshot chunk throughput in MB/s.
//!
//! `cargo bench -p raft-transport` (a few tens of seconds).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use raft_transport::grpc::proto::{self, raft_transport_client::RaftTransportClient};
use raft_transport::grpc::{GrpcConfig, GrpcTransport};
use raft_transport::{
    GroupMessage, IncomingSnapshot, MessageHandler, NodeId, OutgoingSnapshot, PeerState, Transport,
    TransportError,
};

const CLUSTER: u64 = 0xBE7C;
const PAYLOAD: usize = 100;
/// How long each throughput measurement runs.
const RUN: Duration = Duration::from_secs(3);

#[derive(Default)]
struct Counter {
    messages: AtomicU64,
    snapshot_bytes: AtomicU64,
}

#[async_trait::async_trait]
impl MessageHandler for Counter {
    fn on_messages(&self, _from: NodeId, batch: Vec<GroupMessage>) {
        self.messages
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
    }
    fn on_peer_state(&self, _peer: NodeId, _state: PeerState) {}
    async fn on_snapshot(&self, mut snapshot: IncomingSnapshot) -> Result<(), String> {
        while let Some(chunk) = snapshot.next_chunk().await.map_err(|e| e.to_string())? {
            self.snapshot_bytes
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    }
}

struct Pair {
    sender: Arc<GrpcTransport>,
    receiver: Arc<GrpcTransport>,
    counter: Arc<Counter>,
    receiver_addr: String,
}

async fn pair() -> Pair {
    let listener_a = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listener_b = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr_a, addr_b) = (
        listener_a.local_addr().unwrap(),
        listener_b.local_addr().unwrap(),
    );
    let sender = GrpcTransport::new(GrpcConfig::new(1, CLUSTER)).unwrap();
    let receiver = GrpcTransport::new(GrpcConfig::new(2, CLUSTER)).unwrap();
    let counter = Arc::new(Counter::default());
    sender.set_handler(Arc::new(Counter::default()));
    receiver.set_handler(counter.clone());
    sender.add_peer(2, addr_b.to_string()).unwrap();
    receiver.add_peer(1, addr_a.to_string()).unwrap();
    sender.serve(listener_a).unwrap();
    receiver.serve(listener_b).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(sender.is_connected(2) && receiver.is_connected(1)) {
        assert!(Instant::now() < deadline, "endpoints did not connect");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Pair {
        sender,
        receiver,
        counter,
        receiver_addr: addr_b.to_string(),
    }
}

/// Messages per second delivered through `Transport::send` with batches of
/// `batch_len`, sent from a plain thread as the scheduler's workers do.
async fn batched(pair: &Pair, batch_len: usize) -> (f64, u64) {
    let start_count = pair.counter.messages.load(Ordering::Relaxed);
    let dropped_before = pair.sender.stats().peer(2).batches_dropped;
    let started = Instant::now();
    let sender = Arc::clone(&pair.sender);
    let worker = std::thread::spawn(move || {
        let payload = Bytes::from(vec![0x42; PAYLOAD]);
        let mut sent = 0u64;
        let mut group = 0u64;
        while started.elapsed() < RUN {
            let batch: Vec<GroupMessage> = (0..batch_len)
                .map(|_| {
                    group = (group + 1) % 10_000;
                    GroupMessage {
                        group_id: group,
                        payload: payload.clone(),
                    }
                })
                .collect();
            match sender.send(2, batch) {
                Ok(()) => sent += batch_len as u64,
                // The queue is full: the writer is behind. Let it run.
                Err(TransportError::QueueFull { .. }) => std::thread::yield_now(),
                Err(error) => panic!("send failed: {error}"),
            }
        }
        sent
    });
    let sent = tokio::task::spawn_blocking(move || worker.join().expect("sender thread"))
        .await
        .expect("join");
    let target = start_count + sent;
    let deadline = Instant::now() + Duration::from_secs(30);
    while pair.counter.messages.load(Ordering::Relaxed) < target {
        assert!(Instant::now() < deadline, "messages not delivered");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let drops = pair.sender.stats().peer(2).batches_dropped - dropped_before;
    (sent as f64 / elapsed, drops)
}

/// Messages per second with one unary RPC per message, `in_flight` calls at a time.
async fn unary(pair: &Pair, in_flight: usize) -> f64 {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", pair.receiver_addr))
        .unwrap()
        .tcp_nodelay(true)
        .connect()
        .await
        .unwrap();
    let client = RaftTransportClient::new(channel);
    let payload = Bytes::from(vec![0x42; PAYLOAD]);
    let call = |seq: u64| {
        let mut client = client.clone();
        let frame = proto::Frame {
            cluster_id: CLUSTER,
            from: 1,
            to: 2,
            messages: vec![proto::GroupMessage {
                group_id: seq % 10_000,
                payload: payload.clone(),
            }],
        };
        async move { client.unary(frame).await.map(|_| ()) }
    };
    let started = Instant::now();
    let mut done = 0u64;
    let mut calls = FuturesUnordered::new();
    let mut seq = 0u64;
    while started.elapsed() < RUN {
        while calls.len() < in_flight {
            calls.push(call(seq));
            seq += 1;
        }
        if let Some(result) = calls.next().await {
            result.expect("unary call");
            done += 1;
        }
    }
    while let Some(result) = calls.next().await {
        result.expect("unary call");
        done += 1;
    }
    done as f64 / started.elapsed().as_secs_f64()
}

/// Snapshot throughput in MB/s for `total` bytes in `chunk`-byte chunks.
async fn snapshot(pair: &Pair, total: usize, chunk: usize) -> f64 {
    let data = Bytes::from(vec![0x17; chunk]);
    let chunks = (0..total / chunk).map(move |_| data.clone());
    let (done_sender, done) = tokio::sync::oneshot::channel();
    let started = Instant::now();
    pair.sender.send_snapshot(
        2,
        OutgoingSnapshot {
            group_id: 1,
            header: Bytes::from_static(b"hdr"),
            chunks: Box::new(chunks),
        },
        Box::new(move |result| {
            let _ = done_sender.send(result);
        }),
    );
    done.await.expect("done called").expect("snapshot accepted");
    total as f64 / 1e6 / started.elapsed().as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pair = pair().await;
        println!(
            "raft-transport loopback gRPC, {PAYLOAD}-byte messages, {RUN:?} per run, {} cores",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        );
        // Warm up connections and allocators.
        let _ = batched(&pair, 64).await;

        let unary_sequential = unary(&pair, 1).await;
        let unary_concurrent = unary(&pair, 64).await;
        println!(
            "baseline  one unary RPC per message, 1 in flight : {unary_sequential:>12.0} msg/s"
        );
        println!(
            "baseline  one unary RPC per message, 64 in flight: {unary_concurrent:>12.0} msg/s"
        );
        for batch_len in [1usize, 16, 64, 256] {
            let (rate, drops) = batched(&pair, batch_len).await;
            println!(
                "batched   {batch_len:>3} messages per send             : {rate:>12.0} msg/s  \
                 x{:>6.1} vs unary(1)  x{:>6.1} vs unary(64)  ({drops} full-queue retries)",
                rate / unary_sequential,
                rate / unary_concurrent,
            );
        }
        let stats = pair.sender.stats().peer(2);
        println!(
            "coalescing: {} batches in {} frames ({:.1} batches per frame)",
            stats.batches_sent,
            stats.frames_sent,
            stats.batches_sent as f64 / stats.frames_sent.max(1) as f64
        );
        for (total, chunk) in [(256usize << 20, 1usize << 20), (256 << 20, 64 << 10)] {
            let rate = snapshot(&pair, total, chunk).await;
            println!(
                "snapshot  {} MiB in {} KiB chunks             : {rate:>12.0} MB/s",
                total >> 20,
                chunk >> 10
            );
        }
        pair.sender.shutdown().await;
        pair.receiver.shutdown().await;
    });
}
