//! A 3-node cluster in one process on the in-process network, in memory: the library
//! API end to end.

use std::time::Duration;

use chronik_cluster::prelude::*;
use chronik_cluster::testing::TestCluster;

const WAIT: Duration = Duration::from_secs(20);

fn on(nodes: &TestCluster, id: u64) -> Cluster {
    nodes.cluster(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_produce_and_fetch_across_three_nodes() {
    let nodes = TestCluster::start(3, 7).await.unwrap();
    let any = nodes.cluster(1);
    let controller = any.wait_for_controller(WAIT).await.unwrap();
    let admin = on(&nodes, controller);
    // All three nodes must be registered before a 3-replica topic can be placed.
    let deadline = tokio::time::Instant::now() + WAIT;
    while admin.nodes().len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nodes never registered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let topic = admin
        .create_topic(TopicSpec::new("orders", 3, 3))
        .await
        .unwrap();
    assert_eq!(topic.partitions.len(), 3);
    // A follower refuses admin requests with the controller's id.
    let follower = nodes.cluster((1..=3).find(|&n| n != controller).unwrap());
    match follower.create_topic(TopicSpec::new("other", 1, 1)).await {
        Err(ClusterError::NotController { leader }) => assert_eq!(leader, Some(controller)),
        other => panic!("expected NotController, got {other:?}"),
    }
    // Duplicate names are refused with Kafka's code.
    let dup = admin
        .create_topic(TopicSpec::new("orders", 1, 1))
        .await
        .unwrap_err();
    assert_eq!(dup.kafka_code(), 36, "{dup}");
    admin.wait_for_leaders("orders", WAIT).await.unwrap();
    // Produce to each partition through its leader; offsets are contiguous.
    for partition in 0..3u32 {
        for i in 0..5i64 {
            let response = loop {
                let leader = admin.describe_topic("orders").unwrap().partitions[partition as usize]
                    .leader
                    .unwrap();
                let request = ProduceRequest::new("orders", partition, format!("r{i}").into(), 1);
                match on(&nodes, leader).produce(request).await {
                    Ok(r) => break r,
                    Err(e) if e.is_retriable() => {
                        tokio::time::sleep(Duration::from_millis(20)).await
                    }
                    Err(e) => panic!("produce failed: {e}"),
                }
            };
            assert_eq!(response.base_offset, i, "offsets are contiguous from 0");
        }
        let leader = admin.describe_topic("orders").unwrap().partitions[partition as usize]
            .leader
            .unwrap();
        let fetched = on(&nodes, leader)
            .fetch(FetchRequest {
                topic: "orders".into(),
                partition,
                offset: 0,
                max_bytes: 1 << 20,
                max_wait: Duration::ZERO,
            })
            .await
            .unwrap();
        assert_eq!(fetched.high_watermark, 5);
        let records: Vec<_> = fetched.batches.iter().map(|b| b.records.clone()).collect();
        assert_eq!(
            records,
            (0..5)
                .map(|i| bytes::Bytes::from(format!("r{i}")))
                .collect::<Vec<_>>()
        );
        // A fetch past the end long-polls and times out empty.
        let empty = on(&nodes, leader)
            .fetch(FetchRequest {
                topic: "orders".into(),
                partition,
                offset: 5,
                max_bytes: 1 << 20,
                max_wait: Duration::from_millis(50),
            })
            .await
            .unwrap();
        assert!(empty.batches.is_empty());
    }
    // Unknown topics are Kafka's UNKNOWN_TOPIC_OR_PARTITION.
    let unknown = admin
        .produce(ProduceRequest::new("nope", 0, "x".into(), 1))
        .await
        .unwrap_err();
    assert_eq!(unknown.kafka_code(), 3);
    // Consumer offsets commit through the controller and are visible everywhere.
    admin
        .commit_offsets("readers", &[("orders".into(), 0, 3)])
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while follower.committed_offset("readers", "orders", 0) != Some(3) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "offset commit never replicated"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Deleting the topic removes every replica.
    admin.delete_topic("orders").await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while (1..=3).any(|n| !nodes.cluster(n).status().local_partitions.is_empty()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "replicas not removed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nodes.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_insync_replicas_refuses_acks_all_when_a_replica_is_cut_off() {
    let nodes = TestCluster::start(3, 11).await.unwrap();
    let admin = nodes.controller(WAIT).await.unwrap();
    let spec = TopicSpec::new("strict", 1, 3).config("min.insync.replicas", "3");
    admin.create_topic(spec).await.unwrap();
    admin.wait_for_leaders("strict", WAIT).await.unwrap();
    let produce = || ProduceRequest::new("strict", 0, "r".into(), 1);
    // All three in sync: accepted.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let leader = nodes.leader_of("strict", 0);
        if let Some(Ok(_)) = match &leader {
            Some(l) => Some(l.produce(produce()).await),
            None => None,
        } {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never accepted with all replicas in sync"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Cut one follower off: the leader refuses acks=all with NOT_ENOUGH_REPLICAS (19).
    let leader = nodes.leader_of("strict", 0).unwrap();
    let follower = (1..=3).find(|&n| n != leader.node_id()).unwrap();
    nodes.network().isolate(follower);
    let deadline = tokio::time::Instant::now() + WAIT;
    let refused = loop {
        let request = produce();
        let outcome = tokio::time::timeout(Duration::from_secs(2), leader.produce(request)).await;
        if let Ok(Err(e)) = outcome {
            if e.kafka_code() == 19 {
                break e;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cut-off replica still counted as in sync"
        );
    };
    assert!(refused.is_retriable());
    nodes.network().heal();
    nodes.shutdown().await;
}
