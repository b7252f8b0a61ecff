//! Crash tests: a torn or damaged tail recovers to exactly the durable prefix; damage inside a
//! sealed segment is a typed error naming the file and offset.

mod common;

use std::fs::OpenOptions;

use common::*;
use raft_storage::{CorruptionKind, EngineConfig, Error, LogEngine};

const GROUPS: [u64; 3] = [1, 2, 3];

/// A log that never reuses purged segment files, so that a file's length is where its
/// frames end (the tests below cut and extend files by length).
fn grown(dir: &std::path::Path) -> EngineConfig {
    EngineConfig::new(dir).recycle_segments(0)
}

/// A log that purges and reuses small segments quickly.
fn recycling(dir: &std::path::Path) -> EngineConfig {
    EngineConfig::new(dir)
        .segment_size(16 << 10)
        .purge_lag_segments(1)
}

/// Builds a log of 5 rounds; returns the dir, the expected states before and after the last
/// round, and the byte range of the last batch in the last segment.
fn build() -> (
    tempfile::TempDir,
    Vec<Dump>,
    Vec<Dump>,
    std::ops::Range<u64>,
) {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(grown(dir.path())).unwrap();
    write_rounds(&engine, 1..=4, 7);
    let before = dump_all(&engine, &GROUPS);
    let last = segments(dir.path()).pop().unwrap();
    let start = std::fs::metadata(&last).unwrap().len();
    write_rounds(&engine, 5..=5, 7);
    let after = dump_all(&engine, &GROUPS);
    let end = std::fs::metadata(&last).unwrap().len();
    assert!(end > start + 100, "the last batch is real");
    drop(engine);
    (dir, before, after, start..end)
}

fn reopen_copy(
    dir: &std::path::Path,
    damage: impl FnOnce(&std::path::Path),
) -> (tempfile::TempDir, LogEngine) {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir, copy.path());
    damage(&segments(copy.path()).pop().unwrap());
    let engine = LogEngine::open(grown(copy.path())).expect("a damaged tail never fails the open");
    (copy, engine)
}

#[test]
fn cut_at_every_byte_of_the_last_batch_keeps_exactly_the_prefix() {
    let (dir, before, after, range) = build();
    for cut in range.start..=range.end {
        let (_copy, engine) = reopen_copy(dir.path(), |last| {
            OpenOptions::new()
                .write(true)
                .open(last)
                .unwrap()
                .set_len(cut)
                .unwrap();
        });
        let expected = if cut == range.end { &after } else { &before };
        assert_eq!(&dump_all(&engine, &GROUPS), expected, "cut at byte {cut}");
        let cuts = engine.stats().recovery_tail_cuts;
        assert_eq!(
            cuts,
            u64::from(cut != range.end && cut != range.start),
            "cut at byte {cut}"
        );
        // The engine keeps working after the cut, and a second restart sees the same log.
        write_rounds(&engine, 5..=5, 7);
        drop(engine);
        let engine = LogEngine::open(grown(_copy.path())).unwrap();
        assert_eq!(
            dump_all(&engine, &GROUPS),
            after,
            "rewrite after cut at {cut}"
        );
    }
}

#[test]
fn flipped_bits_in_the_last_batch_drop_exactly_that_batch() {
    let (dir, before, _after, range) = build();
    for at in range.clone() {
        let bit = (at % 8) as u8;
        let (_copy, engine) = reopen_copy(dir.path(), |last| {
            let mut bytes = std::fs::read(last).unwrap();
            bytes[at as usize] ^= 1 << bit;
            std::fs::write(last, bytes).unwrap();
        });
        assert_eq!(
            dump_all(&engine, &GROUPS),
            before,
            "bit {bit} of byte {at} flipped"
        );
        assert_eq!(engine.stats().recovery_tail_cuts, 1);
    }
}

#[test]
fn garbage_after_the_last_batch_is_cut() {
    let (dir, _before, after, _range) = build();
    for garbage in [
        vec![0u8; 4096],
        vec![0xff; 13],
        (0..=255u8).collect::<Vec<u8>>(),
    ] {
        let (_copy, engine) = reopen_copy(dir.path(), |last| {
            use std::io::Write;
            OpenOptions::new()
                .append(true)
                .open(last)
                .unwrap()
                .write_all(&garbage)
                .unwrap();
        });
        assert_eq!(dump_all(&engine, &GROUPS), after);
        // Nine zeros after the last frame are an end marker (version 2): nothing torn,
        // nothing counted.
        let zeros = garbage.iter().all(|&b| b == 0);
        let stats = engine.stats();
        assert_eq!(stats.recovery_tail_cuts, u64::from(!zeros));
        let dropped = if zeros { 0 } else { garbage.len() as u64 };
        assert_eq!(stats.recovery_bytes_cut, dropped);
    }
}

