//! A node behind the same RPC URL that lags a few blocks, on the sim: a transaction it does not
//! know of yet (and refuses to take again for its used nonce) never makes a step sign a second
//! transaction, with a fresh nonce, for work already done.

use std::collections::HashMap;
use std::time::Duration;

use baton_engine::simworld::{World, fast, units_of};
use baton_engine::{Db, Outcome, SagaEvent};

use crate::sqlite_file;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_node_never_makes_a_step_sign_twice() {
    let world = World::new().await;
    // Receipts and broadcasts, on both chains, are answered by a node 3 blocks behind the head: a
    // transaction just included is not found, and sending it again is refused for its nonce.
    world.origin.lag_receipts(1, 3);
    world.dest.lag_receipts(1, 3);
    let (url, _file) = sqlite_file();
    let engine = world.engine(Db::connect(&url).await.unwrap(), fast());
    let saga = engine
        .submit(world.input(world.intent(1, "WETH", units_of(39, 16))))
        .await
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(60), engine.wait(saga))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome, Outcome::Fulfilled);
    // The saga completes (every settle done), with one transaction per step.
    let started = std::time::Instant::now();
    while !engine.log().unfinished().await.unwrap().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never completed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let events = engine.log().events(saga).await.unwrap();
    let mut signed: HashMap<(u32, bool), usize> = HashMap::new();
    for e in &events {
        match &e.event {
            SagaEvent::TxSigned { step, comp, .. } => {
                *signed.entry((step.0, *comp)).or_default() += 1
            }
            SagaEvent::Alert { reason } => panic!("alert: {reason}"),
            _ => {}
        }
    }
    assert!(!signed.is_empty());
    assert!(signed.values().all(|n| *n == 1), "{signed:?}");
}
