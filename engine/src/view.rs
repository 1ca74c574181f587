//! What a saga looks like from outside: its status, outcome and every step (chain, state,
//! transaction, block, confirmations, and a reason code when it failed), folded from its log and
//! its re-planned input. The REST API and the CLI show this.

use std::collections::HashMap;

use alloy::primitives::B256;
use baton_planner::ChainId;
use serde::{Deserialize, Serialize};

use crate::event::{Outcome, SagaId};
use crate::saga::state::{SagaState, StepState};

/// A saga's status as a word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// Where a step (or its compensation) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// One side (the step, or its compensation) of a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Where it is.
    pub state: StepStatus,
    /// The transaction that did it, or the latest one sent.
    pub tx: Option<B256>,
    /// The block it is in, once final.
    pub block: Option<u64>,
    /// Blocks from that block to the head, both counted.
    pub confirmations: Option<u64>,
    /// Transactions signed (a replacement is one more).
    pub attempts: usize,
    /// A machine-readable reason when it failed: `reverted`, `rejected_by_node` or
    /// `past_fill_deadline`; `awaiting_attestations` while it waits for a quorum of attesters.
    pub reason_code: Option<String>,
    /// The reason in words (the revert string, the node's answer).
    pub reason: Option<String>,
}

/// One step of the plan as it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// What undoes it if the saga compensates (`refund`, `swap-back`); `None` for steps without
    /// effect, the pivot and what follows it.
    pub undo: Option<String>,
    /// The step itself.
    #[serde(flatten)]
    pub progress: Progress,
    /// Its compensation, once one was started.
    pub compensation: Option<Progress>,
}

/// A saga as it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaView {
    /// The saga (the intent id).
    pub id: SagaId,
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

impl Status {
    /// The status of a saga in `state`.
    pub fn of(state: &SagaState) -> Self {
        if state.completed {
            Status::Completed
        } else if matches!(state.outcome, Some(Outcome::Failed { .. })) {
            Status::NeedsOperator
        } else if state.outcome.is_some() {
            Status::Decided
        } else if state.compensating.is_some() {
            Status::Compensating
        } else if state.held_until_ms.is_some() {
            Status::NeedsOperator
        } else {
            Status::Running
        }
    }
}

/// A step's progress from its state; `heads` are the chains' current heights.
fn progress(st: &StepState, chain: ChainId, heads: &HashMap<ChainId, u64>) -> Progress {
    let block = st.done.flatten().map(|b| b.number);
    let state = if st.is_done() {
        StepStatus::Final
    } else if st.failed.is_some() {
        StepStatus::Failed
    } else if st.txs.is_empty() {
        StepStatus::Pending
    } else {
        StepStatus::Sent
    };
    let (reason_code, reason) = match (&st.failed, &st.waiting) {
        (Some(f), _) => (Some(f.kind.code().to_owned()), Some(f.reason.clone())),
        (None, Some(w)) if !st.is_done() => {
            (Some("awaiting_attestations".to_owned()), Some(w.clone()))
        }
        _ => (None, None),
    };
    Progress {
        state,
        tx: st.done_by.or_else(|| st.txs.last().map(|t| t.hash)),
        block,
        confirmations: block
            .zip(heads.get(&chain))
            .map(|(b, head)| (head + 1).saturating_sub(b)),
        attempts: st.txs.len(),
        reason_code,
        reason,
    }
}

/// The view of saga `id` in `state` over `plan`, with the chains' current `heads`.
pub(crate) fn build(
    id: SagaId,
    plan: &baton_planner::Plan,
    state: &SagaState,
    times: (i64, i64),
    heads: &HashMap<ChainId, u64>,
) -> SagaView {
    let steps = plan
        .steps()
        .iter()
        .map(|step| {
            let empty = StepState::default();
            let st = state.steps.get(&step.id).unwrap_or(&empty);
            StepView {
                id: step.id.0,
                action: step.action.name().to_owned(),
                chain: step.chain.0,
                depends_on: step.depends_on.iter().map(|d| d.0).collect(),
                pivot: step.action.is_pivot(),
                undo: step.compensation.as_ref().map(|c| c.name().to_owned()),
                progress: progress(st, step.chain, heads),
                compensation: state
                    .comps
                    .get(&step.id)
                    .map(|c| progress(c, step.chain, heads)),
            }
        })
        .collect();
    SagaView {
        id,
        status: Status::of(state),
        outcome: state.outcome.clone(),
        compensating: state.compensating.clone(),
        held_until_ms: state.held_until_ms.filter(|_| state.compensating.is_none()),
        alerts: state.alerts.clone(),
        events: state.seq,
        created_ms: times.0,
        updated_ms: times.1,
        steps,
    }
}
