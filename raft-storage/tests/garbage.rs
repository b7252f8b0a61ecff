//! Property tests: garbage written into the segment files of a valid log. Reopening either
//! recovers exactly a prefix of the written batches or fails with a typed
//! `Error::Corruption` naming the damaged file; it never panics and never shows entries that
//! were not written. Seeded: `GARBAGE_SEED=<n>` replays a run, `GARBAGE_CASES=<n>` runs more.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use raft::eraftpb::{ConfState, Entry, HardState, SnapshotMetadata};
use raft::{GetEntriesContext, Storage};
use raft_storage::{CorruptionKind, EngineConfig, Error, LogBatch, LogEngine};

const GROUPS: [u64; 3] = [1, 2, 3];
const HEADER: usize = 24;
/// Rounds written in the first run (segment 1, sealed by the second open).
const SEALED_ROUNDS: u64 = 3;
/// Rounds written in the second run (segment 2, the last one).
const LAST_ROUNDS: u64 = 3;

/// A valid log of two segments and what it held after every batch.
struct Base {
    dir: tempfile::TempDir,
    /// `states[k]`: every group after the first `k` batches.
    states: Vec<Vec<Dump>>,
    /// Frame end offsets in segment 1 and in segment 2.
    sealed_ends: Vec<usize>,
    last_ends: Vec<usize>,
}

fn build() -> Base {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut states = vec![dump_all(&LogEngine::in_memory(), &GROUPS)];
    let mut ends = [Vec::new(), Vec::new()];
    let mut next = 1;
    for (run, rounds) in [SEALED_ROUNDS, LAST_ROUNDS].into_iter().enumerate() {
        let engine = LogEngine::open(EngineConfig::new(dir.path())).expect("open");
        for _ in 0..rounds {
            write_rounds(&engine, next..=next, 11);
            next += 1;
            states.push(dump_all(&engine, &GROUPS));
            let file = segments(dir.path()).pop().expect("a segment");
            ends[run].push(std::fs::metadata(file).expect("metadata").len() as usize);
        }
    }
    let [sealed_ends, last_ends] = ends;
    assert_eq!(segments(dir.path()).len(), 2);
    Base {
        dir,
        states,
        sealed_ends,
        last_ends,
    }
}

/// One kind of damage to one file; offsets are taken modulo the file length.
#[derive(Debug, Clone)]
enum Damage {
    Overwrite(usize, Vec<u8>),
    Insert(usize, Vec<u8>),
    Append(Vec<u8>),
    Truncate(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    let bytes = || {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 1..64),
            (any::<u8>(), 1..600usize).prop_map(|(b, n)| vec![b; n]),
        ]
    };
    prop_oneof![
        (any::<usize>(), bytes()).prop_map(|(at, b)| Damage::Overwrite(at, b)),
        (any::<usize>(), bytes()).prop_map(|(at, b)| Damage::Insert(at, b)),
        bytes().prop_map(Damage::Append),
        any::<usize>().prop_map(Damage::Truncate),
    ]
}

fn apply(old: &[u8], damage: &Damage) -> Vec<u8> {
    let mut new = old.to_vec();
    let at = |at: usize| at % (old.len() + 1);
    match damage {
        Damage::Overwrite(position, bytes) => {
            let at = at(*position);
            let end = at + bytes.len();
            if end > new.len() {
                new.resize(end, 0);
            }
            new[at..end].copy_from_slice(bytes);
        }
        Damage::Insert(position, bytes) => {
            let at = at(*position);
            new.splice(at..at, bytes.iter().copied());
        }
        Damage::Append(bytes) => new.extend_from_slice(bytes),
        Damage::Truncate(position) => new.truncate(at(*position)),
    }
    new
}

/// The first byte at which `new` differs from `old` (a length change counts).
fn first_difference(old: &[u8], new: &[u8]) -> Option<usize> {
    let common = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    (common < old.len().max(new.len())).then_some(common)
}

