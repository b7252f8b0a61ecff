//! Crash at a random point of a random history, then replay: property test.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use common::{random_command, replay, rng, snapshot_bytes, Driver};
use raft_fsm::{PartitionConfig, PartitionStateMachine, StateMachine};

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]

    /// Random commands, flushes at random points, a crash (with torn bytes
    /// at the end of the newest file) at a random point, a restart, and a
    /// replay from the durable index: the result equals a machine that
    /// never crashed.
    #[test]
    fn crash_anywhere_then_replay_equals_no_crash(
        seed in proptest::prelude::any::<u64>(),
        count in 1usize..400,
        flush_every in 1usize..120,
        torn in 0usize..100,
        large_segments in proptest::prelude::any::<bool>(),
    ) {
        // Small segments: many closed segments with index files. Large ones:
        // an active segment with many index entries in its journal.
        let segment_bytes = if large_segments { 64 * 1024 } else { 4096 };
        let config = || PartitionConfig::default().with_segment_bytes(segment_bytes);
        let dir = tempfile::tempdir().unwrap();
        let mut d = Driver::new(PartitionStateMachine::open(dir.path(), config()).unwrap());
        let mut rng = rng(seed);
        let mut clock = 0;
        for i in 0..count {
            if i % 50 == 0 {
                d.new_term();
            }
            let hint = d.machine.high_watermark();
            d.apply(random_command(&mut rng, &mut clock, hint));
            if i % flush_every == flush_every - 1 {
                d.machine.flush().unwrap();
            }
        }
        let durable = d.machine.durable_index();
        let reference = snapshot_bytes(&d.machine);
        let Driver { machine, log, .. } = d;
        drop(machine);
        if let Some(last) = segment_files(dir.path()).pop() {
            let mut file = OpenOptions::new().append(true).open(&last).unwrap();
            file.write_all(&vec![0xa5; torn]).unwrap();
        }
        let mut reopened = PartitionStateMachine::open(dir.path(), config()).unwrap();
        proptest::prop_assert_eq!(reopened.applied_index(), durable);
        replay(&log, &mut reopened, durable + 1);
        proptest::prop_assert_eq!(snapshot_bytes(&reopened), reference);
    }
}
