//! The generated steps and the comparison against `MemStorage`.

use std::collections::BTreeMap;

use proptest::prelude::*;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, Storage, StorageError};

use super::StoreBuilder;
use crate::{GroupId, LogBatch, LogEngine};

const GROUPS: u8 = 3;

/// One generated step; indexes are relative to the oracle's state when it runs.
#[derive(Debug, Clone)]
pub enum Step {
    /// Append `count` entries starting `back` entries before `last_index + 1` (possibly below
    /// the first index: those are ignored), with `size` bytes of data each.
    Append {
        /// Group number.
        group: u8,
        /// How far before `last_index + 1` to start.
        back: u8,
        /// Entries.
        count: u8,
        /// Term increase over the current highest term.
        term_bump: u8,
        /// Data bytes per entry.
        size: u16,
    },
    /// Compact at a point between first and last index (per mille of the way).
    Compact {
        /// Group number.
        group: u8,
        /// Position between first and last index, 0..=255.
        at: u8,
    },
    /// Apply a snapshot `ahead` entries past the last index.
    ApplySnapshot {
        /// Group number.
        group: u8,
        /// Distance past the last index (0 = at the last index).
        ahead: u8,
    },
    /// Set a hard state.
    HardState {
        /// Group number.
        group: u8,
        /// Vote.
        vote: u8,
    },
    /// Set a conf state with `voters` voters.
    ConfState {
        /// Group number.
        group: u8,
        /// Number of voters.
        voters: u8,
    },
    /// Remove the group.
    Remove {
        /// Group number.
        group: u8,
    },
    /// Write the staged batch.
    Write {
        /// Whether to sync.
        sync: bool,
    },
    /// Write with sync, then restart the engine.
    Reopen,
    /// Write with sync, then purge (which must not change what any group holds).
    Purge,
}

fn step() -> impl Strategy<Value = Step> {
    let group = 0..GROUPS;
    prop_oneof![
        8 => (group.clone(), 0u8..6, 1u8..12, 0u8..2, prop_oneof![Just(0u16), 1u16..300]).prop_map(
            |(group, back, count, term_bump, size)| Step::Append { group, back, count, term_bump, size }
        ),
        2 => (group.clone(), any::<u8>()).prop_map(|(group, at)| Step::Compact { group, at }),
        1 => (group.clone(), 0u8..4).prop_map(|(group, ahead)| Step::ApplySnapshot { group, ahead }),
        2 => (group.clone(), any::<u8>()).prop_map(|(group, vote)| Step::HardState { group, vote }),
        1 => (group.clone(), 1u8..6).prop_map(|(group, voters)| Step::ConfState { group, voters }),
        1 => group.prop_map(|group| Step::Remove { group }),
        4 => any::<bool>().prop_map(|sync| Step::Write { sync }),
        1 => Just(Step::Reopen),
        1 => Just(Step::Purge),
    ]
}

/// Sequences of steps.
pub(super) fn steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(step(), 1..60)
}

pub(super) fn entry(index: u64, term: u64, size: u16) -> Entry {
    let data = (0..size)
        .map(|i| (index as u8).wrapping_mul(31).wrapping_add(i as u8))
        .collect::<Vec<u8>>();
    Entry {
        index,
        term,
        data: data.into(),
        ..Default::default()
    }
}

struct Model {
    oracles: BTreeMap<GroupId, MemStorage>,
    /// Highest term used per group (terms never go down).
    terms: BTreeMap<GroupId, u64>,
}

impl Model {
    fn oracle(&mut self, group: GroupId) -> &MemStorage {
        self.oracles.entry(group).or_default()
    }
}

