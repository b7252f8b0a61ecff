//! The checker fed good histories (they pass) and bad ones (each caught).

use super::*;

fn p0() -> PartitionId {
    PartitionId::new("t", 0)
}

fn rec(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn batch(base: u64, records: &[&str]) -> Batch {
    Batch {
        base_offset: base,
        last_offset: base + records.len() as u64 - 1,
        records: records.iter().map(|r| rec(r)).collect(),
    }
}

/// A replica log of one-record batches from offset `start`.
fn log(replica: ReplicaId, start: u64, records: &[&str]) -> ReplicaLog {
    ReplicaLog {
        partition: p0(),
        replica,
        log_start_offset: start,
        high_watermark: start + records.len() as u64,
        batches: (start..)
            .zip(records)
            .map(|(o, r)| batch(o, &[r]))
            .collect(),
    }
}

fn produce(h: &mut History, records: &[&str], outcome: ProduceOutcome) -> OpId {
    let op = h.produce_invoked(p0(), records.iter().map(|r| rec(r)).collect());
    h.complete(op, outcome);
    op
}

fn acked(base: u64, last: u64) -> ProduceOutcome {
    ProduceOutcome::Acknowledged {
        base_offset: base,
        last_offset: last,
    }
}

fn fetch(offset: u64, high_watermark: u64, batches: Vec<Batch>) -> FetchOp {
    FetchOp {
        partition: p0(),
        replica: 1,
        offset,
        high_watermark,
        batches,
    }
}

/// A history every variant of which the checker must accept against `good_logs`.
fn good_history() -> History {
    let mut h = History::new();
    produce(&mut h, &["a", "b"], acked(0, 1));
    produce(&mut h, &["c"], ProduceOutcome::Unknown); // present
    produce(&mut h, &["x"], ProduceOutcome::Unknown); // absent
    produce(&mut h, &["y"], ProduceOutcome::Failed); // absent
    produce(&mut h, &["z"], ProduceOutcome::Pending); // absent
    let first = produce(&mut h, &["d"], ProduceOutcome::Unknown);
    let retry = h.retry_invoked(first).unwrap();
    h.complete(retry, acked(3, 3));
    // A failed attempt of a batch whose other attempt landed: not a failed record.
    let e = produce(&mut h, &["e"], ProduceOutcome::Unknown);
    let retry = h.retry_invoked(e).unwrap();
    h.complete(retry, ProduceOutcome::Failed);
    let f = produce(&mut h, &["f"], ProduceOutcome::Unknown);
    let retry = h.retry_invoked(f).unwrap();
    h.complete(retry, ProduceOutcome::AlreadyWritten);
    h.fetched(fetch(0, 2, vec![batch(0, &["a", "b"])]));
    h.fetched(fetch(2, 4, vec![batch(2, &["c"]), batch(3, &["d"])]));
    h.fetched(fetch(6, 6, vec![]));
    h
}

fn good_logs() -> Vec<ReplicaLog> {
    let records = ["a", "b", "c", "d", "e", "f"];
    vec![
        log(1, 0, &records),
        log(2, 0, &records),
        log(3, 0, &records),
    ]
}

fn violations(h: &History, logs: &[ReplicaLog]) -> Vec<Violation> {
    h.check(logs).violations
}

#[test]
fn a_good_history_passes() {
    let report = good_history().check(&good_logs());
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.replicas, 3);
    assert_eq!(report.records, 18);
    assert_eq!(report.fetches, 3);
    assert_eq!((report.acknowledged, report.failed), (3, 2));
    // Batches of several records, and a log that starts past 0, pass too.
    let mut h = History::new();
    produce(&mut h, &["a", "b", "c"], acked(10, 12));
    let logs = [ReplicaLog {
        partition: p0(),
        replica: 1,
        log_start_offset: 10,
        high_watermark: 13,
        batches: vec![batch(10, &["a", "b", "c"])],
    }];
    h.fetched(fetch(11, 13, vec![batch(10, &["a", "b", "c"])]));
    assert_eq!(violations(&h, &logs), vec![]);
}

