//! The server's followers answer intake from the block they have read: a user who spends their
//! tokens in the block where baton opens their order passes intake, and the chain catches it — the
//! open reverts, and the saga ends with the reason, nothing stuck and nothing of the user's moved.

use std::time::Duration;

use alloy::primitives::{Address, U256};
use baton_adapters::conformance::anvil;
use baton_adapters::devnet::{USER, dev_signer};
use baton_adapters::port::{ChainAdapter, Op, TxRequest, TxStatus};
use baton_api::dto::saga::{Outcome, StepStatus};
use serde_json::json;

use crate::stack::{FIRST_IN_BLOCK, Stack, balance, intent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_spent_after_the_views_block_are_caught_by_the_chain() {
    let (stack, server) = Stack::builder("follower").serve().await;
    let origin = &stack.devnet.chains[0];
    let usdc = origin.tokens["USDC"];
    let user = dev_signer(USER);
    let user_origin = stack.user(0);
    let signed = server
        .quote_and_sign(&intent("01-usdc-a-to-weth-b.json"), &user)
        .await;

    // The origin chain stops making blocks; the user sends all their USDC away (a high tip: it
    // goes first in the next block), and submits the intent meanwhile.
    anvil(origin, "evm_setIntervalMining", json!([0]))
        .await
        .unwrap();
    let held = balance(&user_origin, usdc, user.address()).await;
    let away = Address::repeat_byte(0x5e);
    let spend = Op::Transfer {
        token: usdc,
        to: away,
        amount: held,
    };
    let spent = user_origin
        .prepare(TxRequest::new(spend, FIRST_IN_BLOCK))
        .await
        .unwrap();
    user_origin.broadcast(&spent).await.unwrap();
    // The view (and the chain's latest block) still show the tokens: intake accepts.
    let id = server.submit(&signed).await.intent_id;
    // Once baton has sent the open, the block is made: the spend first, then the open.
    server
        .view_until(&id, |v| {
            v.steps
                .iter()
                .any(|s| s.action == "open" && s.progress.tx.is_some())
        })
        .await;
    anvil(origin, "evm_setIntervalMining", json!([1]))
        .await
        .unwrap();
    loop {
        match user_origin.status(&spent, None).await.unwrap() {
            TxStatus::Included(inc) => {
                assert!(inc.success);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }

    let view = server.outcome(&id).await;
    assert!(
        matches!(
            view.outcome,
            Some(Outcome::Refunded | Outcome::Failed { .. })
        ),
        "{view:#?}"
    );
    let open = view.steps.iter().find(|s| s.action == "open").unwrap();
    assert_eq!(open.progress.state, StepStatus::Failed, "{view:#?}");
    assert_eq!(open.progress.reason_code.as_deref(), Some("reverted"));
    assert!(
        open.progress
            .reason
            .as_deref()
            .unwrap()
            .contains("balance too low"),
        "{view:#?}"
    );
    assert_eq!(balance(&user_origin, usdc, away).await, held);
    assert_eq!(
        balance(&user_origin, usdc, user.address()).await,
        U256::ZERO
    );
}
