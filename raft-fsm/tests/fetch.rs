//! Fetch from files (partly still in the write buffer) answers exactly what
//! fetch from memory answers, and both keep Kafka's fetch rules.

mod common;

use common::{seed, Driver};
use proptest::prelude::*;
use raft_fsm::{FetchResult, OffsetSpec, PartitionConfig, PartitionReader, PartitionStateMachine};

/// Two machines, in memory and on disk, fed the same appends: enough bytes
/// (~700 KB) that the file machine has some in its files and some in its
/// write buffer, across several segments.
fn twins(
    seed: u64,
) -> (
    tempfile::TempDir,
    PartitionReader,
    PartitionReader,
    Vec<Driver<PartitionStateMachine>>,
) {
    let config = PartitionConfig::default().with_segment_bytes(300 * 1024);
    let dir = tempfile::tempdir().unwrap();
    let mut memory = Driver::new(PartitionStateMachine::in_memory(config.clone()));
    let mut file = Driver::new(PartitionStateMachine::open(dir.path(), config).unwrap());
    let mut rng = common::rng(seed);
    for d in [&mut memory, &mut file] {
        d.new_term();
    }
    for i in 0..1400u64 {
        let len = rand::Rng::random_range(&mut rng, 1..1000usize);
        let count = rand::Rng::random_range(&mut rng, 1..5u32);
        let records = vec![(i % 256) as u8; len];
        for d in [&mut memory, &mut file] {
            d.append(&records, count, i as i64).unwrap();
        }
    }
    let (m, f) = (memory.machine.reader(), file.machine.reader());
    (dir, m, f, vec![memory, file])
}

fn check_rules(result: &FetchResult, offset: u64, max_bytes: usize) {
    let Some(first) = result.batches.first() else {
        assert_eq!(offset, result.high_watermark);
        return;
    };
    assert!(first.base_offset <= offset && offset <= first.last_offset);
    let mut next = first.base_offset;
    for batch in &result.batches {
        assert_eq!(batch.base_offset, next);
        assert!(batch.last_offset < result.high_watermark);
        assert!(batch.records.iter().all(|&b| b == batch.records[0]));
        next = batch.last_offset + 1;
    }
    if result.batches.len() > 1 {
        assert!(result.records_bytes() <= max_bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn file_fetch_equals_memory_fetch(
        seed in any::<u64>(),
        reads in proptest::collection::vec((0.0f64..=1.0, 0usize..200_000), 1..40),
    ) {
        let (_dir, memory, file, _machines) = twins(seed);
        let hw = memory.high_watermark();
        prop_assert_eq!(hw, file.high_watermark());
        for (at, max_bytes) in reads {
            let offset = (at * hw as f64) as u64;
            let m = memory.fetch(offset, max_bytes).unwrap();
            let f = file.fetch(offset, max_bytes).unwrap();
            check_rules(&m, offset, max_bytes);
            prop_assert_eq!(m, f);
        }
        // ListOffsets by time against a brute-force scan of the whole log.
        let all = memory.fetch(0, usize::MAX).unwrap().batches;
        for timestamp in [-1i64, 0, 1, 333, 700, 1399, 1400] {
            let expected = all.iter().find(|b| b.max_timestamp >= timestamp).map(|b| b.base_offset);
            prop_assert_eq!(memory.list_offsets(OffsetSpec::Timestamp(timestamp)).unwrap().offset, expected);
            prop_assert_eq!(file.list_offsets(OffsetSpec::Timestamp(timestamp)).unwrap().offset, expected);
        }
    }
}

#[test]
fn readers_of_a_file_partition_see_prefixes_while_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let config = PartitionConfig::default().with_segment_bytes(200 * 1024);
    let mut d = Driver::new(PartitionStateMachine::open(dir.path(), config).unwrap());
    d.new_term();
    let reader = d.machine.reader();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checker = {
        let done = std::sync::Arc::clone(&done);
        std::thread::spawn(move || {
            let mut rounds = 0u64;
            // Bounded by the writer, which sets `done` after a fixed count.
            while !done.load(std::sync::atomic::Ordering::Acquire) || rounds == 0 {
                let hw = reader.high_watermark();
                let from = hw.saturating_sub(500);
                let result = reader.fetch(from, 64 * 1024).unwrap();
                check_rules(&result, from, 64 * 1024);
                for batch in &result.batches {
                    assert_eq!(batch.records.len(), 300);
                    assert_eq!(batch.records[0], (batch.base_offset % 256) as u8);
                }
                rounds += 1;
            }
            rounds
        })
    };
    for i in 0..4000u64 {
        d.append(&[(i % 256) as u8; 300], 1, 0).unwrap();
        if i % 1500 == 1499 {
            raft_fsm::StateMachine::flush(&mut d.machine).unwrap();
        }
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    assert!(checker.join().unwrap() > 0);
}

#[test]
fn whole_log_reads_back_in_small_fetches() {
    let (_dir, memory, file, _machines) = twins(seed());
    for reader in [memory, file] {
        let mut offset = 0;
        let mut fetches = 0;
        while offset < reader.high_watermark() {
            let result = reader.fetch(offset, 4096).unwrap();
            check_rules(&result, offset, 4096);
            offset = result.batches.last().unwrap().last_offset + 1;
            fetches += 1;
            assert!(fetches < 10_000);
        }
        assert_eq!(offset, reader.high_watermark());
    }
}
