//! What a saga's log records: typed events, each applied idempotently to the saga's state.

use alloy::primitives::{Address, B256, Log, U256};
use baton_adapters::port::{BlockRef, Inclusion, SignedTx};
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

impl Outcome {
    /// The outcome as a word: `fulfilled`, `refunded` or `failed`.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Fulfilled => "fulfilled",
            Outcome::Refunded => "refunded",
            Outcome::Failed { .. } => "failed",
        }
    }
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
        /// What it was built against (absent in logs written before replay existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<TxContext>,
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
        /// Its receipt, for on-chain steps.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receipt: Option<Receipt>,
    },
    /// A step (or its compensation) failed for good.
    StepFailed {
        /// The step.
        step: StepId,
        /// Whether this is the step's compensation.
        comp: bool,
        /// Why.
        reason: String,
        /// The receipt of the transaction that reverted, when one did (none when it never got
        /// one: the reason says why).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receipt: Option<Receipt>,
        /// What kind of failure (absent in logs written before it was recorded: see
        /// [`FailureKind::of`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure: Option<FailureKind>,
    },
    /// A step (or its compensation) waits on something off the chain — a quorum of attesters —
    /// for `reason` (`None`: it no longer waits). Appended when the reason changes.
    Waiting {
        /// The step.
        step: StepId,
        /// Whether this is the step's compensation.
        comp: bool,
        /// What it waits for, in words (what each attester said).
        reason: Option<String>,
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
    /// A step failed for good before the pivot and the engine holds the saga for an operator
    /// instead of compensating at once (`EngineConfig::hold_for_operator`): until `until_ms` (or
    /// until the fill deadline comes too near) an operator may resume it with a change; then it
    /// compensates.
    Held {
        /// The failure.
        reason: String,
        /// When the hold ends, unix milliseconds.
        until_ms: i64,
    },
    /// An operator resumed a held saga with a change, after trying it on forks: the steps not
    /// done are re-planned from `input` (the same intent and signed orders, live liquidity, the
    /// changed knobs), whose plan hashes to `plan`; the done steps are the same in both plans.
    Resumed {
        /// Who.
        by: String,
        /// The change.
        change: baton_planner::ConfigPatch,
        /// The saga's input from here on (a [`crate::SagaInput`] as JSON).
        input: serde_json::Value,
        /// The hash of its plan.
        plan: B256,
    },
}

/// How a step failed for good, as the API's `reason_code` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Its transaction was included and reverted.
    Reverted,
    /// The node refused its transaction every time: it never got into a block.
    RejectedByNode,
    /// A fill not signed: it could not be expected to land before the order's fill deadline
    /// (after which the destination settler refuses it and the user may be refunded).
    PastFillDeadline,
}

impl FailureKind {
    /// The kind recorded in a `StepFailed` event; for one written before kinds were recorded,
    /// from its receipt (a failure with a receipt reverted, one without was refused by the node:
    /// the only two ways a step failed then).
    pub fn of(recorded: Option<FailureKind>, receipt: Option<&Receipt>) -> Self {
        recorded.unwrap_or(if receipt.is_some() {
            Self::Reverted
        } else {
            Self::RejectedByNode
        })
    }

    /// The machine-readable code: `reverted`, `rejected_by_node` or `past_fill_deadline`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Reverted => "reverted",
            Self::RejectedByNode => "rejected_by_node",
            Self::PastFillDeadline => "past_fill_deadline",
        }
    }
}

/// What a step's transaction was built against: the chain's head and base fee, and the chain
/// state the step read to decide (a swap's pool reserves, the solver's balance of what it
/// delivers). With the raw transaction and its receipt, enough to replay the step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxContext {
    /// The head when it was signed.
    pub head: BlockRef,
    /// The head's base fee, wei per gas.
    pub base_fee: U256,
    /// Chain state read for it.
    pub reads: Vec<Read>,
}

/// One piece of chain state a step read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "read", rename_all = "snake_case")]
pub enum Read {
    /// A pool's reserves.
    Reserves {
        /// The pool.
        pool: Address,
        /// Reserve of token0.
        reserve0: U256,
        /// Reserve of token1.
        reserve1: U256,
    },
    /// A token balance.
    Balance {
        /// The token.
        token: Address,
        /// Whose.
        owner: Address,
        /// How much.
        amount: U256,
    },
}

/// A transaction's receipt as the log keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The block it is in.
    pub block: BlockRef,
    /// Whether it succeeded.
    pub success: bool,
    /// Gas used.
    pub gas_used: u64,
    /// The revert reason, when it reverted and the chain said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert_reason: Option<String>,
    /// Its logs.
    pub logs: Vec<Log>,
}

impl From<&Inclusion> for Receipt {
    fn from(inc: &Inclusion) -> Self {
        Self {
            block: inc.block,
            success: inc.success,
            gas_used: inc.gas_used,
            revert_reason: inc.revert_reason.clone(),
            logs: inc.logs.clone(),
        }
    }
}

impl SagaEvent {
    /// The event's kind as stored (`started`, `tx_signed`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            SagaEvent::Started { .. } => "started",
            SagaEvent::TxSigned { .. } => "tx_signed",
            SagaEvent::StepFinal { .. } => "step_final",
            SagaEvent::StepFailed { .. } => "step_failed",
            SagaEvent::Waiting { .. } => "waiting",
            SagaEvent::Compensating { .. } => "compensating",
            SagaEvent::Alert { .. } => "alert",
            SagaEvent::Decided { .. } => "decided",
            SagaEvent::Completed => "completed",
            SagaEvent::Retried { .. } => "retried",
            SagaEvent::Held { .. } => "held",
            SagaEvent::Resumed { .. } => "resumed",
        }
    }
}

/// Every webhook topic, one per kind of event a dApp may subscribe to (see [`SagaEvent::topic`]).
pub const TOPICS: [&str; 14] = [
    "intent.started",
    "intent.tx_signed",
    "intent.step_final",
    "intent.step_failed",
    "intent.waiting",
    "intent.compensating",
    "intent.alert",
    "intent.fulfilled",
    "intent.refunded",
    "intent.failed",
    "intent.completed",
    "intent.retried",
    "intent.held",
    "intent.resumed",
];

impl SagaEvent {
    /// The webhook topic that reports this event: `intent.` and its kind, except that the outcome
    /// is named by what it decided (`intent.fulfilled`, `intent.refunded`, `intent.failed`).
    pub fn topic(&self) -> &'static str {
        match self {
            SagaEvent::Started { .. } => "intent.started",
            SagaEvent::TxSigned { .. } => "intent.tx_signed",
            SagaEvent::StepFinal { .. } => "intent.step_final",
            SagaEvent::StepFailed { .. } => "intent.step_failed",
            SagaEvent::Waiting { .. } => "intent.waiting",
            SagaEvent::Compensating { .. } => "intent.compensating",
            SagaEvent::Alert { .. } => "intent.alert",
            SagaEvent::Decided { outcome } => match outcome {
                Outcome::Fulfilled => "intent.fulfilled",
                Outcome::Refunded => "intent.refunded",
                Outcome::Failed { .. } => "intent.failed",
            },
            SagaEvent::Completed => "intent.completed",
            SagaEvent::Retried { .. } => "intent.retried",
            SagaEvent::Held { .. } => "intent.held",
            SagaEvent::Resumed { .. } => "intent.resumed",
        }
    }
}