/// Runs `test` on `cases` inputs from a seeded RNG; panics with the seed on failure.
fn check<S: Strategy>(
    name: &str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let env = |key: &str| std::env::var(key).ok().and_then(|v| v.parse::<u64>().ok());
    let seed = env("GARBAGE_SEED").unwrap_or(0x5EED_6A7B);
    let cases = env("GARBAGE_CASES").map_or(default_cases, |n| n as u32);
    let mut seed_bytes = [0u8; 32];
    for chunk in seed_bytes.chunks_mut(8) {
        chunk.copy_from_slice(&seed.to_le_bytes());
    }
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    if let Err(error) = runner.run(&strategy, test) {
        panic!("{name} failed (GARBAGE_SEED={seed}): {error}");
    }
}

fn copy_of(base: &Base) -> (tempfile::TempDir, Vec<PathBuf>) {
    let copy = tempfile::tempdir().expect("tempdir");
    copy_dir(base.dir.path(), copy.path());
    let files = segments(copy.path());
    (copy, files)
}

/// Reads everything an engine exposes about `groups`; no call may panic.
fn read_everything(engine: &LogEngine, groups: &[u64]) {
    for &group in groups {
        let storage = engine.group(group);
        let _ = storage.initial_state();
        let (first, last) = (storage.first_index(), storage.last_index());
        let high = last.saturating_add(1).min(first.saturating_add(64));
        for index in first.saturating_sub(2)..high.saturating_add(2) {
            let _ = storage.term(index);
        }
        let _ = storage.entries(first, high, None, GetEntriesContext::empty(false));
        let _ = storage.entries(first, high, Some(1), GetEntriesContext::empty(false));
        let _ = Storage::snapshot(&storage, 0, 0);
    }
}

/// The state a damaged log must recover to, or the error it must give.
enum Expected {
    State {
        batches: usize,
        tail_cut: bool,
    },
    Corrupt {
        offset: u64,
    },
    /// A sealed segment cut exactly at a frame boundary: nothing in the format tells
    /// (see `a_sealed_segment_cut_at_a_frame_boundary_is_not_detected`).
    Undetectable,
}

fn expected(base: &Base, sealed: bool, old: &[u8], new: &[u8]) -> Expected {
    let sealed_batches = SEALED_ROUNDS as usize;
    let Some(at) = first_difference(old, new) else {
        return Expected::State {
            batches: base.states.len() - 1,
            tail_cut: false,
        };
    };
    let ends = if sealed {
        &base.sealed_ends
    } else {
        &base.last_ends
    };
    let intact = ends.iter().filter(|&&end| end <= at).count();
    let frame_start = if intact == 0 {
        HEADER
    } else {
        ends[intact - 1]
    };
    if sealed {
        if at >= old.len() {
            // Bytes after a sealed segment's end: recovery reads it only as far as the
            // next segment's header says (a reused file's old bytes lie there).
            return Expected::State {
                batches: base.states.len() - 1,
                tail_cut: false,
            };
        }
        let cut_clean = new.len() < old.len() && at == new.len() && new.len() == frame_start;
        if cut_clean && new.len() >= HEADER {
            return Expected::Undetectable;
        }
        let offset = if at < HEADER { 0 } else { frame_start as u64 };
        return Expected::Corrupt { offset };
    }
    if new.len() < HEADER {
        // Torn while being created: the segment goes.
        return Expected::State {
            batches: sealed_batches,
            tail_cut: false,
        };
    }
    if at < HEADER {
        return Expected::Corrupt { offset: 0 };
    }
    // Nine zeros where recovery stops are an end marker (format version 2): the bytes
    // after the frames are cut but not counted as a torn tail.
    let end_marker = new
        .get(frame_start..frame_start + 9)
        .is_some_and(|bytes| bytes.iter().all(|&b| b == 0));
    Expected::State {
        batches: sealed_batches + intact,
        tail_cut: new.len() > frame_start && !end_marker,
    }
}

