//! `baton bench engine`: sagas per second through the engine alone, on the sim chains (which mine
//! a block every millisecond), with a durable saga log.
//!
//! The saga: 1,000 USDC on chain 1001 for USDC on chain 1002 — open, wait for finality, fill,
//! attest, settle: 5 steps, 3 of them transactions, each with its compensation planned (the open's
//! refund runs when the fill fails).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use baton_adapters::port::ChainAdapter as _;
use baton_engine::simworld::{World, fast, units_of};
use baton_engine::{Db, Outcome};
use clap::Args;
use serde_json::json;

use crate::measure::{Progress, cpu_seconds, disk_written_bytes};
use crate::report::{Report, round3};
use crate::sim::{Log, nonce_base, world};

/// `baton bench engine`.
#[derive(Args)]
pub struct EngineArgs {
    /// Sagas to run.
    #[arg(long, default_value_t = 2_000)]
    sagas: usize,
    /// Sagas in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// The saga log: a PostgreSQL URL; default, a fresh SQLite file (WAL, synchronous) in the
    /// temporary directory.
    #[arg(long)]
    database_url: Option<String>,
    /// This fraction of the sagas has its fill revert (injected on the sim), so they compensate:
    /// the open is refunded.
    #[arg(long, default_value_t = 0.0)]
    fail_fraction: f64,
    /// One JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// The origin chain's head block number.
async fn origin_height(world: &World) -> Result<u64> {
    Ok(world
        .origin
        .adapter(world.solver.clone())
        .head()
        .await?
        .number)
}

pub(crate) async fn engine(args: EngineArgs) -> Result<Report> {
    if args.sagas == 0 || args.concurrency == 0 {
        bail!("--sagas and --concurrency must be at least 1");
    }
    if !(0.0..=1.0).contains(&args.fail_fraction) {
        bail!("--fail-fraction must be between 0 and 1");
    }
    let world = Arc::new(world().await);
    let log = Log::new(args.database_url.clone(), "engine");
    let db = Db::connect(&log.url)
        .await
        .with_context(|| format!("opening the saga log {}", log.url))?;
    let engine = Arc::new(world.engine(db, fast()));
    let base = nonce_base();
    let inputs: Vec<_> = (0..args.sagas)
        .map(|k| {
            world.input(world.intent_within(base + k as u64, "USDC", units_of(990, 6), 1_000_000))
        })
        .collect();
    let failing = (args.sagas as f64 * args.fail_fraction).round() as usize;
    for _ in 0..failing {
        world.dest.revert_next("fill", "bench: injected revert");
    }
    eprintln!(
        "baton bench engine: {} sagas at concurrency {} on {} ({} with a failing fill) …",
        args.sagas,
        args.concurrency,
        log.kind(),
        failing
    );
    let inputs = Arc::new(Mutex::new(inputs));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stats = engine.log().stats();
    let (events0, commits0) = (
        stats.events.load(std::sync::atomic::Ordering::Relaxed),
        stats.commits.load(std::sync::atomic::Ordering::Relaxed),
    );
    let work0 = engine.work();
    let cpu = cpu_seconds();
    let written = disk_written_bytes();
    // The blocks the sim chains actually produced: their pace is part of every saga's latency.
    let h0 = origin_height(&world).await?;
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (engine, inputs, done) = (engine.clone(), inputs.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let next = inputs.lock().unwrap_or_else(|p| p.into_inner()).pop();
                let Some(input) = next else { break };
                let t = Instant::now();
                let saga = engine.submit(input).await?;
                let outcome = engine.wait(saga).await?;
                latencies.push((t.elapsed(), outcome));
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            anyhow::Ok((latencies, Instant::now()))
        }));
    }
    let mut progress = Progress::new("sagas", args.sagas);
    while !workers.iter().all(|w| w.is_finished()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        progress.tick(done.load(std::sync::atomic::Ordering::Relaxed));
    }
    let mut results = Vec::new();
    // Until the last saga ended, not until the progress loop above noticed it.
    let mut end = start;
    for w in workers {
        let (latencies, ended) = w.await??;
        results.extend(latencies);
        end = end.max(ended);
    }
    let secs = (end - start).as_secs_f64();
    let h1 = origin_height(&world).await?;
    let block_ms = secs * 1e3 / (h1 - h0).max(1) as f64;
    let cpu = cpu_seconds() - cpu;
    let written = disk_written_bytes().saturating_sub(written) as f64;
    let work = engine.work();
    let events = stats.events.load(std::sync::atomic::Ordering::Relaxed) - events0;
    let commits = stats.commits.load(std::sync::atomic::Ordering::Relaxed) - commits0;
    let steps = (work.steps_done - work0.steps_done).max(1) as f64;
    let signed = (work.signed - work0.signed) as f64 / args.sagas as f64;
    let ticks = (work.ticks - work0.ticks) as f64 / args.sagas as f64;
    let busy_ms = (work.busy_ns - work0.busy_ns) as f64 / 1e6;
    let commit_ms = (work.commit_ns - work0.commit_ns) as f64 / 1e6;

    let mut all: Vec<Duration> = results.iter().map(|r| r.0).collect();
    all.sort();
    let mut refunds: Vec<Duration> = results
        .iter()
        .filter(|r| r.1 == Outcome::Refunded)
        .map(|r| r.0)
        .collect();
    refunds.sort();
    let fulfilled = results.iter().filter(|r| r.1 == Outcome::Fulfilled).count();
    let failed = results.len() - fulfilled - refunds.len();
    let rate = args.sagas as f64 / secs;
    let overhead = (busy_ms - commit_ms) / steps;

    let mut report = Report::new("engine", args.json);
    report
        .value("sagas", json!(args.sagas))
        .value("concurrency", json!(args.concurrency))
        .value("database", json!(log.kind()))
        .value("steps_per_saga", json!(5))
        .value("seconds", json!(round3(secs)))
        .figure(
            "sagas_per_sec",
            json!(round3(rate)),
            "sagas per second",
            format!("{rate:.0}"),
            "≥ 2000",
        )
        .latency("p50_ms", "per saga p50", &all, 0.5, "")
        .latency("p90_ms", "per saga p90", &all, 0.9, "")
        .latency("p99_ms", "per saga p99", &all, 0.99, "")
        .figure(
            "overhead_ms_per_step",
            json!(round3(overhead)),
            "engine overhead per step (busy − durable waits)",
            format!("{overhead:.3} ms"),
            "≤ 0.5 ms (at concurrency 1)",
        )
        .figure(
            "durable_wait_ms_per_step",
            json!(round3(commit_ms / steps)),
            "waiting for durable commits per step",
            format!("{:.3} ms", commit_ms / steps),
            "",
        )
        .figure(
            "txs_per_saga",
            json!(round3(signed)),
            "transactions signed per saga (3 without replacements)",
            format!("{signed:.3}"),
            "",
        )
        .figure(
            "ticks_per_saga",
            json!(round3(ticks)),
            "ticks per saga (looks at its steps)",
            format!("{ticks:.1}"),
            "",
        )
        .figure(
            "block_ms",
            json!(round3(block_ms)),
            "sim block time, measured (set: 1 ms)",
            format!("{block_ms:.2} ms"),
            "",
        )
        .figure(
            "cpu_ms_per_step",
            json!(round3(cpu * 1e3 / steps)),
            "process CPU per step (engine, sim, SQLite)",
            format!("{:.3} ms", cpu * 1e3 / steps),
            "",
        )
        .figure(
            "events_per_commit",
            json!(round3(events as f64 / commits.max(1) as f64)),
            "events per durable commit",
            format!("{:.1}", events as f64 / commits.max(1) as f64),
            "",
        )
        .figure(
            "outcomes",
            json!({ "fulfilled": fulfilled, "refunded": refunds.len(), "failed": failed }),
            "fulfilled / refunded / failed",
            format!("{fulfilled} / {} / {failed}", refunds.len()),
            "",
        );
    if log.kind() == "sqlite" {
        // PostgreSQL writes in its own processes: only a SQLite log's writes are this process's.
        let kib = written / 1024.0 / args.sagas as f64;
        report.figure(
            "disk_kib_per_saga",
            json!(round3(kib)),
            "written to disk per saga (SQLite log and WAL)",
            format!("{kib:.1} KiB"),
            "",
        );
    }
    if !refunds.is_empty() {
        report.latency(
            "refund_p50_ms",
            "refunded saga p50 (compensation path)",
            &refunds,
            0.5,
            "",
        );
    }
    Ok(report)
}
