//! Reservations: two intents never promise the same inventory; it is free again at the outcome.

use std::time::Duration;

use alloy::primitives::Address;
use baton_adapters::port::{ChainAdapter, Fees, Op, TxRequest};
use baton_engine::{Db, EngineError, Outcome};

use crate::sqlite_file;
use baton_engine::simworld::{World, fast, units_of};

/// A sim world whose solver keeps 1,500 USDC on the destination: one 1,000 USDC intent fits, two
/// do not.
async fn world_with_1500_usdc() -> World {
    let world = World::new().await;
    let solver = world.dest.adapter(world.solver.clone());
    let tx = solver
        .prepare(TxRequest::new(
            Op::Transfer {
                token: world.usdc_d,
                to: Address::repeat_byte(0x99),
                amount: units_of(198_500, 6),
            },
            Fees {
                gas_limit: 100_000,
                max_fee_per_gas: 10_000_000_000,
                max_priority_fee_per_gas: 1,
            },
        ))
        .await
        .unwrap();
    solver.broadcast(&tx).await.unwrap();
    while world.dest.balance(world.usdc_d, world.solver.address()) != units_of(1_500, 6) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    world
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_intent_cannot_take_inventory_the_first_one_holds() {
    let world = world_with_1500_usdc().await;
    let (url, _file) = sqlite_file();
    let engine = world.engine(Db::connect(&url).await.unwrap(), fast());
    let first_input = world.input(world.intent(1, "WETH", units_of(39, 16)));
    let first = engine.submit(first_input.clone()).await.unwrap();
    let second = world.input(world.intent(2, "WETH", units_of(39, 16)));
    match engine.submit(second.clone()).await {
        Err(EngineError::Inventory(why)) => assert!(why.contains("promised"), "{why}"),
        other => panic!("the second intent must be refused, got {other:?}"),
    }
    // Submitting the first again is the same saga, not a second promise.
    assert_eq!(engine.submit(first_input).await.unwrap(), first);
    assert_eq!(engine.wait(first).await.unwrap(), Outcome::Fulfilled);
    // The first one's USDC went into the pool; the solver has 500 left and nothing promised.
    assert!(world.dest.balance(world.usdc_d, world.solver.address()) < units_of(1_000, 6));
    match engine.submit(second).await {
        Err(EngineError::Inventory(why)) => {
            assert!(why.contains("of which 0 is promised"), "released: {why}")
        }
        other => panic!("still not enough inventory, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intents_admitted_in_one_commit_still_promise_inventory_once() {
    let world = world_with_1500_usdc().await;
    let (url, _file) = sqlite_file();
    let engine = std::sync::Arc::new(world.engine(Db::connect(&url).await.unwrap(), fast()));
    // Eight intents at once: their admissions share the writer's batches, and each is checked
    // against the ones admitted before it in the same commit.
    let submissions: Vec<_> = (10..18)
        .map(|nonce| {
            let (engine, input) = (
                engine.clone(),
                world.input(world.intent(nonce, "WETH", units_of(39, 16))),
            );
            tokio::spawn(async move { engine.submit(input).await })
        })
        .collect();
    let mut admitted = Vec::new();
    let mut refused = 0;
    for submission in submissions {
        match submission.await.unwrap() {
            Ok(saga) => admitted.push(saga),
            Err(EngineError::Inventory(_)) => refused += 1,
            Err(other) => panic!("unexpected refusal: {other}"),
        }
    }
    assert_eq!((admitted.len(), refused), (1, 7), "exactly one fits");
    assert_eq!(engine.wait(admitted[0]).await.unwrap(), Outcome::Fulfilled);
}
