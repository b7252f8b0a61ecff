//! The index a stored configuration reflects survives reopening, purge's rewrite of
//! the group forward, and is set by applying a snapshot.

use raft::eraftpb::{ConfState, Entry, SnapshotMetadata};
use raft_storage::{EngineConfig, LogBatch, LogEngine};

fn conf(voters: &[u64]) -> ConfState {
    ConfState {
        voters: voters.to_vec(),
        ..Default::default()
    }
}

fn entries(from: u64, to: u64) -> Vec<Entry> {
    (from..=to)
        .map(|index| Entry {
            index,
            term: 1,
            data: vec![0; 512].into(),
            ..Default::default()
        })
        .collect()
}

#[test]
fn conf_state_index_survives_reopen_rewrite_and_follows_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        LogEngine::open(
            EngineConfig::new(dir.path())
                .segment_size(4096)
                .purge_lag_segments(1),
        )
        .unwrap()
    };
    {
        let engine = open();
        let mut batch = LogBatch::new();
        batch.append(1, &entries(1, 3));
        batch.set_conf_state_at(1, &conf(&[1, 2, 3]), 3);
        // An idle group whose configuration sits in the first segment.
        batch.set_conf_state_at(2, &conf(&[1, 2]), 9);
        engine.write(&mut batch, true).unwrap();
        assert_eq!(engine.group(1).conf_state_index(), 3);
        // Fill more segments with group 1's entries, then compact them away so purge
        // must rewrite group 2's configuration forward.
        for i in 0..20u64 {
            let mut batch = LogBatch::new();
            batch.append(1, &entries(4 + i * 4, 7 + i * 4));
            engine.write(&mut batch, true).unwrap();
        }
        let mut batch = LogBatch::new();
        batch.compact(1, 80);
        engine.write(&mut batch, true).unwrap();
        engine.purge_expired().unwrap();
        assert!(engine.stats().purged_segments > 0, "nothing was purged");
        assert_eq!(engine.group(2).conf_state_index(), 9);
    }
    let engine = open();
    assert_eq!(engine.group(1).conf_state_index(), 3);
    assert_eq!(engine.group(2).conf_state_index(), 9);
    assert_eq!(engine.group(2).conf_state(), conf(&[1, 2]));
    // set_conf_state records 0; applying a snapshot records the snapshot's index.
    let mut batch = LogBatch::new();
    batch.set_conf_state(2, &conf(&[1]));
    engine.write(&mut batch, true).unwrap();
    assert_eq!(engine.group(2).conf_state_index(), 0);
    let mut meta = SnapshotMetadata {
        index: 120,
        term: 2,
        ..Default::default()
    };
    meta.set_conf_state(conf(&[4, 5, 6]));
    let mut batch = LogBatch::new();
    batch.apply_snapshot(2, &meta);
    engine.write(&mut batch, true).unwrap();
    assert_eq!(engine.group(2).conf_state_index(), 120);
    drop(engine);
    let engine = open();
    assert_eq!(engine.group(2).conf_state_index(), 120);
    assert_eq!(engine.group(2).conf_state(), conf(&[4, 5, 6]));
}
