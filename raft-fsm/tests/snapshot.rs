//! Determinism and snapshots of the partition machine: replicas fed the same
//! entries end byte-identical; snapshot then restore equals the original.

mod common;

use bytes::Bytes;
use common::{random_command, rng, seed, snapshot_bytes, transfer, Driver};
use proptest::prelude::*;
use raft_fsm::{
    collect_chunks, CorruptionKind, FsmError, PartitionCommand, PartitionConfig,
    PartitionStateMachine, SnapshotMeta, StateMachine,
};

fn config() -> PartitionConfig {
    PartitionConfig::default()
        .with_segment_bytes(2048)
        .with_snapshot_chunk_bytes(700)
}

/// Applies `count` seeded random commands with occasional new terms.
fn run(d: &mut Driver<PartitionStateMachine>, seed: u64, count: usize) -> Vec<Bytes> {
    let mut rng = rng(seed);
    let mut clock = 0;
    let mut responses = Vec::with_capacity(count);
    for i in 0..count {
        if i % 37 == 0 {
            d.new_term();
        }
        let hint = d.machine.high_watermark();
        responses.push(d.apply(random_command(&mut rng, &mut clock, hint)));
    }
    responses
}

#[test]
fn replicas_fed_the_same_entries_are_byte_identical() {
    let base = seed();
    for seed in base..base + 8 {
        let dir = tempfile::tempdir().unwrap();
        let mut memory = Driver::new(PartitionStateMachine::in_memory(config()));
        let mut file = Driver::new(PartitionStateMachine::open(dir.path(), config()).unwrap());
        let a = run(&mut memory, seed, 400);
        let b = run(&mut file, seed, 400);
        assert_eq!(a, b, "responses differ, SEED={seed}");
        assert_eq!(
            snapshot_bytes(&memory.machine),
            snapshot_bytes(&file.machine),
            "SEED={seed}"
        );
        let (ra, rb) = (memory.machine.reader(), file.machine.reader());
        let start = ra.log_start_offset();
        assert_eq!(
            ra.fetch(start, usize::MAX),
            rb.fetch(start, usize::MAX),
            "SEED={seed}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn snapshot_then_restore_equals_the_original(seed in any::<u64>(), count in 0usize..300, more in 0usize..60) {
        let mut leader = Driver::new(PartitionStateMachine::in_memory(config()));
        run(&mut leader, seed, count);
        let original = snapshot_bytes(&leader.machine);

        let mut follower = Driver::new(PartitionStateMachine::in_memory(config()));
        transfer(&leader.machine, &mut follower.machine);
        prop_assert_eq!(snapshot_bytes(&follower.machine), original.clone());
        let dir = tempfile::tempdir().unwrap();
        let mut on_disk = PartitionStateMachine::open(dir.path(), config()).unwrap();
        transfer(&leader.machine, &mut on_disk);
        prop_assert_eq!(snapshot_bytes(&on_disk), original.clone());
        prop_assert_eq!(on_disk.durable_index(), leader.machine.applied_index());

        // Both go on identically from the restored state.
        follower.term = leader.term;
        let a = run(&mut leader, seed ^ 0xabcd, more);
        let b = run(&mut follower, seed ^ 0xabcd, more);
        prop_assert_eq!(a, b);
        prop_assert_eq!(snapshot_bytes(&leader.machine), snapshot_bytes(&follower.machine));
        let (ra, rb) = (leader.machine.reader(), follower.machine.reader());
        prop_assert_eq!(ra.offset_for_leader_epoch(u64::MAX), rb.offset_for_leader_epoch(u64::MAX));
        let start = ra.log_start_offset();
        prop_assert_eq!(ra.fetch(start, usize::MAX), rb.fetch(start, usize::MAX));
    }
}

#[test]
fn a_snapshot_is_consistent_while_apply_goes_on() {
    let seed = seed();
    let dir = tempfile::tempdir().unwrap();
    let mut leader = Driver::new(PartitionStateMachine::open(dir.path(), config()).unwrap());
    run(&mut leader, seed, 300);
    leader.machine.flush().unwrap();
    let expected = snapshot_bytes(&leader.machine);
    let mut source = leader.machine.snapshot().unwrap();
    let first = source.next_chunk().unwrap().unwrap();
    // Apply goes on: more appends, then everything but the tail deleted and flushed.
    run(&mut leader, seed + 1, 200);
    let hw = leader.machine.high_watermark();
    leader.apply(PartitionCommand::delete_records(hw).encode());
    leader.machine.flush().unwrap();
    let mut chunks = vec![first];
    chunks.extend(collect_chunks(source.as_mut()).unwrap());
    assert_eq!(chunks.concat(), expected.1, "SEED={seed}");
    let mut follower = PartitionStateMachine::in_memory(config());
    follower
        .restore(source.meta(), &mut chunks.into_iter().map(Ok))
        .unwrap();
    assert_eq!(snapshot_bytes(&follower), expected);
}

#[test]
fn chunk_boundaries_do_not_matter() {
    let mut leader = Driver::new(PartitionStateMachine::in_memory(config()));
    run(&mut leader, seed(), 200);
    let (meta, bytes) = snapshot_bytes(&leader.machine);
    for size in [1usize, 7, 44, 4096] {
        let mut follower = PartitionStateMachine::in_memory(config());
        let mut pieces = bytes.chunks(size).map(|c| Ok(Bytes::copy_from_slice(c)));
        follower.restore(meta, &mut pieces).unwrap();
        assert_eq!(snapshot_bytes(&follower), (meta, bytes.clone()));
    }
}

#[test]
fn a_malformed_snapshot_is_rejected_and_the_old_state_kept() {
    let mut leader = Driver::new(PartitionStateMachine::in_memory(config()));
    run(&mut leader, seed(), 200);
    let (meta, bytes) = snapshot_bytes(&leader.machine);
    let dir = tempfile::tempdir().unwrap();
    let mut target = Driver::new(PartitionStateMachine::open(dir.path(), config()).unwrap());
    run(&mut target, 77, 50);
    target.machine.flush().unwrap();
    let before = snapshot_bytes(&target.machine);
    let restore = |m: &mut PartitionStateMachine, meta: SnapshotMeta, data: Vec<u8>| {
        m.restore(meta, &mut std::iter::once(Ok(Bytes::from(data))))
    };

    let truncated = bytes[..bytes.len() - 5].to_vec();
    assert!(matches!(
        restore(&mut target.machine, meta, truncated),
        Err(FsmError::BadSnapshot {
            kind: CorruptionKind::Truncated,
            ..
        })
    ));
    let mut flipped = bytes.clone();
    let at = bytes.len() - 3;
    flipped[at] ^= 1;
    assert!(matches!(
        restore(&mut target.machine, meta, flipped),
        Err(FsmError::BadSnapshot {
            kind: CorruptionKind::ChecksumMismatch,
            ..
        })
    ));
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        restore(&mut target.machine, meta, trailing),
        Err(FsmError::BadSnapshot { .. })
    ));
    assert!(matches!(
        restore(&mut target.machine, meta, b"junk".to_vec()),
        Err(FsmError::BadSnapshot { .. })
    ));
    let wrong = SnapshotMeta {
        index: meta.index + 1,
        term: meta.term,
    };
    assert!(matches!(
        restore(&mut target.machine, wrong, bytes.clone()),
        Err(FsmError::SnapshotMismatch { .. })
    ));
    assert_eq!(snapshot_bytes(&target.machine), before);
    // The directory still opens to the old state.
    drop(target);
    let reopened = PartitionStateMachine::open(dir.path(), config()).unwrap();
    assert_eq!(snapshot_bytes(&reopened), before);
}

