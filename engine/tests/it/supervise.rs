//! A saga's driver that stops on a database error is restarted from the log, with backoff, and the
//! saga shows why (an alert): it never stays `running` with nobody driving it.

use std::time::Duration;

use baton_engine::simworld::{World, fast, units_of};
use baton_engine::{Db, EngineConfig, Outcome, SagaEvent, with_pool};

use crate::databases;

/// Renames the saga table away (`away`) or back: every query that needs it fails meanwhile, as a
/// database that lost its tables, or a connection that broke, makes them fail.
async fn table_away(db: &Db, away: bool) {
    let sql = if away {
        "ALTER TABLE sagas RENAME TO sagas_away"
    } else {
        "ALTER TABLE sagas_away RENAME TO sagas"
    };
    with_pool!(db, pool => { sqlx::query(sql).execute(pool).await.unwrap(); });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_stopped_by_its_database_is_restarted_and_the_saga_says_why() {
    for (db, _file) in databases().await {
        let kind = db.kind();
        // Blocks every 100 ms: the saga is still running when its database fails.
        let world = World::with_blocks_every(Duration::from_millis(100)).await;
        let engine = world.engine(
            db.clone(),
            EngineConfig {
                lease: Duration::from_millis(300),
                ..fast()
            },
        );
        let saga = engine
            .submit(world.input(world.intent(1, "WETH", units_of(39, 16))))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        table_away(&db, true).await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        table_away(&db, false).await;

        let outcome = tokio::time::timeout(Duration::from_secs(60), engine.wait(saga))
            .await
            .expect("the saga ends")
            .unwrap_or_else(|e| panic!("{kind}: the driver ended with {e}"));
        assert_eq!(outcome, Outcome::Fulfilled, "{kind}");
        let events = engine.log().events(saga).await.unwrap();
        let restarts = events
            .iter()
            .filter(|e| {
                matches!(&e.event, SagaEvent::Alert { reason }
                if reason.contains("driver stopped") && reason.contains("restarted"))
            })
            .count();
        assert!(
            restarts >= 1,
            "{kind}: {:?}",
            events.iter().map(|e| e.event.kind()).collect::<Vec<_>>()
        );
        assert_eq!(engine.log().verify(Some(saga)).await.unwrap().broken, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_sagas_leave_no_task_behind_and_their_outcome_is_still_there() {
    let (url, _file) = crate::sqlite_file();
    let world = World::new().await;
    let engine = world.engine(Db::connect(&url).await.unwrap(), fast());
    let mut sagas = Vec::new();
    for nonce in 1..=8 {
        let input = world.input(world.intent(nonce, "USDC", units_of(900, 6)));
        sagas.push(engine.submit(input).await.unwrap());
    }
    let started = std::time::Instant::now();
    while engine.tasks_held() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} tasks still held",
            engine.tasks_held()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for saga in sagas {
        assert_eq!(engine.wait(saga).await.unwrap(), Outcome::Fulfilled);
    }
}
