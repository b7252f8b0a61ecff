//! Crash tests: a torn or damaged tail recovers to exactly the durable prefix; damage inside a
//! sealed segment is a typed error naming the file and offset.

mod common;

use std::fs::OpenOptions;

use common::*;
use raft_storage::{CorruptionKind, EngineConfig, Error, LogEngine};

const GROUPS: [u64; 3] = [1, 2, 3];

/// Builds a log of 5 rounds; returns the dir, the expected states before and after the last
/// round, and the byte range of the last batch in the last segment.
fn build() -> (
    tempfile::TempDir,
    Vec<Dump>,
    Vec<Dump>,
    std::ops::Range<u64>,
) {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(EngineConfig::new(dir.path())).unwrap();
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
    let engine = LogEngine::open(EngineConfig::new(copy.path()))
        .expect("a damaged tail never fails the open");
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
        let engine = LogEngine::open(EngineConfig::new(_copy.path())).unwrap();
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
        assert_eq!(engine.stats().recovery_bytes_cut, garbage.len() as u64);
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
    let engine = LogEngine::open(EngineConfig::new(dir.path())).unwrap();
    assert_eq!(dump_all(&engine, &GROUPS), after);
}
