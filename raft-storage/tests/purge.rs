//! Purge: segments go once every group has compacted past them, and not before.

mod common;

use common::*;
use raft::eraftpb::HardState;
use raft_storage::{EngineConfig, LogBatch, LogEngine};

fn config(dir: &std::path::Path) -> EngineConfig {
    EngineConfig::new(dir)
        .segment_size(4096)
        .purge_lag_segments(3)
}

/// Appends `count` entries of ~200 bytes to `group`, one synced batch each.
fn fill(engine: &LogEngine, group: u64, count: u64) {
    let mut batch = LogBatch::new();
    for _ in 0..count {
        let next = engine.group(group).last_index() + 1;
        batch.append(group, &entries(next..next + 1, 1, 200));
        engine.write(&mut batch, true).unwrap();
    }
}

/// Compacts everything (`last_index + 1`).
fn compact_all(engine: &LogEngine, group: u64) {
    let mut batch = LogBatch::new();
    batch.compact(group, engine.group(group).last_index() + 1);
    engine.write(&mut batch, true).unwrap();
}

/// Compacts up to the last entry, which stays (what a scheduler does at its applied index).
fn compact_to_last(engine: &LogEngine, group: u64) {
    let mut batch = LogBatch::new();
    batch.compact(group, engine.group(group).last_index());
    engine.write(&mut batch, true).unwrap();
}

#[test]
fn segments_go_only_once_every_group_compacted_past_them() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(config(dir.path()).rewrite_threshold(0)).unwrap();
    fill(&engine, 1, 40);
    fill(&engine, 2, 40);
    let before = segments(dir.path()).len();
    assert!(before >= 4, "{before} segments");
    // Nobody compacted: nothing goes.
    assert_eq!(engine.purge_expired().unwrap(), vec![1]);
    assert_eq!(segments(dir.path()).len(), before);
    // Group 1 compacted, group 2's entries are all later: group 1's old segments go.
    compact_all(&engine, 1);
    let lagging = engine.purge_expired().unwrap();
    let after_one = segments(dir.path()).len();
    assert!(after_one < before, "{after_one} < {before}");
    assert!(lagging.is_empty() || lagging == vec![2], "{lagging:?}");
    // Group 2 still needs its segments.
    let first_of_two = engine.group(2).first_index();
    assert_eq!(dump(&engine, 2).entries.len(), 40);
    compact_all(&engine, 2);
    engine.purge_expired().unwrap();
    let after_two = segments(dir.path()).len();
    assert!(
        after_two <= 2,
        "only the last live and the active segments stay: {after_two}"
    );
    assert!(engine.stats().purged_segments as usize >= before - after_two);
    // The state survives a restart from the remaining segments.
    let expected = dump_all(&engine, &[1, 2]);
    drop(engine);
    let engine = LogEngine::open(config(dir.path())).unwrap();
    assert_eq!(dump_all(&engine, &[1, 2]), expected);
    assert_eq!(engine.group(2).first_index(), first_of_two + 40);
    assert_eq!(last_term(&engine, 1), 1);
}

#[test]
fn an_idle_group_never_pins_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(config(dir.path())).unwrap();
    let idle = HardState {
        term: 7,
        vote: 3,
        commit: 0,
        ..Default::default()
    };
    let mut batch = LogBatch::new();
    batch.set_hard_state(9, &idle);
    engine.write(&mut batch, true).unwrap();
    fill(&engine, 1, 60);
    compact_all(&engine, 1);
    assert!(engine.purge_expired().unwrap().is_empty());
    assert!(
        engine.stats().rewritten_groups >= 1,
        "the idle group's hard state moved forward"
    );
    assert!(segments(dir.path()).len() <= 2);
    drop(engine);
    let engine = LogEngine::open(config(dir.path())).unwrap();
    assert_eq!(engine.group(9).hard_state(), idle);
    assert_eq!(engine.group_ids(), vec![1, 9]);
}

#[test]
fn groups_that_lag_are_reported_and_block_only_their_segments() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(config(dir.path()).rewrite_threshold(0)).unwrap();
    fill(&engine, 2, 5);
    fill(&engine, 1, 80);
    let lagging = engine.purge_expired().unwrap();
    assert_eq!(
        lagging,
        vec![1, 2],
        "both keep their first entries far behind"
    );
    compact_all(&engine, 1);
    let lagging = engine.purge_expired().unwrap();
    assert_eq!(lagging, vec![2]);
    assert_eq!(dump(&engine, 2).entries.len(), 5, "group 2 loses nothing");
    compact_all(&engine, 2);
    assert!(engine.purge_expired().unwrap().is_empty());
    assert!(segments(dir.path()).len() <= 2);
}

#[test]
fn removed_groups_release_their_segments() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(config(dir.path())).unwrap();
    fill(&engine, 4, 50);
    let mut batch = LogBatch::new();
    batch.remove_group(4);
    engine.write(&mut batch, true).unwrap();
    engine.purge_expired().unwrap();
    assert!(segments(dir.path()).len() <= 1);
    drop(engine);
    let engine = LogEngine::open(config(dir.path())).unwrap();
    assert!(engine.group_ids().is_empty());
}

