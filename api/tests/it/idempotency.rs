//! `Idempotency-Key`: the same key and body answer the same intent; the same key with another body
//! is a conflict; keys are the API key's own.

use serde_json::json;

use crate::{Api, expect_error, with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_submission_answers_the_same_intent_and_another_body_conflicts() {
    let api = Api::new().await;
    let user = api.world.user.clone();
    let signed = api.quote_and_sign(&api.intent(1), &user).await;
    let first = api.submit(&signed, Some("key-1")).await;
    assert_eq!(first.status, 202, "{}", first.body);
    let again = api.submit(&signed, Some("key-1")).await;
    assert_eq!(again.status, 202, "{}", again.body);
    assert_eq!(again.body["intent_id"], first.body["intent_id"]);
    // Without a key, the same signed orders answer the same intent too (it is stored).
    let plain = api.submit(&signed, None).await;
    assert_eq!(
        plain.body["intent_id"], first.body["intent_id"],
        "{}",
        plain.body
    );

    let other = api
        .quote_and_sign(&with(&api.intent(1), &["nonce"], json!("78")), &user)
        .await;
    expect_error(
        "idempotency",
        &api.submit(&other, Some("key-1")).await,
        409,
        "idempotency_conflict",
    );
    let fresh = api.submit(&other, Some("key-2")).await;
    assert_eq!(fresh.status, 202, "{}", fresh.body);
    assert_ne!(fresh.body["intent_id"], first.body["intent_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_is_forgotten_after_its_time() {
    let api = Api::with(baton_api::Settings {
        idempotency_ttl: std::time::Duration::from_secs(1),
        ..baton_api::Settings::default()
    })
    .await;
    let user = api.world.user.clone();
    let first = api.quote_and_sign(&api.intent(1), &user).await;
    let accepted = api.submit(&first, Some("key-1")).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let other = api
        .quote_and_sign(&with(&api.intent(1), &["nonce"], json!("78")), &user)
        .await;
    expect_error(
        "while the key holds",
        &api.submit(&other, Some("key-1")).await,
        409,
        "idempotency_conflict",
    );
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let later = api.submit(&other, Some("key-1")).await;
    assert_eq!(later.status, 202, "the key expired: {}", later.body);
    assert_ne!(later.body["intent_id"], accepted.body["intent_id"]);
    // It now names the new request.
    let again = api.submit(&other, Some("key-1")).await;
    assert_eq!(again.body["intent_id"], later.body["intent_id"]);
}
