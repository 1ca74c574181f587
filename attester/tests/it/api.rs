//! The HTTP API, through a real listener and the engine's client.

use std::sync::Arc;
use std::time::Duration;

use baton_attester::client::{Attest, HttpAttester};
use baton_attester::http::router;
use baton_attester::wire::{Answer, Pending, Refusal};

use crate::{Bed, CONFIRMATIONS};

#[tokio::test]
async fn the_api_answers_202_until_final_then_200_and_4xx_for_what_never_will_be() {
    let bed = Bed::new().await;
    let o = bed.open(1, 600, Vec::new()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let app = router(bed.attester.clone(), None);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = HttpAttester::new(base.parse().unwrap(), Duration::from_secs(5)).unwrap();
    let http = reqwest::Client::new();
    let post =
        |path: &str, body: serde_json::Value| http.post(format!("{base}{path}")).json(&body).send();

    let req = bed.fill_request(&o);
    let answer = client.fill(&req).await.unwrap();
    assert!(
        matches!(
            answer,
            Answer::Pending {
                reason: Pending::NotFilled,
                ..
            }
        ),
        "{answer:?}"
    );
    let raw = post("v1/fills", serde_json::to_value(&req).unwrap())
        .await
        .unwrap();
    assert_eq!(raw.status(), 202);
    assert_eq!(raw.headers()["retry-after"], "1");

    bed.fill(&o, o.output.clone(), Vec::new()).await.unwrap();
    bed.dest.mine(CONFIRMATIONS);
    let Answer::Signed(signed) = client.fill(&req).await.unwrap() else {
        panic!("signed once final");
    };
    assert_eq!(signed.signer, bed.attester.address());
    let raw = post("v1/fills", serde_json::to_value(&req).unwrap())
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);

    let cancel = bed.cancel_request(&o, None);
    let answer = client.cancel(&cancel).await.unwrap();
    assert!(
        matches!(
            answer,
            Answer::Refused {
                reason: Refusal::Conflict,
                ..
            }
        ),
        "{answer:?}"
    );
    let raw = post("v1/cancels", serde_json::to_value(&cancel).unwrap())
        .await
        .unwrap();
    assert_eq!(raw.status(), 409);
    let body: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(body["code"], "conflict");
    assert!(body["message"].as_str().unwrap().contains("filled"));

    // Malformed bodies: 400 with a code, never a panic.
    for body in ["{", "{}", r#"{"order": 5, "filler": "0x12"}"#] {
        let raw = http
            .post(format!("{base}v1/fills"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(raw.status(), 400, "{body}");
        let problem: serde_json::Value = raw.json().await.unwrap();
        assert_eq!(problem["code"], "bad_request");
    }
    let health: serde_json::Value = http
        .get(format!("{base}v1/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(
        health["address"].as_str().unwrap().to_lowercase(),
        bed.attester.address().to_string().to_lowercase()
    );
    let _keep: Arc<_> = bed.attester.clone();
    server.abort();
}

#[tokio::test]
async fn an_attester_that_is_down_is_unreachable_not_an_answer() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let bed = Bed::new().await;
    let o = bed.open(1, 600, Vec::new()).await;
    let client = HttpAttester::new(base.parse().unwrap(), Duration::from_secs(2)).unwrap();
    assert!(client.fill(&bed.fill_request(&o)).await.is_err());
}
