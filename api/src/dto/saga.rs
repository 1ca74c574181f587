//! A saga as the API shows it — `GET /v1/intents/{id}` and the operators' list of sagas — converted
//! from the engine's views at the boundary, so the engine's types can change without changing the
//! HTTP contract.

use baton_engine::log::SagaSummary as StoredSummary;
use baton_engine::view as engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How an intent ended, for the user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
        /// Whether an operator must act.
        needs_operator: bool,
    },
}

impl From<baton_engine::Outcome> for Outcome {
    fn from(o: baton_engine::Outcome) -> Self {
        match o {
            baton_engine::Outcome::Fulfilled => Self::Fulfilled,
            baton_engine::Outcome::Refunded => Self::Refunded,
            baton_engine::Outcome::Failed {
                reason,
                needs_operator,
            } => Self::Failed {
                reason,
                needs_operator,
            },
        }
    }
}

/// A saga's status as a word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Steps are running.
    Running,
    /// Undoing the done steps (before the pivot).
    Compensating,
    /// The user's outcome is decided; the solver is being repaid.
    Decided,
    /// Stopped for an operator (outcome `Failed`; `retry` resumes it), or held for one after a
    /// step failed before the pivot (`held_until_ms`; a replay with a change can resume it).
    NeedsOperator,
    /// Nothing is left to do.
    Completed,
}

impl From<engine::Status> for Status {
    fn from(s: engine::Status) -> Self {
        match s {
            engine::Status::Running => Self::Running,
            engine::Status::Compensating => Self::Compensating,
            engine::Status::Decided => Self::Decided,
            engine::Status::NeedsOperator => Self::NeedsOperator,
            engine::Status::Completed => Self::Completed,
        }
    }
}

/// Where a step (or its compensation) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Not started.
    Pending,
    /// A transaction is signed and sent; not final yet.
    Sent,
    /// Done, at its confirmations.
    Final,
    /// Failed for good.
    Failed,
}

impl From<engine::StepStatus> for StepStatus {
    fn from(s: engine::StepStatus) -> Self {
        match s {
            engine::StepStatus::Pending => Self::Pending,
            engine::StepStatus::Sent => Self::Sent,
            engine::StepStatus::Final => Self::Final,
            engine::StepStatus::Failed => Self::Failed,
        }
    }
}

/// One side (the step, or its compensation) of a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    /// Where it is.
    pub state: StepStatus,
    /// The transaction that did it, or the latest one sent.
    pub tx: Option<String>,
    /// The block it is in, once final.
    pub block: Option<u64>,
    /// Blocks from that block to the head, both counted.
    pub confirmations: Option<u64>,
    /// Transactions signed (a replacement is one more).
    pub attempts: usize,
    /// A machine-readable reason when it failed: `reverted`, `rejected_by_node` or
    /// `past_fill_deadline`; or, while it waits for a quorum of attesters to sign its settlement
    /// or cancel, `awaiting_attestations`.
    pub reason_code: Option<String>,
    /// The reason in words (the revert string, the node's answer, what each attester said).
    pub reason: Option<String>,
}

impl From<engine::Progress> for Progress {
    fn from(p: engine::Progress) -> Self {
        Self {
            state: p.state.into(),
            tx: p.tx.map(|t| t.to_string()),
            block: p.block,
            confirmations: p.confirmations,
            attempts: p.attempts,
            reason_code: p.reason_code,
            reason: p.reason,
        }
    }
}

/// One step of the plan as it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StepView {
    /// The step's id in the plan.
    pub id: u32,
    /// What it does (`open`, `wait-finality`, `swap`, `fill`, `attest`, `settle`).
    pub action: String,
    /// The chain it acts on.
    pub chain: u64,
    /// The steps it waits for.
    pub depends_on: Vec<u32>,
    /// Whether it is the pivot (a fill): once it is done, the saga goes forward only.
    pub pivot: bool,
    /// What undoes it if the saga compensates (`refund`, `swap-back`); null for steps without
    /// effect, the pivot and what follows it.
    pub undo: Option<String>,
    /// The step itself.
    #[serde(flatten)]
    pub progress: Progress,
    /// Its compensation, once one was started.
    pub compensation: Option<Progress>,
}

impl From<engine::StepView> for StepView {
    fn from(s: engine::StepView) -> Self {
        Self {
            id: s.id,
            action: s.action,
            chain: s.chain,
            depends_on: s.depends_on,
            pivot: s.pivot,
            undo: s.undo,
            progress: s.progress.into(),
            compensation: s.compensation.map(Progress::from),
        }
    }
}

/// A saga as it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SagaView {
    /// The saga (the intent id).
    pub id: String,
    /// Its status.
    pub status: Status,
    /// The user's outcome, once decided.
    pub outcome: Option<Outcome>,
    /// Why it compensates, when it does.
    pub compensating: Option<String>,
    /// Until when it is held for an operator (unix milliseconds), while it is.
    pub held_until_ms: Option<i64>,
    /// Alerts raised since the last retry.
    pub alerts: Vec<String>,
    /// Events in its log.
    pub events: u64,
    /// Admitted at, unix milliseconds.
    pub created_ms: i64,
    /// Last change, unix milliseconds.
    pub updated_ms: i64,
    /// Every step of the plan, in plan order.
    pub steps: Vec<StepView>,
}

impl From<engine::SagaView> for SagaView {
    fn from(v: engine::SagaView) -> Self {
        Self {
            id: v.id.to_string(),
            status: v.status.into(),
            outcome: v.outcome.map(Outcome::from),
            compensating: v.compensating,
            held_until_ms: v.held_until_ms,
            alerts: v.alerts,
            events: v.events,
            created_ms: v.created_ms,
            updated_ms: v.updated_ms,
            steps: v.steps.into_iter().map(StepView::from).collect(),
        }
    }
}

/// One saga in the operators' list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SagaSummary {
    /// The saga.
    pub id: String,
    /// Its stored state: `running`, `held`, `resumed`, `compensating`, `decided`,
    /// `retried` or `completed`.
    pub state: String,
    /// The latest outcome decided, if any.
    pub outcome: Option<Outcome>,
    /// Its route: origin chains, `>`, destination chains (`31337>31338`); null for sagas
    /// admitted before routes were kept.
    pub route: Option<String>,
    /// Admitted at, unix milliseconds.
    pub created_ms: i64,
    /// Last change, unix milliseconds.
    pub updated_ms: i64,
    /// When its latest outcome was decided, unix milliseconds.
    pub decided_ms: Option<i64>,
}

impl From<StoredSummary> for SagaSummary {
    fn from(s: StoredSummary) -> Self {
        Self {
            id: s.id.to_string(),
            state: s.state,
            outcome: s.outcome.map(Outcome::from),
            route: s.route,
            created_ms: s.created_ms,
            updated_ms: s.updated_ms,
            decided_ms: s.decided_ms,
        }
    }
}
