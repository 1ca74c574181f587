//! The server's followers answer intake from the block they have read: a user who spends their
//! tokens in the block where baton opens their order passes intake, and the chain catches it — the
//! open reverts, and the saga ends with the reason, nothing stuck and nothing of the user's moved.

use std::time::Duration;

use alloy::primitives::{Address, U256};
use baton_adapters::conformance::anvil;
use baton_adapters::devnet::{DevnetChain, USER, dev_signer};
use baton_adapters::port::{ChainAdapter, Op, TxRequest, TxStatus};
use baton_api::dto::saga::{Outcome, StepStatus};
use serde_json::json;

use crate::stack::{DAPP, FIRST_IN_BLOCK, Server, Stack, approve, balance, intent};

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

/// Admission control: while the origin chain makes no block, every accepted intent's open waits
/// in the chain's queue; once the queue is more than the intent's fill deadline can wait for,
/// intake refuses with `503 capacity` and a `Retry-After`, instead of accepting an intent it would
/// refund. Blocks again: every accepted intent is fulfilled, and intake accepts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_refuses_what_the_chains_queue_cannot_land_before_the_deadline() {
    let (stack, server) = Stack::builder("capacity").serve().await;
    let origin = &stack.devnet.chains[0];
    let user = dev_signer(USER);
    let short = small_intent(30);
    let open_sent = |v: &baton_api::dto::saga::SagaView| {
        v.steps
            .iter()
            .any(|s| s.action == "open" && s.progress.tx.is_some())
    };
    let (first, used) = first_open(&server, origin, &short).await;
    // Then no block while intents come, after one whose gas limit fits one open (with the
    // margin the solver reserves) but not two.
    anvil(origin, "evm_setIntervalMining", json!([0]))
        .await
        .unwrap();
    room_for_one_open(origin, used).await;
    anvil(origin, "evm_mine", json!([])).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut accepted = vec![first];
    let refused = loop {
        assert!(accepted.len() < 60, "60 intents queued and none refused");
        let signed = server.quote_and_sign(&short, &user).await;
        let answer = server
            .call(
                "POST",
                "/v1/intents",
                Some(crate::stack::DAPP),
                Some(signed),
            )
            .await;
        if answer.status != 202 {
            break answer;
        }
        let id = answer.body["intent_id"].as_str().unwrap().to_owned();
        // Its open is sent before the next comes (as a burst's would be, a moment later); the
        // pause keeps the dApp key under its request rate.
        server.view_until(&id, open_sent).await;
        accepted.push(id);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let retry_after = refused.retry_after;
    let body = refused.error(503, "capacity");
    eprintln!(
        "{} accepted, then refused (Retry-After {retry_after:?}): {}",
        accepted.len(),
        body.message
    );
    assert!(body.message.contains("waiting"), "{}", body.message);
    assert!(retry_after.is_some_and(|s| s >= 1), "{retry_after:?}");
    assert!(
        accepted.len() >= 4,
        "refused with only {} accepted: {}",
        accepted.len(),
        body.message
    );

    // Blocks again, with room: everything accepted is fulfilled, none refunded.
    anvil(
        origin,
        "evm_setBlockGasLimit",
        json!([format!("{:#x}", 30_000_000)]),
    )
    .await
    .unwrap();
    anvil(origin, "evm_setIntervalMining", json!([1]))
        .await
        .unwrap();
    for id in &accepted {
        let view = server.outcome(id).await;
        assert!(
            matches!(view.outcome, Some(Outcome::Fulfilled)),
            "{view:#?}"
        );
    }
    let signed = server.quote_and_sign(&short, &user).await;
    server.submit(&signed).await;
}

/// Admission control sees a burst before it sends anything: intents submitted at once each
/// promise their transactions to their chains as they are let in, so that, on an origin chain whose
/// blocks take one open each, the burst is cut where the queue it makes would miss the fill
/// deadline (not all let in and the late ones refunded); every one let in is fulfilled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_admitted_only_as_far_as_its_own_queue_meets_the_deadline() {
    let (stack, server) = Stack::builder("burst").serve().await;
    let origin = &stack.devnet.chains[0];
    let user = dev_signer(USER);
    let short = small_intent(16);
    let (_, used) = first_open(&server, origin, &short).await;
    room_for_one_open(origin, used).await;
    // Blocks with the new limit read by the follower (one a second, looked for every 250 ms).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut signed = Vec::new();
    for _ in 0..16 {
        signed.push(server.quote_and_sign(&short, &user).await);
    }
    let answers = futures_util::future::join_all(signed.iter().map(|body| {
        server.call(
            "POST",
            "/v1/intents",
            Some(crate::stack::DAPP),
            Some(body.clone()),
        )
    }))
    .await;
    let mut accepted = Vec::new();
    for answer in answers {
        if answer.status == 202 {
            accepted.push(answer.body["intent_id"].as_str().unwrap().to_owned());
        } else {
            answer.error(503, "capacity");
        }
    }
    eprintln!("{} of 16 accepted at once", accepted.len());
    assert!(
        !accepted.is_empty() && accepted.len() < 16,
        "{} of 16 accepted",
        accepted.len()
    );
    for id in &accepted {
        let view = server.outcome(id).await;
        assert!(
            matches!(view.outcome, Some(Outcome::Fulfilled)),
            "{view:#?}"
        );
    }
}

