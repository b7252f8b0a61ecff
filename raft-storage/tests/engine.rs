//! Engine-level behaviour through the public API: directory lock, injected sync failure.

mod common;

use common::*;
use raft_storage::{EngineConfig, Error, LogBatch, LogEngine};

#[test]
fn one_directory_has_one_engine() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(EngineConfig::new(dir.path())).unwrap();
    assert!(matches!(
        LogEngine::open(EngineConfig::new(dir.path())),
        Err(Error::Locked { .. })
    ));
    drop(engine);
    LogEngine::open(EngineConfig::new(dir.path())).expect("the lock goes with the engine");
}

#[test]
fn an_injected_sync_failure_poisons_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(EngineConfig::new(dir.path())).unwrap();
    write_rounds(&engine, 1..=2, 10);
    let before = dump_all(&engine, &[1, 2, 3]);
    engine.inject_sync_failure();
    let mut batch = LogBatch::new();
    round(&mut batch, 3, 10);
    assert!(matches!(engine.write(&mut batch, true), Err(Error::Io(_))));
    assert!(engine.is_poisoned());
    assert!(matches!(
        engine.write(&mut batch, true),
        Err(Error::Poisoned)
    ));
    drop(engine);
    // After a restart the synced prefix is there; the failed batch may or may not be.
    let engine = LogEngine::open(EngineConfig::new(dir.path())).unwrap();
    let after = dump_all(&engine, &[1, 2, 3]);
    assert!(
        after == before || after.iter().all(|d| d.last == 12),
        "{after:?}"
    );
}

#[test]
fn invalid_configurations_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for config in [
        EngineConfig::new(dir.path()).segment_size(100),
        EngineConfig::new(dir.path()).segment_size(8 << 30),
        EngineConfig::new(dir.path()).purge_lag_segments(0),
    ] {
        assert!(matches!(
            LogEngine::open(config),
            Err(Error::InvalidConfig { .. })
        ));
    }
}

/// A storage handle kept across its group's removal and re-creation (a replica removed
/// from a node, then placed there again) sees the group as it is now: empty once removed,
/// the new log once created again, on both engines.
#[test]
fn a_handle_follows_its_group_across_removal_and_re_creation() {
    use raft::Storage as _;
    let dir = tempfile::tempdir().unwrap();
    for engine in [
        LogEngine::open(EngineConfig::new(dir.path())).unwrap(),
        LogEngine::in_memory(),
    ] {
        let handle = engine.group(7);
        assert_eq!(handle.last_index(), 0, "unknown group: empty");
        let mut batch = LogBatch::new();
        batch.append(7, &entries(1..6, 2, 10));
        engine.write(&mut batch, true).unwrap();
        assert_eq!(handle.last_index(), 5);
        assert_eq!(handle.term(5).unwrap(), 2);
        let clone = handle.clone();

        batch.remove_group(7);
        engine.write(&mut batch, true).unwrap();
        assert_eq!(handle.last_index(), 0, "removed: empty");
        assert_eq!(handle.first_index(), 1);
        assert!(handle
            .entries(1, 2, None, raft::GetEntriesContext::empty(false))
            .is_err());

        batch.append(7, &entries(1..3, 9, 10));
        engine.write(&mut batch, true).unwrap();
        for h in [&handle, &clone] {
            assert_eq!(h.last_index(), 2, "created again: the new log");
            assert_eq!(h.term(2).unwrap(), 9);
            let read = h
                .entries(1, 3, None, raft::GetEntriesContext::empty(false))
                .unwrap();
            assert_eq!(read, entries(1..3, 9, 10));
        }
    }
}
