//! A bench's findings: the table it prints (figure, value, target) or the same figures as one
//! JSON object, with the machine they were measured on; and the arithmetic of its figures.

use std::time::Duration;

use serde_json::{Map, Value, json};

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

    pub(crate) fn print(mut self) {
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
