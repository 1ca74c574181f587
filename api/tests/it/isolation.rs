//! A `dapp` key reads only the intents it submitted: another dApp's intent answers 404, as one
//! that does not exist; operators read every intent.

use crate::{Api, DAPP, OPS, OTHER_DAPP, expect_error};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dapp_key_reads_only_the_intents_it_submitted() {
    let api = Api::new().await;
    let user = api.world.user.clone();
    let signed = api.quote_and_sign(&api.intent(1), &user).await;
    let accepted = api.submit(&signed, None).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let id = accepted.body["intent_id"].as_str().unwrap().to_owned();
    let status = format!("/v1/intents/{id}");
    let events = format!("/v1/intents/{id}/events");

    assert_eq!(api.call("GET", &status, Some(DAPP), None).await.status, 200);
    assert_eq!(api.call("GET", &status, Some(OPS), None).await.status, 200);
    expect_error(
        "another dApp's intent",
        &api.call("GET", &status, Some(OTHER_DAPP), None).await,
        404,
        "not_found",
    );
    expect_error(
        "another dApp's events",
        &api.call("GET", &events, Some(OTHER_DAPP), None).await,
        404,
        "not_found",
    );
    // Sending the same signed orders does not make the other dApp their submitter.
    let again = api
        .call_with("POST", "/v1/intents", Some(OTHER_DAPP), Some(signed), &[])
        .await;
    assert_eq!(again.status, 202, "{}", again.body);
    assert_eq!(again.body["intent_id"], id.as_str());
    expect_error(
        "still another dApp's intent",
        &api.call("GET", &status, Some(OTHER_DAPP), None).await,
        404,
        "not_found",
    );
}