#[test]
fn a_lost_acknowledgement_is_caught() {
    let logs = [log(1, 0, &["a", "b", "c", "e", "f"])];
    let found = violations(&good_history(), &logs);
    assert!(found.contains(&Violation::LostAcknowledged {
        partition: p0(),
        replica: 1,
        record: rec("d"),
        offset: Some(3),
    }));
    // Only on the replica that lost it.
    let mut logs = good_logs();
    logs[2] = log(3, 0, &["a", "b", "c"]);
    let found = violations(&good_history(), &logs);
    assert!(found.contains(&Violation::LostAcknowledged {
        partition: p0(),
        replica: 3,
        record: rec("d"),
        offset: Some(3),
    }));
    assert!(found.iter().any(|v| matches!(
        v,
        Violation::ReplicasDiverge {
            replica: 3,
            reference: 1,
            offset: 3,
            ..
        }
    )));
    // A record said to be written already must be there too.
    let found = violations(&good_history(), &[log(1, 0, &["a", "b", "c", "d", "e"])]);
    assert!(found.contains(&Violation::LostAcknowledged {
        partition: p0(),
        replica: 1,
        record: rec("f"),
        offset: None,
    }));
}

#[test]
fn a_duplicated_retry_is_caught() {
    let logs = [log(1, 0, &["a", "b", "c", "d", "e", "f", "d"])];
    let found = violations(&good_history(), &logs);
    assert!(found.contains(&Violation::Duplicate {
        partition: p0(),
        replica: 1,
        record: rec("d"),
        offsets: vec![3, 6],
    }));
}

#[test]
fn gaps_bad_high_watermarks_and_malformed_batches_are_caught() {
    let mut gap = log(1, 0, &["a", "b", "c", "d", "e", "f"]);
    for b in &mut gap.batches[3..] {
        b.base_offset += 1;
        b.last_offset += 1;
    }
    gap.high_watermark += 1;
    let found = violations(&good_history(), &[gap]);
    assert!(found.contains(&Violation::Gap {
        partition: p0(),
        replica: 1,
        expected: 3,
        found: 4,
    }));
    // The first batch must start at the log start.
    let mut late = log(1, 0, &["a"]);
    late.batches[0] = batch(1, &["a"]);
    late.high_watermark = 2;
    let mut h = History::new();
    produce(&mut h, &["a"], ProduceOutcome::Unknown);
    assert!(violations(&h, &[late]).contains(&Violation::Gap {
        partition: p0(),
        replica: 1,
        expected: 0,
        found: 1,
    }));
    let mut short = log(1, 0, &["a"]);
    short.high_watermark = 2;
    assert_eq!(
        violations(&h, &[short]),
        vec![Violation::HighWatermarkMismatch {
            partition: p0(),
            replica: 1,
            log_end: 1,
            high_watermark: 2,
        }]
    );
    let mut malformed = log(1, 0, &["a"]);
    malformed.batches[0].last_offset = 1;
    malformed.high_watermark = 2;
    assert_eq!(
        violations(&h, &[malformed]),
        vec![Violation::MalformedBatch {
            partition: p0(),
            replica: 1,
            base_offset: 0,
            last_offset: 1,
            records: 1,
        }]
    );
}

#[test]
fn a_record_at_another_offset_than_acknowledged_is_caught() {
    let logs = [log(1, 0, &["b", "a", "c", "d", "e", "f"])];
    let found = violations(&good_history(), &logs);
    assert!(found.contains(&Violation::WrongOffset {
        partition: p0(),
        replica: 1,
        record: rec("a"),
        acknowledged: 0,
        found: 1,
    }));
    // An acknowledgement whose range does not fit the batch.
    let mut h = History::new();
    let op = produce(&mut h, &["a", "b"], acked(0, 2));
    assert_eq!(
        violations(&h, &[log(1, 0, &["a", "b"])]),
        vec![Violation::AcknowledgedRangeMismatch {
            partition: p0(),
            op,
            records: 2,
            base_offset: 0,
            last_offset: 2,
        }]
    );
}

