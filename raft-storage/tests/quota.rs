//! The size limit (`EngineConfig::max_log_bytes`): a write that would pass it is refused
//! before anything is written, nothing written before is lost, the engine stays usable,
//! and purge (or a reopen after compaction) makes room again.

mod common;

use common::*;
use raft::eraftpb::HardState;
use raft_storage::{EngineConfig, Error, LogBatch, LogEngine};

const SEGMENT: u64 = 4096;
const LIMIT: u64 = 6 * SEGMENT;

/// Purged segment files are not reused here, so that the usage can be checked against
/// the files' lengths (the limit counts frames; a reused file keeps its old length until
/// sealed).
fn config(dir: &std::path::Path) -> EngineConfig {
    EngineConfig::new(dir)
        .recycle_segments(0)
        .segment_size(SEGMENT)
        .purge_lag_segments(1)
        .max_log_bytes(LIMIT)
}

/// Bytes of the segment files on disk.
fn bytes_on_disk(dir: &std::path::Path) -> u64 {
    segments(dir)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

/// Appends one ~300-byte entry per synced write to `group` until the engine refuses;
/// returns the refusal and the number of entries written.
fn fill_until_refused(engine: &LogEngine, group: u64) -> (Error, u64) {
    let mut written = 0;
    for _ in 0..10_000 {
        let next = engine.group(group).last_index() + 1;
        let mut batch = LogBatch::new();
        batch.append(group, &entries(next..next + 1, 1, 300));
        match engine.write(&mut batch, true) {
            Ok(_) => written += 1,
            Err(error) => {
                assert!(!batch.is_empty(), "a refused batch is kept");
                return (error, written);
            }
        }
    }
    panic!("never refused after {written} entries");
}

#[test]
fn a_write_past_the_limit_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(config(dir.path())).unwrap();
    assert_eq!(engine.usage().limit, LIMIT);
    let (error, written) = fill_until_refused(&engine, 1);
    let Error::QuotaExceeded {
        used,
        limit,
        needed,
    } = error
    else {
        panic!("expected QuotaExceeded, got {error}");
    };
    assert_eq!(limit, LIMIT);
    assert!(used + needed > limit && used <= limit, "{used} + {needed}");
    assert!(written > 10, "only {written} entries fit");
    // Nothing of the refused batch reached the file or the index.
    let on_disk = bytes_on_disk(dir.path());
    assert_eq!(on_disk, used, "the usage is the bytes of the segment files");
    assert!(on_disk <= LIMIT);
    assert_eq!(engine.usage().used, used);
    assert_eq!(engine.group(1).last_index(), written);
    assert!(!engine.is_poisoned());
    let stats = engine.stats();
    assert_eq!((stats.quota_rejections, stats.log_bytes), (1, used));
    // Records without entries are still taken (they are how space is freed).
    let mut batch = LogBatch::new();
    let hs = HardState {
        term: 1,
        commit: written,
        ..Default::default()
    };
    batch.set_hard_state(1, &hs);
    engine.write(&mut batch, true).unwrap();
    // Every entry written before the refusal survives a reopen; the refused one is absent.
    let before = dump(&engine, 1);
    assert_eq!(before.entries.len() as u64, written);
    drop(engine);
    let engine = LogEngine::open(config(dir.path())).unwrap();
    assert_eq!(dump(&engine, 1), before);
    assert_eq!(engine.group(1).hard_state(), hs);
    // Still full after the reopen (the recovered segments count).
    let (again, _) = fill_until_refused(&engine, 1);
    assert!(matches!(again, Error::QuotaExceeded { .. }), "{again}");
}

#[test]
fn purge_after_compaction_makes_room_again() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(config(dir.path()).rewrite_threshold(0)).unwrap();
    let (_, first_fill) = fill_until_refused(&engine, 1);
    let full = engine.usage().used;
    // Compact up to the last entry (a scheduler keeps its applied entry) and purge.
    let mut batch = LogBatch::new();
    batch.compact(1, engine.group(1).last_index());
    engine.write(&mut batch, true).unwrap();
    engine.purge_expired().unwrap();
    let after = engine.usage().used;
    assert!(
        after < full / 2,
        "purge freed too little: {after} of {full}"
    );
    assert_eq!(after, bytes_on_disk(dir.path()));
    // Room for about as much again, and the last entry kept by compaction is readable.
    let (error, second_fill) = fill_until_refused(&engine, 1);
    assert!(matches!(error, Error::QuotaExceeded { .. }), "{error}");
    assert!(
        second_fill * 2 >= first_fill,
        "{second_fill} vs {first_fill}"
    );
    let dumped = dump(&engine, 1);
    assert_eq!(dumped.last, first_fill + second_fill);
    assert_eq!(dumped.entries.len() as u64, second_fill + 1);
    // And the state survives a reopen.
    drop(engine);
    let engine = LogEngine::open(config(dir.path())).unwrap();
    assert_eq!(dump(&engine, 1), dumped);
}

