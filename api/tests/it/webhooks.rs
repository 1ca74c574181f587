//! Webhooks in-process over the sim world, delivered to a receiver on 127.0.0.1 that is away at
//! first, then answers 500, hangs past the timeout and answers 503: every event of the intent
//! arrives at least once, in the saga's order, signed as Standard Webhooks sign; an endpoint that
//! never answers 2xx is marked failing, seen by operators, and gets what waited once enabled;
//! registration refuses what it must.

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use baton_api::Settings;
use baton_api::webhooks::{WebhookSettings, sign};
use serde_json::{Value, json};

use crate::{ADMIN, Api, DAPP, OPS, OTHER_DAPP, expect_error};

/// What the receiver does with the next delivery.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Status(u16),
    Hang,
}

/// One delivery as received.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

#[derive(Default)]
struct Inbox {
    script: VecDeque<Answer>,
    /// When the script is done.
    otherwise: Option<Answer>,
    received: Vec<Received>,
}

type Shared = Arc<Mutex<Inbox>>;

async fn receive(State(inbox): State<Shared>, headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let answer = {
        let mut inbox = inbox.lock().unwrap();
        inbox.received.push(Received {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            body,
        });
        let next = inbox.script.pop_front();
        next.or(inbox.otherwise).unwrap_or(Answer::Status(200))
    };
    match answer {
        Answer::Status(code) => StatusCode::from_u16(code).unwrap(),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            StatusCode::OK
        }
    }
}

/// A receiver on `addr` (a free port when it is port 0), until the task is aborted.
async fn receiver(addr: SocketAddr, inbox: Shared) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(inbox);
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (addr, task)
}

fn quick(retry_for: Duration) -> Settings {
    Settings {
        webhooks: WebhookSettings {
            timeout: Duration::from_millis(300),
            backoff: Duration::from_millis(30),
            backoff_max: Duration::from_millis(200),
            retry_for,
            allow_private: true,
            ..WebhookSettings::default()
        },
        ..Settings::default()
    }
}

/// Registers an endpoint at `addr` for every topic as the dApp; its id and secret.
async fn register(api: &Api, addr: SocketAddr) -> (String, String) {
    let topics: Vec<&str> = baton_engine::TOPICS.to_vec();
    let created = api
        .call(
            "POST",
            "/v1/webhooks",
            Some(DAPP),
            Some(
                json!({ "url": format!("http://{addr}/hook"), "events": topics,
                         "description": "the test's receiver" }),
            ),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["state"], "active");
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (created.body["id"].as_str().unwrap().to_owned(), secret)
}

/// The seqs of intent `id`'s events received so far, each checked against its signature.
fn verified(inbox: &Shared, secret: &str, intent: &str) -> Vec<u64> {
    let inbox = inbox.lock().unwrap();
    let mut seqs = Vec::new();
    for r in &inbox.received {
        let timestamp: u64 = r.timestamp.parse().unwrap();
        assert_eq!(
            sign(secret, &r.id, timestamp, r.body.as_bytes()),
            r.signature,
            "signed: {r:?}"
        );
        assert_ne!(
            sign(
                secret,
                &r.id,
                timestamp,
                r.body.replace("intent", "intenT").as_bytes()
            ),
            r.signature
        );
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert!(body["type"].as_str().unwrap().starts_with("intent."));
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'), "{body}");
        if body["data"]["intent_id"] == intent {
            let seq = body["data"]["seq"].as_u64().unwrap();
            assert_eq!(r.id, format!("msg_{}_{seq}", &intent[2..]), "{r:?}");
            seqs.push(seq);
        }
    }
    seqs
}

