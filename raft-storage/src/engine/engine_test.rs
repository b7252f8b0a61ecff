//! Engine tests that need the internal fault hook or internals.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::Storage;

use crate::{EngineConfig, Error, LogBatch, LogEngine};

fn entries(range: std::ops::Range<u64>, term: u64) -> Vec<Entry> {
    range
        .map(|index| Entry {
            index,
            term,
            data: vec![7u8; 64].into(),
            ..Default::default()
        })
        .collect()
}

#[test]
fn a_failed_sync_poisons_every_later_write() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(EngineConfig::new(dir.path())).unwrap();
    let mut batch = LogBatch::new();
    batch.append(1, &entries(1..4, 1));
    engine.write(&mut batch, true).unwrap();
    engine.inner.fail_next_sync.store(true, Ordering::Release);
    batch.append(1, &entries(4..6, 1));
    assert!(matches!(engine.write(&mut batch, true), Err(Error::Io(_))));
    assert!(engine.is_poisoned());
    // Everything after is refused, with or without sync, and nothing is applied.
    batch.clear();
    batch.append(1, &entries(6..7, 1));
    assert!(matches!(
        engine.write(&mut batch, false),
        Err(Error::Poisoned)
    ));
    assert!(!batch.is_empty(), "a refused batch is kept");
    assert!(matches!(
        engine.write(&mut LogBatch::new(), true),
        Err(Error::Poisoned)
    ));
    assert!(matches!(
        engine.save_snapshot(1, &Snapshot::default()),
        Err(Error::Poisoned)
    ));
    assert!(matches!(engine.purge_expired(), Err(Error::Poisoned)));
    assert_eq!(engine.group(1).last_index(), 5, "reads still work");
    assert_eq!(engine.stats().rejected_writes, 2);
    // A restart gets a healthy engine holding at least the synced prefix.
    drop(engine);
    let engine = LogEngine::open(EngineConfig::new(dir.path())).unwrap();
    assert!(engine.group(1).last_index() >= 3);
    engine.write(&mut batch, true).unwrap();
}

#[test]
fn a_failed_sync_also_fails_the_writers_waiting_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(EngineConfig::new(dir.path())).unwrap();
    engine.inner.fail_next_sync.store(true, Ordering::Release);
    let mut batch = LogBatch::new();
    batch.set_hard_state(
        1,
        &HardState {
            term: 1,
            ..Default::default()
        },
    );
    assert!(engine.write(&mut batch, true).is_err());
    assert!(matches!(
        engine.write(&mut batch, true),
        Err(Error::Poisoned)
    ));
}

#[test]
fn concurrent_writers_share_syncs_and_all_become_durable() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(EngineConfig::new(dir.path())).unwrap();
    let writers = 16u64;
    let rounds = 20u64;
    let threads: Vec<_> = (0..writers)
        .map(|group| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let mut batch = LogBatch::new();
                for index in 1..=rounds {
                    batch.append(group, &entries(index..index + 1, 1));
                    batch.set_hard_state(
                        group,
                        &HardState {
                            term: 1,
                            vote: 1,
                            commit: index,
                            ..Default::default()
                        },
                    );
                    engine.write(&mut batch, true).unwrap();
                    // Durable means readable now, too.
                    assert_eq!(engine.group(group).last_index(), index);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let stats = engine.stats();
    assert_eq!(stats.batches_written, writers * rounds);
    assert!(stats.syncs <= stats.batches_written);
    assert_eq!(stats.sync_latency.iter().sum::<u64>(), stats.syncs);
    assert!(stats.max_sync_nanos > 0 && stats.max_sync_nanos <= stats.sync_nanos);
    assert_eq!(
        stats.batches_synced,
        writers * rounds,
        "every batch was covered by a sync"
    );
    drop(engine);
    let engine = LogEngine::open(EngineConfig::new(dir.path())).unwrap();
    for group in 0..writers {
        assert_eq!(engine.group(group).last_index(), rounds);
        assert_eq!(engine.group(group).hard_state().commit, rounds);
    }
}

#[test]
fn the_cache_stays_within_budget_and_old_entries_come_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(EngineConfig::new(dir.path()).cache_capacity(16 << 10)).unwrap();
    let mut batch = LogBatch::new();
    for group in 1..=4 {
        for index in 1..=100 {
            batch.append(group, &entries(index..index + 1, 2));
            engine.write(&mut batch, false).unwrap();
        }
    }
    assert!(
        engine.stats().cache_bytes <= 16 << 10,
        "{}",
        engine.stats().cache_bytes
    );
    for group in 1..=4 {
        let read = engine
            .group(group)
            .entries(1, 101, None, raft::GetEntriesContext::empty(false))
            .unwrap();
        assert_eq!(read, entries(1..101, 2));
    }
    // 16 KiB hold about 170 of the 400 entries.
    assert!(
        engine.stats().entries_read_from_disk >= 200,
        "{}",
        engine.stats().entries_read_from_disk
    );
}

