//! `POST /v1/intents` and its event stream: the signed orders a dApp submits, the answer, and one
//! streamed event.

use baton_engine::SagaId;
use baton_engine::log::StoredEvent;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One signed order.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedOrder {
    /// The ERC-7683 `GaslessCrossChainOrder`, as the quote's `order` (its typed data's message).
    #[schema(value_type = GaslessCrossChainOrder)]
    pub order: serde_json::Value,
    /// The user's EIP-712 signature of it (65 bytes, `0x` hex).
    #[schema(pattern = "^0x[0-9a-fA-F]{130}$")]
    pub signature: String,
}

/// An ERC-7683 `GaslessCrossChainOrder` as a quote's `order` writes it (the EIP-712 message the
/// user signs). Its schema only: the server reads it as the planner's order type.
#[allow(non_snake_case, dead_code)]
#[derive(ToSchema)]
pub struct GaslessCrossChainOrder {
    /// The origin settler (the EIP-712 domain's verifying contract).
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    originSettler: String,
    /// The user.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    user: String,
    /// The nonce, a hex quantity.
    #[schema(pattern = "^0x[0-9a-fA-F]{1,64}$")]
    nonce: String,
    /// The origin chain id, a hex quantity.
    #[schema(pattern = "^0x[0-9a-fA-F]{1,64}$")]
    originChainId: String,
    /// By when it must be opened, unix seconds.
    openDeadline: u32,
    /// By when it must be filled, unix seconds.
    fillDeadline: u32,
    /// The EIP-712 type hash of its order data.
    #[schema(pattern = "^0x[0-9a-fA-F]{64}$")]
    orderDataType: String,
    /// The ABI-encoded order data.
    #[schema(pattern = "^0x([0-9a-fA-F]{2})*$")]
    orderData: String,
}

/// A signed intent: every order of the quote with the user's signature.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The orders, in the quote's order.
    #[schema(min_items = 1, max_items = 8)]
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
    /// The answer for intent `id`.
    pub(crate) fn new(id: SagaId) -> Self {
        Self {
            intent_id: id.to_string(),
            status_url: format!("/v1/intents/{id}"),
            events_url: format!("/v1/intents/{id}/events"),
        }
    }
}

/// One Server-Sent Event of an intent's stream, as its fields arrive.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct SseEvent {
    /// The event's sequence number in the saga.
    #[schema(pattern = "^[1-9][0-9]*$")]
    id: String,
    /// Its kind (`started`, `tx_signed`, …, `decided`).
    event: String,
    /// A [`StreamedEvent`] as JSON.
    #[schema(content_media_type = "application/json")]
    data: String,
}

/// One event as streamed (an SSE event's `data`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct StreamedEvent {
    /// Its sequence number in the saga (also the SSE `id`).
    pub seq: u64,
    /// When it was written, unix milliseconds.
    pub at_ms: i64,
    /// The event as the saga log records it (its `kind` is also the SSE `event`).
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

impl From<StoredEvent> for StreamedEvent {
    fn from(e: StoredEvent) -> Self {
        Self {
            seq: e.seq,
            at_ms: e.at_ms,
            event: serde_json::to_value(&e.event).unwrap_or_default(),
        }
    }
}
