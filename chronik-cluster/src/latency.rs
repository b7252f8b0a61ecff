//! A lock-free latency summary: count, sum and maximum.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Count, sum and maximum of recorded durations, in microseconds.
#[derive(Debug, Default)]
pub(crate) struct Latency {
    count: AtomicU64,
    sum_micros: AtomicU64,
    max_micros: AtomicU64,
}

impl Latency {
    pub(crate) fn record(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.max_micros.fetch_max(micros, Ordering::Relaxed);
    }

    /// (count, sum in µs, max in µs).
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    pub(crate) fn read(&self) -> (u64, u64, u64) {
        (
            self.count.load(Ordering::Relaxed),
            self.sum_micros.load(Ordering::Relaxed),
            self.max_micros.load(Ordering::Relaxed),
        )
    }
}
