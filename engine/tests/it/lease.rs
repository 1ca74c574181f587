//! Several instances on one database: a saga is driven by the instance holding its lease; another
//! takes it over only after the lease lapses, and the old holder's late writes are fenced off.

use std::time::Duration;

use alloy::primitives::B256;
use baton_engine::simworld::{World, fast, units_of};
use baton_engine::{Db, EngineConfig, EngineError, Outcome, SagaEvent, SagaId, SagaLog};
use baton_planner::StepId;

use crate::{databases, postgres, sqlite_file};

fn instance(name: &str, crash_at: Option<u64>) -> EngineConfig {
    EngineConfig {
        instance: name.to_owned(),
        lease: Duration::from_millis(500),
        stop_after_events: crash_at,
        ..fast()
    }
}

async fn takeover(db: Db) {
    let world = World::new().await;
    let a = world.engine(db.clone(), instance("a", Some(4)));
    let saga = a
        .submit(world.input(world.intent(1, "WETH", units_of(39, 16))))
        .await
        .unwrap();
    assert!(
        matches!(a.wait(saga).await, Err(EngineError::Stopped(4))),
        "a dies"
    );

    // b sees the saga leased by a, and leaves it alone until the lease lapses.
    let b = world.engine(db.clone(), instance("b", None));
    assert_eq!(b.recover().await.unwrap(), Vec::<SagaId>::new());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(b.recover().await.unwrap(), vec![saga]);
    assert_eq!(b.wait(saga).await.unwrap(), Outcome::Fulfilled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instance_takes_a_saga_over_only_after_its_lease_lapses() {
    let (url, _file) = sqlite_file();
    takeover(Db::connect(&url).await.unwrap()).await;
    if let Some(db) = postgres().await {
        takeover(db).await;
    }
}

#[tokio::test]
async fn a_stale_holder_cannot_write_after_a_takeover() {
    for (db, _guard) in databases().await {
        let log = SagaLog::new(db.clone());
        let saga = SagaId(B256::repeat_byte(3));
        log.append(
            saga,
            SagaEvent::Started {
                intent: baton_planner::IntentId(saga.0),
                plan: B256::ZERO,
            },
        )
        .await
        .unwrap();
        let old = log
            .acquire_lease(saga, "a", 1_000, 100)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            log.acquire_lease(saga, "b", 1_050, 100).await.unwrap(),
            None,
            "held"
        );
        let new = log
            .acquire_lease(saga, "b", 1_200, 100)
            .await
            .unwrap()
            .unwrap();
        assert!(new > old);
        let event = SagaEvent::StepFinal {
            step: StepId(0),
            comp: false,
            block: None,
            tx: None,
            receipt: None,
        };
        match log.append_fenced(saga, event.clone(), old).await {
            Err(EngineError::LeaseLost) => {}
            other => panic!("a's write must be refused, got {other:?}"),
        }
        assert!(!log.renew_lease(saga, "a", old, 1_210, 100).await.unwrap());
        assert_eq!(log.append_fenced(saga, event, new).await.unwrap().seq, 2);
        assert_eq!(log.events(saga).await.unwrap().len(), 2, "{}", db.kind());
    }
}

/// The saga's outcome once its log says it completed (ten seconds at most).
async fn completed(log: &SagaLog, saga: SagaId) -> Outcome {
    let started = std::time::Instant::now();
    loop {
        let events = log.events(saga).await.unwrap();
        if events.iter().any(|e| e.event == SagaEvent::Completed) {
            return events
                .iter()
                .find_map(|e| match &e.event {
                    SagaEvent::Decided { outcome } => Some(outcome.clone()),
                    _ => None,
                })
                .unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not taken over: {:?}",
            events.iter().map(|e| e.event.kind()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn continuous_takeover(db: Db) {
    let world = World::new().await;
    let a = world.engine(db.clone(), instance("a", Some(4)));
    let saga = a
        .submit(world.input(world.intent(1, "WETH", units_of(39, 16))))
        .await
        .unwrap();
    assert!(matches!(a.wait(saga).await, Err(EngineError::Stopped(4))));

    // b started while a's lease still held: nothing to recover then, and no restart after.
    let b = world.engine(
        db.clone(),
        EngineConfig {
            claim_every: Duration::from_millis(100),
            ..instance("b", None)
        },
    );
    assert_eq!(b.recover().await.unwrap(), Vec::<SagaId>::new());
    assert_eq!(completed(b.log(), saga).await, Outcome::Fulfilled);
    // b drove it on from a's fourth event to its end.
    let events = b.log().events(saga).await.unwrap();
    assert!(events.len() > 4 && events.iter().any(|e| e.event == SagaEvent::Completed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_instance_takes_over_a_lapsed_saga_without_a_restart() {
    let (url, _file) = sqlite_file();
    continuous_takeover(Db::connect(&url).await.unwrap()).await;
    if let Some(db) = postgres().await {
        continuous_takeover(db).await;
    }
}
