//! A hostile JSON-RPC provider in front of an anvil node, behaving as public providers do: a
//! per-second quota answered 429 with `Retry-After`, `eth_getLogs` refused over a block range with
//! a provider's error, latency with jitter, connections dropped without an answer, and a second node
//! behind the same URL that lags 1–3 blocks (the head goes backwards between calls; a receipt is
//! found, then not). Started by a test, stopped when dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// How hostile a provider is.
#[derive(Clone, Copy, Debug)]
pub struct Hostility {
    /// Requests per second answered; the rest get 429 with `Retry-After: 1`.
    pub per_second: u32,
    /// The most blocks one `eth_getLogs` may span.
    pub logs_max_range: u64,
    /// Each answer is delayed by up to this.
    pub jitter_ms: u64,
    /// One request in this many has its connection dropped without an answer.
    pub drop_one_in: u32,
    /// One request in this many is answered by a node 1–3 blocks behind.
    pub lag_one_in: u32,
}

/// What a provider did.
#[derive(Debug, Default)]
pub struct Seen {
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    pub dropped: AtomicU64,
    pub lagged: AtomicU64,
    pub range_refused: AtomicU64,
}

impl Seen {
    /// (requests, throttled, dropped, lagged, range refused).
    pub fn counts(&self) -> [u64; 5] {
        [
            &self.requests,
            &self.throttled,
            &self.dropped,
            &self.lagged,
            &self.range_refused,
        ]
        .map(|c| c.load(Ordering::Relaxed))
    }
}

/// A running hostile provider.
pub struct Hostile {
    pub url: String,
    pub seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct State {
    upstream: String,
    client: reqwest::Client,
    hostility: Hostility,
    seen: Arc<Seen>,
    /// The current second's start and the requests answered in it.
    window: Mutex<(Instant, u32)>,
}

impl State {
    async fn forward(&self, body: &Value) -> Value {
        let response = self
            .client
            .post(&self.upstream)
            .json(body)
            .send()
            .await
            .expect("the node answers the proxy");
        response.json().await.expect("the node answers JSON")
    }

    async fn head(&self) -> u64 {
        let answer = self
            .forward(&json!({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}))
            .await;
        hex_u64(&answer["result"]).expect("a block number")
    }

    fn within_quota(&self) -> bool {
        let mut window = self.window.lock().unwrap();
        if window.0.elapsed() >= Duration::from_secs(1) {
            *window = (Instant::now(), 0);
        }
        window.1 += 1;
        window.1 <= self.hostility.per_second
    }
}

fn hex_u64(v: &Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok()
}

fn hex(n: u64) -> Value {
    Value::String(format!("0x{n:x}"))
}

/// Starts a provider in front of the node at `upstream`.
pub async fn start(upstream: &str, hostility: Hostility) -> Hostile {
    let seen = Arc::new(Seen::default());
    let state = Arc::new(State {
        upstream: upstream.to_owned(),
        client: reqwest::Client::new(),
        hostility,
        seen: seen.clone(),
        window: Mutex::new((Instant::now(), 0)),
    });
    let app = axum::Router::new().fallback(move |body: String| {
        let state = state.clone();
        async move { answer(&state, body).await }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Hostile { url, seen, task }
}

fn one_in(n: u32) -> bool {
    n > 0 && fastrand::u32(..n) == 0
}

async fn answer(state: &State, body: String) -> Response {
    let h = state.hostility;
    state.seen.requests.fetch_add(1, Ordering::Relaxed);
    if !state.within_quota() {
        state.seen.throttled.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "rate limited: too many requests per second",
        )
            .into_response();
    }
    if h.jitter_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(..=h.jitter_ms))).await;
    }
    if one_in(h.drop_one_in) {
        state.seen.dropped.fetch_add(1, Ordering::Relaxed);
        // The connection closes without an answer (unwinding without the panic hook's noise).
        std::panic::resume_unwind(Box::new("dropped"));
    }
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let method = request["method"].as_str().unwrap_or_default().to_owned();
    if method == "eth_getLogs" {
        let filter = &request["params"][0];
        let from = hex_u64(&filter["fromBlock"]).unwrap_or(0);
        let to = match hex_u64(&filter["toBlock"]) {
            Some(to) => to,
            None => state.head().await,
        };
        if to.saturating_sub(from) + 1 > h.logs_max_range && filter.get("blockHash").is_none() {
            state.seen.range_refused.fetch_add(1, Ordering::Relaxed);
            return axum::Json(json!({
                "jsonrpc": "2.0",
                "id": request["id"],
                "error": {"code": -32005, "message": format!("query exceeds max block range {}", h.logs_max_range)}
            }))
            .into_response();
        }
    }
    let answer = if one_in(h.lag_one_in) {
        state.seen.lagged.fetch_add(1, Ordering::Relaxed);
        lagging(state, request, &method).await
    } else {
        state.forward(&request).await
    };
    axum::Json(answer).into_response()
}

/// `request` as a node `k` (1–3) blocks behind answers it.
async fn lagging(state: &State, mut request: Value, method: &str) -> Value {
    let head = state.head().await;
    let behind = head.saturating_sub(fastrand::u64(1..=3));
    let tag = |v: &Value| {
        matches!(
            v.as_str(),
            Some("latest" | "pending" | "safe" | "finalized")
        )
    };
    let null = |request: &Value| json!({"jsonrpc": "2.0", "id": request["id"], "result": null});
    match method {
        "eth_blockNumber" => {
            return json!({"jsonrpc": "2.0", "id": request["id"], "result": hex(behind)});
        }
        "eth_getBlockByNumber" => {
            let at = &request["params"][0];
            if tag(at) {
                request["params"][0] = hex(behind);
            } else if hex_u64(at).is_some_and(|n| n > behind) {
                return null(&request);
            }
        }
        "eth_call"
        | "eth_getBalance"
        | "eth_getTransactionCount"
        | "eth_estimateGas"
        | "eth_getCode"
        | "eth_getStorageAt" => {
            if let Some(params) = request["params"].as_array_mut()
                && let Some(last) = params.last_mut()
                && tag(last)
            {
                *last = hex(behind);
            }
        }
        "eth_getLogs" => {
            let filter = &mut request["params"][0];
            if filter.get("blockHash").is_none() {
                if hex_u64(&filter["fromBlock"]).is_some_and(|from| from > behind) {
                    return json!({"jsonrpc": "2.0", "id": request["id"], "result": []});
                }
                if hex_u64(&filter["toBlock"]).is_none_or(|to| to > behind) {
                    filter["toBlock"] = hex(behind);
                }
            }
        }
        _ => {}
    }
    let answer = state.forward(&request).await;
    if matches!(
        method,
        "eth_getTransactionReceipt" | "eth_getTransactionByHash"
    ) && hex_u64(&answer["result"]["blockNumber"]).is_some_and(|n| n > behind)
    {
        // Included after this node's head: it does not know of it yet.
        return null(&request);
    }
    answer
}