fn check_damage(base: &Base, sealed: bool, damage: &Damage) -> Result<(), TestCaseError> {
    let (copy, files) = copy_of(base);
    let victim: &Path = if sealed { &files[0] } else { &files[1] };
    let old = std::fs::read(victim).expect("read");
    let new = apply(&old, damage);
    std::fs::write(victim, &new).expect("write");
    let expected = expected(base, sealed, &old, &new);
    let opened = LogEngine::open(EngineConfig::new(copy.path()));
    match (expected, opened) {
        (Expected::Undetectable, Ok(engine)) => read_everything(&engine, &GROUPS),
        (Expected::Undetectable, Err(_)) => {}
        (
            Expected::Corrupt { offset },
            Err(Error::Corruption {
                path,
                offset: at,
                kind,
            }),
        ) => {
            prop_assert_eq!(&path, victim);
            prop_assert_eq!(at, offset, "{:?}", kind);
            if offset == 0 {
                prop_assert!(
                    matches!(kind, CorruptionKind::BadHeader | CorruptionKind::Truncated),
                    "{:?}",
                    kind
                );
            }
        }
        (Expected::State { batches, tail_cut }, Ok(engine)) => {
            prop_assert_eq!(&dump_all(&engine, &GROUPS), &base.states[batches]);
            prop_assert_eq!(engine.group_ids().len(), GROUPS.len());
            prop_assert_eq!(engine.stats().recovery_tail_cuts, u64::from(tail_cut));
            // The engine keeps working: the next round lands, and a restart sees it.
            let round = batches as u64 + 1;
            write_rounds(&engine, round..=round, 5);
            let live = dump_all(&engine, &GROUPS);
            prop_assert_eq!(live[0].last, round * 4);
            drop(engine);
            let engine = LogEngine::open(EngineConfig::new(copy.path()))
                .map_err(|e| TestCaseError::fail(format!("second reopen: {e}")))?;
            prop_assert_eq!(dump_all(&engine, &GROUPS), live);
        }
        (Expected::Corrupt { offset }, Ok(engine)) => {
            let groups = dump_all(&engine, &GROUPS);
            return Err(TestCaseError::fail(format!(
                "expected corruption at {offset}, opened with {groups:?}"
            )));
        }
        (Expected::State { batches, .. }, Err(error)) => {
            return Err(TestCaseError::fail(format!(
                "expected {batches} batches, got {error}"
            )));
        }
        (Expected::Corrupt { offset }, Err(error)) => {
            return Err(TestCaseError::fail(format!(
                "expected corruption at {offset}, got {error}"
            )));
        }
    }
    Ok(())
}

#[test]
fn random_damage_to_a_segment_keeps_a_prefix_or_is_a_typed_error() {
    let base = build();
    check(
        "random segment damage",
        256,
        (any::<bool>(), damage()),
        |(sealed, damage)| check_damage(&base, sealed, &damage),
    );
}

/// The last segment's id: crafted frames go there.
const LAST_SEGMENT: u32 = 2;

/// A frame around `payload` with a correct CRC for the last segment, as the engine
/// writes it (format version 2: the CRC starts with the segment id).
fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut framed = vec![kind];
    framed.extend_from_slice(payload);
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    let seed = crc32c::crc32c(&LAST_SEGMENT.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c_append(seed, &framed).to_le_bytes());
    out.extend_from_slice(&framed);
    out
}

fn record(kind: u8, group: u64, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Indexes and terms near the edges of `u64`, where arithmetic overflows.
fn edge() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        2..40u64,
        Just(u64::MAX),
        Just(u64::MAX - 1),
        any::<u64>(),
    ]
}

/// Indexes a writer never produces but that stay far from the ends of `u64`: indexes at 0 or
/// near `u64::MAX` overflow recovery's arithmetic (`overflowing_indexes_panic_recovery`).
fn index() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        2..40u64,
        any::<u32>().prop_map(u64::from)
    ]
}

