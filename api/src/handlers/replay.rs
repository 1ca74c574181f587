//! `POST /v1/sagas/{id}/replay`: a saga replayed on local anvil forks, a change tried there, and the
//! saga resumed with it when the trial fulfils the intent.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};

use crate::App;
use crate::auth::{Caller, Role};
use crate::dto::operator::ReplayRequest;
use crate::error::{ApiError, ApiJsonOrDefault, Code, ErrorBody};
use crate::handlers::intents::saga_id;

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
        (status = 422, description = "`resume` without `with`", body = ErrorBody),
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
                Code::InvalidCombination,
                "resume needs a change (`with`) to try on forks first",
            ));
        }
        // Refused before the forks start when the saga cannot be resumed anyway.
        app.engine.resumable(saga).await?;
    }
    let trial = match request.with {
        Some(change) => {
            let solver = app.trial_key.clone().ok_or_else(|| {
                ApiError::new(Code::Conflict, "this server has no solver key for trials")
            })?;
            Some(baton_replay::Trial {
                change: change.into(),
                venues: app.runtime().venues.clone(),
                solver,
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
        &app.runtime().rpc_urls,
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
                change.into(),
                trial,
                &caller.name,
                app.snapshot(),
            )
            .await?,
        );
    }
    Ok(Json(report))
}
