//! An API key holds a bounded number of event streams: one more is refused with a clear error, and
//! a stream that ends or whose client leaves gives its place back.

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

use crate::{Api, DAPP, OTHER_DAPP};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_are_capped_per_key() {
    let api = Api::with(baton_api::Settings {
        streams_per_key: 2,
        ..baton_api::Settings::default()
    })
    .await;
    let id = api.submitted(1).await;
    let open = |key: &'static str| {
        let request = Request::get(format!("/v1/intents/{id}/events"))
            .header("authorization", format!("Bearer {key}"))
            .body(Body::empty())
            .unwrap();
        baton_api::router(api.app()).oneshot(request)
    };
    // Held open: their bodies are not read.
    let first = open(DAPP).await.unwrap();
    let second = open(DAPP).await.unwrap();
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let third = open(DAPP).await.unwrap();
    assert_eq!(third.status(), 429);
    let body = axum::body::to_bytes(third.into_body(), usize::MAX)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], "rate_limited", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("event streams"),
        "{body}"
    );
    // The cap is per key.
    let others = open(OTHER_DAPP).await.unwrap();
    assert_eq!(
        others.status(),
        404,
        "not its intent, but not refused for streams"
    );
    // A client that goes away gives its place back.
    drop(first);
    assert_eq!(open(DAPP).await.unwrap().status(), 200);
    drop(second);
}
