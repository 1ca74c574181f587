//! `/v1/operator/config/…`: configuration versions through their lifecycle — propose a bundle
//! (validated by the instances' pull, see [`crate::changes`]), read one with its record, approve
//! (signatures of a quorum of the active version's approvers), schedule, reject, roll back — and
//! `/v1/operator/instances`: what each instance declares it runs. Every transition is recorded
//! with the API key's name.

use std::sync::Arc;

use alloy::primitives::{B256, Signature};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use baton_engine::changes::{self, Changes, Version};

use crate::App;
use crate::auth::{Caller, Role};
use crate::changes::{ALIVE_WITHIN_MS, changes};
use crate::dto::config::{
    ApprovalSet, ApproveRequest, Bundle, ConfigApproval, ConfigTransition, ConfigVersion,
    ConfigVersionDetail, InstanceStatus, ReasonRequest, RollbackRequest, ScheduleRequest,
};
use crate::error::{ApiError, ApiJson, Code, ErrorBody};

/// The version `raw` names: its id, or its number.
async fn named(changes: &Changes, raw: &str) -> Result<Version, ApiError> {
    let not_found = || {
        ApiError::new(
            Code::NotFound,
            format!("no configuration version {raw:?} (give its id, or its number)"),
        )
    };
    let version = if let Ok(id) = raw.parse::<B256>()
        && raw.len() == 66
    {
        changes.version(id).await?
    } else if let Ok(number) = raw.parse::<u64>()
        && !raw.starts_with('+')
    {
        changes
            .versions()
            .await?
            .into_iter()
            .find(|v| v.number == number)
    } else {
        None
    };
    version.ok_or_else(not_found)
}

/// Who approves a change now: the active version's approvers and quorum (none when no version is
/// active, or its bundle predates the bundle's present shape).
async fn approval_set(changes: &Changes) -> Result<ApprovalSet, ApiError> {
    let active = changes.active().await?;
    Ok(active
        .and_then(|v| serde_json::from_str::<Bundle>(&v.body).ok())
        .map(|b| b.approval)
        .unwrap_or(ApprovalSet {
            approvers: Vec::new(),
            quorum: 0,
        }))
}

/// `version` with its bundle, record and approvals.
async fn detail(changes: &Changes, version: &Version) -> Result<ConfigVersionDetail, ApiError> {
    let history = changes.history(Some(version.id)).await?;
    let approvals = changes.approvals(version.id).await?;
    Ok(ConfigVersionDetail {
        version: ConfigVersion::from(version),
        bundle: serde_json::from_str(&version.body).unwrap_or_default(),
        history: history.iter().map(ConfigTransition::from).collect(),
        approvals: approvals.iter().map(ConfigApproval::from).collect(),
        approval_message: changes::approval_message(version.id),
        approved_by: approval_set(changes).await?,
        shadow: crate::changes::shadow::of(changes, version.id).await?,
    })
}

