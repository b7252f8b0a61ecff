//! The load generator: client tasks, each issuing one call and waiting for its answer
//! before the next (closed loop), or pacing its calls to a fixed offered load (open
//! loop: latency counts from when the call was due, so a stall is not hidden).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};

use super::probe::CpuClock;
use super::BenchError;

/// One client: issues call number `seq` and says whether it succeeded.
pub trait Client: Send + 'static {
    /// One call; `Err` names the kind of failure (see [`error_kind`]), so a report can
    /// say what its errors were.
    fn call(&mut self, seq: u64) -> impl Future<Output = Result<(), String>> + Send + '_;
}

/// A short snake_case name for an error: its variant's name (`NotLeaderOrFollower {
/// .. }` becomes `not_leader_or_follower`).
pub fn error_kind(error: &impl std::fmt::Debug) -> String {
    let debug = format!("{error:?}");
    let variant = debug
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .unwrap_or_default();
    let mut kind = String::with_capacity(variant.len() + 4);
    for (i, c) in variant.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            kind.push('_');
        }
        kind.extend(c.to_lowercase());
    }
    if kind.is_empty() {
        kind.push_str("unknown");
    }
    kind
}

/// How the load is shaped.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Not measured, before the window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Calls per second over all clients; `None`: as fast as they are answered.
    pub rate: Option<f64>,
    /// Stop once this many calls succeeded in the window (`None`: run the window).
    pub max_calls: Option<u64>,
}

/// What a run measured.
#[derive(Debug)]
pub struct Outcome {
    /// Successful calls in the window.
    pub ok: u64,
    /// Failed calls in the window.
    pub errors: u64,
    /// Failed calls in the window by kind of error.
    pub error_kinds: BTreeMap<String, u64>,
    /// Successful calls in the whole run, warm-up included.
    pub acked: u64,
    /// Length of the window actually measured, in seconds.
    pub secs: f64,
    /// Latency of the successful calls in the window, in microseconds.
    pub latency_us: Histogram<u64>,
    /// CPU of the whole process in the window, % of one core.
    pub cpu_percent: f64,
}

impl Outcome {
    /// Successful calls per second.
    pub fn per_sec(&self) -> f64 {
        self.ok as f64 / self.secs.max(1e-9)
    }

    /// A latency quantile in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }
}

/// A progress bar over `len` steps, drawn on stderr (hidden when not a terminal).
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_owned());
    bar
}

/// When a paced client calls next: one interval after its last due time. A client
/// still behind its schedule when the measured window opens (its answer came after
/// `start`, its next call was due before) starts the window on its own `slot` in it:
/// calls that piled up during the warm-up, while the nodes paid their start-up costs,
/// are not carried into the window, and lateness from the window's opening on counts
/// as before (latency runs from the due time).
fn next_due(
    due: Instant,
    every: Duration,
    answered: Instant,
    start: Instant,
    slot: Duration,
) -> Instant {
    let next = due + every;
    if next < start && answered >= start {
        start + slot
    } else {
        next
    }
}

