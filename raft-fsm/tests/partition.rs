//! Behaviour of the partition machine: offsets, high watermark, epochs,
//! fetch, list offsets, DeleteRecords, retention, bad input.

mod common;

use bytes::Bytes;
use common::Driver;
use raft_fsm::{
    decode_delete_records_response, decode_retention_response, CorruptReason, EntryKind,
    EpochEndOffset, FsmError, LogEntry, OffsetSpec, PartitionCommand, PartitionConfig,
    PartitionError, PartitionStateMachine, StateMachine,
};

fn machine(segment_bytes: u64) -> Driver<PartitionStateMachine> {
    Driver::new(PartitionStateMachine::in_memory(
        PartitionConfig::default().with_segment_bytes(segment_bytes),
    ))
}

#[test]
fn offsets_are_contiguous_and_the_high_watermark_monotone() {
    let mut d = machine(1 << 20);
    let reader = d.machine.reader();
    d.new_term();
    let mut expected = 0;
    let mut last_hw = 0;
    for i in 0..200u32 {
        let count = i % 7 + 1;
        let result = d
            .append(format!("batch {i}").as_bytes(), count, i64::from(i))
            .unwrap();
        assert_eq!(result.base_offset, expected);
        assert_eq!(result.last_offset, expected + u64::from(count) - 1);
        expected += u64::from(count);
        let hw = reader.high_watermark();
        assert!(hw > last_hw);
        assert_eq!(hw, expected);
        last_hw = hw;
        if i % 50 == 0 {
            d.new_term(); // empty entries take a raft index, never an offset
        }
    }
    let fetched = reader.fetch(0, usize::MAX).unwrap();
    let mut next = 0;
    for batch in &fetched.batches {
        assert_eq!(batch.base_offset, next);
        next = batch.last_offset + 1;
    }
    assert_eq!(next, expected);
    assert_eq!(fetched.high_watermark, expected);
}

#[test]
fn out_of_order_indexes_are_fatal_and_change_nothing() {
    let mut m = PartitionStateMachine::in_memory(PartitionConfig::default());
    assert!(matches!(
        m.apply(&LogEntry::empty(2, 1)),
        Err(FsmError::IndexGap {
            expected: 1,
            got: 2
        })
    ));
    assert_eq!(m.applied_index(), 0);
    m.apply(&LogEntry::empty(1, 1)).unwrap();
    assert!(matches!(
        m.apply(&LogEntry::empty(1, 1)),
        Err(FsmError::IndexGap {
            expected: 2,
            got: 1
        })
    ));
    let conf = LogEntry {
        index: 2,
        term: 1,
        kind: EntryKind::ConfChange,
        data: b"opaque",
    };
    assert!(m.apply(&conf).unwrap().is_empty());
    assert_eq!(m.applied_index(), 2);
    assert_eq!(m.reader().high_watermark(), 0);
}

#[test]
fn bad_commands_get_typed_rejections_and_are_counted() {
    let mut d = machine(1 << 20);
    d.new_term();
    let garbage = d.apply(Bytes::from_static(&[0xff, 0xff, 0x01]));
    assert!(matches!(
        raft_fsm::decode_append_response(&garbage),
        Err(PartitionError::CorruptMessage {
            reason: CorruptReason::Undecodable
        })
    ));
    let future = PartitionCommand {
        version: 7,
        op: None,
    }
    .encode();
    assert!(matches!(
        raft_fsm::decode_append_response(&d.apply(future)),
        Err(PartitionError::CorruptMessage {
            reason: CorruptReason::UnsupportedVersion(7)
        })
    ));
    assert!(matches!(
        d.append(b"", 1, 0),
        Err(PartitionError::InvalidRecord { .. })
    ));
    assert!(matches!(
        d.append(b"x", 0, 0),
        Err(PartitionError::InvalidRecord { .. })
    ));
    let mut small = Driver::new(PartitionStateMachine::in_memory(
        PartitionConfig::default().with_max_batch_bytes(4),
    ));
    small.new_term();
    assert_eq!(
        small.append(b"12345", 1, 0),
        Err(PartitionError::MessageTooLarge { size: 5, max: 4 })
    );
    assert_eq!(d.machine.reader().stats().rejected_commands, 4);
    assert_eq!(d.machine.reader().high_watermark(), 0);
}