#[test]
fn damage_in_a_sealed_segment_is_a_typed_error_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let config = || EngineConfig::new(dir.path()).segment_size(4096);
    let engine = LogEngine::open(config()).unwrap();
    write_rounds(&engine, 1..=40, 50);
    drop(engine);
    let files = segments(dir.path());
    assert!(files.len() >= 3, "several segments: {files:?}");
    let victim = &files[1];
    let mut bytes = std::fs::read(victim).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(victim, &bytes).unwrap();
    match LogEngine::open(config()) {
        Err(Error::Corruption { path, offset, kind }) => {
            assert_eq!(&path, victim);
            assert!(
                offset >= 24 && offset <= at as u64,
                "offset {offset} is the damaged frame's start"
            );
            assert!(
                matches!(kind, CorruptionKind::Checksum | CorruptionKind::Truncated),
                "{kind:?}"
            );
        }
        other => panic!("expected a corruption error, got {other:?}"),
    }
    // A damaged header is refused too.
    bytes[at] ^= 0x40;
    bytes[3] ^= 1;
    std::fs::write(victim, &bytes).unwrap();
    assert!(matches!(
        LogEngine::open(config()),
        Err(Error::Corruption {
            offset: 0,
            kind: CorruptionKind::BadHeader,
            ..
        })
    ));
}

#[test]
fn a_segment_torn_while_being_created_is_dropped() {
    let (dir, _before, after, _range) = build();
    let last = segments(dir.path()).pop().unwrap();
    let name = last.file_name().unwrap().to_str().unwrap();
    let next: u32 = name.trim_end_matches(".log").parse::<u32>().unwrap() + 1;
    std::fs::write(dir.path().join(format!("{next:010}.log")), b"CHRK").unwrap();
    let engine = LogEngine::open(grown(dir.path())).unwrap();
    assert_eq!(dump_all(&engine, &GROUPS), after);
    drop(engine);
    // Preallocated, the file may have its size but not its header.
    let last = segments(dir.path()).pop().unwrap();
    let name = last.file_name().unwrap().to_str().unwrap();
    let next: u32 = name.trim_end_matches(".log").parse::<u32>().unwrap() + 1;
    std::fs::write(dir.path().join(format!("{next:010}.log")), vec![0u8; 4096]).unwrap();
    let engine = LogEngine::open(recycling(dir.path())).unwrap();
    assert_eq!(dump_all(&engine, &GROUPS), after);
}

/// A log moved onto a reused segment file, then 5 rounds written into it: the file's
/// bytes before and after each round, the states, where each round's frame lies, and
/// the first of the 5 rounds.
struct Recycled {
    dir: tempfile::TempDir,
    files: Vec<Vec<u8>>,
    states: Vec<Vec<Dump>>,
    ranges: Vec<std::ops::Range<u64>>,
    first: u64,
}

/// Where the frames starting at `from` end: at nine zeros on a frame boundary (a reused
/// file's old bytes may follow), or at the end of the bytes.
fn frames_end(bytes: &[u8], from: usize) -> u64 {
    let mut at = from;
    while at + 9 <= bytes.len() && bytes[at..at + 9].iter().any(|&b| b != 0) {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 9 + len;
    }
    at.min(bytes.len()) as u64
}

/// Compacts every group up to its last entry and purges.
fn compact_and_purge(engine: &LogEngine) {
    let mut batch = raft_storage::LogBatch::new();
    for &group in &GROUPS {
        batch.compact(group, engine.group(group).last_index());
    }
    engine.write(&mut batch, true).unwrap();
    engine.purge_expired().unwrap();
}

fn build_recycled() -> Recycled {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(recycling(dir.path())).unwrap();
    // Write, compact and purge until a rotation takes a purged segment's file.
    let mut round = 1;
    while engine.stats().recycled_segments == 0 {
        assert!(round < 5_000, "no segment file was reused");
        write_rounds(&engine, round..=round, 7);
        compact_and_purge(&engine);
        round += 1;
    }
    let recycled = kept_files(dir.path());
    assert!(recycled <= 2, "{recycled} files kept, 2 at most");
    let last = segments(dir.path()).pop().unwrap();
    let bytes = std::fs::read(&last).unwrap();
    let mut end = frames_end(&bytes, 24);
    assert!(
        (bytes.len() as u64) > end + 9,
        "the reused file holds old bytes after its frames"
    );
    let mut files = vec![bytes];
    let mut states = vec![dump_all(&engine, &GROUPS)];
    let mut ranges = Vec::new();
    for r in round..round + 5 {
        write_rounds(&engine, r..=r, 7);
        states.push(dump_all(&engine, &GROUPS));
        assert_eq!(
            segments(dir.path()).pop().unwrap(),
            last,
            "still one segment"
        );
        let bytes = std::fs::read(&last).unwrap();
        let next = frames_end(&bytes, end as usize);
        assert!(next > end + 100, "round {r} wrote a frame");
        ranges.push(end..next);
        end = next;
        files.push(bytes);
    }
    drop(engine);
    Recycled {
        dir,
        files,
        states,
        ranges,
        first: round,
    }
}

