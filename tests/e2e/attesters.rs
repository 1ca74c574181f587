//! Settlement by three attester processes (`baton attester serve`, dev accounts 7, 8 and 9, any
//! two of which the origin settlers accept): baton's intents are settled; with one attester killed
//! the other two still settle; and an escrow opened but never filled stays locked against the
//! solver, a lying attester (a member's key that signs a fill that never happened) and both
//! together, while the real attesters answer that there is no fill.

use std::time::{SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, Bytes, U256};
use alloy::signers::SignerSync;
use baton_adapters::attestation::{Delivery, OriginSettlerAt};
use baton_adapters::devnet::{ATTESTERS, SOLVER, USER, dev_signer};
use baton_adapters::port::{ChainAdapter, EscrowStatus, Fees, Op, TxRequest, TxStatus};
use baton_api::dto::saga::{Outcome, Status};
use baton_planner::{Amount, Asset, ChainId, Input, Intent, Output, TokenAddress};
use serde_json::{Value, json};

use crate::stack::{Stack, intent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_attester_processes_settle_and_with_one_killed_the_other_two_still_do() {
    let (stack, server) = Stack::builder("attesters").serve().await;
    let user = dev_signer(USER);
    for round in 0..2 {
        if round == 1 {
            stack.kill_attester(2);
        }
        let mut wanted = intent("01-usdc-a-to-weth-b.json");
        wanted["nonce"] = json!((100 + round).to_string());
        let signed = server.quote_and_sign(&wanted, &user).await;
        let accepted = server.submit(&signed).await;
        let view = server
            .view_until(&accepted.intent_id, |v| v.status == Status::Completed)
            .await;
        assert_eq!(view.outcome, Some(Outcome::Fulfilled), "round {round}");
        let settle = view.steps.iter().find(|s| s.action == "settle").unwrap();
        assert!(settle.progress.tx.is_some(), "round {round}: {view:#?}");
        assert!(view.alerts.is_empty(), "round {round}: {:?}", view.alerts);
    }
}

const FEES: Fees = Fees {
    gas_limit: 600_000,
    max_fee_per_gas: 50_000_000_000,
    max_priority_fee_per_gas: 1_000_000_000,
};

/// Sends `op` as `from` and waits for its receipt; returns the revert reason, if it reverted.
async fn run(from: &dyn ChainAdapter, op: Op) -> Option<String> {
    let tx = from.prepare(TxRequest::new(op, FEES)).await.unwrap();
    from.broadcast(&tx).await.unwrap();
    loop {
        if let TxStatus::Included(inc) = from.status(&tx, None).await.unwrap() {
            return (!inc.success).then(|| inc.revert_reason.unwrap_or_default());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfilled_escrow_stays_locked_against_the_solver_and_a_lying_attester() {
    let stack = Stack::builder("lying-attester").start().await;
    let (a, b) = (&stack.devnet.chains[0], &stack.devnet.chains[1]);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    let recipient = Address::repeat_byte(0xbe);
    let order = Intent::new(
        dev_signer(USER).address(),
        U256::from(77u8),
        now + 600,
        now + 1_200,
        vec![Input {
            asset: Asset::new(ChainId(a.chain_id), TokenAddress(a.tokens["USDC"])),
            amount: Amount::from(1_000_000u128),
        }],
        vec![Output {
            asset: Asset::new(ChainId(b.chain_id), TokenAddress(b.tokens["USDC"])),
            min_amount: Amount::from(990_000u128),
            recipient,
            call: None,
        }],
    )
    .unwrap()
    .orders(|_| Some(a.origin_settler))
    .unwrap()
    .remove(0);
    let signature = dev_signer(USER)
        .sign_hash_sync(&order.signing_hash())
        .unwrap();
    let solver = a.adapter(SOLVER).unwrap();
    let open = Op::Open {
        order: order.order().clone(),
        signature: Bytes::from(signature.as_bytes().to_vec()),
    };
    assert_eq!(run(&solver, open).await, None, "the solver opens the order");

    // Every real attester: no fill yet (202 not_filled); a cancel asked early by someone other
    // than the order's opener: 403 not_opener.
    let http = reqwest::Client::new();
    let attesters = stack.devnet_file().attesters;
    assert_eq!(attesters.len(), 3);
    let request = json!({ "order": order.order(), "filler": solver.account() });
    let at = OriginSettlerAt::of(&order);
    let by_user = dev_signer(USER)
        .sign_hash_sync(&at.cancel_request_hash(order.id()))
        .unwrap();
    let early = json!({
        "order": order.order(),
        "early": Bytes::from(by_user.as_bytes().to_vec()),
    });
    for attester in &attesters {
        let answer = http
            .post(format!("{}v1/fills", attester.url))
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["code"], "not_filled", "{body}");
        let answer = http
            .post(format!("{}v1/cancels", attester.url))
            .json(&early)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403);
    }

    // The liar (attester 7's key) signs a fill that never happened; the solver adds its own key.
    let deliveries = vec![Delivery {
        output_index: 0,
        chain: ChainId(b.chain_id),
        settler: b.destination_settler,
        token: b.tokens["USDC"],
        amount: U256::from(990_000u64),
        recipient,
    }];
    let digest = at.fill_hash(order.id(), solver.account(), &deliveries);
    let sign = |k: usize| {
        let s = dev_signer(k);
        (
            s.address(),
            Bytes::from(s.sign_hash_sync(&digest).unwrap().as_bytes().to_vec()),
        )
    };
    let (liar, by_solver) = (sign(ATTESTERS[0]), sign(SOLVER));
    let mut together = vec![liar.clone(), by_solver.clone()];
    together.sort();
    for (sigs, reason) in [
        (vec![liar.1.clone()], "too few attestations"),
        (
            together.into_iter().map(|(_, s)| s).collect(),
            "not an attester",
        ),
        (vec![by_solver.1.clone()], "too few attestations"),
    ] {
        let settle = Op::Settle {
            order_id: order.id(),
            filler: solver.account(),
            deliveries: deliveries.clone(),
            attestations: sigs,
        };
        let reverted = run(&solver, settle).await.expect("the settle reverts");
        assert!(reverted.contains(reason), "{reverted}");
    }
    let cancel_by_solver = dev_signer(SOLVER)
        .sign_hash_sync(&at.cancel_hash(order.id()))
        .unwrap();
    let cancel = Op::RefundWithCancel {
        order_id: order.id(),
        attestations: vec![Bytes::from(cancel_by_solver.as_bytes().to_vec())],
    };
    let reverted = run(&solver, cancel).await.expect("the cancel reverts");
    assert!(reverted.contains("too few attestations"), "{reverted}");
    assert_eq!(
        solver.escrow(order.id()).await.unwrap(),
        EscrowStatus::Opened
    );
}