/// Every configuration version, oldest first.
#[utoipa::path(
    get,
    path = "/v1/operator/config/versions",
    responses((status = 200, description = "Versions", body = [ConfigVersion])),
    security(("api_key" = []))
)]
pub(crate) async fn versions(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Vec<ConfigVersion>>, ApiError> {
    caller.require(Role::Operator)?;
    let versions = changes(&app).versions().await?;
    Ok(Json(versions.iter().map(ConfigVersion::from).collect()))
}

/// Proposes a bundle as a change of the active version. The instances validate it at once (its
/// chains' ids and its contracts' code); it is then `validated` or `rejected`, with what was found
/// in its record. The same bundle proposed again is the same version (200); a superseded or
/// rolled-back one is proposed again.
#[utoipa::path(
    post,
    path = "/v1/operator/config/versions",
    request_body = Bundle,
    responses(
        (status = 201, description = "Proposed", body = ConfigVersionDetail),
        (status = 200, description = "This bundle is a version already", body = ConfigVersionDetail),
        (status = 422, description = "The bundle does not hold together (`invalid_config`)", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn propose(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(bundle): ApiJson<Bundle>,
) -> Result<(StatusCode, Json<ConfigVersionDetail>), ApiError> {
    caller.require(Role::Operator)?;
    bundle.check()?;
    let changes = changes(&app);
    let parent = changes.active().await?.map(|v| v.id);
    let proposed = changes
        .propose(
            &bundle.to_value(),
            parent,
            &caller.name,
            baton_engine::now_ms(),
        )
        .await?;
    app.changes_wake.notify_one();
    let status = if proposed.new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(detail(&changes, &proposed.version).await?)))
}

/// One version (by id or number), with its bundle, record, approvals, the message approvers sign
/// and who approves it.
#[utoipa::path(
    get,
    path = "/v1/operator/config/versions/{id}",
    params(("id" = String, Path, description = "The version's id (0x and 64 hex digits) or number")),
    responses(
        (status = 200, description = "The version", body = ConfigVersionDetail),
        (status = 404, description = "No such version", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn show(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ConfigVersionDetail>, ApiError> {
    caller.require(Role::Operator)?;
    let changes = changes(&app);
    let version = named(&changes, &id).await?;
    Ok(Json(detail(&changes, &version).await?))
}

/// Approves a validated version with an approver's EIP-191 signature over its `approval_message`;
/// it is `approved` once a quorum of the active version's approvers has signed. When the active
/// version names no approvers, an admin key approves it alone, without a signature.
#[utoipa::path(
    post,
    path = "/v1/operator/config/versions/{id}/approve",
    params(("id" = String, Path, description = "The version's id or number")),
    request_body = ApproveRequest,
    responses(
        (status = 200, description = "The approval is recorded", body = ConfigVersionDetail),
        (status = 409, description = "The version is not validated (or approved)", body = ErrorBody),
        (status = 422, description = "The signature is not an approver's (`bad_signature`), or a signature is given where none is used, or missing (`invalid_combination`)", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn approve(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ApproveRequest>,
) -> Result<Json<ConfigVersionDetail>, ApiError> {
    caller.require(Role::Operator)?;
    let changes = changes(&app);
    let version = named(&changes, &id).await?;
    if let Some(why) = changes.shadow_blocks(version.id).await? {
        return Err(ApiError::new(
            Code::Conflict,
            format!(
                "configuration version {} is not approved: {why}",
                version.number
            ),
        ));
    }
    let set = approval_set(&changes).await?;
    let now = baton_engine::now_ms();
    let version = match (req.signature, set.approvers.is_empty()) {
        (Some(signature), false) => {
            let signature: Signature = signature.parse().map_err(|_| {
                ApiError::new(
                    Code::BadSignature,
                    "the signature is not a 65-byte ECDSA signature",
                )
            })?;
            changes
                .approve(
                    version.id,
                    &signature,
                    &set.approvers,
                    set.quorum as usize,
                    &caller.name,
                    now,
                )
                .await?
                .0
        }
        (None, false) => {
            return Err(ApiError::new(
                Code::InvalidCombination,
                format!(
                    "the active version names {} approvers: approve with one's signature over {:?}",
                    set.approvers.len(),
                    changes::approval_message(version.id)
                ),
            ));
        }
        (Some(_), true) => {
            return Err(ApiError::new(
                Code::InvalidCombination,
                "the active version names no approvers: an admin key approves without a signature",
            ));
        }
        (None, true) => {
            caller.require(Role::Admin)?;
            if version.state != changes::State::Validated {
                return Err(ApiError::new(
                    Code::Conflict,
                    format!(
                        "configuration version {} is {}; only a validated version is approved",
                        version.number, version.state
                    ),
                ));
            }
            changes
                .transition(
                    version.id,
                    changes::State::Approved,
                    &caller.name,
                    "approved by an admin key (the active version names no approvers)",
                    now,
                )
                .await?
        }
    };
    Ok(Json(detail(&changes, &version).await?))
}

/// Schedules an approved version to activate at a time (now by default) or at a block of a chain
/// baton serves. Every instance switches new intents to it from then; intents admitted before run
/// under the version they were admitted with.
#[utoipa::path(
    post,
    path = "/v1/operator/config/versions/{id}/schedule",
    params(("id" = String, Path, description = "The version's id or number")),
    request_body = ScheduleRequest,
    responses(
        (status = 200, description = "Scheduled", body = ConfigVersionDetail),
        (status = 409, description = "The version is not approved", body = ErrorBody),
        (status = 422, description = "Both a time and a block (`invalid_combination`), or a chain baton does not serve (`unknown_chain`)", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn schedule(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ScheduleRequest>,
) -> Result<Json<ConfigVersionDetail>, ApiError> {
    caller.require(Role::Operator)?;
    let changes = changes(&app);
    let version = named(&changes, &id).await?;
    let now = baton_engine::now_ms();
    let version = match (req.at_ms, req.at_block) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                Code::InvalidCombination,
                "give at_ms or at_block, not both",
            ));
        }
        (None, Some(target)) => {
            app.adapter(baton_planner::ChainId(target.chain))?;
            changes
                .schedule_at_block(version.id, (target.chain, target.block), &caller.name, now)
                .await?
        }
        (at_ms, None) => {
            changes
                .schedule(version.id, at_ms.unwrap_or(now), &caller.name, now)
                .await?
        }
    };
    app.changes_wake.notify_one();
    Ok(Json(detail(&changes, &version).await?))
}

/// Rejects a version before it is active, with the reason.
#[utoipa::path(
    post,
    path = "/v1/operator/config/versions/{id}/reject",
    params(("id" = String, Path, description = "The version's id or number")),
    request_body = ReasonRequest,
    responses(
        (status = 200, description = "Rejected", body = ConfigVersionDetail),
        (status = 409, description = "The version is active or was", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn reject(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ReasonRequest>,
) -> Result<Json<ConfigVersionDetail>, ApiError> {
    caller.require(Role::Operator)?;
    let changes = changes(&app);
    let version = named(&changes, &id).await?;
    let version = changes
        .transition(
            version.id,
            changes::State::Rejected,
            &caller.name,
            &req.reason,
            baton_engine::now_ms(),
        )
        .await?;
    Ok(Json(detail(&changes, &version).await?))
}

/// Overrides the regressions a version's shadow run found, with the reason (recorded with who
/// gave it): the version may then be approved.
#[utoipa::path(
    post,
    path = "/v1/operator/config/versions/{id}/override",
    params(("id" = String, Path, description = "The version's id or number")),
    request_body = ReasonRequest,
    responses(
        (status = 200, description = "Overridden", body = ConfigVersionDetail),
        (status = 409, description = "No shadow run of the version found a regression", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn override_shadow(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ReasonRequest>,
) -> Result<Json<ConfigVersionDetail>, ApiError> {
    caller.require(Role::Operator)?;
    let changes = changes(&app);
    let version = named(&changes, &id).await?;
    changes
        .override_shadow(
            version.id,
            &caller.name,
            &req.reason,
            baton_engine::now_ms(),
        )
        .await?;
    tracing::warn!(version = version.number, by = %caller.name, reason = %req.reason, "shadow run's regressions overridden");
    Ok(Json(detail(&changes, &version).await?))
}

/// Proposes the rollback of the active version to the one it changed (or to `to`, a version that
/// was active). The rollback is then validated, approved and scheduled like any change.
#[utoipa::path(
    post,
    path = "/v1/operator/config/rollback",
    request_body = RollbackRequest,
    responses(
        (status = 200, description = "The version rolled back to, proposed again", body = ConfigVersionDetail),
        (status = 404, description = "No such version", body = ErrorBody),
        (status = 409, description = "No version to roll back to", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn rollback(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(req): ApiJson<RollbackRequest>,
) -> Result<Json<ConfigVersionDetail>, ApiError> {
    caller.require(Role::Operator)?;
    let changes = changes(&app);
    let to = match req.to {
        Some(raw) => Some(named(&changes, &raw).await?.id),
        None => None,
    };
    let version = changes
        .rollback(to, &caller.name, "", baton_engine::now_ms())
        .await?;
    app.changes_wake.notify_one();
    Ok(Json(detail(&changes, &version).await?))
}

/// What each instance declares: the bundle it runs (and its version), the version it has staged,
/// how often it pulls, whether it is alive (declared within the last ten seconds, or three of its
/// pull intervals) and whether it lags (alive, and not running the active version).
#[utoipa::path(
    get,
    path = "/v1/operator/instances",
    responses((status = 200, description = "Instances, by name", body = [InstanceStatus])),
    security(("api_key" = []))
)]
pub(crate) async fn instances(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Vec<InstanceStatus>>, ApiError> {
    caller.require(Role::Operator)?;
    let changes = changes(&app);
    let versions = changes.versions().await?;
    let number = |id: B256| versions.iter().find(|v| v.id == id).map(|v| v.number);
    let active = versions
        .iter()
        .find(|v| v.state == changes::State::Active)
        .map(|v| v.id);
    let now = baton_engine::now_ms();
    let instances = changes.instances().await?;
    Ok(Json(
        instances
            .into_iter()
            .map(|i| {
                let alive =
                    now - i.seen_ms <= ALIVE_WITHIN_MS.max(i.pull_every_ms.saturating_mul(3));
                InstanceStatus {
                    running: i.running.to_string(),
                    running_version: number(i.running),
                    staged: i.staged.map(|s| s.to_string()),
                    started_ms: i.started_ms,
                    seen_ms: i.seen_ms,
                    pull_every_ms: i.pull_every_ms,
                    alive,
                    lagging: alive && Some(i.running) != active,
                    instance: i.name,
                }
            })
            .collect(),
    ))
}
