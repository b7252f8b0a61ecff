//! What the process costs, read from /proc: CPU time per thread (nanoseconds, from
//! `schedstat`), CPU time of the whole process (`stat`, clock ticks) and resident memory
//! (`statm`). Linux only, like the rest of the benchmark's figures.

use std::collections::HashMap;
use std::time::Instant;

/// CPU time of every thread and of the process at one instant.
#[derive(Debug, Clone)]
pub struct CpuSample {
    at: Instant,
    /// (thread name, nanoseconds on a CPU) by thread id.
    threads: HashMap<u64, (String, u64)>,
    /// utime + stime of the whole process (threads that ended included), in ns.
    process_ns: u64,
}

/// CPU used between two samples.
#[derive(Debug, Clone, Copy)]
pub struct CpuUse {
    /// Percent of one core used by every thread but the excluded ones.
    pub percent: f64,
    /// Percent of one core used by the excluded threads.
    pub excluded_percent: f64,
    /// Percent of one core used by the whole process (clock-tick resolution).
    pub process_percent: f64,
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn getconf(name: &str, default: u64) -> u64 {
    std::process::Command::new("getconf")
        .arg(name)
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// utime + stime of this process, in nanoseconds.
fn process_cpu_ns() -> u64 {
    let Some(stat) = read("/proc/self/stat") else {
        return 0;
    };
    // Fields after the command name (which may hold spaces) start at field 3.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime is field 14 and stime field 15 of the whole line: 11 and 12 here.
    let hz = getconf("CLK_TCK", 100).max(1);
    (ticks(11) + ticks(12)) * 1_000_000_000 / hz
}

impl CpuSample {
    pub fn now() -> CpuSample {
        let mut threads = HashMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
            for entry in dir.flatten() {
                let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                    continue;
                };
                let base = format!("/proc/self/task/{tid}");
                let name = read(&format!("{base}/comm")).unwrap_or_default();
                let ns = read(&format!("{base}/schedstat"))
                    .and_then(|s| s.split_whitespace().next()?.parse().ok())
                    .unwrap_or(0);
                threads.insert(tid, (name.trim().to_owned(), ns));
            }
        }
        CpuSample {
            at: Instant::now(),
            threads,
            process_ns: process_cpu_ns(),
        }
    }

    /// CPU used since `earlier`; threads whose name starts with one of `exclude` are
    /// counted apart (threads that ended between the samples are lost to the
    /// per-thread figures, not to `process_percent`).
    pub fn since(&self, earlier: &CpuSample, exclude: &[&str]) -> CpuUse {
        let wall = self.at.duration_since(earlier.at).as_nanos().max(1) as f64;
        let (mut kept, mut excluded) = (0u64, 0u64);
        for (tid, (name, ns)) in &self.threads {
            let before = earlier.threads.get(tid).map_or(0, |(_, ns)| *ns);
            let used = ns.saturating_sub(before);
            if exclude.iter().any(|prefix| name.starts_with(prefix)) {
                excluded += used;
            } else {
                kept += used;
            }
        }
        CpuUse {
            percent: kept as f64 * 100.0 / wall,
            excluded_percent: excluded as f64 * 100.0 / wall,
            process_percent: self.process_ns.saturating_sub(earlier.process_ns) as f64 * 100.0
                / wall,
        }
    }
}

impl CpuSample {
    /// Percent of one core per kind of thread (name without its trailing numbers),
    /// busiest first.
    pub fn by_thread_kind(&self, earlier: &CpuSample) -> Vec<(String, f64)> {
        let wall = self.at.duration_since(earlier.at).as_nanos().max(1) as f64;
        let mut kinds: HashMap<String, u64> = HashMap::new();
        for (tid, (name, ns)) in &self.threads {
            let before = earlier.threads.get(tid).map_or(0, |(_, ns)| *ns);
            let kind = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
            *kinds.entry(kind.to_owned()).or_default() += ns.saturating_sub(before);
        }
        let mut out: Vec<(String, f64)> = kinds
            .into_iter()
            .map(|(kind, ns)| (kind, ns as f64 * 100.0 / wall))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }
}

/// Resident memory of this process, in bytes.
pub fn resident_bytes() -> u64 {
    let pages = read("/proc/self/statm")
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    pages * getconf("PAGESIZE", 4096)
}
