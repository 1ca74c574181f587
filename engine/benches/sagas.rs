//! Sagas per second on the sim, with a durable SQLite saga log, at concurrency 1, 16 and 64; p50/p99
//! per saga; CPU per step (an upper bound on the engine's overhead: it includes the sim and
//! SQLite); and the time to recover 10,000 in-flight sagas.
//!
//! `cargo bench -p baton-engine --bench sagas [sagas at concurrency 1] [in-flight sagas to recover]`
//! (defaults 100 and 10,000; 10× and 20× the first at concurrency 16 and 64). The saga: 1,000 USDC on chain 1001 for USDC on chain 1002 — open, wait for
//! finality, fill, attest, settle (5 steps, 3 transactions); the sim mines a block every 1 ms.
//! "Engine busy" is the time inside the drivers' ticks (engine logic, sim calls and the saga-log
//! commits they wait for) per step; "process CPU" is everything the process burned (sim mining,
//! SQLite, signatures) per step.

#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_engine::event::SagaEvent;
use baton_engine::simworld::{World, fast, units_of};
use baton_engine::{Db, Engine, Outcome, SagaId, SagaLog};

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
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

fn sqlite(name: &str) -> String {
    let path = std::env::temp_dir().join(format!("baton-bench-{name}-{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    format!("sqlite://{}", path.display())
}

async fn world() -> World {
    let world = World::with_blocks_every(Duration::from_millis(1)).await;
    world
        .origin
        .mint(world.usdc_o, world.user.address(), units_of(100_000_000, 6));
    world.dest.mint(
        world.usdc_d,
        world.solver.address(),
        units_of(100_000_000, 6),
    );
    world
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

async fn throughput(concurrency: usize, total: usize) {
    let world = Arc::new(world().await);
    let db = Db::connect(&sqlite(&format!("c{concurrency}")))
        .await
        .unwrap();
    let engine = Arc::new(world.engine(db, fast()));
    let inputs: Vec<_> = (0..total)
        .map(|k| {
            world.input(world.intent_within(k as u64 + 1, "USDC", units_of(990, 6), 1_000_000))
        })
        .collect();
    let inputs = Arc::new(std::sync::Mutex::new(inputs));
    let cpu = cpu_seconds();
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (engine, inputs) = (engine.clone(), inputs.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let Some(input) = inputs.lock().unwrap().pop() else {
                    break;
                };
                let t = Instant::now();
                let saga = engine.submit(input).await.unwrap();
                assert_eq!(engine.wait(saga).await.unwrap(), Outcome::Fulfilled);
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    latencies.sort();
    let work = engine.work();
    println!(
        "concurrency {concurrency:3}: {total:5} sagas in {secs:6.2} s = {:7.1} sagas/s; per saga p50 {:6.1} ms, p99 {:6.1} ms; \
         engine busy {:.3} ms per step (of which {:.3} waiting for durable commits); process CPU {:.3} ms per step",
        total as f64 / secs,
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        work.busy_ns as f64 / 1e6 / work.steps_done.max(1) as f64,
        work.commit_ns as f64 / 1e6 / work.steps_done.max(1) as f64,
        cpu * 1e3 / work.steps_done.max(1) as f64,
    );
}

async fn recovery(count: usize) {
    let world = world().await;
    let url = sqlite("recovery");
    let db = Db::connect(&url).await.unwrap();
    // `count` sagas accepted and started, none of whose transactions were sent: a crash right
    // after their first event.
    let first = world.engine(
        db.clone(),
        baton_engine::EngineConfig {
            stop_after_events: Some(0),
            ..fast()
        },
    );
    let log = SagaLog::new(db.clone());
    let mut appends = Vec::new();
    for k in 0..count {
        let input =
            world.input(world.intent_within(k as u64 + 1, "USDC", units_of(990, 6), 1_000_000));
        let planned = input.plan().unwrap();
        let id = SagaId::from(planned.plan.intent().id());
        baton_engine::with_pool!(&db, pool => {
            sqlx::query("INSERT INTO intents (id, body, created_ms) VALUES ($1, $2, 0)")
                .bind(id.to_string())
                .bind(serde_json::to_string(&input).unwrap())
                .execute(pool)
                .await
                .unwrap();
        });
        let log = log.clone();
        appends.push(tokio::spawn(async move {
            log.append(
                id,
                SagaEvent::Started {
                    intent: planned.plan.intent().id(),
                    plan: planned.hash,
                },
            )
            .await
            .unwrap();
        }));
    }
    for a in appends {
        a.await.unwrap();
    }
    drop(first);
    let engine: Engine = world.engine(db, fast());
    let start = Instant::now();
    let resumed = engine.recover().await.unwrap();
    let elapsed = start.elapsed();
    assert_eq!(resumed.len(), count);
    println!(
        "recovery: {count} in-flight sagas re-planned, their logs read and their drivers started in {:.2} s",
        elapsed.as_secs_f64()
    );
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let base = args.first().copied().unwrap_or(100);
    let in_flight = args.get(1).copied().unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        throughput(1, base).await;
        throughput(16, base * 10).await;
        throughput(64, base * 20).await;
        recovery(in_flight).await;
    });
    // Recovered sagas are still running; the runtime's shutdown stops them.
    runtime.shutdown_timeout(Duration::from_millis(100));
}
