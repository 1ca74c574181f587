//! An intent reaches its outcome across a `baton serve` killed with SIGKILL mid-flight and started
//! again on the same saga log; the same signed orders then answer the same intent.

use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use baton_adapters::devnet::{DEV_KEYS, SOLVER, USER, dev_signer};
use baton_api::dto::intent::Accepted;
use baton_api::dto::saga::{Outcome, StepStatus};
use baton_engine::Db;
use baton_engine::changes::{Changes, State};

use crate::stack::{ADMIN, DAPP, OPS, RECIPIENT, Stack, balance, intent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_reaches_its_outcome_across_a_killed_and_restarted_server() {
    let (stack, mut server) = Stack::builder("restart").serve().await;
    let dest = &stack.devnet.chains[1];
    let recipient: Address = RECIPIENT.parse().unwrap();
    let solver = dest.adapter(SOLVER).unwrap();
    let weth_before = balance(&solver, dest.tokens["WETH"], recipient).await;
    let signed = server
        .quote_and_sign(&intent("01-usdc-a-to-weth-b.json"), &dev_signer(USER))
        .await;
    let id = server.submit(&signed).await.intent_id;
    // Mid-flight: a transaction is signed, the outcome is not decided.
    let started = Instant::now();
    loop {
        let view = server.view(&id).await;
        assert!(view.outcome.is_none(), "decided before the kill: {view:#?}");
        if view
            .steps
            .iter()
            .any(|s| s.progress.state != StepStatus::Pending)
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.child.kill().unwrap(); // SIGKILL: no shutdown at all
    server.child.wait().unwrap();
    drop(server);

    let server = stack.serve().await;
    let view = server.outcome(&id).await;
    assert_eq!(view.outcome, Some(Outcome::Fulfilled), "{view:#?}");
    let weth_after = balance(&solver, dest.tokens["WETH"], recipient).await;
    assert!(weth_after - weth_before >= U256::from(390_000_000_000_000_000u64));
    // Submitting the same signed orders again answers the same intent.
    let again: Accepted = server
        .call("POST", "/v1/intents", Some(DAPP), Some(signed))
        .await
        .body_as(202);
    assert_eq!(again.intent_id, id);

    // The config file became the deployment's first configuration version when the server first
    // started; the restart, with the same file, found it active and added none.
    let changes = Changes::new(Db::connect(&stack.database()).await.unwrap());
    let versions = changes.versions().await.unwrap();
    assert_eq!(versions.len(), 1, "{versions:#?}");
    assert_eq!(versions[0].state, State::Active);
    let history = changes.history(None).await.unwrap();
    let path: Vec<State> = history.iter().map(|t| t.to).collect();
    assert_eq!(
        path,
        [
            State::Proposed,
            State::Validated,
            State::Approved,
            State::Scheduled,
            State::Active
        ]
    );
    // What shapes execution is in it; no secret is.
    let body = &versions[0].body;
    for chain in &stack.devnet.chains {
        assert!(body.contains(chain.rpc_url().as_str()), "{body}");
        let settler = chain.origin_settler.to_string().to_lowercase();
        assert!(body.contains(&settler), "{body}");
    }
    assert!(body.contains("\"solver_fee_bps\""), "{body}");
    for secret in [DAPP, OPS, ADMIN, DEV_KEYS[SOLVER]] {
        assert!(
            !body.contains(secret.trim_start_matches("0x")),
            "a secret in {body}"
        );
    }
    assert_eq!(changes.verify().await.unwrap(), None);
}