#[test]
fn small_lagging_groups_are_rewritten_forward() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(config(dir.path())).unwrap();
    fill(&engine, 2, 5);
    fill(&engine, 1, 80);
    compact_to_last(&engine, 1);
    compact_to_last(&engine, 2);
    let expected = dump_all(&engine, &[1, 2]);
    assert_eq!(expected[1].entries.len(), 1, "group 2 keeps its last entry");
    assert!(
        engine.purge_expired().unwrap().is_empty(),
        "nobody is reported: both were rewritten"
    );
    assert!(
        segments(dir.path()).len() <= 2,
        "{:?}",
        segments(dir.path())
    );
    assert_eq!(dump_all(&engine, &[1, 2]), expected);
    drop(engine);
    let engine = LogEngine::open(config(dir.path())).unwrap();
    assert_eq!(dump_all(&engine, &[1, 2]), expected);
}

#[test]
fn purge_keeps_a_few_files_for_reuse_and_later_segments_take_them() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(config(dir.path()).rewrite_threshold(0)).unwrap();
    fill(&engine, 1, 60);
    compact_all(&engine, 1);
    engine.purge_expired().unwrap();
    assert_eq!(kept_files(dir.path()), 2, "the default keeps two");
    assert_eq!(engine.stats().recycled_segments, 0);
    // The next rotations take them.
    fill(&engine, 1, 40);
    assert!(engine.stats().recycled_segments >= 2);
    assert_eq!(dump(&engine, 1).entries.len(), 40);
    let before = dump(&engine, 1);
    drop(engine);
    // A reopen keeps the kept files up to the number configured, and deletes the rest.
    let engine = LogEngine::open(config(dir.path()).recycle_segments(1)).unwrap();
    assert_eq!(dump(&engine, 1), before);
    assert!(kept_files(dir.path()) <= 1);
    compact_all(&engine, 1);
    engine.purge_expired().unwrap();
    assert_eq!(kept_files(dir.path()), 1);
    drop(engine);
    // With none configured, purge deletes every file.
    let engine = LogEngine::open(config(dir.path()).recycle_segments(0)).unwrap();
    assert_eq!(kept_files(dir.path()), 0);
    fill(&engine, 1, 60);
    compact_all(&engine, 1);
    engine.purge_expired().unwrap();
    assert_eq!(kept_files(dir.path()), 0);
    assert_eq!(engine.stats().recycled_segments, 0);
}

/// Lengths of the files in `dir` whose name ends in `suffix`, by name.
fn files_ending(dir: &std::path::Path, suffix: &str) -> Vec<(String, u64)> {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.ends_with(suffix)
                .then(|| (name, e.metadata().unwrap().len()))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_prefilled_log_starts_on_written_files_and_tops_them_up_at_each_open() {
    let dir = tempfile::tempdir().unwrap();
    let prefilled = |dir: &std::path::Path| config(dir).prefill_segments(true);
    let engine = LogEngine::open(prefilled(dir.path())).unwrap();
    let stats = engine.stats();
    assert_eq!(
        stats.prefilled_segments, 2,
        "the pool filled to the default two"
    );
    assert_eq!(
        stats.recycled_segments, 1,
        "the first segment is one of them"
    );
    assert_eq!(
        files_ending(dir.path(), ".recycle").len(),
        1,
        "one left in the pool"
    );
    let logs = files_ending(dir.path(), ".log");
    assert_eq!(logs.len(), 1);
    assert_eq!(
        logs[0].1, 4096,
        "the segment's file was written to its full size"
    );
    fill(&engine, 1, 30);
    let before = dump(&engine, 1);
    assert_eq!(before.entries.len(), 30);
    drop(engine);

    // A reopen reads exactly what was written (not the zeros after it) and tops the
    // pool up again before its new segment takes one.
    let engine = LogEngine::open(prefilled(dir.path())).unwrap();
    assert_eq!(dump(&engine, 1), before);
    let stats = engine.stats();
    assert_eq!(
        stats.prefilled_segments, 2,
        "both kept files went to segments"
    );
    assert_eq!(stats.recycled_segments, 1);
    assert_eq!(files_ending(dir.path(), ".recycle").len(), 1);
    // Purge gives segments' files back under their own names, beside the prefilled
    // one, and later rotations take them.
    compact_all(&engine, 1);
    engine.purge_expired().unwrap();
    assert_eq!(kept_files(dir.path()), 2);
    fill(&engine, 1, 60);
    let stats = engine.stats();
    assert!(stats.recycled_segments >= 3, "{stats:?}");
    let before = dump(&engine, 1);
    drop(engine);
    let engine = LogEngine::open(config(dir.path())).unwrap();
    assert_eq!(dump(&engine, 1), before);
    assert_eq!(engine.stats().prefilled_segments, 0, "off: nothing written");
}

#[test]
fn an_interrupted_prefill_is_cleared_and_prefill_is_off_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open(config(dir.path())).unwrap();
    assert_eq!(engine.stats().prefilled_segments, 0);
    assert_eq!(engine.stats().recycled_segments, 0);
    assert_eq!(kept_files(dir.path()), 0, "no files written unasked");
    fill(&engine, 1, 5);
    let before = dump(&engine, 1);
    drop(engine);
    // A crash in the middle of writing a kept file leaves its partial file.
    std::fs::write(dir.path().join("4294967295.prefill"), vec![0u8; 1000]).unwrap();
    let engine = LogEngine::open(config(dir.path()).prefill_segments(true)).unwrap();
    assert_eq!(dump(&engine, 1), before);
    assert!(files_ending(dir.path(), ".prefill").is_empty());
    assert_eq!(
        files_ending(dir.path(), ".recycle"),
        vec![("4294967294.recycle".to_owned(), 4096)],
        "two written, the first taken by the new segment"
    );
}
