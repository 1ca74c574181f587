//! `baton bench`: the figures of BENCHMARKS.md, each from one command. Every command prints a
//! table (figure, value, target) and, with `--json`, one JSON object instead; progress goes to
//! standard error.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Subcommand;
use serde_json::{Map, Value, json};

mod e2e;
mod engine;
mod intake;

pub(crate) use e2e::E2eArgs;
pub(crate) use engine::{EngineArgs, RecoveryArgs};
pub(crate) use intake::IntakeArgs;

/// What to measure.
#[derive(Subcommand)]
pub(crate) enum Bench {
    /// Sagas per second through the engine on the sim chains, with a durable saga log.
    Engine(EngineArgs),
    /// Time from an engine's start to every one of many in-flight sagas resumed.
    Recovery(RecoveryArgs),
    /// Real intents on anvil chains: time to outcome against the plan's critical-path bound, and
    /// against a sequential script.
    E2e(E2eArgs),
    /// Accepted intents per second through `POST /v1/intents`, driven from this process against a
    /// `baton serve` it starts.
    Intake(IntakeArgs),
}

/// Runs `bench`.
pub(crate) fn run(bench: Bench) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        match bench {
            Bench::Engine(args) => engine::engine(args).await,
            Bench::Recovery(args) => engine::recovery(args).await,
            Bench::E2e(args) => e2e::run(args).await,
            Bench::Intake(args) => intake::run(args).await,
        }
    })?;
    // Sagas still running (recovered ones) stop with the runtime.
    runtime.shutdown_timeout(Duration::from_millis(200));
    report.print();
    Ok(ExitCode::SUCCESS)
}

/// A bench's findings: rows for the table and the same figures as JSON.
pub(crate) struct Report {
    title: String,
    json: bool,
    rows: Vec<(String, String, String)>,
    object: Map<String, Value>,
}

impl Report {
    pub(crate) fn new(title: impl Into<String>, json: bool) -> Self {
        Self {
            title: title.into(),
            json,
            rows: Vec::new(),
            object: Map::new(),
        }
    }

    /// A figure: its JSON key and value, the table's label and rendering, and its target ("" for
    /// none).
    pub(crate) fn figure(
        &mut self,
        key: &str,
        value: Value,
        label: &str,
        shown: String,
        target: &str,
    ) -> &mut Self {
        self.object.insert(key.to_owned(), value);
        self.rows.push((label.to_owned(), shown, target.to_owned()));
        self
    }

    /// A latency figure: the `p`-th fraction of `sorted`, in milliseconds.
    pub(crate) fn latency(
        &mut self,
        key: &str,
        label: &str,
        sorted: &[Duration],
        p: f64,
        target: &str,
    ) -> &mut Self {
        let value = ms(percentile(sorted, p));
        self.figure(key, json!(value), label, format!("{value:.1} ms"), target)
    }

    /// A JSON-only value (the run's parameters, the machine).
    pub(crate) fn value(&mut self, key: &str, value: Value) -> &mut Self {
        self.object.insert(key.to_owned(), value);
        self
    }

    fn print(mut self) {
        self.object
            .insert("bench".into(), Value::String(self.title.clone()));
        self.object.insert("machine".into(), machine());
        if self.json {
            println!("{}", Value::Object(self.object));
            return;
        }
        println!("{}", self.title);
        let w0 = self.rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let w1 = self.rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
        for (label, shown, target) in &self.rows {
            if target.is_empty() {
                println!("  {label:<w0$}  {shown:>w1$}");
            } else {
                println!("  {label:<w0$}  {shown:>w1$}   target {target}");
            }
        }
        println!("  machine: {}", machine_line());
    }
}

/// Cores, memory and the kernel, for the record.
fn machine() -> Value {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    json!({ "cores": cores, "memory_gib": (mem_kib as f64 / 1_048_576.0 * 10.0).round() / 10.0 })
}

fn machine_line() -> String {
    let m = machine();
    format!("{} cores, {} GiB", m["cores"], m["memory_gib"])
}

/// The `p`-th fraction of `sorted` (nearest rank), or the default (zero) when empty.
pub(crate) fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// `x` to three decimals, for the record.
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Milliseconds, for the record.
pub(crate) fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank_and_survive_empty_input() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&d, 0.5), Duration::from_millis(51));
        assert_eq!(percentile(&d, 0.99), Duration::from_millis(100));
        assert_eq!(percentile::<Duration>(&[], 0.5), Duration::ZERO);
    }
}
