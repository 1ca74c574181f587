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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// One state change of a saga. Written before the effect it describes (write-ahead). `comp` marks
/// the compensation of a step rather than the step itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SagaEvent {
    /// The saga exists, for this intent and plan.
    Started {
        /// The intent.
        intent: IntentId,
        /// Hash of the plan it runs (recovery re-plans and checks it).
        plan: B256,
    },
    /// A transaction is signed: its raw bytes, hash and nonce, before any broadcast.
    TxSigned {
        /// The step.
        step: StepId,
        /// Whether this is the step's compensation.
        comp: bool,
        /// Attempt number from 0 (a fee replacement is the next attempt, with the same nonce).
        attempt: u32,
        /// The transaction.
        tx: SignedTx,
    },
    /// A step (or its compensation) is done: included and at its confirmations, or (off-chain)
    /// checked.
    StepFinal {
        /// The step.
        step: StepId,
        /// Whether this is the step's compensation.
        comp: bool,
        /// The block its transaction is in, for on-chain steps.
        block: Option<BlockRef>,
        /// The transaction that did it, for on-chain steps.
        #[serde(default)]
        tx: Option<B256>,
    },
    /// A step (or its compensation) failed for good.
    StepFailed {
        /// The step.
        step: StepId,
        /// Whether this is the step's compensation.
        comp: bool,
        /// Why.
        reason: String,
    },
    /// The decision to compensate the completed steps, before any compensation runs.
    Compensating {
        /// Why.
        reason: String,
    },
    /// Something an operator must look at; the saga goes on trying where it can.
    Alert {
        /// What.
        reason: String,
    },
    /// The outcome for the user, decided from evidence.
    Decided {
        /// The outcome.
        outcome: Outcome,
    },
    /// Nothing is left to do (the solver is repaid, or the refund is final).
    Completed,
    /// An operator retried a saga that had stopped for one: its failed steps (or compensations)
    /// get a fresh budget of attempts and a `Failed` outcome is withdrawn.
    Retried {
        /// Who (the operator's API key name, or the CLI user).
        by: String,
    },
}

impl SagaEvent {
    /// The event's kind as stored (`started`, `tx_signed`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            SagaEvent::Started { .. } => "started",
            SagaEvent::TxSigned { .. } => "tx_signed",
            SagaEvent::StepFinal { .. } => "step_final",
            SagaEvent::StepFailed { .. } => "step_failed",
            SagaEvent::Compensating { .. } => "compensating",
            SagaEvent::Alert { .. } => "alert",
            SagaEvent::Decided { .. } => "decided",
            SagaEvent::Completed => "completed",
            SagaEvent::Retried { .. } => "retried",
        }
    }
}
