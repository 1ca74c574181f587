//! The adapters' integration tests (one binary): the contracts on real anvil nodes.

#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

use std::time::{SystemTime, UNIX_EPOCH};

mod calls;
mod conformance;
mod evm;
mod follow;
mod logs;
mod pool;
mod refund;
mod settlers;
mod sim;

/// The revert reason of a call that must fail.
pub fn reverted<T>(result: Result<T, alloy::contract::Error>) -> String {
    match result {
        Ok(_) => panic!("the call succeeded; a revert was expected"),
        Err(e) => e.to_string(),
    }
}

/// Calls an anvil-only JSON-RPC method (time travel, mining, rollback, fee spikes) and requires success.
pub async fn anvil(
    chain: &baton_adapters::devnet::DevnetChain,
    method: &'static str,
    params: serde_json::Value,
) {
    baton_adapters::conformance::anvil(chain, method, params)
        .await
        .unwrap();
}

/// Wall-clock unix seconds (anvil's block time follows it).
pub fn now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

/// A JSON-RPC proxy in front of a node, as a provider stands between a client and its nodes:
/// `intercept` sees each request's body and may answer it itself; the others are forwarded. Stops
/// when dropped.
pub struct Proxy {
    pub url: alloy::transports::http::reqwest::Url,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A [`Proxy`] in front of `node`.
pub async fn proxy<F, Fut>(node: &baton_adapters::devnet::DevnetChain, intercept: F) -> Proxy
where
    F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Option<axum::response::Response>> + Send,
{
    let upstream = node.rpc_url().clone();
    let client = alloy::transports::http::reqwest::Client::new();
    let app = axum::Router::new().fallback(move |body: String| {
        let (client, upstream, intercept) = (client.clone(), upstream.clone(), intercept.clone());
        async move {
            if let Some(answer) = intercept(body.clone()).await {
                return answer;
            }
            let text = client
                .post(upstream)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            axum::response::Response::builder()
                .header("content-type", "application/json")
                .body(axum::body::Body::from(text))
                .unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Proxy { url, task }
}
