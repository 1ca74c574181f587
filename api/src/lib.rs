//! # baton-api
//!
//! baton's REST API v1 (axum): dApps quote an intent, sign its orders, submit them and follow the
//! saga to its outcome; operators list sagas, retry one, replay one on anvil forks, pause chains and
//! pull the emergency brake.
//!
//! ## Layout
//! - [`app`]: what every handler shares ([`App`]: the engine, venues, settings, keys, the cached
//!   liquidity snapshot) and the API's knobs ([`Settings`]).
//! - `handlers` (private): one module per group of endpoints — `quote` (`POST /v1/quotes`),
//!   `intents` (`POST /v1/intents`, `GET /v1/intents/{id}` and its events), `operator`
//!   (`GET /v1/chains`, `GET /v1/inventory`, the `/v1/operator/…` endpoints, the outcome series),
//!   `replay` (`POST /v1/sagas/{id}/replay`), `system` (`/v1/me`, `/metrics`, `/healthz`,
//!   `/openapi.json`, unknown routes and methods), `console` (the operators' console at
//!   `/console`: a page, its script and style, embedded).
//! - [`dto`]: the request and response types, converted from and to the domain's at the boundary.
//! - `signature` (private): signed orders checked against their users, and the intent they
//!   describe; `stream` (private): an intent's Server-Sent Events; `idempotency` (private): the
//!   `Idempotency-Key` extractor and what a key holds.
//! - [`auth`]: API keys with roles (`dapp` < `operator` < `admin`) and per-key rate limits.
//! - `contract` (private): request bodies checked against the OpenAPI document's own schemas.
//! - [`error`]: the closed set of error codes; every client error is a 4xx with
//!   `{"code", "message"}`.
//! - [`openapi`]: the OpenAPI 3.1 document (utoipa, from this code).
//! - [`changes`]: coordinated changes on each instance (declare the configuration it runs,
//!   activate what is due, validate proposals against the chains); their endpoints are the
//!   handlers' `config` (`/v1/operator/config/…`, `/v1/operator/instances`), their types
//!   [`dto::config`].
//! - [`webhooks`]: webhook delivery (each instance's deliverer over the saga log's outbox,
//!   Standard Webhooks signatures, backoff, failing endpoints); their endpoints are the handlers'
//!   `webhooks` (`/v1/webhooks…`, `/v1/operator/webhooks`).
//! - [`wallet`]: the client's side of a quote: its orders signed as a wallet signs typed data,
//!   giving the body of `POST /v1/intents` (for the CLI, the demo, the benches and the tests).
//!
//! `tests/it` drives [`router`] in-process over the sim world.
//!
//! Depends on the engine and the replay (and through them the planner and the adapters).
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
pub mod changes;
mod contract;
pub mod dto;
pub mod error;
mod handlers;
mod idempotency;
pub mod openapi;
mod signature;
mod stream;
pub mod wallet;
pub mod webhooks;

pub use app::{App, Settings};
pub use auth::{ApiKey, Keys, Role};
pub use error::{ApiError, Code, ErrorBody};
pub use openapi::ApiDoc;

/// The largest configuration bundle accepted, bytes (a bundle of as many chains, tokens and
/// pools as its schema allows fits).
pub const BUNDLE_LIMIT: usize = 1 << 20;

/// The whole API.
pub fn router(app: Arc<App>) -> Router {
    let limit = app.settings.body_limit;
    use handlers::{config, console, intents, operator, quote, replay, system, webhooks};
    Router::new()
        .route("/console", get(console::index))
        .route("/console/app.js", get(console::script))
        .route("/console/app.css", get(console::style))
        .route("/v1/me", get(system::me))
        .route("/v1/quotes", post(quote::quote))
        .route("/v1/intents", post(intents::submit))
        .route("/v1/intents/{id}", get(intents::status))
        .route("/v1/intents/{id}/events", get(intents::events))
        .route("/v1/chains", get(operator::chains))
        .route("/v1/inventory", get(operator::inventory))
        .route("/v1/operator/sagas", get(operator::sagas))
        .route("/v1/operator/outcomes", get(operator::outcomes))
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
        .route("/v1/operator/webhooks", get(webhooks::list_all))
        .route(
            "/v1/operator/config/versions",
            get(config::versions)
                .post(config::propose)
                .layer(DefaultBodyLimit::max(limit.max(BUNDLE_LIMIT))),
        )
        .route("/v1/operator/config/versions/{id}", get(config::show))
        .route(
            "/v1/operator/config/versions/{id}/approve",
            post(config::approve),
        )
        .route(
            "/v1/operator/config/versions/{id}/schedule",
            post(config::schedule),
        )
        .route(
            "/v1/operator/config/versions/{id}/reject",
            post(config::reject),
        )
        .route(
            "/v1/operator/config/versions/{id}/override",
            post(config::override_shadow),
        )
        .route("/v1/operator/config/rollback", post(config::rollback))
        .route("/v1/operator/instances", get(config::instances))
        .route("/v1/webhooks", post(webhooks::create).get(webhooks::list))
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::show).delete(webhooks::remove),
        )
        .route("/v1/webhooks/{id}/enable", post(webhooks::enable))
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
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

/// Serves the API on `listener`, and delivers webhooks, until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let deliverer = tokio::spawn(webhooks::deliver(app.clone()));
    let pull = tokio::spawn(changes::run(app.clone()));
    let served = axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await;
    deliverer.abort();
    pull.abort();
    served
}
