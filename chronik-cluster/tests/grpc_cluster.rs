//! Three nodes in one process over real gRPC on loopback, with the real WAL: the client
//! follows leaders, and a node restarted from its data directory catches up.

mod common;

use std::time::Duration;

use chronik_cluster::client::ChronikClient;
use chronik_cluster::{decode_records, encode_records, FetchRequest, ProduceRequest, TopicSpec};
use common::{client_addresses, configs, eventually, start};

async fn read_all(client: &ChronikClient, topic: &str, partition: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let request = FetchRequest {
            topic: topic.into(),
            partition,
            offset,
            max_bytes: 1 << 20,
            max_wait: Duration::ZERO,
        };
        let fetched = client.fetch(request).await.unwrap();
        for b in &fetched.batches {
            for r in decode_records(b.records.clone()).unwrap() {
                out.push(String::from_utf8(r.to_vec()).unwrap());
            }
            offset = b.last_offset + 1;
        }
        if fetched.batches.is_empty() || offset >= fetched.high_watermark {
            return out;
        }
    }
}

/// A plain HTTP/1.1 GET on loopback.
async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_grpc_nodes_replicate_and_a_restarted_node_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut configs = configs(dir.path());
    let metrics_port = common::free_ports(1)[0];
    configs[0].metrics_addr = Some(format!("127.0.0.1:{metrics_port}").parse().unwrap());
    let mut nodes = start(&configs).await;
    let client = ChronikClient::connect(&client_addresses(&configs))
        .await
        .unwrap();
    eventually("three registered nodes", || async {
        client
            .status(None)
            .await
            .ok()
            .filter(|s| s.nodes.len() == 3)
            .map(|_| ())
    })
    .await;
    let topic = client
        .create_topic(TopicSpec::new("events", 3, 3))
        .await
        .unwrap();
    assert_eq!(topic.partitions.len(), 3);
    let batch = |from: usize| {
        encode_records(
            &(from..from + 10)
                .map(|i| format!("e{i}"))
                .collect::<Vec<_>>(),
        )
    };
    for p in 0..3u32 {
        let r = client
            .produce(ProduceRequest::new("events", p, batch(0), 10))
            .await
            .unwrap();
        assert_eq!((r.base_offset, r.last_offset), (0, 9));
    }
    // Node 1's Prometheus endpoint shows the scheduler, the WAL and its partitions.
    let metrics = http_get(metrics_port, "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    for name in [
        "chronik_raft_groups 4",
        "chronik_wal_syncs_total",
        "# TYPE chronik_wal_sync_duration_seconds histogram",
        "chronik_wal_sync_duration_seconds_bucket{le=\"0.0001\"}",
        "chronik_wal_sync_duration_seconds_bucket{le=\"+Inf\"}",
        "chronik_wal_slow_syncs_total",
        "chronik_partition_high_watermark{topic=\"events\"",
    ] {
        assert!(
            metrics.contains(name),
            "{name} missing from /metrics:\n{metrics}"
        );
    }
    // Stop node 3; the others keep serving every partition.
    let stopped = nodes.pop().unwrap();
    stopped.shutdown().await;
    for p in 0..3u32 {
        let r = client
            .produce(ProduceRequest::new("events", p, batch(10), 10))
            .await
            .unwrap();
        assert_eq!(r.base_offset, 10);
    }
    // Restart it from its data directory: it recovers and catches up.
    nodes.push(
        chronik_cluster::Node::builder(configs[2].clone())
            .start()
            .await
            .unwrap(),
    );
    eventually("node 3 to catch up on every partition", || async {
        let s = client.status(Some(3)).await.ok()?;
        (s.local_partitions.len() == 3 && s.local_partitions.iter().all(|p| p.high_watermark == 20))
            .then_some(())
    })
    .await;
    for p in 0..3u32 {
        let expected: Vec<String> = (0..20).map(|i| format!("e{i}")).collect();
        assert_eq!(read_all(&client, "events", p).await, expected);
    }
    // Unknown topics answer with Kafka's code, through the client.
    let err = client
        .produce(ProduceRequest::new("missing", 0, batch(0), 10))
        .await
        .unwrap_err();
    assert_eq!(err.kafka_code(), Some(3), "{err}");
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_registers_replicates_the_catalogue_and_hosts_new_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let configs = configs(dir.path());
    let mut nodes = start(&configs).await;
    let client = ChronikClient::connect(&client_addresses(&configs))
        .await
        .unwrap();
    client
        .create_topic(TopicSpec::new("before", 2, 3))
        .await
        .unwrap();
    // Node 4 knows only node 1 and joins through it.
    let fourth = common::joining(4, dir.path(), &configs[0]);
    tracing::info!("--- node 4 joins");
    nodes.push(
        chronik_cluster::Node::builder(fourth)
            .start()
            .await
            .unwrap(),
    );
    eventually(
        "node 4 to be registered and to replicate the catalogue",
        || async {
            // The first call learns node 4's address once it is registered.
            client.status(None).await.ok()?;
            let s = client.status(Some(4)).await.ok()?;
            (s.nodes.len() == 4 && s.partitions.iter().any(|p| p.topic == "before")).then_some(())
        },
    )
    .await;
    // A topic spread over all four nodes: node 4 hosts its share and serves it.
    let topic = client
        .create_topic(TopicSpec::new("after", 4, 3))
        .await
        .unwrap();
    let on_four: Vec<u32> = topic
        .partitions
        .iter()
        .filter(|p| p.replicas.contains(&4))
        .map(|p| p.partition)
        .collect();
    assert_eq!(
        on_four.len(),
        3,
        "placement should give node 4 three of 4x3 replicas: {topic:?}"
    );
    for &p in &on_four {
        client
            .produce(ProduceRequest::new("after", p, encode_records(&["x"]), 1))
            .await
            .unwrap();
    }
    eventually("node 4 to host and replicate its partitions", || async {
        let s = client.status(Some(4)).await.ok()?;
        let mine: Vec<_> = s
            .local_partitions
            .iter()
            .filter(|p| p.topic == "after")
            .collect();
        (mine.len() == on_four.len() && mine.iter().all(|p| p.high_watermark == 1)).then_some(())
    })
    .await;
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_moves_to_new_replicas_without_losing_records() {
    let dir = tempfile::tempdir().unwrap();
    let configs = configs(dir.path());
    let mut nodes = start(&configs).await;
    // A fourth node, joined, so a replica can move to it.
    let fourth = common::joining(4, dir.path(), &configs[0]);
    nodes.push(
        chronik_cluster::Node::builder(fourth)
            .start()
            .await
            .unwrap(),
    );
    let client = ChronikClient::connect(&client_addresses(&configs))
        .await
        .unwrap();
    eventually("four registered nodes", || async {
        client
            .status(None)
            .await
            .ok()
            .filter(|s| s.nodes.len() == 4)
            .map(|_| ())
    })
    .await;
    let topic = client
        .create_topic(TopicSpec::new("moving", 1, 3))
        .await
        .unwrap();
    let before = topic.partitions[0].replicas.clone();
    let newcomer = (1..=4).find(|n| !before.contains(n)).unwrap();
    let leaving = before[2];
    let target = vec![before[0], before[1], newcomer];
    let batch = |from: usize| {
        encode_records(
            &(from..from + 5)
                .map(|i| format!("m{i}"))
                .collect::<Vec<_>>(),
        )
    };
    client
        .produce(ProduceRequest::new("moving", 0, batch(0), 5))
        .await
        .unwrap();
    tracing::info!("--- move {before:?} -> {target:?}");
    client
        .reassign_partition("moving", 0, target.clone())
        .await
        .unwrap();
    client
        .produce(ProduceRequest::new("moving", 0, batch(5), 5))
        .await
        .unwrap();
    let described = client
        .list_topics()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == "moving")
        .unwrap();
    assert_eq!(described.partitions[0].replicas, target);
    eventually(
        "the newcomer to hold every record and the leaver to drop its replica",
        || async {
            client.status(None).await.ok()?;
            let new = client.status(Some(newcomer)).await.ok()?;
            let old = client.status(Some(leaving)).await.ok()?;
            let held = new
                .local_partitions
                .iter()
                .any(|p| p.topic == "moving" && p.high_watermark == 10);
            let dropped = old.local_partitions.iter().all(|p| p.topic != "moving");
            (held && dropped).then_some(())
        },
    )
    .await;
    let expected: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    assert_eq!(read_all(&client, "moving", 0).await, expected);
    for node in nodes {
        node.shutdown().await;
    }
}
