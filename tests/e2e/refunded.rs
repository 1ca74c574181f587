//! A failing leg refunds the user over REST: the destination pool is drained before the solver's
//! swap, the swap reverts, the user's input comes back. The operator replays the saga on forks
//! (the revert reproduces, with its trace) and tries a looser bound there, from the CLI and the
//! API.

use alloy::primitives::Address;
use baton_adapters::devnet::{USER, dev_signer};
use baton_adapters::port::{ChainAdapter, Op, TxRequest, TxStatus};
use baton_api::dto::saga::{Outcome, StepStatus};
use baton_engine::liquidity;
use baton_replay::Report;
use serde_json::json;

use crate::stack::{DAPP, FIRST_IN_BLOCK, OPS, Server, Stack, balance, intent};

/// Submits `06-pool-drained.json` as the user and drains the destination's USDC/WETH pool before
/// the solver's swap can run (its slippage bound then reverts it); returns the intent id.
pub async fn submit_and_drain(stack: &Stack, server: &Server) -> String {
    let dest = &stack.devnet.chains[1];
    let user_dest = stack.user(1);
    // Someone is ready to drain the destination's WETH pools.
    let usdc_weth = dest.pools["USDC/WETH"];
    liquidity::approve(&user_dest, &[(dest.tokens["USDC"], usdc_weth)])
        .await
        .unwrap();
    let user = dev_signer(USER);
    let signed = server
        .quote_and_sign(&intent("06-pool-drained.json"), &user)
        .await;
    let accepted = server.submit(&signed).await;
    // The drain lands before the solver's swap (which waits for the open), with a higher tip.
    let drain = Op::Swap {
        pool: usdc_weth,
        token_in: dest.tokens["USDC"],
        amount_in: alloy::primitives::U256::from(5_000_000_000_000u64),
        min_out: alloy::primitives::U256::ZERO,
        to: user.address(),
    };
    let tx = user_dest
        .prepare(TxRequest::new(drain, FIRST_IN_BLOCK))
        .await
        .unwrap();
    user_dest.broadcast(&tx).await.unwrap();
    loop {
        match user_dest.status(&tx, None).await.unwrap() {
            TxStatus::Included(inc) => {
                assert!(inc.success);
                break;
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    accepted.intent_id
}

/// How many of `plan`'s steps are swaps.
pub fn swaps(plan: &[String]) -> usize {
    plan.iter().filter(|s| s.starts_with("swap")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_leg_refunds_the_user_over_rest() {
    let (stack, server) = Stack::builder("refunded").serve().await;
    let origin = &stack.devnet.chains[0];
    let user: Address = dev_signer(USER).address();
    let usdc_before = balance(&stack.user(0), origin.tokens["USDC"], user).await;
    let id = submit_and_drain(&stack, &server).await;
    let id = id.as_str();
    let view = server.outcome(id).await;
    assert_eq!(view.outcome, Some(Outcome::Refunded), "{view:#?}");
    let swap = view.steps.iter().find(|s| s.action == "swap").unwrap();
    assert_eq!(swap.progress.state, StepStatus::Failed, "{view:#?}");
    assert_eq!(swap.progress.reason_code.as_deref(), Some("reverted"));
    assert!(swap.progress.reason.as_deref().unwrap().contains("minOut"));
    assert_eq!(
        balance(&stack.user(0), origin.tokens["USDC"], user).await,
        usdc_before,
        "the user's USDC is back"
    );

    // The operator replays it on forks: the swap's slippage revert reproduces, with its trace.
    let report = stack.replay(id, &[]);
    assert!(report.reproduced, "{report:#?}");
    let failing = report.failing_step.as_ref().unwrap();
    assert_eq!(failing.step, swap.id, "{report:#?}");
    assert!(
        failing.revert_reason.as_deref().unwrap().contains("minOut"),
        "{report:#?}"
    );
    assert!(
        failing.trace.iter().any(|l| l.contains("Pool.swap")),
        "{report:#?}"
    );
    eprintln!("replay took {} ms", report.took_ms);
    if std::env::var_os("BATON_SHOW_REPLAY").is_some() {
        print!("{}", baton_replay::render(&report));
    }

    // With a change tried on fresh forks (the intent re-planned where the saga failed, around the
    // drained pool), it would have been fulfilled.
    let change = stack.dir.join("change.json");
    std::fs::write(&change, r#"{ "slippage_bps": 100 }"#).unwrap();
    let tried = stack.replay(id, &["--with", change.to_str().unwrap()]);
    let trial = tried.trial.as_ref().unwrap();
    assert!(trial.fulfilled, "{tried:#?}");
    assert_eq!(trial.config.slippage_bps, 100);
    assert!(
        swaps(&trial.plan) >= 2,
        "re-planned around the drained pool (via DAI): {trial:#?}"
    );
    eprintln!("replay with a trial took {} ms", tried.took_ms);

    // The same through the API, for operators only.
    let path = format!("/v1/sagas/{id}/replay");
    server
        .call("POST", &path, Some(DAPP), None)
        .await
        .error(403, "forbidden");
    let report: Report = server
        .call("POST", &path, Some(OPS), None)
        .await
        .body_as(200);
    assert_eq!(
        report.failing_step.as_ref().map(|f| f.step),
        Some(swap.id),
        "{report:#?}"
    );
    // A body that is not JSON, or asks to resume without a change, is refused before any fork.
    let broken = reqwest::Client::new()
        .post(format!("{}{path}", server.base))
        .bearer_auth(OPS)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status().as_u16(), 400);
    assert_eq!(
        broken.json::<serde_json::Value>().await.unwrap()["code"],
        "malformed_json"
    );
    server
        .call("POST", &path, Some(OPS), Some(json!({ "resume": true })))
        .await
        .error(422, "invalid_combination");
    // A refunded saga is not held: it cannot be resumed.
    server
        .call(
            "POST",
            &path,
            Some(OPS),
            Some(json!({ "with": { "slippage_bps": 150 }, "resume": true })),
        )
        .await
        .error(409, "conflict");
    let tried: Report = server
        .call(
            "POST",
            &path,
            Some(OPS),
            Some(json!({ "with": { "max_hops": 3, "slippage_bps": 150 } })),
        )
        .await
        .body_as(200);
    assert!(tried.trial.as_ref().unwrap().fulfilled, "{tried:#?}");
}
