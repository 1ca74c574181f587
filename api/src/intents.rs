//! `POST /v1/intents` (signed orders in, a saga started), `GET /v1/intents/{id}` (where it
//! stands) and `GET /v1/intents/{id}/events` (every state change, as Server-Sent Events, until the
//! outcome).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, Signature, keccak256};
use alloy::sol_types::{SolStruct, SolValue};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use baton_engine::log::StoredEvent;
use baton_engine::view::SagaView;
use baton_engine::{SagaEvent, SagaId, SagaInput};
use baton_planner::order::{BatonOrderData, GaslessCrossChainOrder, domain, order_data_type};
use baton_planner::spec::{CallSpec, DeadlineSpec, InputSpec, IntentSpec, OutputSpec};
use baton_planner::{Amount, ChainId};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;

use crate::App;
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiJson, Code, ErrorBody};
use crate::quote::{known_token, plan};
use baton_engine::log::KeyUse;

/// One signed order.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedOrder {
    /// The ERC-7683 `GaslessCrossChainOrder`, as the quote's `order` (its typed data's message).
    #[schema(value_type = Object)]
    pub order: serde_json::Value,
    /// The user's EIP-712 signature of it (65 bytes, `0x` hex).
    pub signature: String,
}

/// A signed intent: every order of the quote with the user's signature.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The orders, in the quote's order.
    pub orders: Vec<SignedOrder>,
}

/// An accepted intent.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// The intent id (its saga's id).
    pub intent_id: String,
    /// Where it stands.
    pub status_url: String,
    /// Its state changes, as Server-Sent Events.
    pub events_url: String,
}

impl Accepted {
    fn new(id: SagaId) -> Self {
        Self {
            intent_id: id.to_string(),
            status_url: format!("/v1/intents/{id}"),
            events_url: format!("/v1/intents/{id}/events"),
        }
    }
}

fn bad_signature(i: usize, why: &str) -> ApiError {
    ApiError::new(
        Code::BadSignature,
        format!("orders[{i}].signature {why}; sign the order's typed data with the user's key"),
    )
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(Code::InvalidIntent, msg)
}

/// A submitted order, its signature checked.
struct Verified {
    order: GaslessCrossChainOrder,
    signature: Bytes,
    /// The order id: the EIP-712 digest the user signed.
    id: B256,
}

/// The orders, parsed, their signatures checked against their users.
fn verify(app: &App, req: &SubmitRequest) -> Result<Vec<Verified>, ApiError> {
    if req.orders.is_empty() || req.orders.len() > 8 {
        return Err(invalid("send between 1 and 8 signed orders"));
    }
    let mut out = Vec::new();
    for (i, signed) in req.orders.iter().enumerate() {
        let order: GaslessCrossChainOrder =
            serde_json::from_value(signed.order.clone()).map_err(|e| {
                ApiError::new(
                    Code::InvalidRequest,
                    format!("orders[{i}].order is not a GaslessCrossChainOrder: {e}"),
                )
            })?;
        let chain = u64::try_from(order.originChainId).map_err(|_| {
            ApiError::new(Code::UnknownChain, format!("orders[{i}]: no such chain"))
        })?;
        let venue = app
            .venues
            .iter()
            .find(|v| v.chain.0 == chain)
            .ok_or_else(|| {
                ApiError::new(
                    Code::UnknownChain,
                    format!("orders[{i}]: baton does not serve chain {chain}"),
                )
            })?;
        if order.originSettler != venue.settlers.origin {
            return Err(invalid(format!(
                "orders[{i}]: the origin settler on chain {chain} is {}, not {}",
                venue.settlers.origin, order.originSettler
            )));
        }
        let bytes: Bytes = signed
            .signature
            .parse()
            .map_err(|_| bad_signature(i, "is not 0x-prefixed hex"))?;
        let signature = Signature::from_raw(&bytes)
            .map_err(|_| bad_signature(i, "is not a 65-byte signature"))?;
        let digest = order.eip712_signing_hash(&domain(ChainId(chain), order.originSettler));
        let signer = baton_adapters::signers::recover(digest, signature)
            .map_err(|_| bad_signature(i, "does not recover to any address"))?;
        if signer != order.user {
            return Err(bad_signature(
                i,
                &format!(
                    "recovers to {signer}, not to the order's user {}",
                    order.user
                ),
            ));
        }
        out.push(Verified {
            order,
            signature: bytes,
            id: digest,
        });
    }
    Ok(out)
}

