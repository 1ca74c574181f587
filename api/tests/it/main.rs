//! The API in-process: the router driven over the sim world (`baton_engine::simworld`), no
//! listener, no anvil — every client error code, roles, rate limits, idempotency and the OpenAPI
//! document. What needs a real server and real chains is in `tests/e2e`.

#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::signers::local::PrivateKeySigner;
use axum::body::Body;
use axum::http::{HeaderMap, Request};
use baton_api::{ApiKey, App, Keys, Role, Settings};
use baton_engine::log::db::{Db, ScratchSqlite};
use baton_engine::simworld::{self, World};
use serde_json::{Value, json};
use tower::ServiceExt;

mod config;
mod console;
mod errors;
mod idempotency;
mod isolation;
mod metrics;
mod openapi;
mod roles;
mod streams;
mod webhooks;

pub const DAPP: &str = "dapp-secret-0123456789";
pub const OTHER_DAPP: &str = "other-dapp-secret-0123456789";
pub const OPS: &str = "operator-secret-0123456789";
pub const ADMIN: &str = "admin-secret-0123456789";
pub const SLOW: &str = "slow-secret-0123456789";

/// An answer: status, JSON body (null when not JSON) and headers.
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: HeaderMap,
}

/// The API over a sim world, with a dApp, an operator, an admin and a rate-limited key.
pub struct Api {
    pub world: World,
    app: Arc<App>,
    _db: ScratchSqlite,
}

impl Api {
    pub async fn new() -> Self {
        Self::with(Settings::default()).await
    }

    /// The API with `settings` (its body limit set for the tests).
    pub async fn with(settings: Settings) -> Self {
        let world = World::new().await;
        let scratch = ScratchSqlite::new("api-test");
        let db = Db::connect(&scratch.url()).await.unwrap();
        let engine = world.engine(db, simworld::fast());
        engine.recover().await.unwrap();
        let key = |name: &str, role, secret: &str, per_second: u32| ApiKey {
            name: name.into(),
            role,
            secret: secret.into(),
            per_second: NonZeroU32::new(per_second).unwrap(),
        };
        let keys = Keys::new(vec![
            key("dapp", Role::Dapp, DAPP, 1_000),
            key("other-dapp", Role::Dapp, OTHER_DAPP, 1_000),
            key("ops", Role::Operator, OPS, 1_000),
            key("admin", Role::Admin, ADMIN, 1_000),
            key("slow", Role::Dapp, SLOW, 1),
        ])
        .unwrap();
        let settings = Settings {
            body_limit: 16 * 1024,
            ..settings
        };
        let app = App::new(Arc::new(engine), world.venues(), settings, keys);
        Self {
            world,
            app: Arc::new(app),
            _db: scratch,
        }
    }

    /// The API's shared state (to build routers of one's own).
    pub fn app(&self) -> Arc<App> {
        self.app.clone()
    }

    /// Sends `request` to the router.
    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = baton_api::router(self.app.clone())
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            headers,
        }
    }

    /// The body of the answer to `request`, as text.
    pub async fn send_text(&self, request: Request<Body>) -> String {
        let response = baton_api::router(self.app.clone())
            .oneshot(request)
            .await
            .unwrap();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// `method path` with `key` and a JSON `body`.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        self.call_with(method, path, key, body, &[]).await
    }

    /// [`Api::call`] with extra headers.
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        };
        self.send(request.unwrap()).await
    }

    /// A raw body with a content type, as a careless client sends it.
    pub async fn raw(
        &self,
        path: &str,
        content_type: &str,
        body: String,
        key: Option<&str>,
    ) -> Answer {
        let mut request = Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", content_type);
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    /// 1,000 USDC on the origin for at least 0.3 WETH on the destination, by the world's user.
    pub fn intent(&self, nonce: u64) -> Value {
        json!({
            "user": self.world.user.address().to_string(),
            "nonce": nonce.to_string(),
            "open_deadline": { "in": 300 },
            "fill_deadline": { "in": 600 },
            "inputs": [{ "chain": 1001, "token": "USDC", "amount": "1000000000" }],
            "outputs": [{ "chain": 1002, "token": "WETH", "min_amount": "300000000000000000",
                          "recipient": self.world.recipient.to_string() }]
        })
    }

    /// Quotes `intent` and signs its orders as `signer`, as a wallet would.
    pub async fn quote_and_sign(&self, intent: &Value, signer: &PrivateKeySigner) -> Value {
        let quote = self
            .call("POST", "/v1/quotes", Some(DAPP), Some(intent.clone()))
            .await;
        assert_eq!(quote.status, 200, "{}", quote.body);
        baton_api::wallet::sign_quote(&quote.body, signer).unwrap()
    }

    /// The world's user's intent `nonce` quoted, signed and submitted as the dApp: its id.
    pub async fn submitted(&self, nonce: u64) -> String {
        let signed = self
            .quote_and_sign(&self.intent(nonce), &self.world.user)
            .await;
        let accepted = self.submit(&signed, None).await;
        assert_eq!(accepted.status, 202, "{}", accepted.body);
        accepted.body["intent_id"].as_str().unwrap().to_owned()
    }

    /// Submits signed orders, with an `Idempotency-Key` when given.
    pub async fn submit(&self, signed: &Value, key: Option<&str>) -> Answer {
        let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
        self.call_with(
            "POST",
            "/v1/intents",
            Some(DAPP),
            Some(signed.clone()),
            &headers,
        )
        .await
    }

    /// Polls intent `id` until `done` holds of its view (a minute at most).
    pub async fn view_until(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let view = self
                .call("GET", &format!("/v1/intents/{id}"), Some(DAPP), None)
                .await;
            assert_eq!(view.status, 200, "{}", view.body);
            if done(&view.body) {
                return view.body;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "{}", view.body);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `answer` is an error with `status` and `code`, and says why in a sentence.
#[track_caller]
pub fn expect_error(what: &str, answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{what}: {}", answer.body);
    assert_eq!(answer.body["code"], code, "{what}: {}", answer.body);
    assert!(
        answer.body["message"]
            .as_str()
            .is_some_and(|m| m.len() > 10),
        "{what}: a sentence: {}",
        answer.body
    );
}

impl Answer {
    /// [`expect_error`] of this answer.
    #[track_caller]
    pub fn error(&self, status: u16, code: &str) {
        expect_error("", self, status, code);
    }
}

/// `value` with the field at `path` set to `to`.
pub fn with(value: &Value, path: &[&str], to: Value) -> Value {
    let mut v = value.clone();
    let mut at = &mut v;
    for p in &path[..path.len() - 1] {
        at = match p.parse::<usize>() {
            Ok(i) => &mut at[i],
            Err(_) => &mut at[*p],
        };
    }
    at[path[path.len() - 1]] = to;
    v
}
