//! The metadata machine: every command, its typed rejections, determinism,
//! snapshot/restore and the checkpointed variant.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::{snapshot_bytes, transfer, Driver};
use proptest::prelude::*;
use raft_fsm::{
    decode_metadata_response, CreateTopic, FsmError, LogEntry, MetadataCommand, MetadataError,
    MetadataStateMachine, NodeInfo, OffsetCommit, PartitionInfo, StateMachine,
};

fn node(id: u64) -> Bytes {
    MetadataCommand::register_node(NodeInfo {
        node_id: id,
        raft_address: format!("127.0.0.1:{}", 7000 + id),
        client_address: format!("127.0.0.1:{}", 9000 + id),
        rack: (id % 2 == 0).then(|| "a".to_owned()),
    })
    .encode()
}

fn topic(name: &str, first_group: u64, partitions: u32, replicas: &[u64]) -> Bytes {
    MetadataCommand::create_topic(CreateTopic {
        name: name.to_owned(),
        topic_id: vec![first_group as u8; 16],
        replication_factor: replicas.len() as u32,
        partitions: (0..partitions)
            .map(|p| PartitionInfo {
                partition: p,
                group_id: first_group + u64::from(p),
                replicas: replicas.to_vec(),
                altered: false,
            })
            .collect(),
        configs: BTreeMap::from([("retention.ms".to_owned(), "1000".to_owned())]),
    })
    .encode()
}

fn cluster() -> Driver<MetadataStateMachine> {
    let mut d = Driver::new(MetadataStateMachine::new());
    d.new_term();
    for id in 1..=3 {
        decode_metadata_response(&d.apply(node(id))).unwrap();
    }
    d
}

fn result(d: &mut Driver<MetadataStateMachine>, command: Bytes) -> Result<u64, MetadataError> {
    decode_metadata_response(&d.apply(command))
}

#[test]
fn topics_are_created_deleted_and_altered() {
    let mut d = cluster();
    let reader = d.machine.reader();
    let v = result(&mut d, topic("orders", 10, 3, &[1, 2, 3])).unwrap();
    let catalog = reader.catalog();
    assert_eq!(catalog.version, v);
    assert_eq!(catalog.topics["orders"].partitions.len(), 3);
    assert_eq!(catalog.partition("orders", 2).unwrap().group_id, 12);
    assert_eq!(catalog.partitions_on(2).len(), 3);
    assert_eq!(
        catalog.group_ids().into_iter().collect::<Vec<_>>(),
        vec![10, 11, 12]
    );

    result(
        &mut d,
        MetadataCommand::alter_replicas("orders", 1, vec![3, 1]).encode(),
    )
    .unwrap();
    assert_eq!(
        reader.catalog().partition("orders", 1).unwrap().replicas,
        vec![3, 1]
    );
    // An altered partition is marked: replicas added from now on join its group.
    assert!(reader.catalog().partition("orders", 1).unwrap().altered);
    assert!(!reader.catalog().partition("orders", 0).unwrap().altered);
    // The Arc taken before is a consistent, unchanged view.
    assert_eq!(
        catalog.partition("orders", 1).unwrap().replicas,
        vec![1, 2, 3]
    );

    let set = BTreeMap::from([("cleanup.policy".to_owned(), "compact".to_owned())]);
    result(
        &mut d,
        MetadataCommand::update_configs("orders", set, vec!["retention.ms".into()]).encode(),
    )
    .unwrap();
    let configs = &reader.catalog().topics["orders"].configs;
    assert_eq!(
        configs.get("cleanup.policy").map(String::as_str),
        Some("compact")
    );
    assert!(!configs.contains_key("retention.ms"));

    result(&mut d, MetadataCommand::delete_topic("orders").encode()).unwrap();
    assert!(reader.catalog().topics.is_empty());
    // Group ids are free again.
    result(&mut d, topic("orders2", 10, 1, &[1])).unwrap();
}

