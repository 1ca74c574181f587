//! `/v1/webhooks`: a dApp's endpoints for the intents its API key submits — register, list, read,
//! remove, enable again after failing, and the delivery log; `/v1/operator/webhooks`: every
//! endpoint, for operators. Delivery itself is [`crate::webhooks`].

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use baton_engine::log::NewEndpoint;

use crate::App;
use crate::auth::{Caller, Role};
use crate::dto::webhook::{CreatedWebhook, Delivery, DeliveryFilter, NewWebhook, Topic, Webhook};
use crate::error::{ApiError, ApiJson, Code, ErrorBody, query_rejection};
use crate::webhooks::{new_id, new_secret, target_allowed};

/// Registers an endpoint for the intents this API key submits from now on. Its deliveries are
/// signed as Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`) with the
/// secret in the answer, shown this once.
#[utoipa::path(
    post,
    path = "/v1/webhooks",
    request_body = NewWebhook,
    responses(
        (status = 201, description = "Registered; keep the secret", body = CreatedWebhook),
        (status = 400, description = "The URL is not an http URL to an allowed address, or a field is out of range", body = ErrorBody),
        (status = 409, description = "The key has as many endpoints as it may", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn create(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    caller.require(Role::Dapp)?;
    let settings = &app.settings.webhooks;
    target_allowed(&req.url, settings.allow_private)?;
    let mut topics = req.events.clone();
    topics.sort_unstable();
    topics.dedup();
    let new = NewEndpoint {
        id: new_id(),
        key_name: caller.name.clone(),
        url: req.url,
        topics: topics.into_iter().map(Topic::name).collect(),
        description: req.description,
        secret: new_secret(),
        created_ms: baton_engine::now_ms(),
    };
    if !app.engine.log().add_webhook(&new, settings.per_key).await? {
        return Err(ApiError::new(
            Code::Conflict,
            format!(
                "API key {:?} has {} webhook endpoints, the most it may; remove one first",
                caller.name, settings.per_key
            ),
        ));
    }
    let secret = new.secret.clone();
    let webhook = Webhook::from(baton_engine::log::Endpoint {
        id: new.id,
        key_name: new.key_name,
        url: new.url,
        topics: new.topics,
        description: new.description,
        failing_ms: None,
        created_ms: new.created_ms,
        pending: 0,
    });
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook { webhook, secret }),
    ))
}

/// This API key's endpoints, oldest first.
#[utoipa::path(
    get,
    path = "/v1/webhooks",
    responses((status = 200, description = "Endpoints", body = [Webhook])),
    security(("api_key" = []))
)]
pub(crate) async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Vec<Webhook>>, ApiError> {
    caller.require(Role::Dapp)?;
    let endpoints = app.engine.log().webhooks(Some(&caller.name)).await?;
    Ok(Json(endpoints.into_iter().map(Webhook::from).collect()))
}

/// Every endpoint of every key, oldest first: which are failing and how much waits for each.
#[utoipa::path(
    get,
    path = "/v1/operator/webhooks",
    responses(
        (status = 200, description = "Endpoints", body = [Webhook]),
        (status = 403, description = "Not an operator key", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn list_all(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Vec<Webhook>>, ApiError> {
    caller.require(Role::Operator)?;
    let endpoints = app.engine.log().webhooks(None).await?;
    Ok(Json(endpoints.into_iter().map(Webhook::from).collect()))
}

/// One endpoint (the key's own; operators see any).
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint", body = Webhook),
        (status = 404, description = "No such endpoint for this key", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn show(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Webhook>, ApiError> {
    caller.require(Role::Dapp)?;
    Ok(Json(owned(&app, &caller, &id).await?))
}

/// Removes an endpoint, with the messages waiting for it and its delivery log.
#[utoipa::path(
    delete,
    path = "/v1/webhooks/{id}",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such endpoint for this key", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn remove(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Dapp)?;
    owned(&app, &caller, &id).await?;
    app.engine.log().remove_webhook(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Makes a failing endpoint active again: what waits for it is delivered now, in order, with a
/// new retry window.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/enable",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint, active", body = Webhook),
        (status = 404, description = "No such endpoint for this key", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn enable(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Webhook>, ApiError> {
    caller.require(Role::Dapp)?;
    owned(&app, &caller, &id).await?;
    app.engine
        .log()
        .enable_webhook(&id, baton_engine::now_ms())
        .await?;
    crate::webhooks::wake(&app);
    Ok(Json(owned(&app, &caller, &id).await?))
}

/// An endpoint's delivery log, newest first: each attempt's status code or error and timing.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}/deliveries",
    params(("id" = String, Path, description = "The endpoint's id"), DeliveryFilter),
    responses(
        (status = 200, description = "Attempts, newest first", body = [Delivery]),
        (status = 404, description = "No such endpoint for this key", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn deliveries(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    filter: Result<Query<DeliveryFilter>, QueryRejection>,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    caller.require(Role::Dapp)?;
    let Query(filter) = filter.map_err(query_rejection)?;
    owned(&app, &caller, &id).await?;
    let limit = crate::handlers::operator::limit(filter.limit)?;
    let attempts = app.engine.log().webhook_attempts(&id, limit).await?;
    Ok(Json(attempts.into_iter().map(Delivery::from).collect()))
}

/// Endpoint `id` if the caller may see it: its own, or any for an operator.
async fn owned(app: &App, caller: &Caller, id: &str) -> Result<Webhook, ApiError> {
    match app.engine.log().webhook(id).await? {
        Some(e) if e.key_name == caller.name || caller.role >= Role::Operator => Ok(e.into()),
        _ => Err(ApiError::new(
            Code::NotFound,
            format!("API key {:?} has no webhook endpoint {id:?}", caller.name),
        )),
    }
}
