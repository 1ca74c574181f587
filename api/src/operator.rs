//! Chains, inventory and the operator endpoints: list sagas, retry one, pause and resume a chain,
//! the emergency brake. Every operator action is recorded with the API key's name.

use std::sync::Arc;

use alloy::primitives::U256;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use baton_engine::control::{OperatorAction, Pause, Scope};
use baton_engine::log::SagaSummary;
use baton_planner::ChainId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::App;
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiJson, ApiJsonOrDefault, Code, ErrorBody, query_rejection};
use crate::intents::saga_id;

/// One chain's conditions and health.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ChainStatus {
    /// The chain id.
    pub chain: u64,
    /// Whether its RPC answered now.
    pub reachable: bool,
    /// Reachable, RPC error rate under the engine's threshold (where it holds new steps), and not
    /// paused.
    pub healthy: bool,
    /// Paused by an operator (or by the emergency brake).
    pub paused: bool,
    /// Head block number.
    pub head: Option<u64>,
    /// The head's timestamp, unix seconds.
    pub timestamp: Option<u64>,
    /// Base fee, wei.
    pub base_fee: Option<String>,
    /// Observed block time, milliseconds.
    pub block_time_ms: Option<u64>,
    /// RPC calls made so far.
    pub rpc_calls: Option<u64>,
    /// RPC calls that failed.
    pub rpc_errors: Option<u64>,
    /// Recent RPC error rate, 0 to 1.
    pub rpc_error_rate: Option<f64>,
}

/// Every chain baton serves, with its conditions and health.
#[utoipa::path(
    get,
    path = "/v1/chains",
    responses((status = 200, description = "Chains", body = [ChainStatus])),
    security(("api_key" = []))
)]
pub(crate) async fn chains(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Vec<ChainStatus>>, ApiError> {
    caller.require(Role::Dapp)?;
    let pauses = app.engine.pauses().await?;
    let mut out = Vec::new();
    for venue in &app.venues {
        let paused = pauses
            .iter()
            .any(|p| p.scope == Scope::All || p.scope == Scope::Chain(venue.chain));
        let c = app.adapter(venue.chain)?.conditions().await.ok();
        let rate = c.map(|c| c.rpc_error_rate());
        out.push(ChainStatus {
            chain: venue.chain.0,
            reachable: c.is_some(),
            healthy: c.is_some()
                && !paused
                && rate.unwrap_or(1.0) <= app.engine.config().unhealthy_error_rate,
            paused,
            head: c.map(|c| c.head.number),
            timestamp: c.map(|c| c.timestamp),
            base_fee: c.map(|c| c.base_fee.to_string()),
            block_time_ms: c.map(|c| c.block_time_ms),
            rpc_calls: c.map(|c| c.rpc_calls),
            rpc_errors: c.map(|c| c.rpc_errors),
            rpc_error_rate: rate,
        });
    }
    Ok(Json(out))
}

/// The solver's inventory of one token on one chain.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct InventoryItem {
    /// The chain id.
    pub chain: u64,
    /// The token's symbol.
    pub token: String,
    /// Its address.
    pub address: String,
    /// What the solver holds, base units.
    pub balance: String,
    /// Promised to running intents.
    pub reserved: String,
    /// Free for new intents.
    pub available: String,
}