/// The intent the orders describe (every order carries the intent id, its own inputs and every
/// output), with tokens named by address.
fn intent_of(orders: &[Verified]) -> Result<(IntentSpec, B256), ApiError> {
    let lead = &orders[0].order;
    if lead.orderDataType != order_data_type() {
        return Err(invalid("orders[0]: orderDataType is not baton's"));
    }
    let lead_data = BatonOrderData::abi_decode(&lead.orderData)
        .map_err(|_| invalid("orders[0]: orderData does not decode as BatonOrderData"))?;
    let mut inputs = Vec::new();
    for (i, Verified { order, .. }) in orders.iter().enumerate() {
        let data = BatonOrderData::abi_decode(&order.orderData)
            .map_err(|_| invalid(format!("orders[{i}]: orderData does not decode")))?;
        if order.user != lead.user
            || order.nonce != lead.nonce
            || order.openDeadline != lead.openDeadline
            || order.fillDeadline != lead.fillDeadline
            || data.intentId != lead_data.intentId
            || order.orderDataType != lead.orderDataType
        {
            return Err(invalid(format!(
                "orders[{i}] belongs to another intent than orders[0]"
            )));
        }
        for input in &data.inputs {
            if input.chainId != order.originChainId {
                return Err(invalid(format!(
                    "orders[{i}] has an input on another chain than its own"
                )));
            }
            inputs.push(InputSpec {
                chain: ChainId(u64::try_from(input.chainId).unwrap_or(u64::MAX)),
                token: input.token.to_string(),
                amount: Amount::new(input.amount),
            });
        }
    }
    let outputs = lead_data
        .outputs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let call = lead_data
                .calls
                .iter()
                .find(|c| usize::try_from(c.outputIndex).ok() == Some(i))
                .map(|c| CallSpec {
                    target: c.target,
                    data: c.data.clone(),
                });
            OutputSpec {
                chain: ChainId(u64::try_from(o.chainId).unwrap_or(u64::MAX)),
                token: Address::from_word(o.token).to_string(),
                min_amount: Amount::new(o.amount),
                recipient: Address::from_word(o.recipient),
                call,
            }
        })
        .collect();
    Ok((
        IntentSpec {
            name: String::new(),
            description: String::new(),
            user: lead.user,
            nonce: lead.nonce,
            open_deadline: DeadlineSpec::At(lead.openDeadline),
            fill_deadline: DeadlineSpec::At(lead.fillDeadline),
            inputs,
            outputs,
            expect: None,
        },
        lead_data.intentId,
    ))
}

