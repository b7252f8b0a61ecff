//! Property test: garbage sent to the client port and the raft port of the nodes of a running
//! 3-node cluster (real gRPC, real WAL) — random bytes on bare TCP, malformed HTTP/2, random
//! gRPC messages — is refused without a panic, every connection is closed or answered within
//! a deadline, and after every case a `ChronikClient` produce and fetch still succeed.
//! Seeded: `GARBAGE_SEED=<n>` replays a run, `GARBAGE_CASES=<n>` runs more.
#![cfg(all(feature = "grpc", feature = "wal"))]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use chronik_cluster::client::ChronikClient;
use chronik_cluster::{decode_records, encode_records, FetchRequest, ProduceRequest, TopicSpec};
use common::{client_addresses, configs, eventually, start};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Request, Status};

const WAIT: Duration = Duration::from_secs(10);
const TOPIC: &str = "garbage";
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Panics anywhere in the process (node tasks included), counted by a hook.
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Which port of which node gets the garbage.
#[derive(Debug, Clone, Copy)]
enum Port {
    Client(usize),
    Raft(usize),
}

/// What is sent.
#[derive(Debug, Clone)]
enum Garbage {
    /// Bytes written to the bare TCP port.
    Bytes(Vec<u8>),
    /// The HTTP/2 preface, then frames with random type, flags, stream and payload.
    Http2(Vec<(u8, u8, u32, Vec<u8>)>),
    /// One gRPC message of random bytes to a method of the port's service.
    Grpc(&'static str, Vec<u8>),
}

/// Methods safe to call with random bytes: none of them can be told to create work
/// proportional to a random number (unlike `CreateTopic`'s partition count).
const CLIENT_METHODS: &[&str] = &[
    "/chronik.client.v1.Chronik/Produce",
    "/chronik.client.v1.Chronik/Fetch",
    "/chronik.client.v1.Chronik/ListOffsets",
    "/chronik.client.v1.Chronik/FetchOffset",
    "/chronik.client.v1.Chronik/Status",
    "/chronik.client.v1.Chronik/PartitionStatus",
    "/chronik.client.v1.Chronik/NoSuchMethod",
];
const RAFT_METHODS: &[&str] = &[
    "/chronik.raft.transport.v1.RaftTransport/Batches",
    "/chronik.raft.transport.v1.RaftTransport/Unary",
    "/chronik.raft.transport.v1.RaftTransport/Snapshot",
];

fn port() -> impl Strategy<Value = Port> {
    prop_oneof![
        (0..3usize).prop_map(Port::Client),
        (0..3usize).prop_map(Port::Raft)
    ]
}

fn garbage() -> impl Strategy<Value = Garbage> {
    let random = proptest::collection::vec(any::<u8>(), 0..1024);
    let frame = (
        prop_oneof![0..10u8, any::<u8>()],
        any::<u8>(),
        prop_oneof![Just(0u32), 1..8u32, any::<u32>()],
        proptest::collection::vec(any::<u8>(), 0..64),
    );
    let method = prop_oneof![
        proptest::sample::select(CLIENT_METHODS),
        proptest::sample::select(RAFT_METHODS)
    ];
    prop_oneof![
        random.clone().prop_map(Garbage::Bytes),
        random
            .clone()
            .prop_map(|tail| Garbage::Bytes([PREFACE, &tail].concat())),
        random.clone().prop_map(|tail| {
            Garbage::Bytes([b"POST / HTTP/1.1\r\nHost: x\r\n\r\n".as_slice(), &tail].concat())
        }),
        proptest::collection::vec(frame, 1..6).prop_map(Garbage::Http2),
        (method, random).prop_map(|(method, bytes)| Garbage::Grpc(method, bytes)),
    ]
}

/// One HTTP/2 frame: 24-bit length, type, flags, stream id, payload.
fn http2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7FFF_FFFF).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Writes `bytes`, half-closes, and waits for the server to close the connection.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| TestCaseError::fail(format!("connect {addr}: {e}")))?;
    // The server may close or reset first: that is a refusal too.
    let _ = stream.write_all(bytes).await;
    let _ = stream.shutdown().await;
    let mut sink = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut sink)).await;
    prop_assert!(read.is_ok(), "{} kept a garbage connection open", addr);
    Ok(())
}

/// Sends items as they are; ignores what comes back.
struct RawCodec;
struct RawEncoder;
struct IgnoreDecoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for IgnoreDecoder {
    type Item = ();
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Status> {
        src.advance(src.remaining());
        Ok(Some(()))
    }
}

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ();
    type Encoder = RawEncoder;
    type Decoder = IgnoreDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> IgnoreDecoder {
        IgnoreDecoder
    }
}