#[test]
fn a_restored_file_partition_reopens_at_the_snapshot() {
    let mut leader = Driver::new(PartitionStateMachine::in_memory(config()));
    run(&mut leader, seed(), 250);
    let expected = snapshot_bytes(&leader.machine);
    let dir = tempfile::tempdir().unwrap();
    let mut target = Driver::new(PartitionStateMachine::open(dir.path(), config()).unwrap());
    run(&mut target, 5, 100);
    target.machine.flush().unwrap();
    transfer(&leader.machine, &mut target.machine);
    drop(target);
    let reopened = PartitionStateMachine::open(dir.path(), config()).unwrap();
    assert_eq!(reopened.applied_index(), expected.0.index);
    assert_eq!(snapshot_bytes(&reopened), expected);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    assert!(
        names.iter().all(|n| n.starts_with("00000001-")),
        "old generation removed: {names:?}"
    );
}

#[test]
fn a_snapshot_being_read_survives_a_restore_of_its_machine() {
    let dir = tempfile::tempdir().unwrap();
    let mut leader = Driver::new(PartitionStateMachine::open(dir.path(), config()).unwrap());
    run(&mut leader, seed(), 250);
    leader.machine.flush().unwrap();
    let expected = snapshot_bytes(&leader.machine);
    let mut source = leader.machine.snapshot().unwrap();
    let first = source.next_chunk().unwrap().unwrap();
    // The machine is replaced by another state (its old files are removed).
    let mut other = Driver::new(PartitionStateMachine::in_memory(config()));
    run(&mut other, seed() + 9, 40);
    transfer(&other.machine, &mut leader.machine);
    assert_eq!(
        snapshot_bytes(&leader.machine),
        snapshot_bytes(&other.machine)
    );
    let mut chunks = vec![first];
    chunks.extend(collect_chunks(source.as_mut()).unwrap());
    assert_eq!(chunks.concat(), expected.1);
}
