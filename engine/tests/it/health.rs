//! A chain's RPC health is judged over a recent window: an outage after a long healthy run holds
//! new steps at once (a ratio since start would barely move), and once it ends the steps go on.

use std::time::{Duration, Instant};

use baton_adapters::port::ChainAdapter;
use baton_engine::simworld::{World, fast, units_of};
use baton_engine::{Db, EngineConfig, Outcome, SagaEvent};

use crate::sqlite_file;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_after_a_long_healthy_run_holds_new_steps_until_it_ends() {
    let (url, _file) = sqlite_file();
    let world = World::new().await;
    // A long healthy history on the origin: ten thousand calls that all succeeded.
    let reader = world.origin.adapter(world.user.clone());
    for _ in 0..10_000 {
        reader.conditions().await.unwrap();
    }
    let engine = world.engine(
        Db::connect(&url).await.unwrap(),
        EngineConfig {
            health_window: Duration::from_millis(300),
            ..fast()
        },
    );
    // Now most calls fail: the origin is unhealthy, though 99 % of its calls ever succeeded.
    world.origin.fail_rpc_fraction(0.8);
    let saga = engine
        .submit(world.input(world.intent(1, "WETH", units_of(39, 16))))
        .await
        .unwrap();
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_millis(1_500) {
        let events = engine.log().events(saga).await.unwrap();
        assert!(
            !events
                .iter()
                .any(|e| matches!(e.event, SagaEvent::TxSigned { .. })),
            "a step started on an unhealthy chain after {:?}",
            outage.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The outage ends: within the window the steps go on, and the intent is fulfilled.
    world.origin.fail_rpc_fraction(0.0);
    let outcome = tokio::time::timeout(Duration::from_secs(30), engine.wait(saga))
        .await
        .expect("the saga goes on once the chain is healthy")
        .unwrap();
    assert_eq!(outcome, Outcome::Fulfilled);
}
