//! Configuration versions over REST, in-process: who may call, what a bundle must hold, the
//! lifecycle's refusals, an admin's approval where no approvers are named, activation by the pull.
//! Validation against real chains (chain ids, code hashes) and approvals by a quorum of signatures
//! are tested on the devnet (`tests/e2e/changes.rs`).

use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use baton_engine::changes::{Changes, State, approval_message};
use serde_json::{Value, json};

use crate::{ADMIN, Api, DAPP, OPS};

const VERSIONS: &str = "/v1/operator/config/versions";

/// A bundle of one chain whose RPC refuses connections.
fn bundle(fee: u32) -> Value {
    let hash = format!("0x{}", "11".repeat(32));
    json!({
        "chains": [{
            "id": 1001,
            "rpc_url": "http://127.0.0.1:1",
            "requests_per_second": null,
            "logs_from_block": null,
            "logs_max_range": null,
            "origin_settler": { "address": format!("0x{}", "aa".repeat(20)), "code_hash": hash },
            "destination_settler": { "address": format!("0x{}", "bb".repeat(20)), "code_hash": hash },
            "finality_blocks": 2,
            "confirmation_tiers": [],
            "tokens": [{
                "symbol": "USDC", "address": format!("0x{}", "cc".repeat(20)), "code_hash": hash,
                "decimals": 6, "native_price": null,
            }],
            "pools": [],
        }],
        "attesters": [],
        "attest_timeout_ms": 3000,
        "solver_fee_bps": fee,
        "route_latency_secs": 2,
        "planner": { "max_hops": 3, "slippage_bps": 50, "fee_ceiling_pct": 300, "split": true },
        "hold_for_operator_secs": 0,
        "fill_margin_blocks": 1,
        "approval": { "approvers": [], "quorum": 0 },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_take_their_lifecycle_over_rest_and_refuse_what_does_not_fit() {
    let api = Api::new().await;
    let app = api.app();
    let changes = Changes::new(app.engine.log().db().clone());

    // Operators only; a bundle must hold together.
    api.call("GET", VERSIONS, Some(DAPP), None)
        .await
        .error(403, "forbidden");
    let mut lopsided = bundle(5);
    lopsided["approval"] = json!({ "approvers": [format!("0x{}", "dd".repeat(20))], "quorum": 2 });
    api.call("POST", VERSIONS, Some(OPS), Some(lopsided))
        .await
        .error(422, "invalid_config");
    let mut twice = bundle(5);
    let chain = twice["chains"][0].clone();
    twice["chains"].as_array_mut().unwrap().push(chain);
    api.call("POST", VERSIONS, Some(OPS), Some(twice))
        .await
        .error(422, "invalid_config");
    let mut unknown_field = bundle(5);
    unknown_field["fee"] = json!(1);
    api.call("POST", VERSIONS, Some(OPS), Some(unknown_field))
        .await
        .error(400, "invalid_request");

    // A bundle larger than the API's body limit for other requests (16 chains of 32 tokens) is
    // taken: bundles have a limit of their own.
    let mut large = bundle(6);
    let chain = large["chains"][0].clone();
    let chains: Vec<Value> = (0..16u64)
        .map(|c| {
            let mut chain = chain.clone();
            chain["id"] = json!(2000 + c);
            chain["tokens"] = (0..32u64)
                .map(|t| {
                    json!({
                        "symbol": format!("T{t}"), "address": format!("0x{:040x}", c * 100 + t + 1),
                        "code_hash": format!("0x{}", "22".repeat(32)), "decimals": 18,
                        "native_price": "1000000000000000000",
                    })
                })
                .collect();
            chain
        })
        .collect();
    large["chains"] = json!(chains);
    let size = large.to_string().len();
    assert!(size > app.settings.body_limit, "{size} bytes");
    let taken = api.call("POST", VERSIONS, Some(OPS), Some(large)).await;
    assert_eq!(taken.status, 201, "{}", taken.body);
    baton_api::changes::tick(&app).await.unwrap();

    // Proposed once, however often; validation finds the RPC closed and rejects it.
    let first = api.call("POST", VERSIONS, Some(OPS), Some(bundle(5))).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let id = first.body["version"]["id"].as_str().unwrap().to_owned();
    let again = api.call("POST", VERSIONS, Some(OPS), Some(bundle(5))).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["version"]["id"], id.as_str());
    baton_api::changes::tick(&app).await.unwrap();
    let shown = api
        .call("GET", &format!("{VERSIONS}/2"), Some(OPS), None)
        .await;
    assert_eq!(shown.body["version"]["state"], "rejected", "{}", shown.body);
    let found = shown.body["history"][1]["detail"].as_str().unwrap();
    assert!(
        found.contains("chain 1001: its RPC did not answer"),
        "{found}"
    );
    assert!(
        !found.contains("127.0.0.1:1"),
        "the RPC URL is not repeated: {found}"
    );

    // Version 3, validated (here by hand: there is no chain to check), approved by an admin key
    // alone because no active version names approvers.
    let two = api.call("POST", VERSIONS, Some(OPS), Some(bundle(7))).await;
    let two_id: alloy::primitives::B256 =
        two.body["version"]["id"].as_str().unwrap().parse().unwrap();
    api.call(
        "POST",
        &format!("{VERSIONS}/3/schedule"),
        Some(OPS),
        Some(json!({})),
    )
    .await
    .error(409, "conflict");
    changes
        .transition(two_id, State::Validated, "test", "by hand", 1)
        .await
        .unwrap();
    api.call(
        "POST",
        &format!("{VERSIONS}/3/approve"),
        Some(OPS),
        Some(json!({})),
    )
    .await
    .error(403, "forbidden");
    let signature = PrivateKeySigner::random()
        .sign_message_sync(approval_message(two_id).as_bytes())
        .unwrap();
    api.call(
        "POST",
        &format!("{VERSIONS}/3/approve"),
        Some(ADMIN),
        Some(json!({ "signature": signature.to_string() })),
    )
    .await
    .error(422, "invalid_combination");
    let approved = api
        .call(
            "POST",
            &format!("{VERSIONS}/{two_id}/approve"),
            Some(ADMIN),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        approved.body["version"]["state"], "approved",
        "{}",
        approved.body
    );

    // Scheduled in the past: active at the next pull.
    let scheduled = api
        .call(
            "POST",
            &format!("{VERSIONS}/3/schedule"),
            Some(OPS),
            Some(json!({ "at_ms": 0 })),
        )
        .await;
    assert_eq!(
        scheduled.body["version"]["state"], "scheduled",
        "{}",
        scheduled.body
    );
    baton_api::changes::tick(&app).await.unwrap();
    let listed = api.call("GET", VERSIONS, Some(OPS), None).await;
    let states: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["rejected", "rejected", "active"]);

    // What cannot be: an active version rejected, a rollback with nothing before, no such version.
    api.call(
        "POST",
        &format!("{VERSIONS}/3/reject"),
        Some(OPS),
        Some(json!({ "reason": "no" })),
    )
    .await
    .error(409, "conflict");
    api.call(
        "POST",
        "/v1/operator/config/rollback",
        Some(OPS),
        Some(json!({})),
    )
    .await
    .error(409, "conflict");
    for missing in ["4", "0x12", "active", &format!("0x{}", "00".repeat(32))] {
        api.call("GET", &format!("{VERSIONS}/{missing}"), Some(OPS), None)
            .await
            .error(404, "not_found");
    }
    // No instance declared itself here (in-process apps declare nothing).
    let instances = api
        .call("GET", "/v1/operator/instances", Some(OPS), None)
        .await;
    assert_eq!(instances.body, json!([]));
    assert_eq!(changes.verify().await.unwrap(), None);
}

/// A JSON-RPC provider of chain 1 that is behind at first: its first `behind` answers to
/// `eth_getCode` find no code, later ones find `0x6001`.
async fn lagging_provider(behind: usize) -> (String, tokio::task::JoinHandle<()>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let asked = std::sync::Arc::new(AtomicUsize::new(0));
    let router = axum::Router::new().route(
        "/",
        axum::routing::post(move |axum::Json(request): axum::Json<Value>| {
            let asked = asked.clone();
            async move {
                let result = match request["method"].as_str() {
                    Some("eth_chainId") => json!("0x1"),
                    Some("eth_getCode") if asked.fetch_add(1, Ordering::SeqCst) < behind => {
                        json!("0x")
                    }
                    Some("eth_getCode") => json!("0x6001"),
                    _ => Value::Null,
                };
                axum::Json(json!({"jsonrpc": "2.0", "id": request["id"], "result": result}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let served = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, served)
}

#[tokio::test]
async fn a_provider_behind_the_contracts_deployment_is_asked_again_before_no_code_is_reported() {
    let contract = alloy::primitives::Address::repeat_byte(7);
    let code = alloy::primitives::keccak256([0x60, 0x01]);

    let (url, served) = lagging_provider(2).await;
    let (chain, hashes) = baton_api::changes::read_chain(&url, &[contract])
        .await
        .unwrap();
    assert_eq!((chain, hashes), (1, vec![Some(code)]));
    served.abort();

    // One that never finds code reports none, after asking a few times.
    let (url, served) = lagging_provider(usize::MAX).await;
    let (_, hashes) = baton_api::changes::read_chain(&url, &[contract])
        .await
        .unwrap();
    assert_eq!(hashes, vec![None]);
    served.abort();
}

/// What a switch runs sets the engine's attesters, hold and fill margin with the rest: an intake
/// that fit under the running version's margin no longer fits under a margin of a thousand
/// blocks, and fits again once the margin is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_sets_the_engines_fill_margin_for_what_comes_in_next() {
    let api = Api::new().await;
    let good = api.intent(1);
    let quote = || api.call("POST", "/v1/quotes", Some(DAPP), Some(good.clone()));
    assert_eq!(quote().await.status, 200);
    let before = api.app.engine.knobs();
    let run = |margin: u64| {
        let mut runtime = (*api.app.runtime()).clone();
        runtime.engine = Some(baton_engine::Knobs {
            fill_margin_blocks: margin,
            ..before.clone()
        });
        api.app.run(runtime)
    };
    run(1_000).await;
    assert_eq!(api.app.engine.knobs().fill_margin_blocks, 1_000);
    let refused = quote().await;
    crate::expect_error(
        "a margin of 1,000 blocks",
        &refused,
        422,
        "deadline_too_soon",
    );
    run(before.fill_margin_blocks).await;
    assert_eq!(quote().await.status, 200);
}
