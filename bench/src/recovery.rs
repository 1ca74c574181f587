//! `baton bench recovery`: time from an engine's start to every one of many in-flight sagas
//! resumed, on the sim chains with a durable saga log (the saga of `baton bench engine`, admitted
//! and started, none of its transactions sent).

use std::time::Instant;

use anyhow::{Context, Result, bail};
use baton_engine::event::SagaEvent;
use baton_engine::simworld::{fast, units_of};
use baton_engine::{Db, Engine, EngineConfig, SagaId, SagaLog};
use clap::Args;
use serde_json::json;

use crate::measure::Progress;
use crate::report::Report;
use crate::sim::{Log, nonce_base, world};

/// `baton bench recovery`.
#[derive(Args)]
pub struct RecoveryArgs {
    /// In-flight sagas to recover.
    #[arg(long, default_value_t = 10_000)]
    sagas: usize,
    /// The saga log: a PostgreSQL URL; default, a fresh SQLite file in the temporary directory.
    #[arg(long)]
    database_url: Option<String>,
    /// One JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn recovery(args: RecoveryArgs) -> Result<Report> {
    let world = world().await;
    let log = Log::new(args.database_url.clone(), "recovery");
    let db = Db::connect(&log.url)
        .await
        .with_context(|| format!("opening the saga log {}", log.url))?;
    eprintln!(
        "baton bench recovery: writing {} in-flight sagas to {} …",
        args.sagas,
        log.kind()
    );
    // `sagas` sagas accepted and started, none of whose transactions were sent: a crash right
    // after their first event.
    let saga_log = SagaLog::new(db.clone());
    let base = nonce_base();
    let mut appends = tokio::task::JoinSet::new();
    let mut ids = Vec::with_capacity(args.sagas);
    let mut progress = Progress::new("sagas written", args.sagas);
    for k in 0..args.sagas {
        let input =
            world.input(world.intent_within(base + k as u64, "USDC", units_of(990, 6), 1_000_000));
        let planned = input.plan()?;
        let id = SagaId::from(planned.plan.intent().id());
        ids.push(id);
        // Admitted as the engine admits (its input stored with it), without inventory to reserve.
        let admission = baton_engine::log::Admission {
            body: serde_json::to_string(&input)?,
            route: String::new(),
            needs: Vec::new(),
            available: Default::default(),
            now_ms: 0,
            expires_ms: 0,
            lease: None,
            submitter: None,
        };
        let saga_log = saga_log.clone();
        appends.spawn(async move {
            saga_log
                .admit(
                    id,
                    admission,
                    SagaEvent::Started {
                        intent: planned.plan.intent().id(),
                        plan: planned.hash,
                    },
                )
                .await
        });
        progress.tick(k + 1);
    }
    while let Some(appended) = appends.join_next().await {
        appended??;
    }
    let engine: Engine = world.engine(
        db,
        EngineConfig {
            instance: format!("bench-recovery-{}", fastrand::u32(..)),
            ..fast()
        },
    );
    eprintln!("recovering …");
    let start = Instant::now();
    let resumed = engine.recover().await?;
    let elapsed = start.elapsed();
    let ours = ids.iter().filter(|id| resumed.contains(id)).count();
    if ours != args.sagas {
        bail!(
            "{} of the {} in-flight sagas were resumed",
            ours,
            args.sagas
        );
    }
    let mut report = Report::new("recovery", args.json);
    report
        .value("sagas", json!(args.sagas))
        .value("database", json!(log.kind()))
        .value("resumed_in_total", json!(resumed.len()))
        .figure(
            "seconds",
            json!(elapsed.as_secs_f64()),
            "start to every in-flight saga resumed (read, re-planned, driver started)",
            format!("{:.2} s", elapsed.as_secs_f64()),
            "≤ 2 s for 10,000",
        );
    drop(engine);
    Ok(report)
}