#[test]
fn invalid_commands_get_typed_errors_and_change_nothing() {
    let mut d = cluster();
    result(&mut d, topic("t", 1, 2, &[1, 2])).unwrap();
    let version = d.machine.reader().catalog().version;
    let cases: Vec<(Bytes, MetadataError)> = vec![
        (
            topic("t", 50, 1, &[1]),
            MetadataError::TopicAlreadyExists("t".into()),
        ),
        (
            topic("bad name", 50, 1, &[1]),
            MetadataError::InvalidTopicName("bad name".into()),
        ),
        (
            topic("u", 50, 1, &[]),
            MetadataError::InvalidReplicationFactor(0),
        ),
        (topic("u", 50, 0, &[1]), MetadataError::InvalidPartitions),
        (topic("u", 50, 1, &[1, 9]), MetadataError::UnknownNode(9)),
        (
            topic("u", 50, 1, &[2, 2]),
            MetadataError::InvalidReplicaAssignment,
        ),
        (topic("u", 2, 1, &[1]), MetadataError::DuplicateGroupId(2)),
        (topic("u", 0, 1, &[1]), MetadataError::DuplicateGroupId(0)),
        (
            MetadataCommand::delete_topic("nope").encode(),
            MetadataError::UnknownTopicOrPartition {
                topic: "nope".into(),
                partition: None,
            },
        ),
        (
            MetadataCommand::alter_replicas("t", 5, vec![1]).encode(),
            MetadataError::UnknownTopicOrPartition {
                topic: "t".into(),
                partition: Some(5),
            },
        ),
        (
            MetadataCommand::alter_replicas("t", 0, vec![]).encode(),
            MetadataError::InvalidReplicaAssignment,
        ),
        (
            MetadataCommand::alter_replicas("t", 0, vec![4]).encode(),
            MetadataError::UnknownNode(4),
        ),
        (
            MetadataCommand::update_configs("zz", BTreeMap::new(), vec![]).encode(),
            MetadataError::UnknownTopicOrPartition {
                topic: "zz".into(),
                partition: None,
            },
        ),
        (
            MetadataCommand::commit_offsets(
                "g",
                vec![
                    OffsetCommit {
                        topic: "t".into(),
                        partition: 0,
                        offset: 5,
                        ..Default::default()
                    },
                    OffsetCommit {
                        topic: "t".into(),
                        partition: 7,
                        offset: 5,
                        ..Default::default()
                    },
                ],
                0,
            )
            .encode(),
            MetadataError::UnknownTopicOrPartition {
                topic: "t".into(),
                partition: Some(7),
            },
        ),
        (
            Bytes::from_static(&[0xff, 0x01]),
            MetadataError::CorruptMessage(raft_fsm::CorruptReason::Undecodable),
        ),
        (
            MetadataCommand {
                version: 42,
                op: None,
            }
            .encode(),
            MetadataError::CorruptMessage(raft_fsm::CorruptReason::UnsupportedVersion(42)),
        ),
    ];
    let count = cases.len() as u64;
    for (command, expected) in cases {
        assert_eq!(result(&mut d, command), Err(expected));
    }
    let reader = d.machine.reader();
    assert_eq!(reader.catalog().version, version);
    assert_eq!(
        reader.catalog().committed_offset("g", "t", 0),
        None,
        "all or nothing"
    );
    assert_eq!(reader.rejected_commands(), count);
}

#[test]
fn offsets_are_committed_and_dropped_with_their_topic() {
    let mut d = cluster();
    result(&mut d, topic("t", 1, 2, &[1])).unwrap();
    let commit = |offset| OffsetCommit {
        topic: "t".into(),
        partition: 1,
        offset,
        leader_epoch: Some(3),
        metadata: "m".into(),
    };
    result(
        &mut d,
        MetadataCommand::commit_offsets("g", vec![commit(5)], 100).encode(),
    )
    .unwrap();
    result(
        &mut d,
        MetadataCommand::commit_offsets("g", vec![commit(9)], 200).encode(),
    )
    .unwrap();
    let catalog = d.machine.reader().catalog();
    let committed = catalog.committed_offset("g", "t", 1).unwrap();
    assert_eq!(
        (
            committed.offset,
            committed.commit_timestamp,
            committed.leader_epoch
        ),
        (9, 200, Some(3))
    );
    result(&mut d, MetadataCommand::delete_topic("t").encode()).unwrap();
    assert!(d.machine.reader().catalog().consumer_offsets.is_empty());
}

#[tokio::test]
async fn readers_are_told_about_changes() {
    let mut d = cluster();
    let mut versions = d.machine.reader().subscribe();
    let seen = *versions.borrow_and_update();
    result(&mut d, topic("t", 1, 1, &[1])).unwrap();
    versions.changed().await.unwrap();
    assert_eq!(*versions.borrow(), seen + 1);
}

#[test]
fn in_memory_durability_is_the_last_restored_snapshot() {
    let mut d = cluster();
    assert_eq!(d.machine.flush().unwrap(), 0);
    let mut other = MetadataStateMachine::new();
    transfer(&d.machine, &mut other);
    assert_eq!(other.durable_index(), d.machine.applied_index());
    assert!(matches!(
        other.apply(&LogEntry::empty(1, 1)),
        Err(FsmError::IndexGap { .. })
    ));
}