#[test]
fn fetch_respects_the_budget_and_the_log_bounds() {
    for segment_bytes in [1 << 20, 300] {
        let mut d = machine(segment_bytes);
        d.new_term();
        for i in 0..30u8 {
            d.append(&[i; 100], 2, i64::from(i)).unwrap();
        }
        let r = d.machine.reader();
        // The first batch is whole even if larger than the budget.
        let one = r.fetch(0, 1).unwrap();
        assert_eq!(one.batches.len(), 1);
        assert_eq!(one.batches[0].records.as_ref(), &[0u8; 100][..]);
        let some = r.fetch(0, 350).unwrap();
        assert_eq!(some.batches.len(), 3);
        assert!(some.records_bytes() <= 350);
        // An offset inside a batch returns that batch.
        let inside = r.fetch(5, 1).unwrap();
        assert_eq!(inside.batches[0].base_offset, 4);
        let all = r.fetch(10, usize::MAX).unwrap();
        assert_eq!(all.batches.first().map(|b| b.base_offset), Some(10));
        assert_eq!(all.batches.last().map(|b| b.last_offset), Some(59));
        // At the high watermark: empty; beyond: out of range.
        assert!(r.fetch(60, 1000).unwrap().batches.is_empty());
        assert!(matches!(
            r.fetch(61, 1000),
            Err(PartitionError::OffsetOutOfRange {
                high_watermark: 60,
                ..
            })
        ));
    }
}

#[test]
fn epochs_follow_terms_and_answer_offset_for_leader_epoch() {
    let mut d = machine(1 << 20);
    let r = d.machine.reader();
    assert_eq!(r.offset_for_leader_epoch(1), None);
    d.new_term(); // epoch 1 at 0
    d.append(b"a", 5, 0).unwrap();
    d.new_term(); // epoch 2 at 5
    d.new_term(); // epoch 3 at 5 replaces the empty epoch 2
    d.append(b"b", 5, 0).unwrap();
    let fetched = r.fetch(5, 100).unwrap();
    assert_eq!(fetched.batches[0].leader_epoch, 3);
    assert_eq!(r.leader_epoch(), Some(3));
    assert_eq!(
        r.offset_for_leader_epoch(1),
        Some(EpochEndOffset {
            leader_epoch: 1,
            end_offset: 5
        })
    );
    assert_eq!(
        r.offset_for_leader_epoch(2),
        Some(EpochEndOffset {
            leader_epoch: 1,
            end_offset: 5
        })
    );
    assert_eq!(
        r.offset_for_leader_epoch(3),
        Some(EpochEndOffset {
            leader_epoch: 3,
            end_offset: 10
        })
    );
    assert_eq!(r.offset_for_leader_epoch(0), None);
}

#[test]
fn list_offsets_by_position_and_time() {
    let mut d = machine(400);
    d.new_term();
    for i in 0..20i64 {
        d.append(&[1; 90], 1, 1000 + i * 10).unwrap();
    }
    let r = d.machine.reader();
    assert_eq!(
        r.list_offsets(OffsetSpec::Earliest).unwrap().offset,
        Some(0)
    );
    assert_eq!(r.list_offsets(OffsetSpec::Latest).unwrap().offset, Some(20));
    let at = r.list_offsets(OffsetSpec::Timestamp(1055)).unwrap();
    assert_eq!((at.offset, at.timestamp), (Some(6), 1060));
    assert_eq!(
        r.list_offsets(OffsetSpec::Timestamp(0)).unwrap().offset,
        Some(0)
    );
    assert_eq!(
        r.list_offsets(OffsetSpec::Timestamp(5000)).unwrap().offset,
        None
    );
    d.apply(PartitionCommand::delete_records(8).encode());
    assert_eq!(
        r.list_offsets(OffsetSpec::Timestamp(0)).unwrap().offset,
        Some(8)
    );
    assert_eq!(
        r.list_offsets(OffsetSpec::Earliest).unwrap().offset,
        Some(8)
    );
}

