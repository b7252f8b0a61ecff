//! Conformance suite of the `raft::Storage` contract (feature `test-util`).
//!
//! [`Suite`] drives an engine built by a [`StoreBuilder`] through proptest-generated
//! sequences of appends (including conflicting ones that truncate), compactions, applied
//! snapshots, hard and conf states, group removals, writes with and without sync, and
//! reopens, and checks every group after every write against raft-rs's `MemStorage` as the
//! oracle. Other crates can run it on their own engine setups.
//!
//! ```
//! use raft_storage::testing::{MemoryBuilder, Suite};
//! Suite::new(MemoryBuilder).cases(4).test_all();
//! ```
//!
//! Helpers here panic on failure, like assertions: they are for tests only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixed;
mod model;

use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::LogEngine;
pub use model::Step;

/// Builds the engine under test.
pub trait StoreBuilder {
    /// A new, empty engine.
    fn fresh(&mut self) -> LogEngine;
    /// The same engine after a restart: the file engine reopens its directory (so only what
    /// was written survives), the in-memory one is returned as is. Drop every
    /// `GroupStorage` handle first: they keep the engine, and its directory lock, alive.
    fn reopen(&mut self, engine: LogEngine) -> LogEngine;
}

/// Builds [`LogEngine::in_memory`] engines.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryBuilder;

impl StoreBuilder for MemoryBuilder {
    fn fresh(&mut self) -> LogEngine {
        LogEngine::in_memory()
    }
    fn reopen(&mut self, engine: LogEngine) -> LogEngine {
        engine
    }
}

/// Builds file engines in fresh temporary directories, with a configuration hook.
#[cfg(feature = "wal")]
pub struct WalBuilder {
    configure: Box<dyn FnMut(crate::EngineConfig) -> crate::EngineConfig>,
    dir: Option<tempfile::TempDir>,
}

#[cfg(feature = "wal")]
impl WalBuilder {
    /// Default configuration.
    pub fn new() -> WalBuilder {
        WalBuilder::with_config(|config| config)
    }

    /// Configuration adjusted by `configure` (for example tiny segments and cache, so reads
    /// and rotations go through the files).
    pub fn with_config(
        configure: impl FnMut(crate::EngineConfig) -> crate::EngineConfig + 'static,
    ) -> WalBuilder {
        WalBuilder {
            configure: Box::new(configure),
            dir: None,
        }
    }

    fn open(&mut self) -> LogEngine {
        let dir = self
            .dir
            .as_ref()
            .expect("fresh() first")
            .path()
            .to_path_buf();
        LogEngine::open((self.configure)(crate::EngineConfig::new(dir))).expect("open the engine")
    }
}

#[cfg(feature = "wal")]
impl Default for WalBuilder {
    fn default() -> Self {
        WalBuilder::new()
    }
}

#[cfg(feature = "wal")]
impl StoreBuilder for WalBuilder {
    fn fresh(&mut self) -> LogEngine {
        self.dir = Some(tempfile::tempdir().expect("temp dir"));
        self.open()
    }
    fn reopen(&mut self, engine: LogEngine) -> LogEngine {
        drop(engine);
        self.open()
    }
}

/// The seed of the suite's RNG: `SEED` from the environment, or a fixed default.
pub fn seed_from_env() -> u64 {
    std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0de)
}

/// The conformance suite.
pub struct Suite<B: StoreBuilder> {
    builder: B,
    cases: u32,
    seed: u64,
}

impl<B: StoreBuilder> Suite<B> {
    /// A suite over engines from `builder`; `PROPTEST_CASES` (default 32) cases, seed from
    /// [`seed_from_env`].
    pub fn new(builder: B) -> Suite<B> {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(32);
        Suite {
            builder,
            cases,
            seed: seed_from_env(),
        }
    }

    /// Sets the number of generated sequences.
    pub fn cases(mut self, cases: u32) -> Suite<B> {
        self.cases = cases;
        self
    }

    /// Sets the RNG seed.
    pub fn seed(mut self, seed: u64) -> Suite<B> {
        self.seed = seed;
        self
    }

    /// Runs everything; panics with the seed and the minimal failing sequence on failure.
    pub fn test_all(mut self) {
        fixed::check_fixed_cases(&mut self.builder);
        self.test_sequences();
    }

    /// Only the generated sequences.
    pub fn test_sequences(&mut self) {
        let mut seed_bytes = [0u8; 32];
        for chunk in seed_bytes.chunks_mut(8) {
            chunk.copy_from_slice(&self.seed.to_le_bytes());
        }
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
        let config = Config {
            cases: self.cases,
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner = TestRunner::new_with_rng(config, rng);
        let builder = std::cell::RefCell::new(&mut self.builder);
        let outcome = runner.run(&model::steps(), |steps| {
            let mut guard = builder.borrow_mut();
            model::run_steps(&mut **guard, &steps)
                .map_err(proptest::test_runner::TestCaseError::fail)
        });
        if let Err(error) = outcome {
            panic!("storage conformance failed (SEED={}): {error}", self.seed);
        }
    }
}