#[test]
fn a_fetch_of_data_later_changed_is_caught() {
    let mut h = good_history();
    // Read "q" at offset 2 (an uncommitted entry, later overwritten by "c").
    h.fetched(fetch(2, 3, vec![batch(2, &["q"])]));
    let found = violations(&h, &good_logs());
    assert_eq!(found.len(), 3, "one per replica: {found:?}");
    assert!(found.contains(&Violation::FetchMismatch {
        partition: p0(),
        replica: 2,
        fetch: 3,
        offset: 2,
        fetched: rec("q"),
        final_record: rec("c"),
    }));
    // Data past the end of the final log.
    let mut h = good_history();
    h.fetched(fetch(6, 7, vec![batch(6, &["g"])]));
    assert!(
        violations(&h, &good_logs()).contains(&Violation::FetchBeyondFinalLog {
            partition: p0(),
            replica: 1,
            fetch: 3,
            offset: 6,
            log_end: 6,
        })
    );
}

#[test]
fn a_fetch_that_is_not_a_contiguous_committed_slice_is_caught() {
    let mut h = good_history();
    h.fetched(fetch(1, 6, vec![batch(0, &["a"]), batch(2, &["c"])]));
    h.fetched(fetch(0, 6, vec![batch(1, &["b"])]));
    h.fetched(fetch(0, 1, vec![batch(0, &["a", "b"])]));
    let found = violations(&h, &good_logs());
    let expect = [
        Violation::FetchGap {
            partition: p0(),
            fetch: 3,
            expected: 1,
            found: 0,
        },
        Violation::FetchGap {
            partition: p0(),
            fetch: 4,
            expected: 0,
            found: 1,
        },
        Violation::FetchPastHighWatermark {
            partition: p0(),
            fetch: 5,
            offset: 1,
            high_watermark: 1,
        },
    ];
    for v in expect {
        assert!(found.contains(&v), "{v} not in {found:?}");
    }
}

#[test]
fn a_failed_record_present_is_caught() {
    let logs = [log(1, 0, &["a", "b", "c", "d", "e", "f", "y"])];
    assert_eq!(
        violations(&good_history(), &logs),
        vec![Violation::FailedRecordPresent {
            partition: p0(),
            replica: 1,
            record: rec("y"),
            offset: 6,
        }]
    );
}

#[test]
fn records_nobody_produced_and_reused_records_are_caught() {
    let logs = [log(1, 0, &["a", "b", "c", "d", "e", "f", "w"])];
    assert_eq!(
        violations(&good_history(), &logs),
        vec![Violation::UnknownRecord {
            partition: p0(),
            replica: 1,
            record: rec("w"),
            offset: 6,
        }]
    );
    let mut h = good_history();
    let again = produce(&mut h, &["a"], ProduceOutcome::Failed);
    assert!(
        violations(&h, &good_logs()).contains(&Violation::RecordReused {
            partition: p0(),
            record: rec("a"),
            first: OpId(0),
            second: again,
        })
    );
}

#[test]
fn a_partition_without_a_final_log_is_caught() {
    let mut h = History::new();
    h.produce_invoked(PartitionId::new("t", 1), vec![rec("a")]);
    assert_eq!(
        violations(&h, &[]),
        vec![Violation::NoFinalLog {
            partition: PartitionId::new("t", 1)
        }]
    );
}

#[test]
fn merged_histories_keep_their_retries() {
    let mut a = History::new();
    produce(&mut a, &["a"], acked(0, 0));
    let mut b = History::new();
    let first = produce(&mut b, &["b"], ProduceOutcome::Unknown);
    let retry = b.retry_invoked(first).unwrap();
    b.complete(retry, acked(1, 1));
    a.merge(b);
    assert_eq!(a.produces()[2].retry_of, Some(OpId(1)));
    assert!(a.retry_invoked(OpId(99)).is_none());
    let report = a.check(&[log(1, 0, &["a", "b"])]);
    assert!(report.is_ok(), "{report}");
}