#[test]
fn delete_records_moves_the_log_start() {
    let mut d = machine(300);
    d.new_term();
    for _ in 0..10 {
        d.append(&[7; 100], 3, 0).unwrap();
    }
    let r = d.machine.reader();
    let moved =
        decode_delete_records_response(&d.apply(PartitionCommand::delete_records(13).encode()))
            .unwrap();
    assert_eq!(moved.low_watermark, 13);
    assert_eq!(r.log_start_offset(), 13);
    assert!(matches!(
        r.fetch(12, 10),
        Err(PartitionError::OffsetOutOfRange {
            log_start_offset: 13,
            ..
        })
    ));
    assert_eq!(r.fetch(13, 1).unwrap().batches[0].base_offset, 12);
    // Moving backwards is a no-op; beyond the high watermark is rejected.
    let same =
        decode_delete_records_response(&d.apply(PartitionCommand::delete_records(3).encode()))
            .unwrap();
    assert_eq!(same.low_watermark, 13);
    let beyond =
        decode_delete_records_response(&d.apply(PartitionCommand::delete_records(31).encode()));
    assert!(matches!(
        beyond,
        Err(PartitionError::OffsetOutOfRange { offset: 31, .. })
    ));
    let appended = d.append(b"x", 1, 0).unwrap();
    assert_eq!((appended.base_offset, appended.log_start_offset), (30, 13));
}

#[test]
fn retention_by_time_and_size_drops_whole_segments() {
    let mut d = machine(300); // two 144-byte frames per segment
    d.new_term();
    for i in 0..10i64 {
        d.append(&[0; 100], 1, i * 100).unwrap();
    }
    let r = d.machine.reader();
    // Segments hold [0,1] [2,3] ... [8,9]; keep records newer than 350 at now=1000.
    let kept = decode_retention_response(
        &d.apply(PartitionCommand::apply_retention(1000, Some(650), None, None).encode()),
    )
    .unwrap();
    assert_eq!((kept.log_start_offset, kept.segments_deleted), (4, 2));
    assert_eq!(r.log_start_offset(), 4);
    // Size: 3 segments of 288 bytes remain; a segment goes only while the
    // log stays at or above the limit without it (Kafka's rule).
    let sized = decode_retention_response(
        &d.apply(PartitionCommand::apply_retention(1000, None, Some(500), None).encode()),
    )
    .unwrap();
    assert_eq!((sized.log_start_offset, sized.segments_deleted), (6, 1));
    // Everything expired: the active segment rolls and goes too.
    let all = decode_retention_response(
        &d.apply(PartitionCommand::apply_retention(10_000, Some(1), None, None).encode()),
    )
    .unwrap();
    assert_eq!(all.log_start_offset, 10);
    assert!(r.fetch(10, 100).unwrap().batches.is_empty());
    assert_eq!(d.append(b"new", 1, 20_000).unwrap().base_offset, 10);
}

#[test]
fn retention_expires_idle_producers() {
    let mut d = machine(1 << 20);
    d.new_term();
    d.produce(1, 0, 0, 1).unwrap(); // append time 10
    let expired = decode_retention_response(
        &d.apply(PartitionCommand::apply_retention(1000, None, None, Some(500)).encode()),
    )
    .unwrap();
    assert_eq!(expired.producers_expired, 1);
    assert_eq!(d.machine.producer_count(), 0);
}

