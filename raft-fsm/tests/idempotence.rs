//! Every idempotent-producer case, replicated: the decisions are part of
//! the state, so they hold after a snapshot and after a restart.

mod common;

use common::{transfer, Driver};
use raft_fsm::{PartitionConfig, PartitionError, PartitionStateMachine, StateMachine};

fn driver() -> Driver<PartitionStateMachine> {
    let mut d = Driver::new(PartitionStateMachine::in_memory(PartitionConfig::default()));
    d.new_term();
    d
}

#[test]
fn a_new_producer_starts_at_sequence_zero() {
    let mut d = driver();
    assert_eq!(
        d.produce(1, 0, 3, 1),
        Err(PartitionError::OutOfOrderSequence {
            producer_id: 1,
            expected: 0,
            got: 3
        })
    );
    let first = d.produce(1, 0, 0, 2).unwrap();
    assert_eq!(
        (first.base_offset, first.last_offset, first.duplicate),
        (0, 1, false)
    );
    // Producer id 0 is a valid Kafka producer id, kept apart from 1.
    assert_eq!(d.produce(0, 0, 0, 1).unwrap().base_offset, 2);
}

#[test]
fn in_order_batches_are_appended() {
    let mut d = driver();
    let mut expected_offset = 0;
    let mut sequence = 0;
    for count in [1u32, 3, 2, 5, 1, 4, 2] {
        let result = d.produce(9, 2, sequence, count).unwrap();
        assert_eq!(result.base_offset, expected_offset);
        assert!(!result.duplicate);
        expected_offset += u64::from(count);
        sequence += count as i32;
    }
    assert_eq!(d.machine.reader().high_watermark(), expected_offset);
}

#[test]
fn a_retry_gets_its_original_offsets_and_is_not_appended_twice() {
    let mut d = driver();
    d.produce(5, 0, 0, 2).unwrap();
    let original = d.produce(5, 0, 2, 3).unwrap();
    d.append(b"someone else", 4, 0).unwrap();
    let retry = d.produce(5, 0, 2, 3).unwrap();
    assert!(retry.duplicate);
    assert_eq!(
        (retry.base_offset, retry.last_offset),
        (original.base_offset, original.last_offset)
    );
    assert_eq!(retry.log_append_time, original.log_append_time);
    let reader = d.machine.reader();
    assert_eq!(reader.high_watermark(), 9);
    assert_eq!(reader.fetch(0, usize::MAX).unwrap().batches.len(), 3);
    assert_eq!(reader.stats().duplicate_batches, 1);
}

#[test]
fn any_of_the_last_five_batches_is_recognised() {
    let mut d = driver();
    let mut offsets = Vec::new();
    for i in 0..8 {
        offsets.push(d.produce(3, 0, i, 1).unwrap().base_offset);
    }
    for i in 3..8 {
        let retry = d.produce(3, 0, i, 1).unwrap();
        assert!(retry.duplicate);
        assert_eq!(retry.base_offset, offsets[i as usize]);
    }
    // Older than the window: written once already, offset no longer known.
    assert_eq!(
        d.produce(3, 0, 2, 1),
        Err(PartitionError::DuplicateSequence {
            producer_id: 3,
            sequence: 2
        })
    );
    assert_eq!(d.machine.reader().high_watermark(), 8);
}

#[test]
fn a_sequence_gap_is_out_of_order() {
    let mut d = driver();
    d.produce(4, 0, 0, 2).unwrap();
    assert_eq!(
        d.produce(4, 0, 3, 1),
        Err(PartitionError::OutOfOrderSequence {
            producer_id: 4,
            expected: 2,
            got: 3
        })
    );
    // A retry whose range differs from the remembered batch is not a duplicate.
    assert_eq!(
        d.produce(4, 0, 0, 1),
        Err(PartitionError::OutOfOrderSequence {
            producer_id: 4,
            expected: 2,
            got: 0
        })
    );
    assert_eq!(d.produce(4, 0, 2, 1).unwrap().base_offset, 2);
}

#[test]
fn an_older_epoch_is_fenced_and_a_newer_one_restarts_the_sequence() {
    let mut d = driver();
    d.produce(6, 3, 0, 1).unwrap();
    d.produce(6, 3, 1, 1).unwrap();
    assert_eq!(
        d.produce(6, 2, 2, 1),
        Err(PartitionError::ProducerFenced {
            producer_id: 6,
            current: 3,
            got: 2
        })
    );
    assert_eq!(
        d.produce(6, 4, 2, 1),
        Err(PartitionError::OutOfOrderSequence {
            producer_id: 6,
            expected: 0,
            got: 2
        })
    );
    assert_eq!(d.produce(6, 4, 0, 1).unwrap().base_offset, 2);
    // The old epoch is fenced from now on, even for its remembered batches.
    assert!(matches!(
        d.produce(6, 3, 1, 1),
        Err(PartitionError::ProducerFenced { .. })
    ));
}

#[test]
fn negative_sequences_are_invalid() {
    let mut d = driver();
    assert!(matches!(
        d.produce(1, 0, -1, 1),
        Err(PartitionError::InvalidRecord { .. })
    ));
    assert!(matches!(
        d.produce(1, -1, 0, 1),
        Err(PartitionError::InvalidRecord { .. })
    ));
}

#[test]
fn producer_state_survives_a_snapshot() {
    let mut d = driver();
    let original = d.produce(8, 1, 0, 4).unwrap();
    let mut follower = PartitionStateMachine::in_memory(PartitionConfig::default());
    transfer(&d.machine, &mut follower);
    let mut f = Driver {
        machine: follower,
        term: d.term,
        log: Vec::new(),
    };
    let retry = f.produce(8, 1, 0, 4).unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.base_offset, original.base_offset);
    assert!(matches!(
        f.produce(8, 0, 4, 1),
        Err(PartitionError::ProducerFenced { .. })
    ));
    assert!(matches!(
        f.produce(8, 1, 9, 1),
        Err(PartitionError::OutOfOrderSequence { expected: 4, .. })
    ));
}

#[test]
fn producer_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut d =
        Driver::new(PartitionStateMachine::open(dir.path(), PartitionConfig::default()).unwrap());
    d.new_term();
    let original = d.produce(2, 0, 0, 3).unwrap();
    d.machine.flush().unwrap();
    drop(d.machine);
    let reopened = PartitionStateMachine::open(dir.path(), PartitionConfig::default()).unwrap();
    let mut d = Driver {
        machine: reopened,
        term: 1,
        log: Vec::new(),
    };
    let retry = d.produce(2, 0, 0, 3).unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.base_offset, original.base_offset);
}