/// The solver's inventory per chain and token: held, reserved for running intents, available.
#[utoipa::path(
    get,
    path = "/v1/inventory",
    responses((status = 200, description = "Inventory", body = [InventoryItem])),
    security(("api_key" = []))
)]
pub(crate) async fn inventory(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Vec<InventoryItem>>, ApiError> {
    caller.require(Role::Dapp)?;
    let reserved = app.engine.log().reserved(baton_engine::now_ms()).await?;
    let mut out = Vec::new();
    for venue in &app.venues {
        let adapter = app.adapter(venue.chain)?;
        for token in &venue.tokens {
            let balance = adapter.balance(token.address, adapter.account()).await?;
            let promised = reserved
                .get(&(venue.chain.0, token.address))
                .copied()
                .unwrap_or(U256::ZERO);
            out.push(InventoryItem {
                chain: venue.chain.0,
                token: token.symbol.clone(),
                address: token.address.to_string(),
                balance: balance.to_string(),
                reserved: promised.to_string(),
                available: balance.saturating_sub(promised).to_string(),
            });
        }
    }
    Ok(Json(out))
}

/// Which sagas to list.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SagaFilter {
    /// Only sagas in this state: `running`, `held`, `resumed`, `compensating`, `decided`,
    /// `retried`, `completed`.
    pub state: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

const STATES: [&str; 7] = [
    "running",
    "held",
    "resumed",
    "compensating",
    "decided",
    "retried",
    "completed",
];

/// Sagas, newest first, optionally in one state.
#[utoipa::path(
    get,
    path = "/v1/operator/sagas",
    params(SagaFilter),
    responses(
        (status = 200, description = "Sagas", body = [SagaSummary]),
        (status = 403, description = "Not an operator key", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn sagas(
    State(app): State<Arc<App>>,
    caller: Caller,
    filter: Result<Query<SagaFilter>, QueryRejection>,
) -> Result<Json<Vec<SagaSummary>>, ApiError> {
    caller.require(Role::Operator)?;
    let Query(filter) = filter.map_err(query_rejection)?;
    if let Some(state) = &filter.state
        && !STATES.contains(&state.as_str())
    {
        return Err(ApiError::new(
            Code::InvalidRequest,
            format!("state must be one of {}; got {state:?}", STATES.join(", ")),
        ));
    }
    let limit = filter.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(
        app.engine.sagas(filter.state.as_deref(), limit).await?,
    ))
}

/// Retries a saga that stopped for an operator: its failed steps get a fresh budget of attempts.
#[utoipa::path(
    post,
    path = "/v1/operator/sagas/{id}/retry",
    params(("id" = String, Path, description = "The saga (intent) id")),
    responses(
        (status = 202, description = "Retrying", body = SagaSummary),
        (status = 404, description = "No such saga", body = ErrorBody),
        (status = 409, description = "The saga is running or completed", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn retry(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(axum::http::StatusCode, Json<serde_json::Value>), ApiError> {
    caller.require(Role::Operator)?;
    let saga = saga_id(&id)?;
    app.engine.retry(saga, &caller.name).await?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(serde_json::json!({ "retrying": saga.to_string(), "by": caller.name })),
    ))
}

/// What to try in a replay.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Planner knobs to try on fresh forks (`max_hops`, `slippage_bps`, `fee_ceiling_pct`,
    /// `split`): the intent is re-planned where the saga failed and run there.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub with: Option<baton_planner::ConfigPatch>,
    /// After a trial that fulfils the intent, resume the real saga with the change (it must be
    /// held for an operator: its step failed before the pivot and it has not compensated).
    #[serde(default)]
    pub resume: bool,
}

/// Replays a saga on local anvil forks of its chains (never touching the real chains) and returns
/// the report: the first divergence from its log, or the failing step with its revert reason and
/// call trace; with `with`, also whether the change would have fulfilled it, and with `resume`
/// (after a trial that fulfils it) the real saga resumed with the change. Takes seconds.
#[utoipa::path(
    post,
    path = "/v1/sagas/{id}/replay",
    params(("id" = String, Path, description = "The saga (intent) id")),
    request_body(content = Option<ReplayRequest>, description = "Optional: a change to try, and whether to resume the saga with it"),
    responses(
        (status = 200, description = "The replay report (with `trial` and `resume` when asked for)", body = Object),
        (status = 400, description = "Not a replay request, or `resume` without `with`", body = ErrorBody),
        (status = 403, description = "Not an operator key", body = ErrorBody),
        (status = 404, description = "No such saga", body = ErrorBody),
        (status = 409, description = "`resume` asked of a saga that is not held for an operator, or no trial keys on this server", body = ErrorBody),
        (status = 503, description = "A fork could not start", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn replay(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJsonOrDefault(request): ApiJsonOrDefault<ReplayRequest>,
) -> Result<Json<baton_replay::Report>, ApiError> {
    caller.require(Role::Operator)?;
    let saga = saga_id(&id)?;
    if request.resume {
        if request.with.is_none() {
            return Err(ApiError::new(
                Code::InvalidRequest,
                "resume needs a change (`with`) to try on forks first",
            ));
        }
        // Refused before the forks start when the saga cannot be resumed anyway.
        app.engine.resumable(saga).await?;
    }
    let trial = match request.with {
        Some(change) => {
            let (solver, attester) = app.trial_keys.clone().ok_or_else(|| {
                ApiError::new(
                    Code::Conflict,
                    "this server has no solver and attester keys for trials",
                )
            })?;
            Some(baton_replay::Trial {
                change,
                venues: app.venues.clone(),
                solver,
                attester,
            })
        }
        None => None,
    };
    let anvil = baton_engine::adapters::devnet::find_anvil().map_err(|e| {
        ApiError::new(
            Code::ChainUnavailable,
            format!("replay needs anvil to fork the chains: {e}"),
        )
    })?;
    tracing::info!(%saga, by = %caller.name, "replay requested");
    let mut report = baton_replay::replay(
        app.engine.log(),
        saga,
        &app.settings.rpc_urls,
        &anvil,
        trial.as_ref(),
        &|line: &str| tracing::info!(%saga, "{line}"),
    )
    .await
    .map_err(|e| match e {
        baton_replay::ReplayError::Engine(e) => ApiError::from(e),
        unavailable => ApiError::new(Code::ChainUnavailable, unavailable.to_string()),
    })?;
    if request.resume
        && let (Some(change), Some(trial)) = (request.with, &report.trial)
    {
        report.resume = Some(
            baton_replay::resume_after_trial(
                &app.engine,
                saga,
                change,
                trial,
                &caller.name,
                app.snapshot(),
            )
            .await?,
        );
    }
    Ok(Json(report))
}

/// Why an operator pauses.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// Why (recorded with the action).
    #[serde(default)]
    pub reason: String,
}

fn chain_scope(app: &App, raw: &str) -> Result<Scope, ApiError> {
    let chain: u64 = raw
        .parse()
        .map_err(|_| ApiError::new(Code::UnknownChain, format!("{raw:?} is not a chain id")))?;
    app.venue(ChainId(chain))?;
    Ok(Scope::Chain(ChainId(chain)))
}

/// Pauses a chain: no new transaction starts on it (transactions in flight are still watched).
#[utoipa::path(
    post,
    path = "/v1/operator/chains/{chain}/pause",
    params(("chain" = u64, Path, description = "The chain id")),
    request_body = PauseRequest,
    responses((status = 200, description = "The pauses in force", body = [Pause])),
    security(("api_key" = []))
)]
pub(crate) async fn pause_chain(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(chain): Path<String>,
    ApiJson(req): ApiJson<PauseRequest>,
) -> Result<Json<Vec<Pause>>, ApiError> {
    caller.require(Role::Operator)?;
    let scope = chain_scope(&app, &chain)?;
    Ok(Json(
        app.engine.pause(scope, &caller.name, &req.reason).await?,
    ))
}

/// Resumes a paused chain.
#[utoipa::path(
    post,
    path = "/v1/operator/chains/{chain}/resume",
    params(("chain" = u64, Path, description = "The chain id")),
    responses((status = 200, description = "The pauses in force", body = [Pause])),
    security(("api_key" = []))
)]
pub(crate) async fn resume_chain(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(chain): Path<String>,
) -> Result<Json<Vec<Pause>>, ApiError> {
    caller.require(Role::Operator)?;
    let scope = chain_scope(&app, &chain)?;
    Ok(Json(app.engine.resume(scope, &caller.name).await?))
}

