//! CPU time and resident memory of this process, from `/proc/self`.

use std::time::Instant;

fn getconf(name: &str, default: u64) -> u64 {
    std::process::Command::new("getconf")
        .arg(name)
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(default)
}

/// utime + stime in clock ticks (fields 14 and 15) of a `stat` file: of this
/// process (`/proc/self/stat`) or of one of its threads.
fn cpu_ticks(path: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0;
    };
    // The command name (field 2) may hold spaces: count fields after its ')'.
    let Some(rest) = stat.rfind(')').and_then(|i| stat.get(i + 1..)) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // After ')' the first field is field 3 (state): utime (14) is index 11.
    field(11).unwrap_or(0) + field(12).unwrap_or(0)
}

/// utime + stime of this process's threads whose name starts with `prefix`.
fn thread_ticks(prefix: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.starts_with(prefix))
        })
        .map(|task| cpu_ticks(&task.path().join("stat").to_string_lossy()))
        .sum()
}

/// The in-process network's delivery thread: it stands in for the real transport,
/// runs the same code under both drivers, and is counted apart.
pub const NETWORK_THREAD: &str = "local-net-pump";

/// A point in time and the process's CPU time then.
#[derive(Debug, Clone, Copy)]
pub struct CpuClock {
    at: Instant,
    ticks: u64,
    network_ticks: u64,
    hz: u64,
}

impl CpuClock {
    /// Reads the clock now.
    pub fn now() -> CpuClock {
        CpuClock {
            at: Instant::now(),
            ticks: cpu_ticks("/proc/self/stat"),
            network_ticks: thread_ticks(NETWORK_THREAD),
            hz: getconf("CLK_TCK", 100),
        }
    }

    /// Percent of one core the in-process network's delivery thread used since
    /// `earlier` (a thread that ended between the readings is lost to this figure).
    pub fn network_percent_since(&self, earlier: &CpuClock) -> f64 {
        let wall = self.at.duration_since(earlier.at).as_secs_f64().max(1e-9);
        let used = self.network_ticks.saturating_sub(earlier.network_ticks) as f64 / self.hz as f64;
        used * 100.0 / wall
    }

    /// Percent of one core this process used since `earlier` (clock-tick resolution:
    /// 10 ms at 100 Hz, so measure over seconds).
    pub fn percent_since(&self, earlier: &CpuClock) -> f64 {
        let wall = self.at.duration_since(earlier.at).as_secs_f64().max(1e-9);
        let used = self.ticks.saturating_sub(earlier.ticks) as f64 / self.hz as f64;
        used * 100.0 / wall
    }
}

/// Resident memory of this process in bytes (`/proc/self/statm`, second field).
pub fn resident_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    pages * getconf("PAGESIZE", 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_loop_shows_cpu_and_memory_is_resident() {
        let start = CpuClock::now();
        let until = Instant::now() + std::time::Duration::from_millis(300);
        let mut x = 0u64;
        while Instant::now() < until {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let percent = CpuClock::now().percent_since(&start);
        assert!(percent > 30.0, "a busy loop used {percent}% of a core");
        assert!(resident_bytes() > 1 << 20);
    }
}