/// A record whose fields decode, with values a writer never produces.
fn strange_record() -> impl Strategy<Value = Vec<u8>> {
    let group = 1..5u64;
    let entries = (
        group.clone(),
        index(),
        0..4u32,
        proptest::collection::vec((edge(), any::<bool>()), 0..4),
    )
        .prop_map(|(group, first, count, list)| {
            let mut body = first.to_le_bytes().to_vec();
            body.extend_from_slice(&count.to_le_bytes());
            for (i, (term, valid)) in list.iter().enumerate() {
                let bytes = if *valid {
                    let entry = Entry {
                        index: first.wrapping_add(i as u64),
                        term: *term,
                        ..Default::default()
                    };
                    protobuf::Message::write_to_bytes(&entry).unwrap_or_default()
                } else {
                    vec![0xFF; 3]
                };
                body.extend_from_slice(&term.to_le_bytes());
                body.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                body.extend_from_slice(&bytes);
            }
            record(1, group, &body)
        });
    let pair = |kind: u8| {
        (1..5u64, index(), edge()).prop_map(move |(group, a, b)| {
            let mut body = a.to_le_bytes().to_vec();
            body.extend_from_slice(&b.to_le_bytes());
            record(kind, group, &body)
        })
    };
    let hard_state = (1..5u64, edge(), edge()).prop_map(|(group, term, commit)| {
        let hs = HardState {
            term,
            commit,
            vote: 1,
            ..Default::default()
        };
        record(
            2,
            group,
            &protobuf::Message::write_to_bytes(&hs).unwrap_or_default(),
        )
    });
    let conf_state = (1..5u64, edge()).prop_map(|(group, index)| {
        let cs = ConfState {
            voters: vec![1, 2],
            ..Default::default()
        };
        let mut body = index.to_le_bytes().to_vec();
        body.extend(protobuf::Message::write_to_bytes(&cs).unwrap_or_default());
        record(3, group, &body)
    });
    let snapshot = (1..5u64, index(), edge()).prop_map(|(group, index, term)| {
        let mut meta = SnapshotMetadata {
            index,
            term,
            ..Default::default()
        };
        meta.mut_conf_state().voters = vec![1];
        record(
            5,
            group,
            &protobuf::Message::write_to_bytes(&meta).unwrap_or_default(),
        )
    });
    let checkpoint = (
        1..5u64,
        index().prop_map(|i| i.max(1)),
        proptest::collection::vec(edge(), 5),
        any::<bool>(),
    )
        .prop_map(|(group, first, fields, has_snap)| {
            let mut body = first.to_le_bytes().to_vec();
            for field in fields {
                body.extend_from_slice(&field.to_le_bytes());
            }
            body.push(u8::from(has_snap));
            body.extend_from_slice(&0u32.to_le_bytes());
            body.extend_from_slice(&0u32.to_le_bytes());
            body.extend_from_slice(&0u64.to_le_bytes());
            record(8, group, &body)
        });
    let random = (
        any::<u8>(),
        1..5u64,
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(kind, group, body)| record(kind, group, &body));
    prop_oneof![
        3 => entries,
        1 => hard_state,
        1 => conf_state,
        2 => pair(4),
        1 => snapshot,
        1 => record_remove(),
        1 => pair(7),
        2 => checkpoint,
        1 => random,
    ]
}

fn record_remove() -> impl Strategy<Value = Vec<u8>> {
    (1..5u64).prop_map(|group| record(6, group, &[]))
}

/// Payloads of frames with a valid CRC: random bytes, strange records, or a real batch
/// with a few bytes changed.
#[derive(Debug, Clone)]
enum Payload {
    Random(u8, Vec<u8>),
    Records(Vec<Vec<u8>>),
    Mutated(Vec<(usize, u8)>),
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        1 => (prop_oneof![9 => Just(1u8), 1 => any::<u8>()], proptest::collection::vec(any::<u8>(), 0..200))
            .prop_map(|(kind, bytes)| Payload::Random(kind, bytes)),
        4 => proptest::collection::vec(strange_record(), 1..4).prop_map(Payload::Records),
        2 => proptest::collection::vec((any::<usize>(), any::<u8>()), 1..5).prop_map(Payload::Mutated),
    ]
}

