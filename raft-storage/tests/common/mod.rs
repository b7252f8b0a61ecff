//! Helpers shared by the integration tests (included with `mod common`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use raft::eraftpb::{ConfState, Entry, HardState};
use raft::{GetEntriesContext, Storage};
use raft_storage::{GroupId, LogBatch, LogEngine};

pub fn entry(index: u64, term: u64, size: usize) -> Entry {
    let data: Vec<u8> = (0..size)
        .map(|i| (index as u8).wrapping_add(i as u8))
        .collect();
    Entry {
        index,
        term,
        data: data.into(),
        ..Default::default()
    }
}

pub fn entries(range: std::ops::Range<u64>, term: u64, size: usize) -> Vec<Entry> {
    range.map(|i| entry(i, term, size)).collect()
}

/// Everything a group exposes, for equality checks.
#[derive(Debug, PartialEq)]
pub struct Dump {
    pub first: u64,
    pub last: u64,
    pub hard_state: HardState,
    pub conf_state: ConfState,
    pub entries: Vec<Entry>,
}

pub fn dump(engine: &LogEngine, group: GroupId) -> Dump {
    let storage = engine.group(group);
    let (first, last) = (storage.first_index(), storage.last_index());
    let entries = if last >= first {
        storage
            .entries(first, last + 1, None, GetEntriesContext::empty(false))
            .expect("entries")
    } else {
        Vec::new()
    };
    Dump {
        first,
        last,
        hard_state: storage.hard_state(),
        conf_state: storage.conf_state(),
        entries,
    }
}

pub fn dump_all(engine: &LogEngine, groups: &[GroupId]) -> Vec<Dump> {
    groups.iter().map(|&g| dump(engine, g)).collect()
}

/// Segment files of a directory, ascending.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    files
}

/// Purged segment files kept for reuse in `dir`.
pub fn kept_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .expect("read dir")
        .filter(|e| {
            e.as_ref()
                .expect("dir entry")
                .path()
                .extension()
                .is_some_and(|x| x == "recycle")
        })
        .count()
}

/// Copies every file of `from` into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("dir entry").path();
        std::fs::copy(&path, to.join(path.file_name().expect("name"))).expect("copy");
    }
}

/// A batch touching groups 1..=3: entries, hard state and sometimes conf state.
pub fn round(batch: &mut LogBatch, round: u64, size: usize) {
    for group in 1..=3u64 {
        let start = (round - 1) * 4 + 1;
        batch.append(group, &entries(start..start + 4, round, size));
        batch.set_hard_state(
            group,
            &HardState {
                term: round,
                vote: group,
                commit: start,
                ..Default::default()
            },
        );
        if round % 3 == 0 {
            batch.set_conf_state(
                group,
                &ConfState {
                    voters: vec![1, 2, round],
                    ..Default::default()
                },
            );
        }
    }
}

/// Applies `rounds` rounds to an engine with sync.
pub fn write_rounds(engine: &LogEngine, rounds: std::ops::RangeInclusive<u64>, size: usize) {
    let mut batch = LogBatch::new();
    for r in rounds {
        round(&mut batch, r, size);
        engine.write(&mut batch, true).expect("write");
    }
}

pub fn last_term(engine: &LogEngine, group: GroupId) -> u64 {
    let storage = engine.group(group);
    storage.term(storage.last_index()).expect("term")
}
