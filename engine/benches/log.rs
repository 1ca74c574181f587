//! Saga-log appends per second with group commit, on a durable SQLite file (WAL, synchronous=FULL)
//! and, when `DATABASE_URL` is set, on PostgreSQL: `concurrency` sagas each appending events one
//! after another (each append waits for its commit, as the engine does).
//!
//! `cargo bench -p baton-engine --bench log [events per saga]` (default 200).

#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::atomic::Ordering;
use std::time::Instant;

use alloy::primitives::B256;
use baton_engine::event::SagaEvent;
use baton_engine::{Db, SagaId, SagaLog};
use baton_planner::StepId;

async fn run(db: Db, concurrency: usize, per_saga: usize) {
    let kind = db.kind();
    let log = SagaLog::new(db);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..concurrency {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(s as u64).to_be_bytes());
            id[8..16].copy_from_slice(&start.elapsed().as_nanos().to_le_bytes()[..8]);
            let saga = SagaId(B256::from(id));
            for k in 0..per_saga {
                log.append(
                    saga,
                    SagaEvent::StepFinal {
                        step: StepId(k as u32),
                        comp: false,
                        block: None,
                        tx: None,
                        receipt: None,
                    },
                )
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let events = log.stats().events.load(Ordering::Relaxed);
    let commits = log.stats().commits.load(Ordering::Relaxed);
    println!(
        "{kind:8} concurrency {concurrency:3}: {:8.0} events/s, {:6.0} commits/s, {:5.1} events per commit",
        events as f64 / secs,
        commits as f64 / secs,
        events as f64 / commits.max(1) as f64
    );
}

fn main() {
    let per_saga: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for concurrency in [1, 16, 64] {
            let path = std::env::temp_dir().join(format!("baton-bench-{concurrency}.db"));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            let db = Db::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            run(db, concurrency, per_saga).await;
        }
        if let Ok(url) = std::env::var("DATABASE_URL") {
            for concurrency in [1, 16, 64] {
                let schema = format!("baton_bench_{}_{concurrency}", std::process::id());
                let db = Db::connect_in(&url, Some(&schema)).await.unwrap();
                run(db, concurrency, per_saga).await;
            }
        }
    });
}
