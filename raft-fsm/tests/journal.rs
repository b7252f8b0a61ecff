//! The index journal of the active segment: open reads only the tail after
//! its last entry; damage to the journal only means a longer scan.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{snapshot_bytes, Driver};
use raft_fsm::{
    CorruptionKind, FsmError, PartitionConfig, PartitionError, PartitionStateMachine, StateMachine,
};

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

fn flip(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0x01;
    fs::write(path, &bytes).unwrap();
}

/// A directory whose active segment holds many index entries, most of them
/// in its journal.
fn journaled_dir() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let config = PartitionConfig::default().with_segment_bytes(1 << 20);
    let mut d = Driver::new(PartitionStateMachine::open(dir.path(), config).unwrap());
    d.new_term();
    for i in 0..300u32 {
        d.append(&[i as u8; 500], 1, i64::from(i)).unwrap();
        if i % 100 == 99 {
            d.machine.flush().unwrap();
        }
    }
    let expected = snapshot_bytes(&d.machine).1;
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 1);
    let journal = files[0].with_extension("journal");
    assert!(
        fs::metadata(&journal).unwrap().len() >= 28 * 30,
        "entries every 4 KiB are journaled"
    );
    (dir, files[0].clone(), expected)
}

#[test]
fn the_index_journal_spares_reading_the_active_segment() {
    let (dir, segment, expected) = journaled_dir();
    let big = PartitionConfig::default().with_segment_bytes(1 << 20);
    // A frame early in the segment, vouched for by the journal: not read on
    // open, caught when fetched; full verification catches it on open.
    flip(&segment, 1000);
    let machine = PartitionStateMachine::open(dir.path(), big.clone()).unwrap();
    assert!(matches!(
        machine.reader().fetch(1, 10),
        Err(PartitionError::CorruptStorage { .. })
    ));
    assert_eq!(
        machine.reader().fetch(290, 10).unwrap().batches[0].base_offset,
        290
    );
    drop(machine);
    assert!(matches!(
        PartitionStateMachine::open(dir.path(), big.clone().with_verify_on_open(true)),
        Err(FsmError::Corruption {
            kind: CorruptionKind::ChecksumMismatch,
            ..
        })
    ));
    flip(&segment, 1000);
    assert_eq!(
        snapshot_bytes(&PartitionStateMachine::open(dir.path(), big).unwrap()).1,
        expected
    );
}

#[test]
fn the_tail_after_the_journal_is_verified_on_open() {
    let (dir, segment, _) = journaled_dir();
    let len = fs::metadata(&segment).unwrap().len() as usize;
    flip(&segment, len - 100);
    assert!(matches!(
        PartitionStateMachine::open(
            dir.path(),
            PartitionConfig::default().with_segment_bytes(1 << 20)
        ),
        Err(FsmError::Corruption {
            kind: CorruptionKind::ChecksumMismatch,
            ..
        })
    ));
}

#[test]
fn a_damaged_journal_only_means_a_longer_scan() {
    let (dir, segment, expected) = journaled_dir();
    let journal = segment.with_extension("journal");
    let len = fs::metadata(&journal).unwrap().len() as usize;
    flip(&journal, len / 2);
    let big = PartitionConfig::default().with_segment_bytes(1 << 20);
    let reopened = PartitionStateMachine::open(dir.path(), big.clone()).unwrap();
    assert_eq!(snapshot_bytes(&reopened).1, expected);
    assert!(
        fs::metadata(&journal).unwrap().len() < len as u64,
        "cut to its valid prefix"
    );
    drop(reopened);
    fs::write(&journal, b"garbage").unwrap();
    assert_eq!(
        snapshot_bytes(&PartitionStateMachine::open(dir.path(), big).unwrap()).1,
        expected
    );
}
