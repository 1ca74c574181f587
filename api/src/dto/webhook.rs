//! Webhooks: the endpoints a dApp registers (`/v1/webhooks`), what each delivery carries, and the
//! delivery log.

use baton_engine::log::{Attempt, Endpoint};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A topic an endpoint may subscribe to: one kind of saga event, the outcome named by what it
/// decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub enum Topic {
    /// The intent was admitted: its saga started.
    #[serde(rename = "intent.started")]
    Started,
    /// A step's (or a compensation's) transaction was signed, before it is sent.
    #[serde(rename = "intent.tx_signed")]
    TxSigned,
    /// A step (or a compensation) is final.
    #[serde(rename = "intent.step_final")]
    StepFinal,
    /// A step (or a compensation) failed for good.
    #[serde(rename = "intent.step_failed")]
    StepFailed,
    /// A step waits for something off the chain (a quorum of attesters), or no longer does.
    #[serde(rename = "intent.waiting")]
    Waiting,
    /// The saga compensates its done steps.
    #[serde(rename = "intent.compensating")]
    Compensating,
    /// Something an operator must look at.
    #[serde(rename = "intent.alert")]
    Alert,
    /// The outcome: the recipient received at least the minimum.
    #[serde(rename = "intent.fulfilled")]
    Fulfilled,
    /// The outcome: the user's inputs are back.
    #[serde(rename = "intent.refunded")]
    Refunded,
    /// The outcome: neither could be established; operators act.
    #[serde(rename = "intent.failed")]
    Failed,
    /// Nothing is left to do.
    #[serde(rename = "intent.completed")]
    Completed,
    /// An operator retried the saga.
    #[serde(rename = "intent.retried")]
    Retried,
    /// The saga is held for an operator.
    #[serde(rename = "intent.held")]
    Held,
    /// An operator resumed the held saga with a change.
    #[serde(rename = "intent.resumed")]
    Resumed,
}

impl Topic {
    /// The topic's name (`intent.started`, …), one of [`baton_engine::TOPICS`].
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// A new endpoint.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where deliveries are posted: an `http://` URL (this build has no TLS) to a host name or an
    /// IPv4 address, at most 2048 characters; only public addresses unless the server allows
    /// private ones.
    #[schema(
        max_length = 2048,
        pattern = "^http://(((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])|([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?(/[!$-~]*)?$"
    )]
    pub url: String,
    /// The topics it wants, each once.
    #[schema(min_items = 1, max_items = 14)]
    pub events: Vec<Topic>,
    /// What the owner calls it (at most 200 characters).
    #[serde(default)]
    #[schema(max_length = 200)]
    pub description: String,
}

/// An endpoint as registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    /// Its id (`wh_` and 32 hex digits).
    pub id: String,
    /// Where deliveries are posted.
    pub url: String,
    /// The topics it subscribed to.
    pub events: Vec<String>,
    /// What its owner calls it.
    pub description: String,
    /// `active`, or `failing`: its messages were retried for the server's retry window without a
    /// 2xx answer, and wait until it is enabled again (`POST /v1/webhooks/{id}/enable`).
    pub state: WebhookState,
    /// Since when it is failing, unix milliseconds.
    pub failing_since_ms: Option<i64>,
    /// Messages waiting to be delivered to it.
    pub pending: u64,
    /// The API key it belongs to (its name).
    pub owner: String,
    /// Registered at, unix milliseconds.
    pub created_ms: i64,
}

/// Whether an endpoint is delivered to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookState {
    /// Deliveries go out.
    Active,
    /// Deliveries wait until it is enabled again.
    Failing,
}

impl From<Endpoint> for Webhook {
    fn from(e: Endpoint) -> Self {
        Self {
            id: e.id,
            url: e.url,
            events: e.topics,
            description: e.description,
            state: if e.failing_ms.is_some() {
                WebhookState::Failing
            } else {
                WebhookState::Active
            },
            failing_since_ms: e.failing_ms,
            pending: e.pending,
            owner: e.key_name,
            created_ms: e.created_ms,
        }
    }
}

/// A new endpoint, with its signing secret: shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedWebhook {
    /// The endpoint.
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The secret that signs its deliveries (`whsec_` and base64), as Standard Webhooks
    /// verifiers take it. Keep it: it is not shown again.
    pub secret: String,
}

/// One delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    /// The message (`webhook-id`; the same for every attempt).
    pub message_id: String,
    /// Its topic.
    pub event: String,
    /// Which attempt, from 1.
    pub attempt: u64,
    /// When it started, unix milliseconds.
    pub at_ms: i64,
    /// The endpoint's HTTP status, when it answered.
    pub status: Option<u16>,
    /// What went wrong, when something did.
    pub error: Option<String>,
    /// How long it took, milliseconds.
    pub duration_ms: u64,
}

impl From<Attempt> for Delivery {
    fn from(a: Attempt) -> Self {
        Self {
            message_id: a.message_id,
            event: a.topic,
            attempt: a.attempt,
            at_ms: a.at_ms,
            status: a.status,
            error: a.error,
            duration_ms: a.duration_ms,
        }
    }
}

/// What a delivery's body carries (the Standard Webhooks payload shape).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookPayload {
    /// The topic (`intent.fulfilled`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// When the event was written, RFC 3339.
    pub timestamp: String,
    /// The event.
    pub data: WebhookData,
}

/// The event a delivery reports.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookData {
    /// The intent.
    pub intent_id: String,
    /// The event's sequence number in the intent's saga (as in its event stream).
    pub seq: u64,
    /// When it was written, unix milliseconds.
    pub at_ms: i64,
    /// The event as the saga log records it (as the event stream sends it).
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

/// How much of a delivery log to read.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryFilter {
    /// At most this many attempts (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire's topics are the saga log's, one for one.
    #[test]
    fn every_topic_is_one_the_saga_log_names() {
        let all = [
            Topic::Started,
            Topic::TxSigned,
            Topic::StepFinal,
            Topic::StepFailed,
            Topic::Waiting,
            Topic::Compensating,
            Topic::Alert,
            Topic::Fulfilled,
            Topic::Refunded,
            Topic::Failed,
            Topic::Completed,
            Topic::Retried,
            Topic::Held,
            Topic::Resumed,
        ];
        let names: Vec<String> = all.iter().map(|t| t.name()).collect();
        assert_eq!(names, baton_engine::TOPICS);
    }
}
