//! Metrics: outcomes by route, time to outcome, steps and transactions are recorded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use baton_engine::simworld::{World, fast, units_of};
use baton_engine::{Db, Outcome};
use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

use crate::sqlite_file;

#[derive(Default)]
struct Recorded {
    counters: Mutex<HashMap<String, Arc<Count>>>,
    histograms: Mutex<HashMap<String, Arc<Samples>>>,
}

#[derive(Default)]
struct Count(AtomicU64);
impl CounterFn for Count {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);
impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

/// `name{k=v,…}` with labels sorted.
fn id(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for Recorded {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let c = self
            .counters
            .lock()
            .unwrap()
            .entry(id(key))
            .or_default()
            .clone();
        Counter::from_arc(c)
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let h = self
            .histograms
            .lock()
            .unwrap()
            .entry(id(key))
            .or_default()
            .clone();
        Histogram::from_arc(h)
    }
}

impl Recorded {
    fn count(&self, id: &str) -> u64 {
        self.counters
            .lock()
            .unwrap()
            .get(id)
            .map_or(0, |c| c.0.load(Ordering::Relaxed))
    }
    fn samples(&self, id: &str) -> Vec<f64> {
        self.histograms
            .lock()
            .unwrap()
            .get(id)
            .map_or_else(Vec::new, |h| h.0.lock().unwrap().clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_time_to_outcome_steps_and_transactions_are_counted() {
    let recorded: &'static Recorded = Box::leak(Box::default());
    // Other tests of this binary may record too: only lower bounds are asserted.
    metrics::set_global_recorder(recorded).unwrap();
    for (nonce, fault) in [(1u64, false), (2, true)] {
        let world = World::new().await;
        if fault {
            world.dest.revert_next("fill", "no");
        }
        let (url, _file) = sqlite_file();
        let engine = world.engine(Db::connect(&url).await.unwrap(), fast());
        let saga = engine
            .submit(world.input(world.intent(nonce, "WETH", units_of(39, 16))))
            .await
            .unwrap();
        let expected = if fault {
            Outcome::Refunded
        } else {
            Outcome::Fulfilled
        };
        assert_eq!(engine.wait(saga).await.unwrap(), expected);
    }
    let route = "route=1001>1002";
    assert!(recorded.count(&format!("baton_sagas_admitted_total{{{route}}}")) >= 2);
    for outcome in ["fulfilled", "refunded"] {
        let key = format!("{{outcome={outcome},{route}}}");
        assert!(
            recorded.count(&format!("baton_saga_outcomes_total{key}")) >= 1,
            "{outcome}"
        );
        let samples = recorded.samples(&format!("baton_saga_time_to_outcome_seconds{key}"));
        assert!(!samples.is_empty() && samples.iter().all(|s| *s >= 0.0 && *s < 60.0));
    }
    assert!(recorded.count("baton_steps_done_total{action=fill,compensation=false}") >= 1);
    assert!(recorded.count("baton_steps_done_total{action=open,compensation=true}") >= 1);
    assert!(recorded.count("baton_transactions_signed_total{chain=1002,kind=first}") >= 3);
}
