//! `POST /v1/intents` (checks, durable admission, `Idempotency-Key`), `GET /v1/intents/{id}` and
//! its Server-Sent Events.

use std::convert::Infallible;
use std::sync::Arc;

use alloy::primitives::{Address, B256};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use baton_adapters::port::Backlog;
use baton_engine::{SagaId, SagaInput};
use baton_planner::spec::IntentSpec;
use baton_planner::{ChainId, LiquiditySnapshot, Plan};
use futures_util::Stream;

use crate::App;
use crate::app::known_token;
use crate::auth::{Caller, Role};
use crate::dto::intent::{Accepted, SseEvent, SubmitRequest};
use crate::dto::saga::SagaView;
use crate::error::{ApiError, ApiJson, Code, ErrorBody};
use crate::handlers::quote::plan;
use crate::idempotency::{IdempotencyKey, remember, remembered};
use crate::signature::{intent_of, invalid, verify};
use crate::stream::{Follow, StreamSlot};

/// How long a submission whose input looks short in a followed chain's view waits for that view's
/// next block before it is refused.
const VIEW_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(3);

/// The user's balances, allowances and nonce on every origin chain.
async fn check_user(app: &App, spec: &IntentSpec) -> Result<(), ApiError> {
    for (i, input) in spec.inputs.iter().enumerate() {
        let what = format!("inputs[{i}]");
        known_token(&app.runtime().venues, &what, input.chain.0, &input.token)?;
        let adapter = app.adapter(input.chain)?;
        let venue = app.venue(input.chain)?;
        let token: Address = input
            .token
            .parse()
            .map_err(|_| ApiError::internal("input token is not an address"))?;
        // The three reads go to the node at once.
        let need = input.amount.raw();
        let (used, mut balance, mut allowance) = futures_util::future::try_join3(
            adapter.nonce_used(spec.user, spec.nonce),
            adapter.balance(token, spec.user),
            adapter.allowance(token, spec.user, venue.settlers.origin),
        )
        .await?;
        // A followed chain answers from the block its follower last read, which may be just
        // before the one where the user approved or funded (a dApp approves, then submits at
        // once): short of the need, look again once that view moves on to the next block.
        if (balance < need || allowance < need)
            && let Some(mut heads) = adapter.new_heads()
            && tokio::time::timeout(VIEW_CATCH_UP, heads.changed())
                .await
                .is_ok()
        {
            (balance, allowance) = futures_util::future::try_join(
                adapter.balance(token, spec.user),
                adapter.allowance(token, spec.user, venue.settlers.origin),
            )
            .await?;
        }
        if used {
            return Err(ApiError::new(
                Code::NonceUsed,
                format!(
                    "nonce {} of {} is used on {}; quote again for a fresh nonce",
                    spec.nonce, spec.user, input.chain
                ),
            ));
        }
        if balance < need {
            return Err(ApiError::new(
                Code::InsufficientBalance,
                format!(
                    "{what}: the user holds {balance} of {token} on {}, the intent gives {need}",
                    input.chain
                ),
            ));
        }
        if allowance < need {
            return Err(ApiError::new(
                Code::InsufficientAllowance,
                format!(
                    "{what}: the user allows the origin settler {} to pull {allowance} of {token}, the intent gives {need}; approve it first",
                    venue.settlers.origin
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses an intent whose plan cannot end before its fill deadline (see [`Needs`]): with the
/// chains idle, its deadline is too soon; behind what they have queued, they lack the capacity
/// now. An intent let in promises its own transactions to its chains until its fill deadline.
fn admit(app: &App, plan: &Plan, live: &LiquiditySnapshot, now_ms: u64) -> Result<(), ApiError> {
    let needs = Needs::of(app, plan, live)?;
    needs.check_idle(plan, now_ms)?;
    needs.check_queued(plan, now_ms)?;
    let mut txs: std::collections::BTreeMap<ChainId, u64> = Default::default();
    for step in plan.steps().iter().filter(|s| s.action.has_effect()) {
        *txs.entry(step.chain).or_default() += 1;
    }
    let until_ms = u64::from(plan.intent().fill_deadline()).saturating_mul(1000);
    for (chain, n) in txs {
        app.adapter(chain)?.promise(n, until_ms);
    }
    Ok(())
}

/// How long before its fill deadline a plan must start: the whole critical path, and for each
/// fill on it, when it starts plus the room the engine wants before the deadline to sign it
/// (`EngineConfig::fill_room_ms`). Once with the chains idle, once behind the solver's
/// transactions they have queued: each transaction step on the path waits for those on its chain
/// that are not yet in a block (sent, or promised to intents admitted before), at the rate the
/// blocks take them (from the chain's follower; a chain without one adds no wait).
pub(crate) struct Needs {
    /// With the chains idle, milliseconds.
    idle_ms: u64,
    /// Behind their queues, milliseconds.
    queued_ms: u64,
    margin_blocks: u64,
    /// The chain whose queue adds the most wait, and its backlog.
    slowest: Option<(ChainId, Backlog)>,
}

impl Needs {
    pub(crate) fn of(app: &App, plan: &Plan, live: &LiquiditySnapshot) -> Result<Self, ApiError> {
        let path = plan.critical_path();
        let knobs = app.engine.knobs();
        let margin_blocks = knobs.fill_margin_blocks;
        let mut needs = Self {
            idle_ms: path.millis,
            queued_ms: path.millis,
            margin_blocks,
            slowest: None,
        };
        let mut waited_ms = 0u64;
        for (id, start_ms) in path.steps.iter().zip(&path.starts_ms) {
            let Some(step) = plan.step(*id).filter(|s| s.action.has_effect()) else {
                continue;
            };
            if let Some(backlog) = app.adapter(step.chain)?.backlog() {
                waited_ms = waited_ms.saturating_add(backlog.wait_ms());
                if needs
                    .slowest
                    .is_none_or(|(_, b)| b.wait_ms() < backlog.wait_ms())
                {
                    needs.slowest = Some((step.chain, backlog));
                }
            }
            if step.action.is_pivot() {
                // As the engine reckons it when it signs the fill.
                let block_ms = live.chains.get(&step.chain).map_or(0, |c| c.block_time_ms);
                let fill_ms = start_ms.saturating_add(knobs.fill_room_ms(block_ms));
                needs.idle_ms = needs.idle_ms.max(fill_ms);
                // Behind the queues of the steps before it and its own.
                needs.queued_ms = needs.queued_ms.max(fill_ms.saturating_add(waited_ms));
            }
        }
        needs.queued_ms = needs.queued_ms.max(path.millis.saturating_add(waited_ms));
        Ok(needs)
    }

    /// [`Needs`] with the chains idle, whole seconds.
    pub(crate) fn idle_secs(&self) -> u64 {
        self.idle_ms.div_ceil(1_000)
    }

    /// `deadline_too_soon` when even idle chains could not fill the plan in time.
    pub(crate) fn check_idle(&self, plan: &Plan, now_ms: u64) -> Result<(), ApiError> {
        let deadline_ms = fill_deadline_ms(plan);
        if now_ms.saturating_add(self.idle_ms) <= deadline_ms {
            return Ok(());
        }
        Err(ApiError::new(
            Code::DeadlineTooSoon,
            format!(
                "the fill deadline is {} s away, and the plan needs {} s: its critical path, and its fill expected to land {} blocks before the deadline; allow a later deadline",
                deadline_ms.saturating_sub(now_ms) / 1_000,
                self.idle_ms.div_ceil(1_000),
                self.margin_blocks,
            ),
        ))
    }

    /// `capacity`, with when to try again, when the chains' queues would make the plan late.
    fn check_queued(&self, plan: &Plan, now_ms: u64) -> Result<(), ApiError> {
        let deadline_ms = fill_deadline_ms(plan);
        let end_ms = now_ms.saturating_add(self.queued_ms);
        let Some((chain, backlog)) = self.slowest.filter(|_| end_ms > deadline_ms) else {
            return Ok(());
        };
        let retry = (end_ms - deadline_ms).div_ceil(1000).clamp(1, 3600);
        Err(ApiError {
            code: Code::Capacity,
            message: format!(
                "the chains' queues would make this intent miss its fill deadline: {chain} has {} of the solver's transactions waiting ({} sent, {} for intents admitted before) at about {} a block, so the plan needs {} s and the deadline is {} s away; try again in {retry} s or allow a later deadline",
                backlog.sent + backlog.promised,
                backlog.sent,
                backlog.promised,
                backlog.per_block,
                self.queued_ms.div_ceil(1000),
                deadline_ms.saturating_sub(now_ms) / 1000,
            ),
            retry_after: Some(retry),
        })
    }
}

fn fill_deadline_ms(plan: &Plan) -> u64 {
    u64::from(plan.intent().fill_deadline()).saturating_mul(1000)
}

/// Takes a signed intent: checks the signatures, the nonce, the deadlines, the chains and tokens,
/// the amounts, and the user's balance and allowance on each origin chain; stores it durably and
/// starts its saga. With an `Idempotency-Key`, the same key and body answer the same intent, and
/// the same key with another body is a conflict.
#[utoipa::path(
    post,
    path = "/v1/intents",
    request_body = SubmitRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried submission safe: 1 to 200 printable ASCII characters, no space at either end", min_length = 1, max_length = 200, pattern = "^[!-~]([ -~]*[!-~])?$")),
    responses(
        (status = 202, description = "Accepted: the saga is running", body = Accepted),
        (status = 400, description = "Bad signature, deadline passed, unknown chain or token, amount out of range", body = ErrorBody),
        (status = 409, description = "Nonce used, or the Idempotency-Key was used with another body", body = ErrorBody),
        (status = 422, description = "Insufficient balance, allowance or liquidity", body = ErrorBody),
        (status = 503, description = "Paused by operators, the chains' queues would make the intent miss its fill deadline (`capacity`, with `Retry-After`), or this instance is switching to a newly active configuration version (`switching`)", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn submit(
    State(app): State<Arc<App>>,
    caller: Caller,
    key: IdempotencyKey,
    ApiJson(req): ApiJson<SubmitRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    caller.require(Role::Dapp)?;
    let idempotency = key.scoped(&caller.name, &req)?;
    if let Some((key, hash)) = &idempotency
        && let Some(id) = remembered(&app, key, hash).await?
    {
        return Ok((StatusCode::ACCEPTED, Json(Accepted::new(id))));
    }
    let orders = verify(&req)?;
    let (spec, intent_id) = intent_of(&orders)?;
    let saga = SagaId(intent_id);
    let sent_ids: Vec<B256> = orders.iter().map(|o| o.id).collect();
    let mismatch = || {
        invalid(
            "the orders do not match the intent they describe (send every order of one quote, in its order)",
        )
    };
    if let Some(stored) = app.engine.log().input(saga).await? {
        // Submitted before: the same signed orders answer the same intent.
        let stored: SagaInput = serde_json::from_str(&stored).map_err(ApiError::internal)?;
        let stored_ids: Vec<B256> = stored.orders()?.iter().map(|o| o.id().0).collect();
        if stored_ids != sent_ids {
            return Err(mismatch());
        }
        // Recorded unless one is (an intent admitted before the API recorded submitters).
        app.engine
            .log()
            .record_submitter(saga, &caller.name, baton_engine::now_ms())
            .await?;
    } else {
        let snapshot = app.snapshot().await?;
        let now = snapshot.timestamp;
        if u64::from(orders[0].order.openDeadline) <= now {
            return Err(ApiError::new(
                Code::DeadlinePassed,
                format!(
                    "the open deadline ({}) has passed (chain time {now}); quote again",
                    orders[0].order.openDeadline
                ),
            ));
        }
        let runtime = crate::changes::for_intake(&app).await?;
        crate::signature::check_settlers(&runtime, &orders)?;
        check_user(&app, &spec).await?;
        let (planned, live) = plan(&spec, &snapshot, &runtime.planner)?;
        let planned_ids: Vec<B256> = planned.orders().iter().map(|o| o.id().0).collect();
        if planned_ids != sent_ids || planned.intent().id().0 != intent_id {
            return Err(mismatch());
        }
        // The snapshot's clock is its head block's, read a moment ago: the wall clock is no
        // earlier where the chains keep time.
        let wall_ms = u64::try_from(baton_engine::now_ms()).unwrap_or(0);
        let now_ms = wall_ms.max(now.saturating_mul(1000));
        admit(&app, &planned, &live, now_ms)?;
        let input = SagaInput {
            intent: spec,
            snapshot,
            config: runtime.planner,
            signatures: orders.into_iter().map(|o| o.signature).collect(),
            config_version: runtime.version,
        };
        // `verify` checked each order's signature: the engine runs this plan as it is.
        let planned = input.planned(planned);
        // Its submitter is recorded in the admission's commit.
        app.engine
            .submit_planned(input, planned, Some(caller.name.clone()))
            .await?;
        tracing::info!(intent = %saga, by = %caller.name, "intent accepted");
    }
    if let Some((key, hash)) = &idempotency {
        remember(&app, key, hash, saga).await?;
    }
    Ok((StatusCode::ACCEPTED, Json(Accepted::new(saga))))
}

/// Whether `caller` may read `saga`: operators read every intent, a `dapp` key only those it
/// submitted (any other answers as if it did not exist).
async fn readable(app: &App, caller: &Caller, saga: SagaId) -> Result<(), ApiError> {
    if caller.role >= Role::Operator
        || app.engine.log().submitter(saga).await?.as_deref() == Some(caller.name.as_str())
    {
        Ok(())
    } else {
        Err(ApiError::new(Code::NotFound, format!("no intent {saga}")))
    }
}

/// Parses an intent id from a path.
pub(crate) fn saga_id(raw: &str) -> Result<SagaId, ApiError> {
    raw.parse::<B256>().map(SagaId).map_err(|_| {
        ApiError::new(
            Code::NotFound,
            format!("{raw:?} is not an intent id (0x followed by 64 hex digits)"),
        )
    })
}

/// Where an intent stands: its status, outcome and every step (chain, state, transaction, block,
/// confirmations, reason code when it failed).
#[utoipa::path(
    get,
    path = "/v1/intents/{id}",
    params(("id" = String, Path, description = "The intent id")),
    responses(
        (status = 200, description = "The intent", body = SagaView),
        (status = 404, description = "No such intent", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn status(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SagaView>, ApiError> {
    caller.require(Role::Dapp)?;
    let saga = saga_id(&id)?;
    readable(&app, &caller, saga).await?;
    let view = app
        .engine
        .view(saga)
        .await?
        .ok_or_else(|| ApiError::new(Code::NotFound, format!("no intent {saga}")))?;
    Ok(Json(SagaView::from(view)))
}

/// Every state change of an intent as Server-Sent Events (`id`: the sequence number, `event`: the
/// kind, `data`: JSON), from the first (or after `Last-Event-ID`) until the outcome is decided.
#[utoipa::path(
    get,
    path = "/v1/intents/{id}/events",
    params(
        ("id" = String, Path, description = "The intent id"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event (its `id`: a sequence number)", pattern = "^[0-9]{1,18}$"),
    ),
    responses(
        (status = 200, description = "The events, as Server-Sent Events", body = SseEvent, content_type = "text/event-stream"),
        (status = 404, description = "No such intent", body = ErrorBody),
        (status = 429, description = "This API key holds the most event streams it may", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn events(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require(Role::Dapp)?;
    let saga = saga_id(&id)?;
    readable(&app, &caller, saga).await?;
    // Subscribed before the first read: nothing written in between is missed.
    let notices = app.engine.subscribe();
    if app.engine.log().input(saga).await?.is_none() {
        return Err(ApiError::new(Code::NotFound, format!("no intent {saga}")));
    }
    let after = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .filter(|v| (1..=18).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::new(
                        Code::InvalidRequest,
                        "Last-Event-ID must be an event's id: 1 to 18 decimal digits",
                    )
                })
        })
        .transpose()?
        .unwrap_or(0);
    let slot = StreamSlot::take(&app, &caller.name)?;
    let state = Follow::new(app, saga, notices, after, slot);
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        let event = s.next().await?;
        Some((Ok(event), s))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