#[test]
fn released_entries_leave_the_cache_and_are_read_back_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(EngineConfig::new(dir.path())).unwrap();
    let mut batch = LogBatch::new();
    batch.append(1, &entries(1..101, 2));
    batch.append(2, &entries(1..101, 2));
    engine.write(&mut batch, true).unwrap();
    let before = engine.stats().cache_bytes;
    // Group 3 does not exist: ignored.
    let freed = engine.release_cached(&[(1, 60), (3, 10)]);
    assert_eq!(
        freed as u64,
        before / 200 * 60,
        "60 of the 200 cached entries"
    );
    assert_eq!(engine.stats().cache_bytes, before - freed as u64);
    assert_eq!(engine.release_cached(&[(1, 60)]), 0, "already released");
    for group in 1..=2 {
        let read = engine
            .group(group)
            .entries(1, 101, None, raft::GetEntriesContext::empty(false))
            .unwrap();
        assert_eq!(read, entries(1..101, 2));
    }
    assert_eq!(engine.stats().entries_read_from_disk, 60);

    // The in-memory engine has no other copy: it keeps everything.
    let memory = LogEngine::in_memory();
    batch.append(1, &entries(1..101, 2));
    memory.write(&mut batch, true).unwrap();
    assert_eq!(memory.release_cached(&[(1, 100)]), 0);
    let read = memory
        .group(1)
        .entries(1, 101, None, raft::GetEntriesContext::empty(false))
        .unwrap();
    assert_eq!(read, entries(1..101, 2));
}

#[test]
fn an_idle_compacted_group_costs_under_one_kib() {
    let engine = LogEngine::in_memory();
    let mut batch = LogBatch::new();
    for group in 1..=100 {
        batch.append(group, &entries(1..50, 3));
        batch.set_hard_state(
            group,
            &HardState {
                term: 3,
                vote: 1,
                commit: 49,
                ..Default::default()
            },
        );
        batch.set_conf_state(
            group,
            &ConfState {
                voters: vec![1, 2, 3],
                ..Default::default()
            },
        );
        batch.compact(group, 50);
    }
    engine.write(&mut batch, true).unwrap();
    // The compaction keeps room for the 49 entries the group just held: busy, it would
    // fill that room again. A scheduler putting the group to sleep releases it.
    let kept = engine.group_memory_size(7);
    engine.group(7).release_memory();
    let size = engine.group_memory_size(7);
    println!("idle compacted group: {size} bytes of index overhead ({kept} before release)");
    assert!(size < 1024, "{size} bytes");
    assert!(
        kept > size + 49 * std::mem::size_of::<Entry>() / 2,
        "{kept} bytes kept"
    );
    assert_eq!(engine.group(7).term(49), Ok(3));
}

#[test]
fn compactions_keep_the_room_a_busy_group_fills_and_free_it_once_it_slows() {
    let engine = LogEngine::in_memory();
    let mut batch = LogBatch::new();
    let mut next = 1;
    let mut cycle = |engine: &LogEngine, batch: &mut LogBatch, count: u64| {
        batch.append(3, &entries(next..next + count, 1));
        next += count;
        engine.write(batch, false).unwrap();
        // Compact all but the last entry, as a leader whose followers are caught up.
        batch.compact(3, next - 1);
        engine.write(batch, false).unwrap();
        engine.group_memory_size(3)
    };
    // The buffers grow in the first cycles (the second holds one entry more than the
    // first) ...
    cycle(&engine, &mut batch, 1000);
    let first = cycle(&engine, &mut batch, 1000);
    assert!(first > 1000 * std::mem::size_of::<Entry>(), "{first} bytes");
    // ... then, under a steady load, stay as they are (no regrowth: no copy of the log).
    for _ in 0..5 {
        assert_eq!(cycle(&engine, &mut batch, 1000), first);
    }
    // The load drops to a tenth: the next compaction keeps room for that much only.
    let slow = cycle(&engine, &mut batch, 100);
    assert!(slow < first / 4, "{slow} of {first} bytes");
    assert_eq!(cycle(&engine, &mut batch, 100), slow);
    assert_eq!(engine.group(3).last_index(), next - 1);
    assert_eq!(engine.group(3).first_index(), next - 1);
}

