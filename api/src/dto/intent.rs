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
    /// The answer for intent `id`.
    pub(crate) fn new(id: SagaId) -> Self {
        Self {
            intent_id: id.to_string(),
            status_url: format!("/v1/intents/{id}"),
            events_url: format!("/v1/intents/{id}/events"),
        }
    }
}

/// One event as streamed.
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
