//! Crash anywhere: the engine stops right after its k-th event (before the effect that event
//! announces), a new engine recovers from the same database, and the end is the same as without the
//! crash — outcome, balances, and no transaction executed twice. For every k, on SQLite and on
//! PostgreSQL.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use baton_engine::{Db, EngineConfig, EngineError, Outcome};

use crate::{TempFile, postgres, sqlite_file};
use baton_engine::simworld::{World, fast, units_of};

struct End {
    outcome: Outcome,
    balances: Vec<(Address, Address, U256)>,
    solver_txs: (u64, u64),
    events: usize,
}

type MakeDb = fn() -> Pin<Box<dyn Future<Output = (Db, Option<TempFile>)>>>;

/// Runs the standard intent; with `crash_at`, the first engine stops after that many events and a
/// second one recovers. With `followed`, each engine's adapters have a follower in front, as the
/// server's do.
async fn run(make_db: MakeDb, crash_at: Option<u64>, followed: bool) -> End {
    let world = World::new().await;
    let (db, _file) = make_db().await;
    let input = world.input(world.intent(1, "WETH", units_of(39, 16)));
    let engine = |db, config| world.engine_followed(db, config, followed);
    let first = engine(
        db.clone(),
        EngineConfig {
            stop_after_events: crash_at,
            ..fast()
        },
    );
    let saga = first.submit(input).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_secs(60), first.wait(saga))
        .await
        .expect("ends or stops within a minute");
    let outcome = match (crash_at, waited) {
        (None, Ok(outcome)) => outcome,
        (Some(k), Err(EngineError::Stopped(n))) => {
            assert_eq!(n, k);
            drop(first);
            let second = engine(db.clone(), fast());
            let resumed = second.recover().await.unwrap();
            assert_eq!(resumed, vec![saga], "the crashed saga is resumed");
            tokio::time::timeout(Duration::from_secs(60), second.wait(saga))
                .await
                .expect("the resumed saga ends within a minute")
                .unwrap()
        }
        (Some(k), Ok(outcome)) => panic!("no crash at {k}: the saga ended {outcome:?} first"),
        (_, Err(e)) => panic!("{e}"),
    };
    let log = baton_engine::SagaLog::new(db);
    assert_eq!(log.verify(Some(saga)).await.unwrap().broken, None);
    let solver = world.solver.address();
    End {
        outcome,
        balances: world.balances(),
        solver_txs: (world.origin.nonce(solver), world.dest.nonce(solver)),
        events: log.events(saga).await.unwrap().len(),
    }
}

async fn crash_everywhere(db: MakeDb, followed: bool) {
    let reference = run(db, None, followed).await;
    assert_eq!(reference.outcome, Outcome::Fulfilled);
    assert!(
        reference.events >= 10,
        "a saga of {} events",
        reference.events
    );
    for k in 1..reference.events as u64 {
        let end = run(db, Some(k), followed).await;
        assert_eq!(end.outcome, reference.outcome, "crash after event {k}");
        assert_eq!(
            end.balances, reference.balances,
            "crash after event {k}: balances"
        );
        assert_eq!(
            end.solver_txs, reference.solver_txs,
            "crash after event {k}: the solver's transactions (none twice)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_any_event_ends_as_without_it_on_sqlite() {
    crash_everywhere(sqlite, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_followers_a_crash_after_any_event_ends_as_without_it() {
    crash_everywhere(sqlite, true).await;
}

fn sqlite() -> Pin<Box<dyn Future<Output = (Db, Option<TempFile>)>>> {
    Box::pin(async {
        let (url, file) = sqlite_file();
        (Db::connect(&url).await.unwrap(), Some(file))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_any_event_ends_as_without_it_on_postgres() {
    if postgres().await.is_none() {
        return;
    }
    crash_everywhere(
        || Box::pin(async { (postgres().await.unwrap(), None) }),
        false,
    )
    .await;
}
