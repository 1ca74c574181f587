//! Webhooks across a `baton serve` killed with SIGKILL while a delivery is in flight: the server
//! started again on the same saga log delivers what was left, the interrupted message again (at
//! least once), every event of the intent arrives, each signed as Standard Webhooks sign.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use baton_adapters::devnet::{USER, dev_signer};
use baton_api::dto::saga::Outcome;
use baton_api::webhooks::sign;
use serde_json::{Value, json};

use crate::stack::{DAPP, Stack, intent};

#[derive(Default)]
struct Inbox {
    /// (webhook-id, webhook-timestamp, webhook-signature, body), as each delivery came in.
    received: Vec<(String, String, String, String)>,
    /// Deliveries not answered yet.
    in_flight: usize,
}

type Shared = Arc<Mutex<Inbox>>;

/// Records a delivery as it comes in, and answers 200 after a while (so that some are in flight
/// when the server is killed).
async fn receive(State(inbox): State<Shared>, headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    {
        let mut inbox = inbox.lock().unwrap();
        inbox.received.push((
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
            body,
        ));
        inbox.in_flight += 1;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    inbox.lock().unwrap().in_flight -= 1;
    StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_at_least_once_across_a_server_killed_mid_delivery() {
    let (stack, mut server) = Stack::builder("webhooks")
        .config("[webhooks]\ntimeout-ms = 2000\nbackoff-ms = 100\nbackoff-max-secs = 1")
        .serve()
        .await;
    let inbox = Shared::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(inbox.clone());
    let receiver = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let created = server
        .call(
            "POST",
            "/v1/webhooks",
            Some(DAPP),
            Some(json!({ "url": format!("http://{addr}/hook"),
                         "events": baton_engine::TOPICS })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    let webhook = created.body["id"].as_str().unwrap().to_owned();

    let signed = server
        .quote_and_sign(&intent("01-usdc-a-to-weth-b.json"), &dev_signer(USER))
        .await;
    let id = server.submit(&signed).await.intent_id;
    // Killed while a delivery waits for its answer, after at least one was delivered.
    let started = Instant::now();
    loop {
        {
            let inbox = inbox.lock().unwrap();
            if inbox.received.len() >= 2 && inbox.in_flight > 0 {
                break;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no delivery");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    let interrupted = inbox.lock().unwrap().received.last().unwrap().0.clone();
    drop(server);

    let server = stack.serve().await;
    let view = server
        .view_until(&id, |v| v.status == baton_api::dto::saga::Status::Completed)
        .await;
    assert_eq!(view.outcome, Some(Outcome::Fulfilled), "{view:#?}");
    let started = Instant::now();
    let (seqs, ids) = loop {
        let (seqs, ids) = {
            let inbox = inbox.lock().unwrap();
            let mut seqs = BTreeSet::new();
            let mut ids = Vec::new();
            for (msg, timestamp, signature, body) in &inbox.received {
                let at: u64 = timestamp.parse().unwrap();
                assert_eq!(
                    &sign(&secret, msg, at, body.as_bytes()),
                    signature,
                    "{body}"
                );
                let body: Value = serde_json::from_str(body).unwrap();
                assert_eq!(body["data"]["intent_id"], id.as_str());
                seqs.insert(body["data"]["seq"].as_u64().unwrap());
                ids.push(msg.clone());
            }
            (seqs, ids)
        };
        if seqs.len() as u64 == view.events {
            break (seqs, ids);
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{} of {} events arrived",
            seqs.len(),
            view.events
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(seqs, (1..=view.events).collect());
    // The delivery the kill interrupted came again.
    assert!(
        ids.iter().filter(|m| **m == interrupted).count() >= 2,
        "{interrupted} once: {ids:?}"
    );
    let endpoint = server
        .call("GET", &format!("/v1/webhooks/{webhook}"), Some(DAPP), None)
        .await;
    assert_eq!(endpoint.body["state"], "active", "{}", endpoint.body);
    receiver.abort();
}
