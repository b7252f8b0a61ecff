//! Write-ahead-log size limits (`raft.max_log_bytes`) on real processes.

use std::time::{Duration, Instant};

use bytes::Bytes;
use chronik_cluster::client::ClientError;
use chronik_cluster::{encode_records, ProduceRequest};
use chronik_cluster_tests::history::{PartitionId, ProduceOutcome};

use crate::verify::{
    converge, leaders_of, read_every_replica, read_leaders, statuses, wait_for, WAIT,
};
use crate::workload::{self, Route, Shared, TOPIC};
use crate::{seed, start, SeedGuard, REPLICAS};

/// A size limit that holds about a thousand 1 KiB records.
const LIMIT: u64 = 1 << 20;

/// A node's write-ahead log with a small size limit: writes are refused with the typed
/// error (Kafka 56), nothing acknowledged is lost, and reads go on, also from the next
/// leader once the first is SIGKILLed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_log_refuses_writes_and_loses_nothing() {
    let seed = seed();
    let _guard = SeedGuard(seed, "a_full_log_refuses_writes_and_loses_nothing");
    let (mut procs, admin) = start(&[LIMIT; REPLICAS], 1).await;
    let shared = Shared::new(&procs.client_addresses(), 1);
    let partition = PartitionId::new(TOPIC, 0);
    let mut route = Route::default();
    let mut refused = None;
    // 1 KiB records: the limit holds about a thousand.
    for n in 0..20_000u64 {
        let records = vec![Bytes::from(format!("p0-c0-{n}-{:01000}", 0))];
        let op = shared
            .history()
            .produce_invoked(partition.clone(), records.clone());
        shared.produce(&mut route, op, 0, &records, None).await;
        if let Some(first) = workload::lock(&shared.storage_full).first() {
            refused = Some((n, first.clone()));
            break;
        }
    }
    let Some((sent, message)) = refused else {
        panic!("no write refused with a full log");
    };
    println!("refused after {sent} produces: {message}");
    assert!(message.contains("write-ahead log is full"), "{message}");
    // Refused again with the typed error: nothing the node took since freed space.
    let late = vec![Bytes::from(format!("p0-late-{:01000}", 0))];
    let op = shared
        .history()
        .produce_invoked(partition.clone(), late.clone());
    let request = ProduceRequest::new(TOPIC, 0, encode_records(&late), 1);
    // A client that follows leaders (the refusal is not retried).
    let again = admin.produce(request).await;
    assert!(
        matches!(again, Err(ClientError::StorageFull { .. })),
        "{again:?}"
    );
    assert_eq!(again.err().and_then(|e| e.kafka_code()), Some(56));
    shared.history().complete(op, ProduceOutcome::Failed);
    // Every replica holds the same records; the full leader serves reads.
    converge(&procs, REPLICAS, &[0]).await.unwrap();
    let mut logs = read_leaders(&procs, 1).await.unwrap();
    // Its successor (the log full there too) serves them as well.
    let first_leader = logs[0].replica;
    procs.kill(first_leader);
    wait_for("a new leader", WAIT, || async {
        let all = statuses(&procs).await;
        (!leaders_of(&all, 0).is_empty()).then_some(())
    })
    .await
    .unwrap();
    logs.extend(read_leaders(&procs, 1).await.unwrap());
    procs.spawn(first_leader);
    procs.wait_up(first_leader).await.unwrap();
    let report = shared.history().check(&logs);
    println!("seed {seed}: {report}");
    assert!(report.is_ok(), "{report}");
    assert_eq!(logs.len(), 2, "{report}");
    assert!(report.acknowledged > 100, "{report}");
    // Idle, the group is compacted and the log purged: writes resume.
    let deadline = Instant::now() + WAIT;
    for n in 0.. {
        assert!(
            Instant::now() < deadline,
            "no write accepted again within {WAIT:?}: {}",
            workload::lock(&shared.last_error)
        );
        let record = vec![Bytes::from(format!("p0-resume-{n}-{:01000}", 0))];
        let op = shared
            .history()
            .produce_invoked(partition.clone(), record.clone());
        let outcome = shared.produce(&mut route, op, 0, &record, None).await;
        if matches!(outcome, ProduceOutcome::Acknowledged { .. }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    converge(&procs, REPLICAS, &[0]).await.unwrap();
    let logs = read_leaders(&procs, 1).await.unwrap();
    let report = shared.history().check(&logs);
    println!("after the purge: {report}");
    assert!(report.is_ok(), "{report}");
}

/// One follower's log is much smaller than the others': it takes the part of each append
/// that fits and drops the rest (raft resends it) instead of failing its scheduler,
/// compacts and purges, and catches up; every acknowledged record ends up on every
/// replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_with_a_full_log_catches_up() {
    let seed = seed();
    let _guard = SeedGuard(seed, "a_follower_with_a_full_log_catches_up");
    let (procs, admin) = start(&[0, 0, LIMIT], 1).await;
    // Node 1 leads: node 3, the small one, follows.
    admin
        .reassign_partition(TOPIC, 0, vec![1, 2, 3])
        .await
        .unwrap();
    wait_for("node 1 leading", WAIT, || async {
        let all = statuses(&procs).await;
        (leaders_of(&all, 0) == [1]).then_some(())
    })
    .await
    .unwrap();
    let shared = Shared::new(&procs.client_addresses(), 1);
    let partition = PartitionId::new(TOPIC, 0);
    let mut route = Route::default();
    // Three times what node 3's log holds, acknowledged by nodes 1 and 2.
    let deadline = Instant::now() + 2 * WAIT;
    let mut acknowledged = 0;
    for n in 0..10_000u64 {
        if acknowledged >= 3_000 || Instant::now() >= deadline {
            break;
        }
        let records = vec![Bytes::from(format!("p0-c0-{n}-{:01000}", 0))];
        let op = shared
            .history()
            .produce_invoked(partition.clone(), records.clone());
        let outcome = shared.produce(&mut route, op, 0, &records, None).await;
        if matches!(outcome, ProduceOutcome::Acknowledged { .. }) {
            acknowledged += 1;
        }
    }
    assert!(
        acknowledged >= 3_000,
        "only {acknowledged} acknowledged: {}",
        workload::lock(&shared.last_error)
    );
    // Node 3 kept its scheduler running: it applies everything.
    converge(&procs, REPLICAS, &[0]).await.unwrap_or_else(|e| {
        panic!("{e}; {}", procs.log_tail(3));
    });
    let logs = read_every_replica(&procs, &admin, 1).await.unwrap();
    let report = shared.history().check(&logs);
    println!("seed {seed}: {report}");
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.replicas, REPLICAS, "{report}");
}
