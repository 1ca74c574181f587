//! Sagas on the sim: fulfilled, refunded when a leg fails before the pivot, through every fault the
//! sim injects — with every token conserved exactly.

use alloy::primitives::U256;
use baton_engine::Outcome;

use crate::sqlite_file;
use baton_engine::simworld::{World, fast, units_of};

/// Runs one intent for `token` to its outcome on a fresh world with `fault` injected first.
async fn outcome_with(token: &str, fault: impl FnOnce(&World)) -> (World, Outcome) {
    outcome_within(token, 6_000, fault).await
}

/// Like [`outcome_with`], with the fill deadline `fill_in` seconds of chain time ahead.
async fn outcome_within(token: &str, fill_in: u64, fault: impl FnOnce(&World)) -> (World, Outcome) {
    outcome_on(token, fill_in, false, fault).await
}

/// Like [`outcome_within`]; with `followed`, a follower in front of each of the engine's adapters
/// (as the server runs them).
async fn outcome_on(
    token: &str,
    fill_in: u64,
    followed: bool,
    fault: impl FnOnce(&World),
) -> (World, Outcome) {
    let world = World::new().await;
    let (url, file) = sqlite_file();
    let db = baton_engine::Db::connect(&url).await.unwrap();
    let engine = world.engine_followed(db, fast(), followed);
    let before = world.totals();
    let min = if token == "WETH" {
        units_of(39, 16) // 0.39 WETH
    } else {
        units_of(990, 6)
    };
    let input = world.input(world.intent_within(1, token, min, fill_in));
    fault(&world);
    let saga = engine.submit(input).await.unwrap();
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(60), engine.wait(saga))
        .await
        .expect("the saga ends within a minute")
        .unwrap();
    assert_eq!(world.totals(), before, "every token is conserved");
    if followed {
        let from_view: u64 = engine
            .chains()
            .values()
            .filter_map(|a| a.follow_stats())
            .map(|s| s.from_view)
            .sum();
        assert!(from_view > 0, "the followers answered nothing");
    }
    let verified = engine.log().verify(Some(saga)).await.unwrap();
    assert_eq!(verified.broken, None);
    drop(file);
    (world, outcome)
}

fn recipient_weth(world: &World) -> U256 {
    world
        .balances()
        .into_iter()
        .find(|(t, h, _)| *t == world.weth_d && *h == world.recipient)
        .unwrap()
        .2
}

