//! Hand-made clients send bad frames to a gRPC node: every one is rejected
//! with a typed status and counted, and the node keeps serving.

use std::net::SocketAddr;

use bytes::{Buf, BufMut, Bytes};
use prost::Message;
use raft_transport::grpc::proto;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Code, Request, Status};

use crate::grpc::{GrpcFactory, CLUSTER};
use crate::suite::{Factory, Harness, WAIT};
use crate::support::{numbered, send_reliably, wait_until};

/// Sends bytes as they are; reads acks without looking at them.
#[derive(Default)]
struct RawCodec;
struct RawEncoder;
struct AckDecoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for AckDecoder {
    type Item = proto::Ack;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<proto::Ack>, Status> {
        let len = src.remaining();
        src.advance(len);
        Ok(Some(proto::Ack {}))
    }
}

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = proto::Ack;
    type Encoder = RawEncoder;
    type Decoder = AckDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> AckDecoder {
        AckDecoder
    }
}

/// Opens a batch stream to `addr`, sends `frames` as raw bytes and returns
/// how the server ended the stream.
async fn raw_batches(addr: SocketAddr, frames: Vec<Bytes>) -> Result<(), Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel)
        .max_encoding_message_size(64 << 20)
        .max_decoding_message_size(64 << 20);
    grpc.ready().await.unwrap();
    let path = PathAndQuery::from_static("/chronik.raft.transport.v1.RaftTransport/Batches");
    // Keep the request open after the frames so the server, not the end of
    // our stream, ends the call.
    let stream =
        futures::StreamExt::chain(futures::stream::iter(frames), futures::stream::pending());
    let mut responses = grpc
        .streaming(Request::new(stream), path, RawCodec)
        .await?
        .into_inner();
    match tokio::time::timeout(WAIT, responses.message()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(status)) => Err(status),
        Err(_) => panic!("server neither rejected nor ended the stream"),
    }
}

fn frame(cluster_id: u64, from: u64, to: u64, payload_len: usize) -> Bytes {
    let frame = proto::Frame {
        cluster_id,
        from,
        to,
        messages: vec![proto::GroupMessage {
            group_id: 1,
            payload: Bytes::from(vec![7u8; payload_len]),
        }],
    };
    Bytes::from(frame.encode_to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_frames_are_rejected_and_counted() {
    let harness = GrpcFactory.start(2).await;
    let addr = harness.addrs[0];
    let node = harness.node(1);

    let status = raw_batches(addr, vec![frame(CLUSTER + 1, 2, 1, 8)])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(node.stats().rejected.cluster_mismatch, 1);

    let status = raw_batches(addr, vec![frame(CLUSTER, 77, 1, 8)])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(node.stats().rejected.unknown_sender, 1);

    let status = raw_batches(addr, vec![frame(CLUSTER, 2, 5, 8)])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(node.stats().rejected.wrong_destination, 1);

    let garbage = Bytes::from_static(&[
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
    ]);
    let status = raw_batches(addr, vec![garbage]).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(node.stats().rejected.malformed, 1);

    // A good frame first, then one over the 2 MiB limit: the first is
    // delivered, the second kills the stream.
    let status = raw_batches(
        addr,
        vec![frame(CLUSTER, 2, 1, 8), frame(CLUSTER, 2, 1, 3 << 20)],
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert_eq!(node.stats().rejected.frame_too_large, 1);
    let recorder = harness.recorder(1);
    wait_until("the good frame", WAIT, || recorder.message_count() == 1).await;

    // A snapshot stream that does not start with its header.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = proto::raft_transport_client::RaftTransportClient::new(channel);
    let chunks = futures::stream::iter(vec![proto::SnapshotChunk {
        header: None,
        data: Bytes::from_static(b"x"),
        ..Default::default()
    }]);
    let status = client.snapshot(chunks).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(node.stats().rejected.malformed, 2);
    assert_eq!(node.stats().rejected.total(), 6);

    // Snapshots cut short or with a wrong byte count are never accepted.
    let header = |group_id| proto::SnapshotChunk {
        header: Some(proto::SnapshotHeader {
            cluster_id: CLUSTER,
            from: 2,
            to: 1,
            group_id,
            header: Bytes::new(),
        }),
        ..Default::default()
    };
    let data = proto::SnapshotChunk {
        data: Bytes::from_static(b"0123"),
        ..Default::default()
    };
    let truncated = futures::stream::iter(vec![header(1), data.clone()]);
    let status = client.snapshot(truncated).await.unwrap_err();
    assert_eq!(
        status.code(),
        Code::Aborted,
        "the handler saw the stream break: {status:?}"
    );
    let miscounted = proto::SnapshotChunk {
        last: true,
        total_bytes: 99,
        ..Default::default()
    };
    let status = client
        .snapshot(futures::stream::iter(vec![
            header(2),
            data.clone(),
            miscounted,
        ]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    assert_eq!(node.stats().rejected.malformed, 3);
    let whole = proto::SnapshotChunk {
        last: true,
        total_bytes: 4,
        ..Default::default()
    };
    client
        .snapshot(futures::stream::iter(vec![header(3), data, whole]))
        .await
        .unwrap();
    let accepted = recorder.received.lock().snapshots.clone();
    assert_eq!(accepted.len(), 1);
    assert_eq!((accepted[0].1, accepted[0].3), (3, 4));

    // The node still serves its real peer.
    send_reliably(harness.node(2).as_ref(), 1, vec![numbered(1, 5, 8)], WAIT).await;
    wait_until("the real peer's message", WAIT, || {
        recorder.message_count() == 2
    })
    .await;
    harness.finish().await;
}

/// A frame from a peer that names another cluster is refused on the real
/// client path too: the writer sees the rejection and never delivers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn peer_of_another_cluster_is_refused() {
    let harness = GrpcFactory.start(1).await;
    let addr = harness.addrs[0];
    let other_cluster = raft_transport::grpc::GrpcTransport::new(
        raft_transport::grpc::GrpcConfig::new(2, CLUSTER + 9).backoff(
            std::time::Duration::from_millis(20),
            std::time::Duration::from_millis(100),
        ),
    )
    .unwrap();
    other_cluster.add_peer(1, addr.to_string()).unwrap();
    wait_until("a rejection", WAIT, || {
        harness.node(1).stats().rejected.cluster_mismatch >= 1
    })
    .await;
    assert_eq!(harness.recorder(1).message_count(), 0);
    other_cluster.shutdown().await;
    harness.finish().await;
}
