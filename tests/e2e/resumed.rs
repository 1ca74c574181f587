//! With `hold-for-operator-secs`, the saga whose pool was drained waits for an operator instead of
//! refunding; `baton replay --with … --resume` tries a looser bound on forks, then resumes the real
//! saga with it, and the intent ends Fulfilled. The decision is logged.

use std::process::Command;

use alloy::primitives::Address;
use baton_api::dto::operator::OperatorAction;
use baton_api::dto::saga::{Outcome, Status};
use baton_replay::Report;
use serde_json::json;

use crate::refunded::{submit_and_drain, swaps};
use crate::stack::{DAPP, OPS, RECIPIENT, Stack, balance, cli};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_saga_is_resumed_with_the_change_its_trial_fulfilled() {
    let (stack, server) = Stack::builder("resumed")
        .config("hold-for-operator-secs = 600")
        .serve()
        .await;
    let dest = &stack.devnet.chains[1];
    let recipient: Address = RECIPIENT.parse().unwrap();
    let weth_before = balance(&stack.user(1), dest.tokens["WETH"], recipient).await;
    let id = submit_and_drain(&stack, &server).await;

    // Held, not refunded: the swap failed and an operator is asked for.
    let view = server
        .view_until(&id, |v| v.held_until_ms.is_some() || v.outcome.is_some())
        .await;
    assert!(view.outcome.is_none(), "{view:#?}");
    assert_eq!(view.status, Status::NeedsOperator, "{view:#?}");
    assert!(view.compensating.is_none(), "{view:#?}");
    assert!(view.alerts[0].contains("held"), "{view:#?}");

    // A dApp key cannot resume; the operator's can.
    let change = stack.dir.join("change.json");
    std::fs::write(&change, r#"{ "slippage_bps": 100 }"#).unwrap();
    let args = [
        "replay",
        &id,
        "--json",
        "--with",
        change.to_str().unwrap(),
        "--resume",
        "--server",
        &server.base,
    ];
    let refused = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(args)
        .env("BATON_API_KEY", DAPP)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("forbidden"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let report: Report = serde_json::from_str(&cli(&args, &[("BATON_API_KEY", OPS)])).unwrap();
    assert!(report.trial.as_ref().unwrap().fulfilled, "{report:#?}");
    let resume = report.resume.as_ref().unwrap();
    assert!(resume.resumed, "{report:#?}");
    assert!(
        swaps(&resume.plan) >= 2,
        "re-planned around the drained pool: {report:#?}"
    );

    let view = server.outcome(&id).await;
    assert_eq!(view.outcome, Some(Outcome::Fulfilled), "{view:#?}");
    assert!(
        balance(&stack.user(1), dest.tokens["WETH"], recipient).await > weth_before,
        "the recipient is paid"
    );
    // The decision is in the saga's log and among the operator actions.
    let actions: Vec<OperatorAction> = server
        .call("GET", "/v1/operator/actions", Some(OPS), None)
        .await
        .body_as(200);
    assert!(
        actions
            .iter()
            .any(|a| a.action == "resume-saga" && a.by == "ops" && a.target == id),
        "{actions:#?}"
    );
    let events = server.events(&id).await;
    assert!(events.contains("event: resumed"), "{events}");
    // A saga no longer held is not resumed again.
    server
        .call(
            "POST",
            &format!("/v1/sagas/{id}/replay"),
            Some(OPS),
            Some(json!({ "with": { "slippage_bps": 100 }, "resume": true })),
        )
        .await
        .error(409, "conflict");
}