/// The API holds intents to the engine's rule for signing a fill (it must be expected to land
/// `fill-margin-blocks` before the fill deadline): a deadline that the plan's critical path meets
/// but that leaves the fill too little room is refused with `deadline_too_soon`, not accepted and
/// refunded later; a deadline a little past the least one the quote names is taken and filled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_deadline_that_leaves_the_fill_no_room_is_refused_not_refunded() {
    let (_stack, server) = Stack::builder("margin")
        .config("fill-margin-blocks = 3")
        .serve()
        .await;
    let quote = |body: serde_json::Value| {
        server.call("POST", "/v1/quotes", Some(crate::stack::DAPP), Some(body))
    };
    let quoted: serde_json::Value = quote(small_intent(300)).await.body_as(200);
    let (eta, least, at) = (
        quoted["eta_secs"].as_u64().unwrap(),
        quoted["min_fill_secs"].as_u64().unwrap(),
        quoted["quoted_at"].as_u64().unwrap(),
    );
    // The fill ends the critical path with its confirmations; it must be expected to land (a
    // block after it starts) three blocks before the deadline, which asks for more.
    assert!(least > eta, "eta {eta} s, least fill deadline {least} s");
    let within = |at: u64| {
        let mut short = small_intent(300);
        short["open_deadline"] = json!({ "at": at });
        short["fill_deadline"] = json!({ "at": at });
        short
    };
    let body = quote(within(at + least - 1))
        .await
        .error(422, "deadline_too_soon");
    assert!(body.message.contains("fill"), "{}", body.message);

    // From the wall clock, as a dApp counts (the chains' clock is their last block's), with a few
    // blocks to spare for a busy test machine.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signed = server
        .quote_and_sign(&within(now + least + 4), &dev_signer(USER))
        .await;
    let id = server.submit(&signed).await.intent_id;
    let view = server.outcome(&id).await;
    assert!(
        matches!(view.outcome, Some(Outcome::Fulfilled)),
        "{view:#?}"
    );
}

/// A small intent of example 01 (10 USDC for at least 0.003 WETH) whose fill deadline is `fill_in`
/// seconds after its quote.
fn small_intent(fill_in: u32) -> serde_json::Value {
    let mut short = intent("01-usdc-a-to-weth-b.json");
    short.as_object_mut().unwrap().remove("nonce");
    short["open_deadline"] = json!({ "in": fill_in.min(20) });
    short["fill_deadline"] = json!({ "in": fill_in });
    short["inputs"][0]["amount"] = json!("10000000");
    short["outputs"][0]["min_amount"] = json!("3000000000000000");
    short
}

/// Submits `short` while blocks come and waits for its open to land: returns its id and the gas
/// the open used (what shows the follower how much gas an open takes).
async fn first_open(
    server: &Server,
    origin: &DevnetChain,
    short: &serde_json::Value,
) -> (String, u64) {
    let first = server
        .submit(&server.quote_and_sign(short, &dev_signer(USER)).await)
        .await
        .intent_id;
    let view = server
        .view_until(&first, |v| {
            v.steps
                .iter()
                .any(|s| s.action == "open" && s.progress.block.is_some())
        })
        .await;
    let open = view.steps.iter().find(|s| s.action == "open").unwrap();
    let receipt = anvil(
        origin,
        "eth_getTransactionReceipt",
        json!([open.progress.tx.as_deref().unwrap()]),
    )
    .await
    .unwrap();
    let used = u64::from_str_radix(
        receipt["gasUsed"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    (first, used)
}

/// Sets `origin`'s block gas limit to fit one open that uses `used` gas with the margin the solver
/// reserves (half more and 20,000), but not two.
async fn room_for_one_open(origin: &DevnetChain, used: u64) {
    let limit = 2 * used + 40_000;
    anvil(
        origin,
        "evm_setBlockGasLimit",
        json!([format!("{limit:#x}")]),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_submitted_right_after_its_approval_is_admitted() {
    // The followers look at their chains every two seconds: their views lag the node.
    let (stack, server) = Stack::builder("approved")
        .config("follow-poll-ms = 2000")
        .serve()
        .await;
    let origin = &stack.devnet.chains[0];
    let usdc = origin.tokens["USDC"];
    let user_origin = stack.user(0);
    approve(&user_origin, usdc, origin.origin_settler, U256::ZERO).await;
    let signed = server
        .quote_and_sign(&intent("01-usdc-a-to-weth-b.json"), &dev_signer(USER))
        .await;
    // Once the server's view has the revocation, refused without the allowance: the view now
    // holds the user's allowance, and keeps it block by block.
    let revoked_at = user_origin.conditions().await.unwrap().head.number;
    let started = std::time::Instant::now();
    while server
        .call("GET", "/v1/chains", Some(DAPP), None)
        .await
        .body[0]["head"]
        .as_u64()
        .is_none_or(|head| head < revoked_at)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the view stays behind"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server
        .call("POST", "/v1/intents", Some(DAPP), Some(signed.clone()))
        .await
        .error(422, "insufficient_allowance");
    // Approved, in a block the node has; submitted at once, as a dApp does.
    approve(&user_origin, usdc, origin.origin_settler, U256::MAX).await;
    let id = server.submit(&signed).await.intent_id;
    let view = server.outcome(&id).await;
    assert_eq!(view.outcome, Some(Outcome::Fulfilled), "{view:#?}");
}
