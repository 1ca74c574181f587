//! A client of baton's REST API, as the CLI's `quote`, `submit`, `status` and `sagas` (and the
//! demo) use it. Signing a quote's orders the way a wallet signs typed data is
//! `baton_api::wallet`.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// A client of one server, with one API key.
pub(crate) struct Client {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Client {
    /// A client of the server at `base` (`http://127.0.0.1:8080`) using API key `key`.
    pub(crate) fn new(base: &str, key: &str) -> Result<Self> {
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value> {
        let response = request
            .bearer_auth(&self.key)
            .send()
            .await
            .with_context(|| format!("reaching baton at {}", self.base))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let code = body["code"].as_str().unwrap_or("unknown");
            let message = body["message"].as_str().unwrap_or("no message");
            bail!("{message} [{code}, HTTP {}]", status.as_u16());
        }
        Ok(body)
    }

    /// `GET {path}`.
    pub(crate) async fn get(&self, path: &str) -> Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// `POST {path}` with `body`.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    /// `POST /v1/quotes`.
    pub(crate) async fn quote(&self, intent: &Value) -> Result<Value> {
        self.send(
            self.http
                .post(format!("{}/v1/quotes", self.base))
                .json(intent),
        )
        .await
    }

    /// `POST /v1/intents`, with an `Idempotency-Key` when given.
    pub(crate) async fn submit(
        &self,
        signed: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Value> {
        let mut request = self
            .http
            .post(format!("{}/v1/intents", self.base))
            .json(signed);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        self.send(request).await
    }

    /// `GET /v1/intents/{id}`.
    pub(crate) async fn status(&self, id: &str) -> Result<Value> {
        self.send(self.http.get(format!("{}/v1/intents/{id}", self.base)))
            .await
    }

    /// `POST /v1/sagas/{id}/replay` with a change to try and, when `resume`, to resume the saga
    /// with after a trial that fulfils it. A replay takes seconds to minutes.
    pub(crate) async fn replay(
        &self,
        id: &str,
        change: &baton_planner::ConfigPatch,
        resume: bool,
    ) -> Result<Value> {
        self.send(
            self.http
                .post(format!("{}/v1/sagas/{id}/replay", self.base))
                .timeout(Duration::from_secs(600))
                .json(&json!({ "with": change, "resume": resume })),
        )
        .await
    }

    /// `GET /v1/operator/sagas`.
    pub(crate) async fn sagas(&self, state: Option<&str>) -> Result<Value> {
        let query = state.map_or_else(String::new, |s| format!("?state={s}"));
        self.send(
            self.http
                .get(format!("{}/v1/operator/sagas{query}", self.base)),
        )
        .await
    }
}

/// The intent of an intent file, as `POST /v1/quotes` takes it (`expect` is for `baton plan`).
pub(crate) fn intent_request(mut file: Value) -> Value {
    if let Some(map) = file.as_object_mut() {
        map.remove("expect");
    }
    file
}

/// One line per step: id, action, chain, state, and tx / confirmations (when `confirmations`) /
/// reason where known.
pub(crate) fn describe_steps(view: &Value, confirmations: bool) -> Vec<String> {
    let mut lines = Vec::new();
    for step in view["steps"].as_array().into_iter().flatten() {
        let mut line = format!(
            "  step {:>2} {:<13} chain {} {}",
            step["id"],
            step["action"].as_str().unwrap_or("?"),
            step["chain"],
            step["state"].as_str().unwrap_or("?"),
        );
        if let Some(c) = step["confirmations"].as_u64().filter(|_| confirmations) {
            line.push_str(&format!(" ({c} conf.)"));
        }
        if let Some(tx) = step["tx"].as_str() {
            line.push_str(&format!(" tx {}…", &tx[..tx.len().min(12)]));
        }
        if let Some(code) = step["reason_code"].as_str() {
            line.push_str(&format!(
                " [{code}: {}]",
                step["reason"].as_str().unwrap_or_default()
            ));
        }
        if let Some(comp) = step["compensation"].as_object() {
            line.push_str(&format!(
                "; compensation {}",
                comp.get("state").and_then(Value::as_str).unwrap_or("?")
            ));
        }
        lines.push(line);
    }
    lines
}

/// The outcome word of a view (`fulfilled`, `refunded`, `failed`), if decided.
pub(crate) fn outcome(view: &Value) -> Option<&str> {
    view["outcome"]["outcome"].as_str()
}
