//! The `raft::Storage` conformance suite on every engine setup.

use raft_storage::testing::{MemoryBuilder, Suite, WalBuilder};

#[test]
fn in_memory_engine_matches_mem_storage() {
    Suite::new(MemoryBuilder).test_all();
}

#[test]
fn wal_engine_matches_mem_storage() {
    Suite::new(WalBuilder::new()).test_all();
}

/// Tiny segments and no cache: every read goes to the files, batches rotate segments.
#[test]
fn wal_engine_without_cache_matches_mem_storage() {
    let builder = WalBuilder::with_config(|config| config.segment_size(4096).cache_capacity(0));
    Suite::new(builder).test_all();
}

/// Tiny segments purged eagerly: recovery starts from a purged prefix, with rewrites.
#[test]
fn wal_engine_with_eager_purge_matches_mem_storage() {
    let builder = WalBuilder::with_config(|config| config.segment_size(4096).purge_lag_segments(1));
    Suite::new(builder).test_all();
}

/// Tiny segments purged eagerly without entry rewrites.
#[test]
fn wal_engine_with_purge_without_rewrites_matches_mem_storage() {
    let builder = WalBuilder::with_config(|config| {
        config
            .segment_size(4096)
            .purge_lag_segments(1)
            .rewrite_threshold(0)
            .cache_capacity(512)
    });
    Suite::new(builder).test_all();
}