#[test]
fn a_reused_segment_file_restarts_without_a_cut_and_never_replays_its_old_frames() {
    let Recycled {
        dir,
        states,
        ranges,
        first,
        ..
    } = build_recycled();
    let engine = LogEngine::open(recycling(dir.path())).unwrap();
    assert_eq!(dump_all(&engine, &GROUPS), states[5]);
    assert_eq!(engine.stats().recovery_tail_cuts, 0);
    assert_eq!(engine.stats().recovery_bytes_cut, 0);
    let files = segments(dir.path());
    let sealed = std::fs::metadata(&files[files.len() - 2]).unwrap().len();
    assert_eq!(
        sealed, ranges[4].end,
        "cut after its last frame when reopened"
    );
    // Rotations reuse files again and again; restarts see exactly what was written.
    let mut engine = engine;
    let mut round = first + 5;
    let mut reused = 0;
    for _ in 0..6 {
        for _ in 0..50 {
            write_rounds(&engine, round..=round, 7);
            compact_and_purge(&engine);
            round += 1;
        }
        let expected = dump_all(&engine, &GROUPS);
        reused += engine.stats().recycled_segments;
        drop(engine);
        engine = LogEngine::open(recycling(dir.path())).unwrap();
        assert_eq!(dump_all(&engine, &GROUPS), expected, "before round {round}");
        assert_eq!(engine.stats().recovery_tail_cuts, 0);
    }
    assert!(reused >= 6, "{reused} files reused");
}

#[test]
fn a_torn_write_into_a_reused_file_keeps_exactly_the_prefix() {
    let Recycled {
        dir,
        files,
        states,
        ranges,
        first,
    } = build_recycled();
    let last = ranges[4].clone();
    let (before, after) = (&files[4], &files[5]);
    // From `cut` on, the last write's pages never reached the disk: the file's old
    // bytes show through (its end marker, then frames of the segment it once was).
    for cut in last.start..=last.end + 9 {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let file = segments(copy.path()).pop().unwrap();
        let mut bytes = after[..cut as usize].to_vec();
        bytes.extend_from_slice(&before[cut as usize..]);
        std::fs::write(&file, bytes).unwrap();
        let engine = LogEngine::open(recycling(copy.path())).unwrap();
        let expected = if cut >= last.end {
            &states[5]
        } else {
            &states[4]
        };
        assert_eq!(
            &dump_all(&engine, &GROUPS),
            expected,
            "torn from byte {cut}"
        );
        assert!(engine.stats().recovery_tail_cuts <= 1);
        // The engine keeps working, and a second restart sees the same log.
        write_rounds(&engine, first + 4..=first + 4, 7);
        drop(engine);
        let engine = LogEngine::open(recycling(copy.path())).unwrap();
        assert_eq!(
            dump_all(&engine, &GROUPS),
            states[5],
            "rewrite after byte {cut}"
        );
    }
}

#[test]
fn a_batch_behind_an_unwritten_one_is_never_replayed() {
    // Pages of one write can reach the disk before an earlier write's: the later batch
    // was never acknowledged (its sync had not returned) and must not come back.
    let Recycled {
        dir,
        files,
        states,
        ranges,
        first,
    } = build_recycled();
    let file = segments(dir.path()).pop().unwrap();
    let mut bytes = files[5].clone();
    let lost = ranges[3].start as usize..ranges[3].end as usize;
    bytes[lost.clone()].copy_from_slice(&files[3][lost]);
    std::fs::write(&file, bytes).unwrap();
    let engine = LogEngine::open(recycling(dir.path())).unwrap();
    assert_eq!(dump_all(&engine, &GROUPS), states[3]);
    // The last two rounds again, differently: a restart shows them, not the old ones.
    write_rounds(&engine, first + 3..=first + 4, 9);
    let rewritten = dump_all(&engine, &GROUPS);
    assert_ne!(rewritten, states[5]);
    drop(engine);
    let engine = LogEngine::open(recycling(dir.path())).unwrap();
    assert_eq!(dump_all(&engine, &GROUPS), rewritten);
}

#[test]
fn a_version_1_log_is_still_read() {
    let (dir, _before, after, _range) = build();
    // Version 1: the same header with version 1, and frames whose CRC covers only
    // their type and payload (not the segment id).
    for file in segments(dir.path()) {
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[..20]);
        bytes[20..24].copy_from_slice(&crc.to_le_bytes());
        let mut at = 24;
        while at < bytes.len() {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            let crc = crc32c::crc32c(&bytes[at + 8..at + 9 + len]);
            bytes[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
            at += 9 + len;
        }
        std::fs::write(&file, bytes).unwrap();
    }
    // Version 1 has no end marker: zeros after its last frame are a torn tail.
    let last = segments(dir.path()).pop().unwrap();
    let mut file = OpenOptions::new().append(true).open(&last).unwrap();
    std::io::Write::write_all(&mut file, &[0u8; 100]).unwrap();
    drop(file);
    let engine = LogEngine::open(recycling(dir.path())).unwrap();
    assert_eq!(dump_all(&engine, &GROUPS), after);
    assert_eq!(engine.stats().recovery_tail_cuts, 1);
    assert_eq!(engine.stats().recovery_bytes_cut, 100);
    write_rounds(&engine, 6..=6, 7);
    let later = dump_all(&engine, &GROUPS);
    drop(engine);
    let engine = LogEngine::open(recycling(dir.path())).unwrap();
    assert_eq!(dump_all(&engine, &GROUPS), later);
}