/// Runs one sequence; `Err` describes the first divergence.
pub(super) fn run_steps<B: StoreBuilder>(builder: &mut B, steps: &[Step]) -> Result<(), String> {
    let mut engine = builder.fresh();
    let mut model = Model {
        oracles: BTreeMap::new(),
        terms: BTreeMap::new(),
    };
    let mut batch = LogBatch::new();
    for (n, step) in steps.iter().enumerate() {
        match *step {
            Step::Append {
                group,
                back,
                count,
                term_bump,
                size,
            } => {
                let group = GroupId::from(group);
                let oracle = model.oracle(group).clone();
                let (first, last) = (oracle.first_index().unwrap(), oracle.last_index().unwrap());
                let start = (last + 1).saturating_sub(u64::from(back)).max(1);
                let term = model.terms.entry(group).or_insert(1);
                *term += u64::from(term_bump);
                let entries: Vec<Entry> = (start..start + u64::from(count))
                    .map(|i| entry(i, *term, size))
                    .collect();
                batch.append(group, &entries);
                let kept: Vec<Entry> = entries.into_iter().filter(|e| e.index >= first).collect();
                oracle.wl().append(&kept).unwrap();
            }
            Step::Compact { group, at } => {
                let group = GroupId::from(group);
                let oracle = model.oracle(group).clone();
                let (first, last) = (oracle.first_index().unwrap(), oracle.last_index().unwrap());
                if last < first {
                    continue;
                }
                let index = first + (last - first) * u64::from(at) / 255;
                batch.compact(group, index);
                oracle.wl().compact(index).unwrap();
            }
            Step::ApplySnapshot { group, ahead } => {
                let group = GroupId::from(group);
                let oracle = model.oracle(group).clone();
                let term = *model.terms.entry(group).or_insert(1);
                let index = (oracle.last_index().unwrap() + u64::from(ahead))
                    .max(oracle.first_index().unwrap());
                let mut meta = SnapshotMetadata {
                    index,
                    term,
                    ..Default::default()
                };
                if meta.index == 0 {
                    continue;
                }
                meta.mut_conf_state().voters = vec![1, 2, 3];
                batch.apply_snapshot(group, &meta);
                let mut snapshot = Snapshot::default();
                snapshot.set_metadata(meta);
                oracle.wl().apply_snapshot(snapshot).unwrap();
            }
            Step::HardState { group, vote } => {
                let group = GroupId::from(group);
                let oracle = model.oracle(group).clone();
                let term = *model.terms.entry(group).or_insert(1);
                let hs = HardState {
                    term,
                    vote: u64::from(vote),
                    commit: oracle.last_index().unwrap(),
                    ..Default::default()
                };
                batch.set_hard_state(group, &hs);
                oracle.wl().set_hardstate(hs);
            }
            Step::ConfState { group, voters } => {
                let group = GroupId::from(group);
                let cs = ConfState {
                    voters: (1..=u64::from(voters)).collect(),
                    ..Default::default()
                };
                batch.set_conf_state(group, &cs);
                model.oracle(group).wl().set_conf_state(cs);
            }
            Step::Remove { group } => {
                let group = GroupId::from(group);
                batch.remove_group(group);
                model.oracles.remove(&group);
                model.terms.remove(&group);
            }
            Step::Write { sync } => {
                engine
                    .write(&mut batch, sync)
                    .map_err(|e| format!("step {n}: write failed: {e}"))?;
                compare(&engine, &mut model)
                    .map_err(|e| format!("after step {n} ({step:?}): {e}"))?;
            }
            Step::Purge => {
                engine
                    .write(&mut batch, true)
                    .map_err(|e| format!("step {n}: write failed: {e}"))?;
                engine
                    .purge_expired()
                    .map_err(|e| format!("step {n}: purge failed: {e}"))?;
                compare(&engine, &mut model)
                    .map_err(|e| format!("after purge at step {n}: {e}"))?;
            }
            Step::Reopen => {
                engine
                    .write(&mut batch, true)
                    .map_err(|e| format!("step {n}: write failed: {e}"))?;
                engine = builder.reopen(engine);
                compare(&engine, &mut model)
                    .map_err(|e| format!("after reopen at step {n}: {e}"))?;
            }
        }
    }
    engine
        .write(&mut batch, true)
        .map_err(|e| format!("final write failed: {e}"))?;
    compare(&engine, &mut model)
}

pub(super) fn ctx() -> GetEntriesContext {
    GetEntriesContext::empty(false)
}

/// Compares every group of the engine with its oracle.
fn compare(engine: &LogEngine, model: &mut Model) -> Result<(), String> {
    for group in 0..u64::from(GROUPS) {
        let oracle = model.oracle(group).clone();
        let storage = engine.group(group);
        let (first, last) = (oracle.first_index().unwrap(), oracle.last_index().unwrap());
        let ours = (
            Storage::first_index(&storage).unwrap(),
            Storage::last_index(&storage).unwrap(),
        );
        if ours != (first, last) {
            return Err(format!(
                "group {group}: (first, last) {ours:?}, oracle ({first}, {last})"
            ));
        }
        let (state, expected) = (
            storage.initial_state().unwrap(),
            oracle.initial_state().unwrap(),
        );
        if state.hard_state != expected.hard_state || state.conf_state != expected.conf_state {
            return Err(format!(
                "group {group}: raft state {state:?}, oracle {expected:?}"
            ));
        }
        for idx in first.saturating_sub(2)..=last + 1 {
            let (got, want) = (storage.term(idx), oracle.term(idx));
            let compacted_prev =
                idx + 1 == first && want == Err(raft::Error::Store(StorageError::Compacted));
            if got != want && !(compacted_prev && got.is_ok()) {
                return Err(format!(
                    "group {group}: term({idx}) {got:?}, oracle {want:?}"
                ));
            }
        }
        if first > 1 {
            let got = storage.entries(first - 1, last + 1, None, ctx());
            if got != Err(raft::Error::Store(StorageError::Compacted)) {
                return Err(format!(
                    "group {group}: entries below first index gave {got:?}"
                ));
            }
        }
        if last < first {
            continue;
        }
        let one = oracle.entries(first, first + 1, None, ctx()).unwrap();
        let one_size = u64::from(protobuf::Message::compute_size(&one[0]));
        let mid = first + (last - first) / 2;
        let ranges = [
            (first, last + 1),
            (mid, last + 1),
            (first, mid + 1),
            (last, last + 1),
            (mid, mid),
        ];
        for (low, high) in ranges {
            for max_size in [
                None,
                Some(0),
                Some(one_size),
                Some(one_size * 3 + 1),
                Some(2000),
            ] {
                let (got, want) = (
                    storage.entries(low, high, max_size, ctx()),
                    oracle.entries(low, high, max_size, ctx()),
                );
                if got != want {
                    return Err(format!("group {group}: entries({low}, {high}, {max_size:?}) {got:?}, oracle {want:?}"));
                }
            }
        }
    }
    Ok(())
}