#[test]
fn handles_are_cheap_and_see_later_writes() {
    let engine = LogEngine::in_memory();
    let storage = engine.group(5);
    assert_eq!(storage.group_id(), 5);
    let clone = storage.clone();
    let mut batch = LogBatch::new();
    batch.append(5, &entries(1..3, 1));
    engine.write(&mut batch, false).unwrap();
    assert_eq!(clone.last_index(), 2);
    let engine2 = engine.clone();
    assert!(Arc::ptr_eq(&engine.inner, &engine2.inner));
}

#[test]
fn readers_never_miss_entries_pending_in_a_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    // No cache budget at all: entries leave the cache as soon as they are in the file.
    let engine = LogEngine::open(EngineConfig::new(dir.path()).cache_capacity(0)).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..8u64)
        .map(|group| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let mut batch = LogBatch::new();
                for index in 1..=40 {
                    batch.append(group, &entries(index..index + 1, 1));
                    engine.write(&mut batch, true).unwrap();
                }
            })
        })
        .collect();
    let reader = {
        let (engine, stop) = (engine.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Acquire) && reads < 1_000_000 {
                for group in 0..8u64 {
                    let storage = engine.group(group);
                    let (first, last) = (storage.first_index(), storage.last_index());
                    if last >= first {
                        let read = storage.entries(
                            first,
                            last + 1,
                            None,
                            raft::GetEntriesContext::empty(false),
                        );
                        assert_eq!(
                            read.expect("entries readable while pending").len() as u64,
                            last - first + 1
                        );
                    }
                    reads += 1;
                }
            }
            reads
        })
    };
    for writer in writers {
        writer.join().unwrap();
    }
    stop.store(true, Ordering::Release);
    assert!(reader.join().unwrap() > 0);
    for group in 0..8u64 {
        assert_eq!(engine.group(group).last_index(), 40);
    }
}

#[test]
fn a_deferred_write_is_readable_at_once_and_durable_after_sync_to() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(EngineConfig::new(dir.path())).unwrap();
    let mut batch = LogBatch::new();
    batch.append(1, &entries(1..4, 1));
    let first = engine.write_deferred(&mut batch).unwrap();
    assert!(batch.is_empty(), "the batch is taken");
    assert!(first.bytes > 0);
    let syncs = engine.stats().syncs;
    assert_eq!(syncs, 0, "nothing was synced yet");
    // Readable before any sync, and the cache keeps it: not yet in the file.
    assert_eq!(engine.group(1).last_index(), 3);
    assert_eq!(
        engine
            .group(1)
            .entries(1, 4, None, raft::GetEntriesContext::empty(false))
            .unwrap()
            .len(),
        3
    );
    engine.release_cached(&[(1, 3)]);
    assert_eq!(
        engine.group(1).term(3).unwrap(),
        1,
        "a pending entry is never released"
    );
    batch.append(1, &entries(4..6, 1));
    let second = engine.write_deferred(&mut batch).unwrap();
    assert!(second.position > first.position);
    assert_eq!(engine.recent_sync_time(), std::time::Duration::ZERO);
    // One sync covers both.
    engine.sync_to(second.position).unwrap();
    assert!(engine.recent_sync_time() > std::time::Duration::ZERO);
    engine.sync_to(first.position).unwrap();
    assert_eq!(
        engine.stats().syncs,
        1,
        "the earlier position was already durable"
    );
    drop(engine);
    let engine = LogEngine::open(EngineConfig::new(dir.path())).unwrap();
    assert_eq!(engine.group(1).last_index(), 5);
    let read = engine
        .group(1)
        .entries(1, 6, None, raft::GetEntriesContext::empty(false))
        .unwrap();
    assert_eq!(read, entries(1..6, 1));
}

#[test]
fn a_deferred_write_reports_a_failed_sync_to_its_waiter() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(EngineConfig::new(dir.path())).unwrap();
    let mut batch = LogBatch::new();
    batch.append(1, &entries(1..3, 1));
    let written = engine.write_deferred(&mut batch).unwrap();
    engine.inner.fail_next_sync.store(true, Ordering::Release);
    assert!(matches!(
        engine.sync_to(written.position),
        Err(Error::Io(_))
    ));
    assert!(matches!(
        engine.sync_to(written.position),
        Err(Error::Poisoned)
    ));
    batch.append(1, &entries(3..4, 1));
    assert!(matches!(
        engine.write_deferred(&mut batch),
        Err(Error::Poisoned)
    ));
}
