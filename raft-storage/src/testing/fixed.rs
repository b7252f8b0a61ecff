//! Deterministic checks of what the oracle does not cover: unknown groups, snapshots and
//! their requests, compaction past the end, rejected batches, removal.

use raft::eraftpb::{ConfState, Snapshot, SnapshotMetadata};
use raft::{Storage, StorageError};

use super::model::{ctx, entry};
use super::StoreBuilder;
use crate::LogBatch;

/// Deterministic checks of the parts the oracle does not cover.
pub(super) fn check_fixed_cases<B: StoreBuilder>(builder: &mut B) {
    let engine = builder.fresh();
    let storage = engine.group(9);
    // Unknown group: empty, like a fresh MemStorage.
    assert_eq!(Storage::first_index(&storage), Ok(1));
    assert_eq!(Storage::last_index(&storage), Ok(0));
    assert_eq!(storage.term(0), Ok(0));
    assert_eq!(
        storage.term(1),
        Err(raft::Error::Store(StorageError::Unavailable))
    );
    assert_eq!(storage.entries(1, 1, None, ctx()), Ok(vec![]));
    assert_eq!(
        storage.entries(1, 2, None, ctx()),
        Err(raft::Error::Store(StorageError::Unavailable))
    );
    // Never compacted, nothing saved: a data-less snapshot at 0 with the conf state.
    let mut batch = LogBatch::new();
    batch.set_conf_state(
        9,
        &ConfState {
            voters: vec![1, 2],
            ..Default::default()
        },
    );
    batch.append(9, &(1..=10).map(|i| entry(i, 2, 10)).collect::<Vec<_>>());
    engine.write(&mut batch, true).unwrap();
    let snap = storage.snapshot(0, 2).unwrap();
    assert_eq!(
        (
            snap.get_metadata().index,
            snap.get_metadata()
                .conf_state
                .as_ref()
                .map(|c| c.voters.clone())
        ),
        (0, Some(vec![1, 2]))
    );
    assert!(engine.take_snapshot_requests().is_empty());
    // Compacted: the saved snapshot is needed; ask for it.
    batch.compact(9, 6);
    engine.write(&mut batch, true).unwrap();
    assert_eq!(
        storage.term(5),
        Ok(2),
        "the term before the first index stays known"
    );
    assert_eq!(
        storage.snapshot(0, 2),
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable
        ))
    );
    assert_eq!(
        storage.snapshot(7, 2),
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable
        ))
    );
    assert_eq!(engine.take_snapshot_requests(), vec![(9, 7)]);
    assert!(engine.take_snapshot_requests().is_empty());
    let mut snapshot = Snapshot::default();
    snapshot.mut_metadata().index = 8;
    snapshot.mut_metadata().term = 2;
    snapshot.data = b"state machine".to_vec().into();
    engine.save_snapshot(9, &snapshot).unwrap();
    assert_eq!(storage.snapshot(7, 2), Ok(snapshot.clone()));
    assert_eq!(
        storage.snapshot(9, 2),
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable
        ))
    );
    drop(storage); // handles keep the engine (and its directory lock) alive
    let engine = builder.reopen(engine);
    let storage = engine.group(9);
    assert_eq!(storage.snapshot(8, 2), Ok(snapshot));
    assert_eq!(engine.group_ids(), vec![9]);
    // Compaction past the end is clamped to last_index + 1, and the last term stays known.
    batch.compact(9, 100);
    engine.write(&mut batch, false).unwrap();
    assert_eq!(
        (
            Storage::first_index(&storage),
            Storage::last_index(&storage)
        ),
        (Ok(11), Ok(10))
    );
    assert_eq!(storage.term(10), Ok(2));
    // Errors leave the log alone.
    batch.append(9, &[entry(13, 2, 0)]);
    assert!(matches!(
        engine.write(&mut batch, true),
        Err(crate::Error::LogGap {
            group: 9,
            index: 13,
            last_index: 10
        })
    ));
    batch.clear();
    batch.append(9, &[entry(11, 2, 0), entry(13, 2, 0)]);
    assert!(matches!(
        engine.write(&mut batch, true),
        Err(crate::Error::NotContiguous {
            group: 9,
            index: 13
        })
    ));
    batch.clear();
    batch.apply_snapshot(
        9,
        &SnapshotMetadata {
            index: 5,
            term: 2,
            ..Default::default()
        },
    );
    assert!(matches!(
        engine.write(&mut batch, true),
        Err(crate::Error::SnapshotOutOfDate { .. })
    ));
    batch.clear();
    // Removal forgets everything, across a restart too.
    batch.remove_group(9);
    engine.write(&mut batch, true).unwrap();
    assert_eq!(Storage::last_index(&storage), Ok(0));
    assert!(engine.group_ids().is_empty());
    drop(storage);
    let engine = builder.reopen(engine);
    assert!(engine.group_ids().is_empty());
    assert_eq!(Storage::last_index(&engine.group(9)), Ok(0));
}
