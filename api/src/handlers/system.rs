//! What is not an intent or an operator command: Prometheus metrics, health, the OpenAPI document,
//! and the answers for unknown routes and methods.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;

use crate::App;
use crate::dto::operator::KeyInfo;
use crate::error::{ApiError, Code, ErrorBody};
use crate::openapi::ApiDoc;

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(
        Code::NotFound,
        "no such endpoint; GET /openapi.json lists them",
    )
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        Code::MethodNotAllowed,
        "this endpoint does not take that method; GET /openapi.json lists them",
    )
}

/// Prometheus metrics: outcomes by kind, time to outcome, step latency by chain, RPC calls (also by
/// JSON-RPC method) and errors per chain and its head (as the saga drivers last read them: a
/// scrape makes no RPC call), and each chain's follower (the block its view reflects, reads it
/// answered and those that went to the node, blocks read and rolled back). No API key needed.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", body = String)))]
pub(crate) async fn metrics(State(app): State<Arc<App>>) -> Response {
    // From what the saga drivers last read: a scrape (which needs no key) never calls a chain.
    for (chain, c) in app.engine.last_conditions().await {
        {
            let chain = chain.0.to_string();
            metrics::counter!("baton_rpc_calls_total", "chain" => chain.clone())
                .absolute(c.rpc_calls);
            metrics::counter!("baton_rpc_errors_total", "chain" => chain.clone())
                .absolute(c.rpc_errors);
            metrics::gauge!("baton_chain_head", "chain" => chain).set(c.head.number as f64);
        }
    }
    for (chain, f) in app.engine.follow_stats() {
        let chain = chain.0.to_string();
        metrics::gauge!("baton_follower_block", "chain" => chain.clone()).set(f.block as f64);
        metrics::counter!("baton_follower_reads_total", "chain" => chain.clone(), "answered" => "view")
            .absolute(f.from_view);
        metrics::counter!("baton_follower_reads_total", "chain" => chain.clone(), "answered" => "node")
            .absolute(f.from_node);
        metrics::counter!("baton_follower_blocks_total", "chain" => chain.clone())
            .absolute(f.blocks);
        metrics::counter!("baton_follower_rolled_back_total", "chain" => chain)
            .absolute(f.rolled_back);
    }
    for (chain, method, calls) in app.engine.rpc_calls_by_method() {
        metrics::counter!("baton_rpc_method_calls_total", "chain" => chain.0.to_string(), "method" => method)
            .absolute(calls);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

/// Liveness and the saga log's reachability. No API key needed.
#[utoipa::path(get, path = "/healthz", responses(
    (status = 200, description = "Up", body = Object),
    (status = 503, description = "The saga log is unreachable", body = ErrorBody),
))]
pub(crate) async fn healthz(
    State(app): State<Arc<App>>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    if let Err(e) = app.engine.log().ping().await {
        tracing::error!(error = %e, "health check: database");
        return Err(ApiError::new(
            Code::ChainUnavailable,
            "the saga log's database does not answer",
        ));
    }
    Ok(axum::Json(serde_json::json!({
        "status": "ok",
        "database": app.engine.log().database_kind(),
        "chains": app.runtime().venues.len(),
    })))
}

/// This API's OpenAPI 3.1 description, generated from the code.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "OpenAPI document", body = Object)))]
pub(crate) async fn openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

/// The API key that makes the call: its name and role (what a client, the console among them,
/// may offer its user).
#[utoipa::path(
    get,
    path = "/v1/me",
    responses((status = 200, description = "The caller's key", body = KeyInfo)),
    security(("api_key" = []))
)]
pub(crate) async fn me(caller: crate::auth::Caller) -> axum::Json<KeyInfo> {
    axum::Json(KeyInfo {
        name: caller.name,
        role: caller.role,
    })
}