/// The user's balances, allowances and nonce on every origin chain.
async fn check_user(app: &App, spec: &IntentSpec) -> Result<(), ApiError> {
    for (i, input) in spec.inputs.iter().enumerate() {
        let what = format!("inputs[{i}]");
        known_token(&app.venues, &what, input.chain.0, &input.token)?;
        let adapter = app.adapter(input.chain)?;
        let venue = app.venue(input.chain)?;
        let token: Address = input
            .token
            .parse()
            .map_err(|_| ApiError::internal("input token is not an address"))?;
        // The three reads go to the node at once.
        let need = input.amount.raw();
        let (used, balance, allowance) = futures_util::future::try_join3(
            adapter.nonce_used(spec.user, spec.nonce),
            adapter.balance(token, spec.user),
            adapter.allowance(token, spec.user, venue.settlers.origin),
        )
        .await?;
        if used {
            return Err(ApiError::new(
                Code::NonceUsed,
                format!(
                    "nonce {} of {} is used on chain {}; quote again for a fresh nonce",
                    spec.nonce, spec.user, input.chain
                ),
            ));
        }
        if balance < need {
            return Err(ApiError::new(
                Code::InsufficientBalance,
                format!(
                    "{what}: the user holds {balance} of {token} on chain {}, the intent gives {need}",
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

/// Takes a signed intent: checks the signatures, the nonce, the deadlines, the chains and tokens,
/// the amounts, and the user's balance and allowance on each origin chain; stores it durably and
/// starts its saga. With an `Idempotency-Key`, the same key and body answer the same intent, and
/// the same key with another body is a conflict.
#[utoipa::path(
    post,
    path = "/v1/intents",
    request_body = SubmitRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried submission safe")),
    responses(
        (status = 202, description = "Accepted: the saga is running", body = Accepted),
        (status = 400, description = "Bad signature, deadline passed, unknown chain or token, amount out of range", body = ErrorBody),
        (status = 409, description = "Nonce used, or the Idempotency-Key was used with another body", body = ErrorBody),
        (status = 422, description = "Insufficient balance, allowance or liquidity", body = ErrorBody),
        (status = 503, description = "Paused by operators", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn submit(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SubmitRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    caller.require(Role::Dapp)?;
    let idempotency = match headers.get("idempotency-key") {
        Some(v) => {
            let key = v.to_str().ok().filter(|k| !k.is_empty() && k.len() <= 200);
            let key = key.ok_or_else(|| {
                ApiError::new(
                    Code::InvalidRequest,
                    "Idempotency-Key must be 1 to 200 visible ASCII characters",
                )
            })?;
            let body = serde_json::to_vec(&req).map_err(ApiError::internal)?;
            Some((
                format!("{}:{key}", caller.name),
                keccak256(body).to_string(),
            ))
        }
        None => None,
    };
    if let Some((key, hash)) = &idempotency
        && let Some(id) = remembered(&app, key, hash).await?
    {
        return Ok((StatusCode::ACCEPTED, Json(Accepted::new(id))));
    }
    let orders = verify(&app, &req)?;
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
        check_user(&app, &spec).await?;
        let (planned, _) = plan(&spec, &snapshot, &app.settings.planner)?;
        let planned_ids: Vec<B256> = planned.orders().iter().map(|o| o.id().0).collect();
        if planned_ids != sent_ids || planned.intent().id().0 != intent_id {
            return Err(mismatch());
        }
        let input = SagaInput {
            intent: spec,
            snapshot,
            config: app.settings.planner,
            signatures: orders.into_iter().map(|o| o.signature).collect(),
        };
        app.engine.submit(input).await?;
        tracing::info!(intent = %saga, by = %caller.name, "intent accepted");
    }
    if let Some((key, hash)) = &idempotency {
        remember(&app, key, hash, saga).await?;
    }
    Ok((StatusCode::ACCEPTED, Json(Accepted::new(saga))))
}

/// The intent stored under an idempotency key; a conflict when its body differs.
async fn remembered(app: &App, key: &str, hash: &str) -> Result<Option<SagaId>, ApiError> {
    key_use(app.engine.log().idempotency_key(key, hash).await?)
}

async fn remember(app: &App, key: &str, hash: &str, saga: SagaId) -> Result<(), ApiError> {
    // Two racing requests with one key: the first one stored wins; a different body loses.
    let stored = app
        .engine
        .log()
        .remember_idempotency_key(key, hash, saga, baton_engine::now_ms())
        .await?;
    key_use(stored).map(|_| ())
}

fn key_use(stored: KeyUse) -> Result<Option<SagaId>, ApiError> {
    match stored {
        KeyUse::Unused => Ok(None),
        KeyUse::Same(saga) => Ok(Some(saga)),
        KeyUse::OtherBody => Err(ApiError::new(
            Code::IdempotencyConflict,
            "this Idempotency-Key was used with another body; use a new key for a new intent",
        )),
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
    let view = app
        .engine
        .view(saga)
        .await?
        .ok_or_else(|| ApiError::new(Code::NotFound, format!("no intent {saga}")))?;
    Ok(Json(view))
}

/// One event as streamed.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct StreamedEvent {
    /// Its sequence number in the saga (also the SSE `id`).
    pub seq: u64,
    /// When it was written, unix milliseconds.
    pub at_ms: i64,
    /// The event (its `kind` is also the SSE `event`).
    #[schema(value_type = Object)]
    pub event: SagaEvent,
}

/// Every state change of an intent as Server-Sent Events (`id`: the sequence number, `event`: the
/// kind, `data`: JSON), from the first (or after `Last-Event-ID`) until the outcome is decided.
#[utoipa::path(
    get,
    path = "/v1/intents/{id}/events",
    params(
        ("id" = String, Path, description = "The intent id"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event"),
    ),
    responses(
        (status = 200, description = "text/event-stream of StreamedEvent", body = StreamedEvent, content_type = "text/event-stream"),
        (status = 404, description = "No such intent", body = ErrorBody),
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
    // Subscribed before the first read: nothing written in between is missed.
    let notices = app.engine.subscribe();
    if app.engine.log().input(saga).await?.is_none() {
        return Err(ApiError::new(Code::NotFound, format!("no intent {saga}")));
    }
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let state = Follow {
        app,
        saga,
        notices,
        after,
        pending: VecDeque::new(),
        done: false,
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        let event = s.next().await?;
        Some((Ok(event), s))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

struct Follow {
    app: Arc<App>,
    saga: SagaId,
    notices: tokio::sync::broadcast::Receiver<baton_engine::Notice>,
    after: u64,
    pending: VecDeque<StoredEvent>,
    done: bool,
}

impl Follow {
    /// The next SSE event, or `None` once the outcome was sent (or the log cannot be read).
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                self.after = e.seq;
                if matches!(e.event, SagaEvent::Decided { .. }) {
                    self.done = true;
                }
                let data = StreamedEvent {
                    seq: e.seq,
                    at_ms: e.at_ms,
                    event: e.event,
                };
                return Some(
                    Event::default()
                        .id(data.seq.to_string())
                        .event(data.event.kind())
                        .json_data(&data)
                        .unwrap_or_else(|_| Event::default().comment("unencodable event")),
                );
            }
            if self.done {
                return None;
            }
            let events = self.app.engine.log().events(self.saga).await.ok()?;
            self.pending
                .extend(events.into_iter().filter(|e| e.seq > self.after));
            if !self.pending.is_empty() {
                continue;
            }
            // Wait for this saga's next event (or look again after a while, or after lagging).
            let wait = async {
                loop {
                    match self.notices.recv().await {
                        Ok(n) if n.saga == self.saga => return true,
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => return true,
                        Err(RecvError::Closed) => return false,
                    }
                }
            };
            if let Ok(false) = tokio::time::timeout(Duration::from_secs(5), wait).await {
                return None;
            }
        }
    }
}