#[test]
fn a_batch_larger_than_the_whole_limit_is_refused_and_smaller_ones_still_fit() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(config(dir.path())).unwrap();
    let mut batch = LogBatch::new();
    batch.append(1, &entries(1..4, 1, LIMIT as usize / 2));
    let error = engine.write(&mut batch, true).unwrap_err();
    assert!(matches!(error, Error::QuotaExceeded { .. }), "{error}");
    assert_eq!(engine.group(1).last_index(), 0);
    let mut batch = LogBatch::new();
    batch.append(1, &entries(1..4, 1, 100));
    engine.write(&mut batch, true).unwrap();
    assert_eq!(dump(&engine, 1).entries.len(), 3);
}

#[test]
fn no_limit_by_default_and_a_limit_below_two_segments_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(
        EngineConfig::new(dir.path())
            .recycle_segments(0)
            .segment_size(SEGMENT),
    )
    .unwrap();
    write_rounds(&engine, 1..=20, 500);
    let usage = engine.usage();
    assert_eq!(usage.limit, 0);
    assert!(usage.used > 3 * SEGMENT && !engine.over_quota());
    drop(engine);
    let small = EngineConfig::new(dir.path())
        .recycle_segments(0)
        .segment_size(SEGMENT)
        .max_log_bytes(SEGMENT);
    assert!(matches!(
        LogEngine::open(small),
        Err(Error::InvalidConfig {
            field: "max_log_bytes",
            ..
        })
    ));
    assert_eq!(LogEngine::in_memory().usage().limit, 0);
}

/// Random appends of random sizes to a few groups, with compactions and purges (and
/// the compactions purge asks for, as a scheduler does them): the
/// usage always equals the bytes of the segment files, appends never take it past the
/// limit, a refused append changes nothing, and a reopen gives back the same state.
#[test]
fn random_writes_keep_the_usage_exact_and_under_the_limit() {
    use rand::{Rng, SeedableRng};
    let seed = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7u64);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(config(dir.path())).unwrap();
    let (mut refused, mut written) = (0, 0);
    for step in 0..600 {
        let group = rng.random_range(1..=3u64);
        let mut batch = LogBatch::new();
        match rng.random_range(0..10) {
            0 => {
                let last = engine.group(group).last_index();
                batch.compact(group, last.saturating_sub(rng.random_range(0..3)));
                engine.write(&mut batch, true).unwrap();
                // Like a scheduler: the groups purge reports are compacted up to their
                // applied (here: last) entry, and purge runs again.
                for lagging in engine.purge_expired().unwrap() {
                    let mut batch = LogBatch::new();
                    batch.compact(lagging, engine.group(lagging).last_index() + 1);
                    engine.write(&mut batch, true).unwrap();
                }
                engine.purge_expired().unwrap();
            }
            _ => {
                let next = engine.group(group).last_index() + 1;
                let count = rng.random_range(1..4);
                let size = rng.random_range(10..1500);
                batch.append(group, &entries(next..next + count, 1, size));
                let before = (dump(&engine, group), bytes_on_disk(dir.path()));
                match engine.write(&mut batch, true) {
                    Ok(_) => written += 1,
                    Err(Error::QuotaExceeded { used, limit, .. }) => {
                        refused += 1;
                        assert_eq!((used, limit), (before.1, LIMIT), "seed {seed} step {step}");
                        let after = (dump(&engine, group), bytes_on_disk(dir.path()));
                        assert_eq!(
                            after, before,
                            "seed {seed} step {step}: refused but changed"
                        );
                    }
                    Err(error) => panic!("seed {seed} step {step}: {error}"),
                }
            }
        }
        let usage = engine.usage();
        assert_eq!(
            usage.used,
            bytes_on_disk(dir.path()),
            "seed {seed} step {step}"
        );
        assert!(
            usage.used <= LIMIT + 4096,
            "seed {seed} step {step}: {usage:?}"
        );
    }
    assert!(
        refused > 0 && written > 100,
        "seed {seed}: {refused} refused, {written} written"
    );
    let before = dump_all(&engine, &[1, 2, 3]);
    drop(engine);
    let engine = LogEngine::open(config(dir.path())).unwrap();
    assert_eq!(dump_all(&engine, &[1, 2, 3]), before, "seed {seed}");
}
