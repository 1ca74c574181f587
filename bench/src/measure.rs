//! What a bench reads of this process (or of the server it started) while it runs: CPU time and
//! bytes written; and its progress lines on standard error.

use std::time::Duration;

/// User + system CPU seconds of this process so far (Linux; zero elsewhere).
pub(crate) fn cpu_seconds() -> f64 {
    cpu_seconds_of("self")
}

/// User + system CPU seconds of process `pid` (`self` for this one) so far (Linux; zero
/// elsewhere).
pub(crate) fn cpu_seconds_of(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of /proc/self/stat (utime, stime), counted after the ")".
    (ticks(11) + ticks(12)) / 100.0
}

/// Bytes this process has caused to be written to storage so far (`write_bytes` of
/// `/proc/self/io`: the saga log's WAL and database file, on Linux; zero elsewhere).
pub(crate) fn disk_written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("write_bytes:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Prints `done` of `total` to standard error at most once a second (and at the end).
pub(crate) struct Progress {
    what: &'static str,
    total: usize,
    last: std::time::Instant,
}

impl Progress {
    pub(crate) fn new(what: &'static str, total: usize) -> Self {
        Self {
            what,
            total,
            last: std::time::Instant::now(),
        }
    }

    pub(crate) fn tick(&mut self, done: usize) {
        if done == self.total || self.last.elapsed() >= Duration::from_secs(1) {
            self.last = std::time::Instant::now();
            eprintln!("  {done}/{} {}", self.total, self.what);
        }
    }
}
