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
//! - [`wallet`]: the client's side of a quote: its orders signed as a wallet signs typed data,
//!   giving the body of `POST /v1/intents` (for the CLI, the demo and the benches).
//! - `GET /metrics` (Prometheus), `GET /healthz`, `GET /openapi.json` (utoipa, from this code).
//!
//! Depends on the engine (and through it the planner and the adapters).
//!
//! ## Feature flags
//! None.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use baton_engine::Engine;
use baton_engine::adapters::port::ChainAdapter;
use baton_engine::liquidity::{self, Venue};
use baton_planner::spec::SnapshotSpec;
use baton_planner::{ChainId, PlannerConfig};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use utoipa::OpenApi;

pub mod auth;
pub mod error;
pub mod intents;
pub mod operator;
pub mod quote;
pub mod wallet;

pub use auth::{ApiKey, Keys, Role};
pub use error::{ApiError, Code, ErrorBody};

/// The API's knobs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The solver's fee, basis points of each input.
    pub solver_fee_bps: u32,
    /// Expected seconds between a fill and its attestation across chains.
    pub route_latency_secs: u64,
    /// The planner's knobs.
    pub planner: PlannerConfig,
    /// The largest request body accepted, bytes.
    pub body_limit: usize,
    /// Each chain's JSON-RPC URL, for replays (forks are made from it).
    pub rpc_urls: std::collections::HashMap<ChainId, String>,
    /// How long a liquidity snapshot read from the chains serves quotes and submissions before it
    /// is read again (every read costs a few RPC calls per token and pool).
    pub snapshot_ttl: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            solver_fee_bps: 5,
            route_latency_secs: 2,
            planner: PlannerConfig::default(),
            body_limit: 64 * 1024,
            rpc_urls: std::collections::HashMap::new(),
            snapshot_ttl: std::time::Duration::from_millis(500),
        }
    }
}

/// What every handler shares.
pub struct App {
    /// The engine (its saga log, adapters and operator controls).
    pub engine: Arc<Engine>,
    /// What the solver uses on each chain.
    pub venues: Vec<Venue>,
    /// Knobs.
    pub settings: Settings,
    /// API keys.
    pub keys: Keys,
    /// The solver's and the attester's keys, for replay trials on forks (never logged or
    /// returned); without them a replay cannot try a change.
    pub trial_keys: Option<(
        alloy::signers::local::PrivateKeySigner,
        alloy::signers::local::PrivateKeySigner,
    )>,
    metrics: PrometheusHandle,
    /// The latest snapshot and when it was read.
    snapshot: tokio::sync::Mutex<Option<(std::time::Instant, SnapshotSpec)>>,
}

impl App {
    /// The API over `engine` (already recovered), `venues`, `settings` and `keys`; installs the
    /// process's Prometheus recorder the first time.
    pub fn new(engine: Arc<Engine>, venues: Vec<Venue>, settings: Settings, keys: Keys) -> Self {
        Self {
            engine,
            venues,
            settings,
            keys,
            trial_keys: None,
            metrics: metrics_handle(),
            snapshot: tokio::sync::Mutex::new(None),
        }
    }

    pub(crate) fn adapter(&self, chain: ChainId) -> Result<Arc<dyn ChainAdapter>, ApiError> {
        self.engine.chains().get(&chain).cloned().ok_or_else(|| {
            ApiError::new(
                Code::UnknownChain,
                format!("baton does not serve chain {chain}"),
            )
        })
    }

    pub(crate) fn venue(&self, chain: ChainId) -> Result<&Venue, ApiError> {
        self.venues
            .iter()
            .find(|v| v.chain == chain)
            .ok_or_else(|| {
                ApiError::new(
                    Code::UnknownChain,
                    format!("baton does not serve chain {chain}"),
                )
            })
    }

    /// The liquidity snapshot read from the chains, at most `snapshot_ttl` old. Concurrent
    /// requests share one read.
    pub(crate) async fn snapshot(&self) -> Result<SnapshotSpec, ApiError> {
        let mut cached = self.snapshot.lock().await;
        if let Some((at, snapshot)) = cached.as_ref()
            && at.elapsed() < self.settings.snapshot_ttl
        {
            return Ok(snapshot.clone());
        }
        let snapshot = liquidity::read(
            self.engine.chains(),
            &self.venues,
            self.settings.solver_fee_bps,
            self.settings.route_latency_secs,
        )
        .await?;
        *cached = Some((std::time::Instant::now(), snapshot.clone()));
        Ok(snapshot)
    }
}

/// The process's Prometheus recorder (installed once; `/metrics` renders it).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was installed before; /metrics shows only what reaches this one");
            }
            handle
        })
        .clone()
}

/// The whole API.
pub fn router(app: Arc<App>) -> Router {
    let limit = app.settings.body_limit;
    Router::new()
        .route("/v1/quotes", post(quote::quote))
        .route("/v1/intents", post(intents::submit))
        .route("/v1/intents/{id}", get(intents::status))
        .route("/v1/intents/{id}/events", get(intents::events))
        .route("/v1/chains", get(operator::chains))
        .route("/v1/inventory", get(operator::inventory))
        .route("/v1/operator/sagas", get(operator::sagas))
        .route("/v1/operator/sagas/{id}/retry", post(operator::retry))
        .route("/v1/sagas/{id}/replay", post(operator::replay))
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
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
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

async fn not_found() -> ApiError {
    ApiError::new(
        Code::NotFound,
        "no such endpoint; GET /openapi.json lists them",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        Code::MethodNotAllowed,
        "this endpoint does not take that method; GET /openapi.json lists them",
    )
}

/// Prometheus metrics: outcomes by kind, time to outcome, step latency by chain, RPC calls and
/// errors per chain (read from the adapters at each scrape). No API key needed.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", body = String)))]
async fn metrics(State(app): State<Arc<App>>) -> Response {
    for (chain, adapter) in app.engine.chains() {
        if let Ok(c) = adapter.conditions().await {
            let chain = chain.0.to_string();
            metrics::counter!("baton_rpc_calls_total", "chain" => chain.clone())
                .absolute(c.rpc_calls);
            metrics::counter!("baton_rpc_errors_total", "chain" => chain.clone())
                .absolute(c.rpc_errors);
            metrics::gauge!("baton_chain_head", "chain" => chain).set(c.head.number as f64);
        }
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
async fn healthz(State(app): State<Arc<App>>) -> Result<axum::Json<serde_json::Value>, ApiError> {
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
        "chains": app.venues.len(),
    })))
}

/// This API's OpenAPI 3.1 description, generated from the code.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "OpenAPI document", body = Object)))]
async fn openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

#[derive(OpenApi)]
#[openapi(
    info(title = "baton", description = "baton's REST API v1: quote, sign, submit and follow intents; operate sagas and chains."),
    paths(
        quote::quote,
        intents::submit,
        intents::status,
        intents::events,
        operator::chains,
        operator::inventory,
        operator::sagas,
        operator::retry,
        operator::replay,
        operator::pause_chain,
        operator::resume_chain,
        operator::pause_all,
        operator::resume_all,
        operator::pauses,
        operator::actions,
        metrics,
        healthz,
        openapi,
    ),
    components(schemas(ErrorBody, Code, Role)),
    modifiers(&Security)
)]
/// The OpenAPI document of this API.
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
