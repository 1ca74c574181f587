//! Every client error is a 4xx with a code from the closed set and a sentence: the transport and
//! the body's shape, the intent itself, and signed submissions.

use baton_adapters::devnet::dev_signer;
use baton_engine::simworld::units_of;
use serde_json::json;

use crate::{Api, DAPP, OPS, expect_error, with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_of_the_wrong_shape_are_refused_with_their_codes() {
    let api = Api::new().await;
    let good = api.intent(1);
    let quote = |body| api.call("POST", "/v1/quotes", Some(DAPP), Some(body));
    let raw = |content_type, body: String, key| api.raw("/v1/quotes", content_type, body, key);
    let cases = [
        (
            "no key",
            raw("application/json", good.to_string(), None).await,
            401,
            "unauthorized",
        ),
        (
            "unknown key",
            api.call(
                "POST",
                "/v1/quotes",
                Some("not-a-key-0123456789"),
                Some(good.clone()),
            )
            .await,
            401,
            "unauthorized",
        ),
        (
            "not JSON",
            raw("application/json", "{not json".into(), Some(DAPP)).await,
            400,
            "malformed_json",
        ),
        (
            "text",
            raw("text/plain", good.to_string(), Some(DAPP)).await,
            415,
            "unsupported_media_type",
        ),
        (
            "huge body",
            raw(
                "application/json",
                format!("{{\"name\": \"{}\"}}", "x".repeat(100_000)),
                Some(DAPP),
            )
            .await,
            413,
            "payload_too_large",
        ),
        (
            "missing field",
            quote(json!({ "nonce": "1" })).await,
            400,
            "invalid_request",
        ),
        (
            "wrong type",
            quote(with(&good, &["inputs", "0", "chain"], json!("one"))).await,
            400,
            "invalid_request",
        ),
        (
            "unknown field",
            quote(with(&good, &["colour"], json!("red"))).await,
            400,
            "invalid_request",
        ),
        (
            "no route",
            api.call("GET", "/v1/nothing", Some(DAPP), None).await,
            404,
            "not_found",
        ),
        (
            "method",
            api.call("DELETE", "/v1/quotes", Some(DAPP), None).await,
            405,
            "method_not_allowed",
        ),
        (
            "bad idempotency key",
            api.call_with(
                "POST",
                "/v1/intents",
                Some(DAPP),
                Some(json!({ "orders": [] })),
                &[("idempotency-key", "")],
            )
            .await,
            400,
            "invalid_request",
        ),
    ];
    for (what, answer, status, code) in &cases {
        expect_error(what, answer, *status, code);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intents_that_cannot_be_planned_say_why() {
    let api = Api::new().await;
    let good = api.intent(1);
    let quote = |body| api.call("POST", "/v1/quotes", Some(DAPP), Some(body));
    let rushed = with(
        &with(&good, &["open_deadline"], json!({ "in": 1 })),
        &["fill_deadline"],
        json!({ "in": 2 }),
    );
    let cases = [
        (
            "chain",
            with(&good, &["inputs", "0", "chain"], json!(9999)),
            422,
            "unknown_chain",
        ),
        (
            "token",
            with(&good, &["outputs", "0", "token"], json!("DOGE")),
            422,
            "unknown_token",
        ),
        (
            "zero",
            with(&good, &["inputs", "0", "amount"], json!("0")),
            422,
            "amount_out_of_range",
        ),
        (
            "huge",
            with(&good, &["inputs", "0", "amount"], json!("9".repeat(39))),
            422,
            "amount_out_of_range",
        ),
        (
            "not digits",
            with(&good, &["inputs", "0", "amount"], json!(" 12")),
            400,
            "invalid_request",
        ),
        (
            "past",
            with(&good, &["open_deadline"], json!({ "at": 1000 })),
            422,
            "deadline_passed",
        ),
        (
            "no outputs",
            with(&good, &["outputs"], json!([])),
            400,
            "invalid_request",
        ),
        ("too soon", rushed, 422, "deadline_too_soon"),
        (
            "liquidity",
            with(
                &good,
                &["outputs", "0", "min_amount"],
                json!("90000000000000000000"),
            ),
            422,
            "insufficient_liquidity",
        ),
        (
            "user",
            with(&good, &["user"], json!("0x1234")),
            400,
            "invalid_request",
        ),
    ];
    for (what, body, status, code) in cases {
        expect_error(what, &quote(body).await, status, code);
    }
    let fine = quote(good).await;
    assert_eq!(fine.status, 200, "{}", fine.body);
    assert!(
        fine.body["orders"][0]["typed_data"].is_object(),
        "{}",
        fine.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_need_the_users_signature_funds_allowance_and_a_fresh_nonce() {
    let api = Api::new().await;
    let user = &api.world.user;
    let good = api.intent(1);

    let forged = api.quote_and_sign(&good, &dev_signer(2)).await;
    expect_error(
        "forged",
        &api.submit(&forged, None).await,
        422,
        "bad_signature",
    );
    let mut garbled = api.quote_and_sign(&good, user).await;
    garbled["orders"][0]["signature"] = json!("0x1234");
    expect_error(
        "garbled",
        &api.submit(&garbled, None).await,
        400,
        "invalid_request",
    );
    let mut mixed = api.quote_and_sign(&good, user).await;
    let deadline = mixed["orders"][0]["order"]["fillDeadline"]
        .as_u64()
        .unwrap();
    mixed["orders"][0]["order"]["fillDeadline"] = json!(deadline + 1);
    expect_error(
        "altered order",
        &api.submit(&mixed, None).await,
        422,
        "bad_signature",
    );

    // A user with nothing, and one with USDC who never let the settler pull it.
    let poor = dev_signer(4);
    let poor_signed = api
        .quote_and_sign(
            &with(&good, &["user"], json!(poor.address().to_string())),
            &poor,
        )
        .await;
    expect_error(
        "balance",
        &api.submit(&poor_signed, None).await,
        422,
        "insufficient_balance",
    );
    let holder = dev_signer(5);
    api.world
        .origin
        .mint(api.world.usdc_o, holder.address(), units_of(5_000, 6));
    let unapproved = api
        .quote_and_sign(
            &with(&good, &["user"], json!(holder.address().to_string())),
            &holder,
        )
        .await;
    expect_error(
        "allowance",
        &api.submit(&unapproved, None).await,
        422,
        "insufficient_allowance",
    );

    // Orders the user signed for another origin settler (quoted before a settler upgrade): the
    // signature holds, the settler is not the one intents are admitted on.
    let mut quote = api
        .call("POST", "/v1/quotes", Some(DAPP), Some(good.clone()))
        .await
        .body;
    let other = json!(format!("0x{}", "ab".repeat(20)));
    let order = &mut quote["orders"][0];
    order["order"]["originSettler"] = other.clone();
    order["typed_data"]["message"]["originSettler"] = other.clone();
    order["typed_data"]["domain"]["verifyingContract"] = other;
    let stale = baton_api::wallet::sign_quote(&quote, user).unwrap();
    let answer = api.submit(&stale, None).await;
    expect_error("another settler", &answer, 422, "invalid_intent");
    let message = answer.body["message"].as_str().unwrap();
    assert!(
        message.contains("the settlers changed since the quote: quote again"),
        "{message}"
    );

    let signed = api.quote_and_sign(&good, user).await;
    let accepted = api.submit(&signed, None).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let id = accepted.body["intent_id"].as_str().unwrap().to_owned();
    expect_error(
        "no such intent",
        &api.call(
            "GET",
            &format!("/v1/intents/0x{}", "00".repeat(32)),
            Some(DAPP),
            None,
        )
        .await,
        404,
        "not_found",
    );
    expect_error(
        "not an id",
        &api.call("GET", "/v1/intents/seven", Some(DAPP), None).await,
        404,
        "not_found",
    );
    expect_error(
        "retry a running saga",
        &api.call(
            "POST",
            &format!("/v1/operator/sagas/{id}/retry"),
            Some(OPS),
            None,
        )
        .await,
        409,
        "conflict",
    );
    // Once the order is open on chain its nonce is used: another intent with it is refused.
    api.view_until(&id, |view| view["steps"][0]["state"] == "final")
        .await;
    let reuse = api
        .quote_and_sign(
            &with(&good, &["inputs", "0", "amount"], json!("999000000")),
            user,
        )
        .await;
    expect_error("nonce", &api.submit(&reuse, None).await, 409, "nonce_used");
    let done = api.view_until(&id, |view| !view["outcome"].is_null()).await;
    assert_eq!(done["outcome"]["outcome"], "fulfilled", "{done}");
}
