//! `POST /v1/quotes`: an intent in, the plan and the orders to sign out.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use baton_planner::spec::{IntentSpec, SnapshotSpec};
use baton_planner::{LiquidityGraph, LiquiditySnapshot, Plan};

use crate::App;
use crate::auth::{Caller, Role};
use crate::dto::quote::{IntentRequest, Quote};
use crate::error::{ApiError, ApiJson, Code, ErrorBody, plan_code};
use crate::handlers::intents::Needs;

/// Quotes an intent: the plan over the chains' current liquidity, what it delivers and costs, how
/// long it takes, and the orders to sign.
#[utoipa::path(
    post,
    path = "/v1/quotes",
    request_body = IntentRequest,
    responses(
        (status = 200, description = "The quote", body = Quote),
        (status = 400, description = "Unknown chain or token, amount out of range, deadline passed, no route", body = ErrorBody),
        (status = 401, description = "No API key", body = ErrorBody),
        (status = 422, description = "Not enough liquidity", body = ErrorBody),
        (status = 503, description = "A chain could not be reached (`chain_unavailable`), or this instance is switching to a newly active configuration version (`switching`)", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn quote(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(req): ApiJson<IntentRequest>,
) -> Result<Json<Quote>, ApiError> {
    caller.require(Role::Dapp)?;
    let runtime = crate::changes::for_intake(&app).await?;
    let snapshot = app.snapshot().await?;
    let spec = req.into_spec(&runtime.venues)?;
    let (plan, live) = plan(&spec, &snapshot, &runtime.planner)?;
    // A deadline the engine could not fill by with the chains idle is refused here as at
    // submission (whether the queues leave room is for the submission to say).
    let needs = Needs::of(&app, &plan, &live)?;
    needs.check_idle(&plan, snapshot.timestamp.saturating_mul(1000))?;
    Ok(Json(Quote::of(&plan, &live, needs.idle_secs())))
}

/// Plans `spec` over `snapshot`, with the planner's error codes.
pub(crate) fn plan(
    spec: &IntentSpec,
    snapshot: &SnapshotSpec,
    config: &baton_planner::PlannerConfig,
) -> Result<(Plan, LiquiditySnapshot), ApiError> {
    let snapshot = snapshot
        .clone()
        .into_snapshot()
        .map_err(|e| ApiError::internal(format!("live snapshot: {e}")))?;
    let intent = spec
        .clone()
        .into_intent(&snapshot)
        .map_err(|e| ApiError::new(plan_code(&e), e.to_string()))?;
    let graph = LiquidityGraph::new(snapshot.clone())
        .map_err(|e| ApiError::internal(format!("liquidity graph: {e}")))?;
    let plan = baton_planner::plan(&graph, &intent, config).map_err(|e| {
        let code = plan_code(&e);
        if code == Code::Internal {
            ApiError::internal(e)
        } else {
            ApiError::new(code, e.to_string())
        }
    })?;
    Ok((plan, snapshot))
}