fn user_usdc(world: &World) -> U256 {
    world
        .balances()
        .into_iter()
        .find(|(t, h, _)| *t == world.usdc_o && *h == world.user.address())
        .unwrap()
        .2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_chain_swap_is_fulfilled_and_the_solver_repaid() {
    let world = World::new().await;
    let (url, _file) = sqlite_file();
    let engine = world.engine(baton_engine::Db::connect(&url).await.unwrap(), fast());
    let saga = engine
        .submit(world.input(world.intent(1, "WETH", units_of(39, 16))))
        .await
        .unwrap();
    assert_eq!(engine.wait(saga).await.unwrap(), Outcome::Fulfilled);
    // The steps table shows every step done, with the transaction of the on-chain ones; the nonces
    // table the solver's next nonce on each chain.
    let steps: Vec<(i64, String, Option<String>)> = baton_engine::with_pool!(engine.log().db(), pool => {
        sqlx::query_as("SELECT t.step, t.state, t.tx_hash FROM steps t JOIN sagas s ON s.num = t.saga_num \
             WHERE s.id = $1 ORDER BY t.step")
            .bind(saga.to_string())
            .fetch_all(pool)
            .await
            .unwrap()
    });
    assert_eq!(steps.len(), 6, "{steps:?}");
    assert!(
        steps.iter().all(|(_, state, _)| state == "done"),
        "{steps:?}"
    );
    assert_eq!(
        steps.iter().filter(|(_, _, tx)| tx.is_some()).count(),
        5,
        "all but the wait"
    );
    let nonces: Vec<(i64, i64)> = baton_engine::with_pool!(engine.log().db(), pool => {
        sqlx::query_as("SELECT chain, next_nonce FROM nonces ORDER BY chain")
            .fetch_all(pool)
            .await
            .unwrap()
    });
    let solver = world.solver.address();
    assert_eq!(
        nonces,
        vec![
            (1001, world.origin.nonce(solver) as i64),
            (1002, world.dest.nonce(solver) as i64)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_chain_swap_keeps_every_token() {
    let (world, outcome) = outcome_with("WETH", |_| {}).await;
    assert_eq!(outcome, Outcome::Fulfilled);
    assert!(recipient_weth(&world) >= units_of(39, 16));
    assert_eq!(user_usdc(&world), units_of(9_000, 6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fill_is_refunded_in_full() {
    let (world, outcome) =
        outcome_with("WETH", |w| w.dest.revert_next("fill", "out of luck")).await;
    assert_eq!(outcome, Outcome::Refunded);
    assert_eq!(recipient_weth(&world), U256::ZERO);
    assert_eq!(
        user_usdc(&world),
        units_of(10_000, 6),
        "the user has it all back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_swap_is_refunded_in_full() {
    let (world, outcome) = outcome_with("WETH", |w| w.dest.revert_next("swap", "slipped")).await;
    assert_eq!(outcome, Outcome::Refunded);
    assert_eq!(user_usdc(&world), units_of(10_000, 6));
}

type Fault = fn(&World);

/// Faults the sim injects that a saga rides out.
fn healing_faults() -> [(&'static str, Fault); 6] {
    [
        ("dropped open", |w| w.origin.drop_next("open")),
        ("dropped fill", |w| w.dest.drop_next("fill")),
        ("stalled destination", |w| w.dest.stall(30)),
        ("fee spike", |w| w.dest.spike_base_fee(50_000_000_000, 40)),
        ("flaky rpc", |w| {
            w.origin.fail_rpc_fraction(0.2);
            w.dest.fail_rpc_fraction(0.2);
        }),
        ("reverted settle, retried", |w| {
            w.origin.revert_next("settle", "attester lag")
        }),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_that_heal_still_end_fulfilled() {
    for (name, fault) in healing_faults() {
        let (_, outcome) = outcome_with("WETH", fault).await;
        assert_eq!(outcome, Outcome::Fulfilled, "{name}");
    }
}

/// With followers in front of the engine's adapters (reads, statuses and fills from their views),
/// the same faults heal, a failed leg refunds in full, and reorgs below finality heal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_followers_faults_heal_failed_legs_refund_and_reorgs_heal() {
    for (name, fault) in healing_faults() {
        let (_, outcome) = outcome_on("WETH", 6_000, true, fault).await;
        assert_eq!(outcome, Outcome::Fulfilled, "{name} with followers");
    }
    let (world, outcome) = outcome_on("WETH", 6_000, true, |w| {
        w.dest.revert_next("fill", "out of luck")
    })
    .await;
    assert_eq!(outcome, Outcome::Refunded);
    assert_eq!(recipient_weth(&world), U256::ZERO);
    assert_eq!(user_usdc(&world), units_of(10_000, 6));
    reorgs_heal(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorgs_below_finality_heal() {
    reorgs_heal(false).await;
}

/// Reorgs of the newest block of both chains, again and again while a saga runs: it is fulfilled,
/// every token kept.
async fn reorgs_heal(followed: bool) {
    let world = World::new().await;
    let (url, _file) = sqlite_file();
    let db = baton_engine::Db::connect(&url).await.unwrap();
    let engine = world.engine_followed(db, fast(), followed);
    let before = world.totals();
    let saga = engine
        .submit(world.input(world.intent(1, "WETH", units_of(39, 16))))
        .await
        .unwrap();
    // Reorg the newest block of both chains, again and again, while the saga runs.
    let (o, d) = (world.origin.clone(), world.dest.clone());
    let reorgs = tokio::spawn(async move {
        for _ in 0..40 {
            tokio::time::sleep(std::time::Duration::from_millis(7)).await;
            let _ = o.reorg(1);
            let _ = d.reorg(1);
        }
    });
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(60), engine.wait(saga))
        .await
        .unwrap()
        .unwrap();
    reorgs.await.unwrap();
    assert_eq!(outcome, Outcome::Fulfilled);
    assert_eq!(world.totals(), before);
    assert!(recipient_weth(&world) >= units_of(39, 16));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_that_can_no_longer_meet_its_deadline_gives_up_and_refunds() {
    // 60 s of chain time to fill; the destination's fees stay above the ceiling for 200 blocks.
    let (world, outcome) =
        outcome_within("WETH", 60, |w| w.dest.spike_base_fee(50_000_000_000, 200)).await;
    assert_eq!(outcome, Outcome::Refunded);
    assert_eq!(user_usdc(&world), units_of(10_000, 6));
    assert_eq!(recipient_weth(&world), U256::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_that_keeps_failing_after_the_pivot_raises_an_alert_and_waits_for_an_operator() {
    let world = World::new().await;
    let (url, _file) = sqlite_file();
    let engine = world.engine(baton_engine::Db::connect(&url).await.unwrap(), fast());
    for _ in 0..10 {
        world.origin.revert_next("settle", "the attester is down");
    }
    let saga = engine
        .submit(world.input(world.intent(1, "WETH", units_of(39, 16))))
        .await
        .unwrap();
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(60), engine.wait(saga))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome, Outcome::Fulfilled, "the user got the output");
    left_for_an_operator(&engine, saga, "the attester is down").await;
}

/// The saga raised an alert naming `why`, is not completed, and recovery would resume it.
async fn left_for_an_operator(
    engine: &baton_engine::Engine,
    saga: baton_engine::SagaId,
    why: &str,
) {
    let events = engine.log().events(saga).await.unwrap();
    assert!(events.iter().any(|e| matches!(
        &e.event,
        baton_engine::SagaEvent::Alert { reason } if reason.contains(why)
    )));
    assert!(
        !events
            .iter()
            .any(|e| e.event == baton_engine::SagaEvent::Completed)
    );
    assert_eq!(
        engine.log().unfinished().await.unwrap(),
        vec![saga],
        "left for an operator"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reverted_refund_is_retried_and_the_saga_still_refunds() {
    let (world, outcome) = outcome_with("WETH", |w| {
        w.dest.revert_next("fill", "no");
        w.origin.revert_next("refund_with_cancel", "attester lag");
    })
    .await;
    assert_eq!(outcome, Outcome::Refunded);
    assert_eq!(user_usdc(&world), units_of(10_000, 6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_that_keeps_failing_raises_an_alert_and_waits_for_an_operator() {
    let world = World::new().await;
    let (url, _file) = sqlite_file();
    let engine = world.engine(baton_engine::Db::connect(&url).await.unwrap(), fast());
    world.dest.revert_next("fill", "no");
    for _ in 0..10 {
        world
            .origin
            .revert_next("refund_with_cancel", "the escrow is frozen");
    }
    let saga = engine
        .submit(world.input(world.intent(1, "WETH", units_of(39, 16))))
        .await
        .unwrap();
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(60), engine.wait(saga))
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(&outcome, Outcome::Failed { needs_operator: true, reason } if reason.contains("the escrow is frozen")),
        "{outcome:?}"
    );
    left_for_an_operator(&engine, saga, "the escrow is frozen").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_waiting_on_a_chain_moves_on_at_its_new_blocks_not_at_its_poll() {
    // A poll far longer than the test: every wait of the saga must end at a block of the chain it
    // waits on (the sim announces its heads), or the saga cannot end in time.
    let world = World::new().await;
    let (url, _file) = sqlite_file();
    let engine = world.engine(
        baton_engine::Db::connect(&url).await.unwrap(),
        baton_engine::EngineConfig {
            poll: std::time::Duration::from_secs(600),
            ..fast()
        },
    );
    let saga = engine
        .submit(world.input(world.intent(1, "WETH", units_of(39, 16))))
        .await
        .unwrap();
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(30), engine.wait(saga))
        .await
        .expect("the saga ends without waiting for its poll")
        .unwrap();
    assert_eq!(outcome, Outcome::Fulfilled);
    // Each on-chain step (open, swap, fill, settle) signed once: nothing was replaced while the
    // log committed.
    let attempts: Vec<u32> = engine
        .log()
        .events(saga)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.event {
            baton_engine::event::SagaEvent::TxSigned { attempt, .. } => Some(attempt),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, vec![0; 4]);
    assert_eq!(engine.work().signed, 4);
}