/// Runs every client on the current tokio runtime for `shape`, with a progress bar.
pub async fn run<C: Client>(
    clients: Vec<C>,
    shape: Shape,
    what: &str,
) -> Result<Outcome, BenchError> {
    let count = clients.len().max(1);
    let start = Instant::now() + shape.warmup;
    let end = start + shape.duration;
    // Each client's pace: its share of the offered load.
    let interval = shape
        .rate
        .filter(|r| *r > 0.0)
        .map(|rate| Duration::from_secs_f64(count as f64 / rate));
    let done = Arc::new(AtomicU64::new(0));
    let budget = shape.max_calls.unwrap_or(u64::MAX);
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| {
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let mut samples: Vec<u32> = Vec::with_capacity(1 << 10);
                let (mut ok, mut errors, mut acked) = (0u64, 0u64, 0u64);
                let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
                // Spread the paced clients' first calls over one interval.
                let slot = interval.map(|every| every.mul_f64(i as f64 / count as f64));
                let mut due = slot.map(|slot| Instant::now() + slot);
                // Bounded by `end` and by the call budget.
                for seq in 0u64.. {
                    if let Some(at) = due {
                        tokio::time::sleep_until(at.into()).await;
                    }
                    let sent = Instant::now();
                    if sent >= end || done.load(Ordering::Relaxed) >= budget {
                        break;
                    }
                    let from = due.map_or(sent, |d| d.min(sent));
                    let result = client.call(seq).await;
                    let success = result.is_ok();
                    let answered = Instant::now();
                    if let (Some(at), Some(every), Some(slot)) = (due.as_mut(), interval, slot) {
                        *at = next_due(*at, every, answered, start, slot);
                    }
                    acked += u64::from(success);
                    if sent < start || answered > end {
                        continue;
                    }
                    if success {
                        ok += 1;
                        done.fetch_add(1, Ordering::Relaxed);
                        let micros = answered.duration_since(from).as_micros();
                        samples.push(micros.clamp(1, u128::from(u32::MAX)) as u32);
                    } else {
                        errors += 1;
                        if let Err(kind) = result {
                            *kinds.entry(kind).or_default() += 1;
                        }
                        // A refused call (no leader yet) retries after a pause.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                (ok, errors, kinds, acked, samples)
            })
        })
        .collect();
    let progress = bar(shape.duration.as_millis() as u64, what);
    tokio::time::sleep_until(start.into()).await;
    let cpu0 = CpuClock::now();
    let mut ended = start;
    // Bounded by `end` (a step each 100 ms).
    while Instant::now() < end && done.load(Ordering::Relaxed) < budget {
        tokio::time::sleep(
            Duration::from_millis(100).min(end.saturating_duration_since(Instant::now())),
        )
        .await;
        let elapsed = start.elapsed();
        progress.set_position(elapsed.as_millis() as u64);
        let n = done.load(Ordering::Relaxed);
        progress.set_message(format!(
            "{what}: {:.0}/s",
            n as f64 / elapsed.as_secs_f64().max(1e-3)
        ));
        ended = Instant::now();
    }
    let cpu1 = CpuClock::now();
    progress.finish_and_clear();
    let mut outcome = Outcome {
        ok: 0,
        errors: 0,
        error_kinds: BTreeMap::new(),
        acked: 0,
        secs: ended.duration_since(start).as_secs_f64(),
        latency_us: Histogram::new_with_bounds(1, 600_000_000, 3)
            .map_err(|e| BenchError::Check(format!("histogram: {e}")))?,
        cpu_percent: cpu1.percent_since(&cpu0),
    };
    for task in tasks {
        let (ok, errors, kinds, acked, samples) = task.await.map_err(|_| BenchError::Panicked)?;
        outcome.ok += ok;
        outcome.errors += errors;
        for (kind, n) in kinds {
            *outcome.error_kinds.entry(kind).or_default() += n;
        }
        outcome.acked += acked;
        for micros in samples {
            let _ = outcome.latency_us.record(u64::from(micros));
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{error_kind, next_due};

    #[test]
    fn a_warmup_backlog_is_not_carried_into_the_window() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let (every, slot, start) = (ms(10), ms(3), t0 + ms(1000));
        // (due, answered, next due), in ms from t0; the window opens at 1000.
        let cases = [
            // On schedule: one interval on, before and in the window alike.
            (500, 501, 510),
            (1200, 1201, 1210),
            // Behind during the warm-up: the backlog is worked off there (not measured).
            (300, 900, 310),
            // Still behind when the window opens: the window starts on the client's slot.
            (300, 1000, 1003),
            (985, 1400, 1003),
            // Late inside the window: lateness counts, no catching up by skipping.
            (995, 1400, 1005),
            (1100, 1900, 1110),
        ];
        for (due, answered, next) in cases {
            assert_eq!(
                next_due(t0 + ms(due), every, t0 + ms(answered), start, slot),
                t0 + ms(next),
                "due {due} answered {answered}"
            );
        }
    }

    #[derive(Debug)]
    #[allow(dead_code)]
    enum Sample {
        NotLeaderOrFollower { leader: Option<u64> },
        RequestTimedOut,
        Io(String),
    }

    #[test]
    fn error_kinds_are_variant_names_in_snake_case() {
        let not_leader = Sample::NotLeaderOrFollower { leader: Some(2) };
        assert_eq!(error_kind(&not_leader), "not_leader_or_follower");
        assert_eq!(error_kind(&Sample::RequestTimedOut), "request_timed_out");
        assert_eq!(error_kind(&Sample::Io("disk".into())), "io");
        assert_eq!(error_kind(&""), "unknown");
    }
}
