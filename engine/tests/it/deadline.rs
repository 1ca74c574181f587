//! The fill deadline on the sim: a fill held back until it could no longer land before the order's
//! fill deadline is never signed, and the intent ends Refunded with the solver's inventory untouched
//! and the recipient unpaid; nor is one signed closer to the deadline than the configured margin of
//! blocks.

use std::time::Duration;

use baton_engine::control::Scope;
use baton_engine::event::FailureKind;
use baton_engine::simworld::{World, fast, units_of};
use baton_engine::{Db, Engine, EngineConfig, Outcome, SagaEvent, SagaId};
use baton_planner::Plan;
use baton_planner::step::Action;

use crate::sqlite_file;

/// Waits for `saga`'s outcome, which must be Refunded with no fill of `plan` ever signed; its events.
async fn refunded_without_a_fill(
    engine: &Engine,
    saga: SagaId,
    plan: &Plan,
) -> Vec<baton_engine::log::StoredEvent> {
    let outcome = tokio::time::timeout(Duration::from_secs(60), engine.wait(saga))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome, Outcome::Refunded);
    let events = engine.log().events(saga).await.unwrap();
    let is_fill = |step| matches!(plan.step(step).unwrap().action, Action::Fill { .. });
    assert!(
        !events
            .iter()
            .any(|e| matches!(&e.event, SagaEvent::TxSigned { step, .. } if is_fill(*step))),
        "a fill was signed: {events:#?}"
    );
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_held_past_its_deadline_is_never_signed_and_the_user_is_refunded() {
    let world = World::new().await;
    let (url, _file) = sqlite_file();
    let engine = world.engine(Db::connect(&url).await.unwrap(), fast());
    let dest = world.dest.chain_id();
    // The destination is held (as an operator would during an incident) while the clock runs.
    engine
        .pause(Scope::Chain(dest), "alice", "node upgrade")
        .await
        .unwrap();
    let input = world.input(world.intent_within(1, "USDC", units_of(950, 6), 600));
    let plan = input.plan().unwrap().plan;
    let deadline = u64::from(plan.intent().fill_deadline());
    let before = world.balances();
    let saga = engine.submit(input).await.unwrap();
    // Until the fill could no longer land in time: the block after the head, and the margin's
    // blocks (a second each) before the deadline.
    let blocks = 1 + fast().fill_margin_blocks;
    while world.dest.timestamp() + blocks <= deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    engine.resume(Scope::Chain(dest), "bob").await.unwrap();
    refunded_without_a_fill(&engine, saga, &plan).await;
    // Nothing moved but the refund's round trip: the user has the input back, the solver's
    // inventory on the destination is untouched, the recipient got nothing.
    assert_eq!(world.balances(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_within_the_margin_of_its_deadline_is_not_signed() {
    let world = World::new().await;
    let (url, _file) = sqlite_file();
    // The plan needs a few seconds; the margin asks for 1,000 blocks (of a second) before the
    // deadline, 600 s away: the fill is refused before it is signed, whatever the plan thinks.
    let config = EngineConfig {
        fill_margin_blocks: 1_000,
        ..fast()
    };
    let engine = world.engine(Db::connect(&url).await.unwrap(), config);
    let input = world.input(world.intent_within(1, "USDC", units_of(950, 6), 600));
    let plan = input.plan().unwrap().plan;
    let before = world.balances();
    let saga = engine.submit(input).await.unwrap();
    let events = refunded_without_a_fill(&engine, saga, &plan).await;
    let is_fill = |step| matches!(plan.step(step).unwrap().action, Action::Fill { .. });
    assert!(
        events.iter().any(|e| matches!(&e.event,
            SagaEvent::StepFailed { step, failure: Some(FailureKind::PastFillDeadline), .. }
                if is_fill(*step))),
        "{events:#?}"
    );
    assert_eq!(world.balances(), before);
    let view = engine.view(saga).await.unwrap().unwrap();
    let codes: Vec<_> = view
        .steps
        .iter()
        .filter_map(|s| s.progress.reason_code.as_deref())
        .collect();
    assert_eq!(codes, vec!["past_fill_deadline"]);
}
