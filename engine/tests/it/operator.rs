//! Operators on the sim: a paused chain holds new transactions until resumed, the emergency brake
//! refuses new intents, and a retry finishes a saga that stopped for an operator; every action is
//! recorded with who did it.

use std::time::Duration;

use baton_engine::control::Scope;
use baton_engine::simworld::{World, fast, units_of};
use baton_engine::view::Status;
use baton_engine::{Db, EngineError, Outcome, SagaEvent, SagaId};

use crate::sqlite_file;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_chain_holds_new_transactions_until_it_is_resumed() {
    let world = World::new().await;
    let (url, _file) = sqlite_file();
    let engine = world.engine(Db::connect(&url).await.unwrap(), fast());
    let dest = world.dest.chain_id();
    let pauses = engine
        .pause(Scope::Chain(dest), "alice", "node upgrade")
        .await
        .unwrap();
    assert_eq!(pauses.len(), 1);
    assert_eq!(
        (pauses[0].by.as_str(), pauses[0].reason.as_str()),
        ("alice", "node upgrade")
    );
    let input = world.input(world.intent(1, "WETH", units_of(39, 16)));
    let plan = input.plan().unwrap().plan;
    let saga = engine.submit(input).await.unwrap();

    // The origin goes ahead; nothing is signed on the paused destination.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let events = engine.log().events(saga).await.unwrap();
    let signed_on = |chain| {
        events.iter().any(|e| {
            matches!(&e.event,
            SagaEvent::TxSigned { step, .. } if plan.step(*step).unwrap().chain == chain)
        })
    };
    assert!(signed_on(world.origin.chain_id()), "{events:#?}");
    assert!(!signed_on(dest), "{events:#?}");
    assert_eq!(
        engine.view(saga).await.unwrap().unwrap().status,
        Status::Running
    );

    assert!(
        engine
            .resume(Scope::Chain(dest), "bob")
            .await
            .unwrap()
            .is_empty()
    );
    let outcome = tokio::time::timeout(Duration::from_secs(60), engine.wait(saga))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome, Outcome::Fulfilled);
    let actions = engine.operator_actions(10).await.unwrap();
    let done: Vec<(&str, &str, &str)> = actions
        .iter()
        .map(|a| (a.by.as_str(), a.action.as_str(), a.target.as_str()))
        .collect();
    let target = format!("chain:{}", dest.0);
    assert!(
        done.contains(&("alice", "pause", target.as_str())),
        "{done:?}"
    );
    assert!(
        done.contains(&("bob", "resume", target.as_str())),
        "{done:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emergency_brake_refuses_new_intents_and_survives_a_restart() {
    let world = World::new().await;
    let (url, _file) = sqlite_file();
    let engine = world.engine(Db::connect(&url).await.unwrap(), fast());
    engine.pause(Scope::All, "carol", "incident").await.unwrap();
    let input = world.input(world.intent(1, "WETH", units_of(39, 16)));
    assert!(matches!(
        engine.submit(input.clone()).await,
        Err(EngineError::Paused)
    ));
    drop(engine);

    // A new engine on the same log loads the brake at recovery.
    let engine = world.engine(Db::connect(&url).await.unwrap(), fast());
    engine.recover().await.unwrap();
    assert!(matches!(
        engine.submit(input.clone()).await,
        Err(EngineError::Paused)
    ));
    engine.resume(Scope::All, "carol").await.unwrap();
    let saga = engine.submit(input).await.unwrap();
    assert_eq!(engine.wait(saga).await.unwrap(), Outcome::Fulfilled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_finishes_a_saga_that_stopped_for_an_operator() {
    let world = World::new().await;
    let (url, _file) = sqlite_file();
    let config = fast();
    let engine = world.engine(Db::connect(&url).await.unwrap(), config.clone());
    // Every attempt of the first budget reverts; the next one will not.
    for _ in 0..config.max_attempts {
        world.origin.revert_next("settle", "the attester is down");
    }
    let saga = engine
        .submit(world.input(world.intent(1, "WETH", units_of(39, 16))))
        .await
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(60), engine.wait(saga))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::Fulfilled,
        "the user was paid; the solver not yet"
    );
    let view = engine.view(saga).await.unwrap().unwrap();
    assert_eq!(view.status, Status::Decided, "{view:#?}");
    assert!(!view.alerts.is_empty());
    let settle = view.steps.iter().find(|s| s.action == "settle").unwrap();
    assert_eq!(settle.progress.attempts, config.max_attempts as usize);
    assert_eq!(settle.progress.reason_code.as_deref(), Some("reverted"));

    assert!(matches!(
        engine.retry(SagaId(Default::default()), "dave").await,
        Err(EngineError::NotFound(_))
    ));
    engine.retry(saga, "dave").await.unwrap();
    assert!(
        matches!(
            engine.retry(saga, "dave").await,
            Err(EngineError::Conflict(_))
        ),
        "a running saga is not retried twice"
    );
    tokio::time::timeout(Duration::from_secs(60), engine.wait(saga))
        .await
        .unwrap()
        .unwrap();
    let view = engine.view(saga).await.unwrap().unwrap();
    assert_eq!(view.status, Status::Completed, "{view:#?}");
    let events = engine.log().events(saga).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event == SagaEvent::Retried { by: "dave".into() })
    );
    assert_eq!(engine.log().verify(Some(saga)).await.unwrap().broken, None);
    assert!(engine.log().unfinished().await.unwrap().is_empty());
    let actions = engine.operator_actions(10).await.unwrap();
    assert!(
        actions
            .iter()
            .any(|a| a.by == "dave" && a.action == "retry" && a.target == saga.to_string())
    );
    assert!(
        matches!(
            engine.retry(saga, "dave").await,
            Err(EngineError::Conflict(_))
        ),
        "completed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_runs_the_input_and_plan_of_its_latest_resume_else_its_admitted_ones() {
    let world = World::new().await;
    let admitted = world.input(world.intent(1, "WETH", units_of(39, 16)));
    let body = serde_json::to_string(&admitted).unwrap();
    let saga = SagaId(admitted.plan().unwrap().plan.intent().id().0);
    let started = SagaEvent::Started {
        intent: admitted.plan().unwrap().plan.intent().id(),
        plan: alloy::primitives::B256::repeat_byte(1),
    };
    let (input, plan) = baton_engine::SagaInput::running(saga, &body, [&started]).unwrap();
    assert_eq!(input.config.slippage_bps, admitted.config.slippage_bps);
    assert_eq!(plan, Some(alloy::primitives::B256::repeat_byte(1)));

    let change = baton_planner::ConfigPatch {
        slippage_bps: Some(admitted.config.slippage_bps + 50),
        ..Default::default()
    };
    let resumed_input =
        admitted.replanned(admitted.snapshot.clone(), change.apply(admitted.config));
    let resumed = SagaEvent::Resumed {
        by: "ops".into(),
        change,
        input: serde_json::to_value(&resumed_input).unwrap(),
        plan: alloy::primitives::B256::repeat_byte(2),
    };
    let (input, plan) =
        baton_engine::SagaInput::running(saga, &body, [&started, &resumed]).unwrap();
    assert_eq!(input.config.slippage_bps, admitted.config.slippage_bps + 50);
    assert_eq!(plan, Some(alloy::primitives::B256::repeat_byte(2)));
}