#[test]
fn the_checkpointed_catalogue_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Driver::new(MetadataStateMachine::open(dir.path()).unwrap());
    d.new_term();
    d.apply(node(1));
    d.apply(topic("t", 1, 4, &[1]));
    assert_eq!(d.machine.durable_index(), 0);
    assert_eq!(d.machine.flush().unwrap(), 3);
    d.apply(node(2)); // not flushed: replayed after the restart
    let expected = snapshot_bytes(&d.machine);
    let Driver { machine, log, .. } = d;
    drop(machine);
    let mut reopened = MetadataStateMachine::open(dir.path()).unwrap();
    assert_eq!((reopened.applied_index(), reopened.durable_index()), (3, 3));
    common::replay(&log, &mut reopened, 4);
    assert_eq!(snapshot_bytes(&reopened), expected);
    drop(reopened);
    std::fs::write(dir.path().join("metadata.checkpoint"), b"CKMD garbage").unwrap();
    assert!(matches!(
        MetadataStateMachine::open(dir.path()),
        Err(FsmError::Corruption { .. })
    ));
}

/// A random metadata command over a small universe, so that most commands
/// meet existing names and ids and both acceptances and rejections occur.
fn random_command(pick: (u8, u8, u8, u8)) -> Bytes {
    let (kind, a, b, c) = pick;
    let name = format!("t{}", a % 4);
    let replicas: Vec<u64> = (0..u64::from(b % 3) + 1)
        .map(|i| (u64::from(c) + i) % 5 + 1)
        .collect();
    match kind % 7 {
        0 => node(u64::from(a % 5) + 1),
        1 => topic(&name, u64::from(b % 8), u32::from(c % 3), &replicas),
        2 => MetadataCommand::delete_topic(name).encode(),
        3 => MetadataCommand::alter_replicas(name, u32::from(b % 3), replicas).encode(),
        4 => MetadataCommand::update_configs(
            name,
            BTreeMap::from([(format!("k{b}"), format!("v{c}"))]),
            vec![format!("k{c}")],
        )
        .encode(),
        5 => MetadataCommand::commit_offsets(
            format!("g{}", b % 2),
            vec![OffsetCommit {
                topic: name,
                partition: u32::from(c % 2),
                offset: i64::from(a),
                ..Default::default()
            }],
            i64::from(c),
        )
        .encode(),
        _ => Bytes::from(vec![a, b, c]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn metadata_is_deterministic_and_snapshots_restore_exactly(
        commands in proptest::collection::vec(any::<(u8, u8, u8, u8)>(), 0..120),
        tail in proptest::collection::vec(any::<(u8, u8, u8, u8)>(), 0..30),
    ) {
        let mut a = Driver::new(MetadataStateMachine::new());
        let mut b = Driver::new(MetadataStateMachine::new());
        a.new_term();
        b.new_term();
        for &pick in &commands {
            prop_assert_eq!(a.apply(random_command(pick)), b.apply(random_command(pick)));
        }
        prop_assert_eq!(snapshot_bytes(&a.machine), snapshot_bytes(&b.machine));
        let mut restored = Driver::new(MetadataStateMachine::new());
        transfer(&a.machine, &mut restored.machine);
        restored.term = a.term;
        prop_assert_eq!(snapshot_bytes(&restored.machine), snapshot_bytes(&a.machine));
        for &pick in &tail {
            prop_assert_eq!(a.apply(random_command(pick)), restored.apply(random_command(pick)));
        }
        prop_assert_eq!(snapshot_bytes(&restored.machine), snapshot_bytes(&a.machine));
        prop_assert_eq!(&*restored.machine.reader().catalog(), &*a.machine.reader().catalog());
    }
}

#[test]
fn concurrent_readers_see_whole_commands_only() {
    let mut d = cluster();
    let reader = d.machine.reader();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checker = {
        let done = std::sync::Arc::clone(&done);
        std::thread::spawn(move || {
            let mut views = 0u64;
            // Bounded by the writer, which sets `done` after a fixed count.
            while !done.load(std::sync::atomic::Ordering::Acquire) || views == 0 {
                let catalog = reader.catalog();
                // Every topic is created whole: all its partitions, or none.
                for topic in catalog.topics.values() {
                    assert_eq!(topic.partitions.len(), 4);
                }
                views += 1;
            }
            views
        })
    };
    for i in 0..300u64 {
        result(&mut d, topic(&format!("t{i}"), 1 + i * 4, 4, &[1, 2])).unwrap();
        if i % 3 == 0 {
            result(
                &mut d,
                MetadataCommand::delete_topic(format!("t{i}")).encode(),
            )
            .unwrap();
        }
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    assert!(checker.join().unwrap() > 0);
    assert_eq!(d.machine.reader().catalog().topics.len(), 200);
}
