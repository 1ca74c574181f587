//! Chains, inventory and the operator endpoints: list sagas, retry one, pause and resume a chain,
//! the emergency brake. Every operator action is recorded with the API key's name.

use std::sync::Arc;

use alloy::primitives::U256;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use baton_engine::control::Scope;
use baton_planner::ChainId;

use crate::App;
use crate::auth::{Caller, Role};
use crate::dto::operator::{
    ChainStatus, InventoryItem, OperatorAction, OutcomeWindow, Outcomes, Pause, PauseRequest,
    Retrying, SagaFilter,
};
use crate::dto::saga::SagaSummary;
use crate::error::{ApiError, ApiJson, Code, ErrorBody, query_rejection};
use crate::handlers::intents::saga_id;

/// The pauses in force, as the API shows them.
fn pauses_dto(pauses: Vec<baton_engine::control::Pause>) -> Json<Vec<Pause>> {
    Json(pauses.into_iter().map(Pause::from).collect())
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
    for venue in &app.runtime().venues {
        let paused = pauses
            .iter()
            .any(|p| p.scope == Scope::All || p.scope == Scope::Chain(venue.chain));
        let c = app.adapter(venue.chain)?.conditions().await.ok();
        // Over the engine's recent window when its drivers have looked at the chain; else since
        // the adapter started.
        let rate = app
            .engine
            .rpc_error_rate(venue.chain)
            .or_else(|| c.map(|c| c.rpc_error_rate()));
        out.push(ChainStatus {
            chain: venue.chain.0,
            reachable: c.is_some(),
            healthy: c.is_some() && !paused && !app.engine.unhealthy(venue.chain),
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
    for venue in &app.runtime().venues {
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
    if filter
        .route
        .as_ref()
        .is_some_and(|r| r.chars().count() > 200)
    {
        return Err(ApiError::new(
            Code::InvalidRequest,
            "route is at most 200 characters",
        ));
    }
    if filter.chain.is_some_and(|c| i64::try_from(c).is_err()) {
        return Err(ApiError::new(
            Code::InvalidRequest,
            "chain is an int64: at most 9223372036854775807",
        ));
    }
    let ages = [filter.max_age_secs, filter.min_age_secs];
    if let Some(age) = ages.into_iter().flatten().find(|&a| a > MAX_AGE_SECS) {
        return Err(ApiError::new(
            Code::InvalidRequest,
            format!("an age is at most {MAX_AGE_SECS} seconds (ten years); got {age}"),
        ));
    }
    let now = baton_engine::now_ms();
    let ago = |secs: Option<u32>| secs.map(|s| now - i64::from(s) * 1_000);
    let sagas = app
        .engine
        .sagas(&baton_engine::log::SagaFilter {
            state: filter.state.map(|s| s.as_str().to_owned()),
            outcome: filter.outcome.map(|o| o.as_str().to_owned()),
            route: filter.route,
            chain: filter.chain,
            admitted_from_ms: ago(filter.max_age_secs),
            admitted_until_ms: ago(filter.min_age_secs),
            limit: limit(filter.limit)? as i64,
        })
        .await?;
    Ok(Json(sagas.into_iter().map(SagaSummary::from).collect()))
}

/// The most `max_age_secs` and `min_age_secs` say: ten years.
const MAX_AGE_SECS: u32 = 315_360_000;

/// Outcomes over time: how many sagas were fulfilled, refunded or failed in each interval of the
/// window, and each route's time from admission to outcome (p50, p99, nearest rank). A saga
/// counts once, at its latest outcome.
#[utoipa::path(
    get,
    path = "/v1/operator/outcomes",
    params(OutcomeWindow),
    responses(
        (status = 200, description = "Outcomes over the window", body = Outcomes),
        (status = 403, description = "Not an operator key", body = ErrorBody),
        (status = 422, description = "More than 1,000 intervals", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn outcomes(
    State(app): State<Arc<App>>,
    caller: Caller,
    window: Result<Query<OutcomeWindow>, QueryRejection>,
) -> Result<Json<Outcomes>, ApiError> {
    caller.require(Role::Operator)?;
    let Query(window) = window.map_err(query_rejection)?;
    let (span, bucket) = (
        window.window_secs.unwrap_or(86_400),
        window.bucket_secs.unwrap_or(3_600),
    );
    if !(60..=2_592_000).contains(&span) || !(10..=86_400).contains(&bucket) {
        return Err(ApiError::new(
            Code::InvalidRequest,
            format!(
                "window_secs must be from 60 to 2592000 and bucket_secs from 10 to 86400; got \
                 {span} and {bucket}"
            ),
        ));
    }
    if span / bucket > 1_000 {
        return Err(ApiError::new(
            Code::InvalidCombination,
            format!(
                "a window of {span} s in intervals of {bucket} s has more than 1,000 of them; \
                 choose longer intervals"
            ),
        ));
    }
    let since = baton_engine::now_ms() - i64::from(span) * 1_000;
    let series = app
        .engine
        .outcomes(since, i64::from(bucket) * 1_000)
        .await?;
    Ok(Json(Outcomes::from_series(series, bucket)))
}

/// Retries a saga that stopped for an operator: its failed steps get a fresh budget of attempts.
#[utoipa::path(
    post,
    path = "/v1/operator/sagas/{id}/retry",
    params(("id" = String, Path, description = "The saga (intent) id")),
    responses(
        (status = 202, description = "Retrying", body = Retrying),
        (status = 404, description = "No such saga", body = ErrorBody),
        (status = 409, description = "The saga is running or completed", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn retry(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Retrying>), ApiError> {
    caller.require(Role::Operator)?;
    let saga = saga_id(&id)?;
    app.engine.retry(saga, &caller.name).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Retrying {
            retrying: saga.to_string(),
            by: caller.name,
        }),
    ))
}

fn chain_scope(app: &App, raw: &str) -> Result<Scope, ApiError> {
    let chain: u64 = raw.parse().map_err(|_| {
        ApiError::new(
            Code::InvalidRequest,
            format!("{raw:?} is not a chain id (a decimal integer)"),
        )
    })?;
    app.venue(ChainId(chain))
        .map_err(|e| ApiError::new(Code::NotFound, e.message))?;
    Ok(Scope::Chain(ChainId(chain)))
}

/// A list's `limit`: 100 by default, else from 1 to 1000.
pub(crate) fn limit(asked: Option<u32>) -> Result<usize, ApiError> {
    match asked {
        None => Ok(100),
        Some(n @ 1..=1000) => Ok(n as usize),
        Some(n) => Err(ApiError::new(
            Code::InvalidRequest,
            format!("limit must be from 1 to 1000; got {n}"),
        )),
    }
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
    Ok(pauses_dto(
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
    Ok(pauses_dto(app.engine.resume(scope, &caller.name).await?))
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
    Ok(pauses_dto(
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
    Ok(pauses_dto(
        app.engine.resume(Scope::All, &caller.name).await?,
    ))
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
    Ok(pauses_dto(app.engine.pauses().await?))
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
    let actions = app.engine.operator_actions(200).await?;
    Ok(Json(
        actions.into_iter().map(OperatorAction::from).collect(),
    ))
}
