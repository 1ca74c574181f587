//! What a saga's log records: typed events, each applied idempotently to the saga's state.

use alloy::primitives::B256;
use baton_adapters::port::{BlockRef, SignedTx};
use baton_planner::{IntentId, StepId};
use serde::{Deserialize, Serialize};

/// A saga's id: the id of the intent it executes (one saga per intent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SagaId(pub B256);

impl From<IntentId> for SagaId {
    fn from(id: IntentId) -> Self {
        SagaId(id.0)
    }
}

impl std::fmt::Display for SagaId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How an intent ended, for the user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The recipient received at least the minimum, final on the destination.
    Fulfilled,
    /// The user's inputs are back, final on the origin.
    Refunded,
    /// Neither could be established: an operator must act.
    Failed {
        /// Why.
        reason: String,
        /// Whether an operator must act (always true today; kept explicit for alerts).
        needs_operator: bool,
    },
}

/// One state change of a saga. Written before the effect it describes (write-ahead).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SagaEvent {
    /// The saga exists, for this intent and plan.
    Started {
        /// The intent.
        intent: IntentId,
        /// Hash of the plan it runs.
        plan: B256,
    },
    /// A step's transaction is signed: its raw bytes, hash and nonce, before any broadcast.
    TxSigned {
        /// The step.
        step: StepId,
        /// Attempt number (a fee replacement is the next attempt, with the same nonce).
        attempt: u32,
        /// The transaction.
        tx: SignedTx,
    },
    /// A step's transaction is in a block.
    TxIncluded {
        /// The step.
        step: StepId,
        /// The transaction.
        hash: B256,
        /// Where.
        block: BlockRef,
        /// Whether it succeeded.
        success: bool,
    },
    /// A step's effect is final (its chain's confirmations reached).
    StepFinal {
        /// The step.
        step: StepId,
    },
    /// A step failed for good.
    StepFailed {
        /// The step.
        step: StepId,
        /// Why.
        reason: String,
    },
    /// The decision to compensate the completed steps, before any compensation runs.
    Compensating {
        /// Why.
        reason: String,
    },
    /// The outcome for the user, decided from evidence.
    Decided {
        /// The outcome.
        outcome: Outcome,
    },
    /// Nothing is left to do (the solver is repaid, or the refund is final).
    Completed,
}

impl SagaEvent {
    /// The event's kind as stored (`started`, `tx_signed`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            SagaEvent::Started { .. } => "started",
            SagaEvent::TxSigned { .. } => "tx_signed",
            SagaEvent::TxIncluded { .. } => "tx_included",
            SagaEvent::StepFinal { .. } => "step_final",
            SagaEvent::StepFailed { .. } => "step_failed",
            SagaEvent::Compensating { .. } => "compensating",
            SagaEvent::Decided { .. } => "decided",
            SagaEvent::Completed => "completed",
        }
    }
}
