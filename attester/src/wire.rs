//! Requests and answers between the engine and an attester, as JSON over HTTP (`POST /v1/fills`,
//! `POST /v1/cancels`) or in-process.

use alloy::primitives::{Address, Bytes};
use baton_adapters::attestation::Delivery;
use baton_planner::OrderId;
use baton_planner::order::GaslessCrossChainOrder;
use serde::{Deserialize, Serialize};

/// "Attest that `order` was filled by `filler`."
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FillRequest {
    /// The order whose escrow the attestation releases, as the user signed it.
    pub order: GaslessCrossChainOrder,
    /// The order the destination fills were made against, when another order of the same intent
    /// (an intent with inputs on several chains is one order per origin chain, filled once, as
    /// its first order). It must carry the same intent, user and outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filled_as: Option<GaslessCrossChainOrder>,
    /// Who filled, and is to be repaid.
    pub filler: Address,
}

/// "Attest that `order` may be refunded now."
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRequest {
    /// The order, as the user signed it.
    pub order: GaslessCrossChainOrder,
    /// As in [`FillRequest::filled_as`]: fills against this order also count as fills of `order`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filled_as: Option<GaslessCrossChainOrder>,
    /// Before the fill deadline: the order's opener's 65-byte EIP-712 signature of
    /// `CancelRequest(orderId)` under the origin settler's domain, by which the filler that opened
    /// the order gives up filling it. Without it, a cancel waits for the fill deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early: Option<Bytes>,
}

/// What an attester signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// The order.
    pub order_id: OrderId,
    /// What was signed.
    pub claim: Claim,
    /// The attester's address.
    pub signer: Address,
    /// Its 65-byte EIP-712 signature under the order's origin settler domain.
    pub signature: Bytes,
}

/// The statement an attestation signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Claim {
    /// `Fill(orderId, filler, deliveries)`.
    Fill {
        /// Who filled.
        filler: Address,
        /// Every output's delivery, by output index.
        deliveries: Vec<Delivery>,
    },
    /// `Cancel(orderId)`.
    Cancel,
}

/// Why an attester has not signed yet (HTTP 202): asking again later may succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pending {
    /// The order is not (yet) open on its origin settler.
    NotOpened,
    /// An output has no fill yet.
    NotFilled,
    /// Every output is filled, not every fill is as deep as the attester's rule asks.
    NotFinal,
    /// A cancel: the fill deadline has not passed on every destination (by final blocks).
    DeadlineNotPassed,
}

impl Pending {
    /// The machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            Pending::NotOpened => "not_opened",
            Pending::NotFilled => "not_filled",
            Pending::NotFinal => "not_final",
            Pending::DeadlineNotPassed => "deadline_not_passed",
        }
    }
}

/// Why an attester will not sign (HTTP 4xx): asking again gives the same answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The request is malformed: an order that does not decode, orders of different intents.
    BadRequest,
    /// The order's origin chain, or an output's chain, is not one this attester follows.
    UnknownChain,
    /// The order names an origin settler this attester does not know on its chain.
    UnknownSettler,
    /// A fill does not match the order: another filler, token or recipient, less than the
    /// minimum, other calls.
    Mismatch,
    /// A fill: this attester attested the order's cancel. A cancel: the order has a fill, or this
    /// attester attested one.
    Conflict,
    /// The escrow is closed (settled or refunded): there is nothing left to release.
    Closed,
    /// An early cancel whose signature is not the order's opener's.
    NotOpener,
}

impl Refusal {
    /// The machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::BadRequest => "bad_request",
            Refusal::UnknownChain => "unknown_chain",
            Refusal::UnknownSettler => "unknown_settler",
            Refusal::Mismatch => "mismatch",
            Refusal::Conflict => "conflict",
            Refusal::Closed => "closed",
            Refusal::NotOpener => "not_opener",
        }
    }

    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            Refusal::BadRequest => 400,
            Refusal::UnknownChain | Refusal::UnknownSettler => 422,
            Refusal::Mismatch => 422,
            Refusal::Conflict | Refusal::Closed => 409,
            Refusal::NotOpener => 403,
        }
    }
}

/// An attester's answer to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Signed (HTTP 200).
    Signed(Attestation),
    /// Not yet (HTTP 202).
    Pending {
        /// Why.
        reason: Pending,
        /// In words.
        detail: String,
    },
    /// Never (HTTP 4xx).
    Refused {
        /// Why.
        reason: Refusal,
        /// In words.
        detail: String,
    },
}

/// The JSON body of a 202 or 4xx answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The machine-readable code ([`Pending::code`] or [`Refusal::code`]).
    pub code: String,
    /// A sentence a person can act on.
    pub message: String,
}
