//! # baton-api
//!
//! baton's REST API v1 (axum): dApps quote an intent, sign its orders, submit them and follow the
//! saga to its outcome; operators list sagas, retry one, replay one on anvil forks, pause chains and
//! pull the emergency brake.
//!
//! ## Layout
//! - [`quote`]: `POST /v1/quotes` — the plan, its price, ETA and the orders as EIP-712 typed data.
//! - [`intents`]: `POST /v1/intents` (checks, durable admission, `Idempotency-Key`),
//!   `GET /v1/intents/{id}` and its Server-Sent Events.
//! - [`operator`]: `GET /v1/chains`, `GET /v1/inventory`, the `/v1/operator/…` endpoints and
//!   `POST /v1/sagas/{id}/replay`.
//! - [`auth`]: API keys with roles (`dapp` < `operator` < `admin`) and per-key rate limits.
//! - [`error`]: the closed set of error codes; every client error is a 4xx with
//!   `{"code", "message"}`.
//! - `GET /metrics` (Prometheus), `GET /healthz`, `GET /openapi.json` (utoipa, from this code).
//!
//! Depends on the engine (and through it the planner and the adapters).
//!
//! ## Feature flags
//! None.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::{get, post};

pub mod app;
pub mod auth;
pub mod dto;
pub mod error;
mod handlers;
mod idempotency;
pub mod openapi;
mod signature;
mod stream;

pub use app::{App, Settings};
pub use auth::{ApiKey, Keys, Role};
pub use error::{ApiError, Code, ErrorBody};
pub use openapi::ApiDoc;

/// The whole API.
pub fn router(app: Arc<App>) -> Router {
    let limit = app.settings.body_limit;
    use handlers::{intents, operator, quote, replay, system};
    Router::new()
        .route("/v1/quotes", post(quote::quote))
        .route("/v1/intents", post(intents::submit))
        .route("/v1/intents/{id}", get(intents::status))
        .route("/v1/intents/{id}/events", get(intents::events))
        .route("/v1/chains", get(operator::chains))
        .route("/v1/inventory", get(operator::inventory))
        .route("/v1/operator/sagas", get(operator::sagas))
        .route("/v1/operator/sagas/{id}/retry", post(operator::retry))
        .route("/v1/sagas/{id}/replay", post(replay::replay))
        .route(
            "/v1/operator/chains/{chain}/pause",
            post(operator::pause_chain),
        )
        .route(
            "/v1/operator/chains/{chain}/resume",
            post(operator::resume_chain),
        )
        .route("/v1/operator/pause", post(operator::pause_all))
        .route("/v1/operator/resume", post(operator::resume_all))
        .route("/v1/operator/pauses", get(operator::pauses))
        .route("/v1/operator/actions", get(operator::actions))
        .route("/metrics", get(system::metrics))
        .route("/healthz", get(system::healthz))
        .route("/openapi.json", get(system::openapi))
        .fallback(system::not_found)
        .method_not_allowed_fallback(system::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ApiError::internal("a handler panicked").into_response()
            },
        ))
        .with_state(app)
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
}