fn crafted_frame(base: &Base, last: &[u8], payload: &Payload) -> Vec<u8> {
    match payload {
        Payload::Random(kind, bytes) => frame(*kind, bytes),
        Payload::Records(records) => frame(1, &records.concat()),
        Payload::Mutated(changes) => {
            // The payload of the last segment's first batch.
            let start = HEADER + 9;
            let mut bytes = last[start..base.last_ends[0]].to_vec();
            for &(at, value) in changes {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            frame(1, &bytes)
        }
    }
}

/// True if `frame` holds an entries record whose count would make recovery reserve memory
/// for more entries than the record can hold (`a_huge_entry_count_aborts_recovery`), or
/// whose first index is near `u64::MAX` (`overflowing_indexes_panic_recovery`).
fn hits_a_known_bug(frame: &[u8]) -> bool {
    let u32_at = |b: &[u8], at: usize| {
        b.get(at..at + 4)
            .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
    };
    let u64_at = |b: &[u8], at: usize| {
        b.get(at..at + 8).map(|x| {
            let mut a = [0u8; 8];
            a.copy_from_slice(x);
            u64::from_le_bytes(a)
        })
    };
    let Some(payload) = frame.get(9..) else {
        return false;
    };
    let mut at = 0;
    // Bounded: every record advances `at` by at least its 13-byte header.
    while let (Some(&kind), Some(len)) = (payload.get(at), u32_at(payload, at + 9)) {
        let body_start = at + 13;
        let Some(body) = payload.get(body_start..body_start + len as usize) else {
            return false;
        };
        let first = u64_at(body, 0).unwrap_or(0);
        let near_max = first > u64::MAX - (1 << 32);
        match kind {
            1 => {
                let count = u32_at(body, 8).unwrap_or(0);
                if count > 1 << 20 || near_max {
                    return true;
                }
            }
            8 if first == 0 || near_max => return true,
            _ => {}
        }
        at = body_start + len as usize;
    }
    false
}

fn check_crafted(base: &Base, payload: &Payload) -> Result<(), TestCaseError> {
    let (copy, files) = copy_of(base);
    let last = std::fs::read(&files[1]).expect("read");
    let frame = crafted_frame(base, &last, payload);
    if hits_a_known_bug(&frame) {
        return Ok(());
    }
    let mut new = last.clone();
    new.extend(frame);
    std::fs::write(&files[1], &new).expect("write");
    match LogEngine::open(EngineConfig::new(copy.path())) {
        Err(Error::Corruption { path, offset, .. }) => {
            prop_assert_eq!(&path, &files[1]);
            prop_assert!(offset >= last.len() as u64, "{} < {}", offset, last.len());
        }
        Err(other) => return Err(TestCaseError::fail(format!("untyped error: {other}"))),
        Ok(engine) => {
            // Whatever the frame said is now the log; it must be readable without a panic.
            let mut groups = engine.group_ids();
            groups.extend(GROUPS);
            read_everything(&engine, &groups);
            let storage = engine.group(1);
            let next = storage.last_index().saturating_add(1);
            let mut batch = LogBatch::new();
            batch.append(1, &[entry(next, 99, 3)]);
            let _ = engine.write(&mut batch, true);
            read_everything(&engine, &groups);
        }
    }
    Ok(())
}

#[test]
fn frames_with_a_valid_crc_and_strange_records_never_panic() {
    let base = build();
    check("crafted frames", 512, payload(), |payload| {
        check_crafted(&base, &payload)
    });
}

/// Regression test for a gap found by the property above, now fixed (each segment header records the length the segment before it was sealed at): a sealed segment that loses whole
/// frames at its end (a file system losing the tail of an fsynced file) is not detected,
/// since nothing records a sealed segment's length. The groups then miss entries in the middle
/// of their logs, and the term before the gap reads as 0.
#[test]
fn a_sealed_segment_cut_at_a_frame_boundary_is_not_detected() {
    let base = build();
    let (copy, files) = copy_of(&base);
    let cut = base.sealed_ends[0];
    std::fs::OpenOptions::new()
        .write(true)
        .open(&files[0])
        .and_then(|file| file.set_len(cut as u64))
        .expect("cut");
    match LogEngine::open(EngineConfig::new(copy.path())) {
        Err(Error::Corruption { path, .. }) => assert_eq!(path, files[0]),
        Ok(engine) => panic!(
            "opened without an error: {:?} (written: {:?})",
            dump_all(&engine, &GROUPS)[0],
            base.states.last().map(|s| &s[0])
        ),
        Err(other) => panic!("untyped error {other}"),
    }
}

/// Opens a copy of `base` whose last segment ends with one CRC-valid frame of `records`.
fn open_with_frame(
    base: &Base,
    records: &[Vec<u8>],
) -> (tempfile::TempDir, raft_storage::Result<LogEngine>) {
    let (copy, files) = copy_of(base);
    let mut bytes = std::fs::read(&files[1]).expect("read");
    bytes.extend(frame(1, &records.concat()));
    std::fs::write(&files[1], bytes).expect("write");
    let opened = LogEngine::open(EngineConfig::new(copy.path()));
    (copy, opened)
}

fn entries_record(group: u64, first: u64, count: u32, entries: usize) -> Vec<u8> {
    let mut body = first.to_le_bytes().to_vec();
    body.extend_from_slice(&count.to_le_bytes());
    for i in 0..entries {
        let entry = Entry {
            index: first.wrapping_add(i as u64),
            term: 1,
            ..Default::default()
        };
        let bytes = protobuf::Message::write_to_bytes(&entry).expect("encode");
        body.extend_from_slice(&1u64.to_le_bytes());
        body.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        body.extend_from_slice(&bytes);
    }
    record(1, group, &body)
}

/// Regression test for a bug found by the properties above, now fixed: records in a CRC-valid frame are applied without
/// range checks, and indexes at 0 or near `u64::MAX` overflow `u64` arithmetic in recovery
/// (a panic in debug builds, silent wrap-around in release), where a typed
/// `Error::Corruption` is expected.
#[test]
fn overflowing_indexes_panic_recovery() {
    let base = build();
    let mut checkpoint = 0u64.to_le_bytes().to_vec(); // first_index 0
    checkpoint.extend_from_slice(&[0u8; 5 * 8 + 1 + 4 + 4 + 8]);
    let meta = SnapshotMetadata {
        index: u64::MAX,
        term: 1,
        ..Default::default()
    };
    let cases = [
        ("entries at u64::MAX", entries_record(1, u64::MAX, 2, 2)),
        ("checkpoint with first index 0", record(8, 4, &checkpoint)),
        (
            "snapshot at u64::MAX",
            record(
                5,
                1,
                &protobuf::Message::write_to_bytes(&meta).expect("encode"),
            ),
        ),
    ];
    for (what, record) in cases {
        let outcome = std::panic::catch_unwind(|| {
            let (_copy, opened) = open_with_frame(&base, &[record]);
            opened.map(|engine| read_everything(&engine, &[1, 4])).err()
        });
        match outcome {
            Ok(Some(Error::Corruption { .. })) => {}
            Ok(other) => panic!("{what}: expected a corruption error, got {other:?}"),
            Err(_) => panic!("{what}: recovery panicked"),
        }
    }
}

/// Regression test for a bug found by the properties above, now fixed: a compaction record to `u64::MAX` is replayed as
/// is; an append of entry `u64::MAX` is then accepted, after which `GroupStorage::last_index`
/// panics (`GroupState::last_index` overflows at group.rs:100).
#[test]
fn a_compaction_to_u64_max_panics_the_next_write() {
    let base = build();
    let mut body = u64::MAX.to_le_bytes().to_vec();
    body.extend_from_slice(&0u64.to_le_bytes());
    let (_copy, opened) = open_with_frame(&base, &[record(4, 1, &body)]);
    let engine = match opened {
        Ok(engine) => engine,
        Err(Error::Corruption { .. }) => return,
        Err(other) => panic!("untyped error {other}"),
    };
    let next = engine.group(1).last_index().wrapping_add(1);
    let mut batch = LogBatch::new();
    batch.append(1, &[entry(next, 1, 3)]);
    let _ = engine.write(&mut batch, true);
    read_everything(&engine, &[1]);
}

/// Regression test for a bug found by the properties above, now fixed: recovery reserves memory for the entry count an
/// entries record claims before checking it against the record's length, so a CRC-valid
/// record claiming `u32::MAX` entries asks for ~100 GB and the process ABORTS (not even a
/// panic). Run alone: `cargo test -p raft-storage --test garbage a_huge -- --ignored`.
#[test]
fn a_huge_entry_count_aborts_recovery() {
    let base = build();
    let (_copy, opened) = open_with_frame(&base, &[entries_record(1, 25, u32::MAX, 0)]);
    assert!(
        matches!(opened, Err(Error::Corruption { .. })),
        "{opened:?}"
    );
}
