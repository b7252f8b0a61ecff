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