/// Endpoint `webhook` once `done` holds of it (a minute at most).
async fn endpoint_when(api: &Api, webhook: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let endpoint = api
            .call("GET", &format!("/v1/webhooks/{webhook}"), Some(DAPP), None)
            .await;
        assert_eq!(endpoint.status, 200, "{}", endpoint.body);
        if done(&endpoint.body) {
            return endpoint.body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{}",
            endpoint.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Endpoint `webhook` once nothing waits for it.
async fn drained(api: &Api, webhook: &str) -> Value {
    endpoint_when(api, webhook, |e| e["pending"] == 0).await
}

/// Waits until each of intent `id`'s `events` arrived, signed, at least once.
async fn every_event(inbox: &Shared, secret: &str, id: &str, events: u64) {
    until("every event", || {
        verified(inbox, secret, id)
            .into_iter()
            .collect::<BTreeSet<_>>()
            .len() as u64
            == events
    })
    .await;
}

/// Waits until `done` holds (a minute at most).
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "waited for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_signed_in_order_through_errors_timeouts_and_an_outage() {
    let api = Api::with(quick(Duration::from_secs(3600))).await;
    let inbox = Shared::default();
    inbox.lock().unwrap().script = [Answer::Status(500), Answer::Hang, Answer::Status(503)].into();
    // The receiver is away at first (its port free): the first deliveries find nobody.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (webhook, secret) = register(&api, addr).await;
    let deliverer = tokio::spawn(baton_api::webhooks::deliver(api.app()));
    let id = api.submitted(1).await;
    let log = format!("/v1/webhooks/{webhook}/deliveries");
    let started = Instant::now();
    loop {
        let tried = api.call("GET", &log, Some(DAPP), None).await;
        if tried.body.to_string().contains("could not connect") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{}",
            tried.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // It comes back on its port: a 500, a hang past the timeout, a 503, then 200s.
    let (_, server) = receiver(addr, inbox.clone()).await;

    let view = api.view_until(&id, |v| v["status"] == "completed").await;
    let events = view["events"].as_u64().unwrap();
    every_event(&inbox, &secret, &id, events).await;
    // In the saga's order: each event first arrived after every earlier one.
    let mut firsts = Vec::new();
    for seq in verified(&inbox, &secret, &id) {
        if !firsts.contains(&seq) {
            firsts.push(seq);
        }
    }
    assert_eq!(firsts, (1..=events).collect::<Vec<_>>());

    // The delivery log shows the 500, the timeout, the outage, the 503 and the successes.
    let log = api
        .call(
            "GET",
            &format!("/v1/webhooks/{webhook}/deliveries?limit=1000"),
            Some(DAPP),
            None,
        )
        .await;
    assert_eq!(log.status, 200, "{}", log.body);
    let attempts = log.body.as_array().unwrap();
    let status = |code: u64| attempts.iter().any(|a| a["status"] == code);
    let error = |text: &str| {
        attempts
            .iter()
            .any(|a| a["error"].as_str().is_some_and(|e| e.contains(text)))
    };
    assert!(status(500) && status(503) && status(200), "{}", log.body);
    assert!(error("no answer within the timeout"), "{}", log.body);
    assert!(error("could not connect"), "{}", log.body);
    let endpoint = drained(&api, &webhook).await;
    assert_eq!(endpoint["state"], "active", "{endpoint}");
    assert!(endpoint.get("secret").is_none(), "shown once: {endpoint}");
    deliverer.abort();
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_never_answers_2xx_fails_is_seen_and_gets_everything_once_enabled() {
    let api = Api::with(quick(Duration::from_millis(300))).await;
    let inbox = Shared::default();
    inbox.lock().unwrap().otherwise = Some(Answer::Status(500));
    let (addr, server) = receiver("127.0.0.1:0".parse().unwrap(), inbox.clone()).await;
    let (webhook, secret) = register(&api, addr).await;
    let deliverer = tokio::spawn(baton_api::webhooks::deliver(api.app()));
    let id = api.submitted(1).await;
    let view = api.view_until(&id, |v| v["status"] == "completed").await;
    let events = view["events"].as_u64().unwrap();

    let show = format!("/v1/webhooks/{webhook}");
    let failing = endpoint_when(&api, &webhook, |e| e["state"] == "failing").await;
    // Nothing got through: everything waits, and the first message was retried.
    assert_eq!(failing["pending"], events, "{failing}");
    assert!(failing["failing_since_ms"].as_i64().is_some(), "{failing}");
    let seen = api
        .call("GET", "/v1/operator/webhooks", Some(OPS), None)
        .await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert_eq!(seen.body[0]["id"], webhook.as_str());
    assert_eq!(seen.body[0]["state"], "failing");
    assert_eq!(seen.body[0]["owner"], "dapp");
    let tried = inbox.lock().unwrap().received.len();
    assert!(tried >= 2, "retried: {tried}");
    // Failing: nothing more is attempted.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(inbox.lock().unwrap().received.len(), tried);

    inbox.lock().unwrap().otherwise = Some(Answer::Status(204));
    let enabled = api
        .call("POST", &format!("{show}/enable"), Some(DAPP), None)
        .await;
    assert_eq!(enabled.status, 200, "{}", enabled.body);
    assert_eq!(enabled.body["state"], "active");
    every_event(&inbox, &secret, &id, events).await;
    drained(&api, &webhook).await;
    deliverer.abort();
    server.abort();
}

#[tokio::test]
async fn registration_refuses_what_it_must_and_keys_see_only_their_own() {
    let api = Api::new().await;
    let post = |body: Value| async {
        let key = DAPP;
        api.call("POST", "/v1/webhooks", Some(key), Some(body))
            .await
    };
    let events = json!(["intent.fulfilled"]);
    for (what, url) in [
        ("https", "https://example.com/hook"),
        ("not a URL", "hook"),
        ("another scheme", "ftp://example.com/hook"),
        ("credentials", "http://user:pw@8.8.8.8/hook"),
        ("loopback", "http://127.0.0.1:9/hook"),
        ("private", "http://10.0.0.7/hook"),
        ("link-local metadata", "http://169.254.169.254/latest"),
        ("IPv6 loopback", "http://[::1]:8080/hook"),
    ] {
        let answer = post(json!({ "url": url, "events": events })).await;
        expect_error(what, &answer, 400, "invalid_request");
    }
    let long = format!("http://8.8.8.8/{}", "a".repeat(2048));
    expect_error(
        "too long",
        &post(json!({ "url": long, "events": events })).await,
        400,
        "invalid_request",
    );
    let public = "http://8.8.8.8/hook";
    expect_error(
        "no events",
        &post(json!({ "url": public, "events": [] })).await,
        400,
        "invalid_request",
    );
    expect_error(
        "unknown event",
        &post(json!({ "url": public, "events": ["intent.teleported"] })).await,
        400,
        "invalid_request",
    );
    expect_error(
        "long description",
        &post(json!({ "url": public, "events": events, "description": "d".repeat(201) })).await,
        400,
        "invalid_request",
    );

    // Registered (a public address needs no resolution): repeated topics once.
    let created = post(json!({ "url": public,
                               "events": ["intent.fulfilled", "intent.refunded", "intent.fulfilled"] }))
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.body["events"],
        json!(["intent.fulfilled", "intent.refunded"])
    );
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/webhooks/{id}");
    // Another dApp key neither sees nor removes it; an operator sees it; an admin removes it.
    let other = api.call("GET", &path, Some(OTHER_DAPP), None).await;
    expect_error("another key's", &other, 404, "not_found");
    let removed = api.call("DELETE", &path, Some(OTHER_DAPP), None).await;
    expect_error("another key's", &removed, 404, "not_found");
    let listed = api
        .call("GET", "/v1/webhooks", Some(OTHER_DAPP), None)
        .await;
    assert_eq!(listed.body, json!([]));
    let listed = api.call("GET", "/v1/webhooks", Some(DAPP), None).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1, "{}", listed.body);
    assert!(listed.body[0].get("secret").is_none(), "{}", listed.body);
    let forbidden = api
        .call("GET", "/v1/operator/webhooks", Some(DAPP), None)
        .await;
    expect_error("a dApp key", &forbidden, 403, "forbidden");
    let seen = api.call("GET", &path, Some(OPS), None).await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    let gone = api.call("DELETE", &path, Some(ADMIN), None).await;
    assert_eq!(gone.status, 204);
    let gone = api.call("GET", &path, Some(DAPP), None).await;
    expect_error("removed", &gone, 404, "not_found");

    // A key holds at most 16 endpoints.
    for _ in 0..16 {
        let created = post(json!({ "url": public, "events": events })).await;
        assert_eq!(created.status, 201, "{}", created.body);
    }
    expect_error(
        "the 17th",
        &post(json!({ "url": public, "events": events })).await,
        409,
        "conflict",
    );
}