/// One random gRPC message to `method`, as a client stream of one (which the server reads
/// as a unary request when the method is unary); the call must end within the deadline.
async fn grpc(addr: SocketAddr, method: &'static str, bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| TestCaseError::fail(format!("{what}: {e}"));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| fail("endpoint", &e))?
        .connect()
        .await
        .map_err(|e| fail("connect", &e))?;
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.map_err(|e| fail("ready", &e))?;
    let call = async {
        let items = futures::stream::iter([Bytes::from(bytes)]);
        let mut responses = client
            .streaming(
                Request::new(items),
                PathAndQuery::from_static(method),
                RawCodec,
            )
            .await?
            .into_inner();
        // Bounded by the deadline around it; every method answers a few messages at most.
        while responses.message().await?.is_some() {}
        Ok::<(), Status>(())
    };
    let ended = tokio::time::timeout(WAIT, call).await;
    prop_assert!(ended.is_ok(), "{} on {} did not end", method, addr);
    Ok(())
}

struct Cluster {
    nodes: Vec<chronik_cluster::Node>,
    client: ChronikClient,
    raft: Vec<SocketAddr>,
    clients: Vec<SocketAddr>,
    produced: u64,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let configs = configs(dir.path());
        let nodes = start(&configs).await;
        let client = ChronikClient::connect(&client_addresses(&configs))
            .await
            .expect("client");
        eventually("three registered nodes", || async {
            let status = client.status(None).await.ok()?;
            (status.nodes.len() == 3).then_some(())
        })
        .await;
        client
            .create_topic(TopicSpec::new(TOPIC, 1, 3))
            .await
            .expect("topic");
        Cluster {
            nodes,
            client,
            raft: configs.iter().map(|c| c.raft_addr).collect(),
            clients: configs.iter().map(|c| c.client_addr).collect(),
            produced: 0,
            _dir: dir,
        }
    }

    /// Produces one record with acks=all and reads it back.
    async fn still_serves(&mut self) -> Result<(), TestCaseError> {
        let value = format!("after-{}", self.produced);
        let records = encode_records(std::slice::from_ref(&value));
        let produced = self
            .client
            .produce(ProduceRequest::new(TOPIC, 0, records, 1))
            .await
            .map_err(|e| TestCaseError::fail(format!("produce: {e}")))?;
        prop_assert_eq!(produced.base_offset, self.produced as i64);
        let fetched = self
            .client
            .fetch(FetchRequest {
                topic: TOPIC.into(),
                partition: 0,
                offset: self.produced,
                max_bytes: 1 << 20,
                max_wait: Duration::ZERO,
            })
            .await
            .map_err(|e| TestCaseError::fail(format!("fetch: {e}")))?;
        let batch = fetched
            .batches
            .first()
            .ok_or_else(|| TestCaseError::fail("empty fetch"))?;
        let read = decode_records(batch.records.clone())
            .ok_or_else(|| TestCaseError::fail("fetched records do not decode"))?;
        prop_assert_eq!(read, vec![Bytes::from(value)]);
        self.produced += 1;
        Ok(())
    }

    async fn send(&mut self, port: Port, garbage: Garbage) -> Result<(), TestCaseError> {
        let addr = match port {
            Port::Client(i) => self.clients[i],
            Port::Raft(i) => self.raft[i],
        };
        match garbage {
            Garbage::Bytes(bytes) => raw(addr, &bytes).await?,
            Garbage::Http2(frames) => {
                let mut bytes = PREFACE.to_vec();
                for (kind, flags, stream, payload) in frames {
                    bytes.extend(http2_frame(kind, flags, stream, &payload));
                }
                raw(addr, &bytes).await?;
            }
            Garbage::Grpc(method, bytes) => grpc(addr, method, bytes).await?,
        }
        self.still_serves().await?;
        prop_assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a node panicked");
        Ok(())
    }

    async fn shutdown(self) {
        for node in self.nodes {
            node.shutdown().await;
        }
    }
}

/// Runs `test` on `cases` inputs from a seeded RNG; panics with the seed on failure.
/// Returns how many cases ran.
fn check<S: Strategy>(
    name: &str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> u64 {
    let env = |key: &str| std::env::var(key).ok().and_then(|v| v.parse::<u64>().ok());
    let seed = env("GARBAGE_SEED").unwrap_or(0x5EED_8A7B);
    let cases = env("GARBAGE_CASES").map_or(default_cases, |n| n as u32);
    let mut seed_bytes = [0u8; 32];
    for chunk in seed_bytes.chunks_mut(8) {
        chunk.copy_from_slice(&seed.to_le_bytes());
    }
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    if let Err(error) = runner.run(&strategy, test) {
        panic!("{name} failed (GARBAGE_SEED={seed}): {error}");
    }
    u64::from(cases)
}

#[test]
fn garbage_on_both_ports_is_refused_and_the_cluster_keeps_serving() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cluster = tokio::sync::Mutex::new(rt.block_on(Cluster::start()));
    let cases = check(
        "garbage to a running cluster",
        128,
        (port(), garbage()),
        |(port, garbage)| rt.block_on(async { cluster.lock().await.send(port, garbage).await }),
    );
    let cluster = cluster.into_inner();
    assert_eq!(
        cluster.produced, cases,
        "every case was followed by a produce"
    );
    rt.block_on(cluster.shutdown());
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a node panicked");
}