#[test]
fn concurrent_readers_see_prefixes_never_beyond_the_high_watermark() {
    let mut d = machine(2000);
    d.new_term();
    let reader = d.machine.reader();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut reads = 0u64;
            let mut last_hw = 0;
            // Bounded by the writer below, which sets `stop` after a fixed count.
            while !stop.load(std::sync::atomic::Ordering::Acquire) || reads == 0 {
                let fetched = reader.fetch(0, usize::MAX).unwrap();
                assert!(fetched.high_watermark >= last_hw);
                last_hw = fetched.high_watermark;
                let mut next = 0;
                for batch in &fetched.batches {
                    assert_eq!(batch.base_offset, next);
                    assert_eq!(batch.records.len(), 50);
                    assert!(batch
                        .records
                        .iter()
                        .all(|&b| b == (batch.base_offset % 251) as u8));
                    next = batch.last_offset + 1;
                }
                assert_eq!(next, fetched.high_watermark);
                reads += 1;
            }
            reads
        })
    };
    for i in 0..3000u64 {
        d.append(&[(i % 251) as u8; 50], 1, 0).unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    assert!(watcher.join().unwrap() > 0);
}

#[tokio::test]
async fn long_poll_waits_for_the_high_watermark() {
    let mut d = machine(1 << 20);
    d.new_term();
    let reader = d.machine.reader();
    let waiter = tokio::spawn({
        let reader = reader.clone();
        async move { reader.wait_for(0, std::time::Duration::from_secs(30)).await }
    });
    d.append(b"x", 2, 0).unwrap();
    assert_eq!(waiter.await.unwrap(), Ok(2));
    let mut updates = reader.subscribe();
    d.append(b"y", 1, 0).unwrap();
    updates.changed().await.unwrap();
    assert_eq!(*updates.borrow(), 3);
}

#[tokio::test]
async fn a_subscriber_after_unwatched_appends_holds_the_current_high_watermark() {
    let mut d = machine(1 << 20);
    d.new_term();
    let reader = d.machine.reader();
    for _ in 0..3 {
        d.append(b"z", 1, 0).unwrap();
    }
    let updates = reader.subscribe();
    assert_eq!(*updates.borrow(), 3);
    assert_eq!(reader.high_watermark(), 3);
    drop(updates);
    d.append(b"z", 1, 0).unwrap();
    assert_eq!(
        reader.wait_for(3, std::time::Duration::from_secs(30)).await,
        Ok(4)
    );
}

#[test]
fn waiters_subscribing_while_records_are_applied_miss_none() {
    // Each wait subscribes anew while another thread applies: a wait that missed the
    // apply it needs (the last ones have none after them) would time out.
    let mut d = machine(1 << 20);
    d.new_term();
    let reader = d.machine.reader();
    let main_reader = reader.clone();
    const RECORDS: u64 = 3000;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let waiter = std::thread::spawn(move || {
        runtime.block_on(async {
            // Offsets far apart: most applies find no receiver.
            for offset in (0..RECORDS).step_by(13).chain([RECORDS - 1]) {
                let hw = reader
                    .wait_for(offset, std::time::Duration::from_secs(30))
                    .await;
                assert!(
                    matches!(hw, Ok(hw) if hw > offset),
                    "offset {offset}: {hw:?}"
                );
            }
        })
    });
    for _ in 0..RECORDS {
        d.append(b"w", 1, 0).unwrap();
    }
    waiter.join().unwrap();
    // Every receiver is gone: the next apply sends nothing, a new one still sees it.
    d.append(b"w", 1, 0).unwrap();
    assert_eq!(*main_reader.subscribe().borrow(), RECORDS + 1);
}

#[tokio::test(start_paused = true)]
async fn long_poll_times_out() {
    let reader = PartitionStateMachine::in_memory(PartitionConfig::default()).reader();
    let waited = reader
        .wait_for(0, std::time::Duration::from_millis(500))
        .await;
    assert_eq!(waited, Err(PartitionError::WaitTimeout { offset: 0 }));
}

#[test]
fn a_normal_entry_without_data_is_a_leader_entry_not_a_command() {
    let mut m = PartitionStateMachine::in_memory(PartitionConfig::default());
    assert!(m.apply(&LogEntry::normal(1, 4, &[])).unwrap().is_empty());
    assert_eq!(m.reader().stats().rejected_commands, 0);
    assert_eq!(m.reader().leader_epoch(), Some(4));
}