/// The emergency brake: no intent is admitted and no new transaction starts anywhere.
#[utoipa::path(
    post,
    path = "/v1/operator/pause",
    request_body = PauseRequest,
    responses((status = 200, description = "The pauses in force", body = [Pause])),
    security(("api_key" = []))
)]
pub(crate) async fn pause_all(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(req): ApiJson<PauseRequest>,
) -> Result<Json<Vec<Pause>>, ApiError> {
    caller.require(Role::Operator)?;
    Ok(Json(
        app.engine
            .pause(Scope::All, &caller.name, &req.reason)
            .await?,
    ))
}

/// Releases the emergency brake (admin keys only).
#[utoipa::path(
    post,
    path = "/v1/operator/resume",
    responses(
        (status = 200, description = "The pauses in force", body = [Pause]),
        (status = 403, description = "Not an admin key", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn resume_all(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Vec<Pause>>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(Json(app.engine.resume(Scope::All, &caller.name).await?))
}

/// The pauses in force.
#[utoipa::path(
    get,
    path = "/v1/operator/pauses",
    responses((status = 200, description = "The pauses in force", body = [Pause])),
    security(("api_key" = []))
)]
pub(crate) async fn pauses(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Vec<Pause>>, ApiError> {
    caller.require(Role::Operator)?;
    Ok(Json(app.engine.pauses().await?))
}

/// The latest 200 operator actions, newest first: who did what, when.
#[utoipa::path(
    get,
    path = "/v1/operator/actions",
    responses((status = 200, description = "Operator actions", body = [OperatorAction])),
    security(("api_key" = []))
)]
pub(crate) async fn actions(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Vec<OperatorAction>>, ApiError> {
    caller.require(Role::Operator)?;
    Ok(Json(app.engine.operator_actions(200).await?))
}
