//! What a replay reports: each saga transaction's result in the log and on the fork, the first
//! divergence, the failing step with its trace, the forks, and the trial and resume when asked for.
//! The API answers with it as JSON and the CLI prints it ([`crate::render()`]).

use alloy::primitives::B256;
use baton_engine::{Outcome, SagaId};
use baton_planner::{ConfigPatch, PlannerConfig};
use serde::{Deserialize, Serialize};

use crate::resume::ResumeDecision;

/// What became of one transaction, in the log or on the fork.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxResult {
    /// Included and succeeded.
    Succeeded {
        /// Block number.
        block: u64,
        /// Events emitted.
        logs: usize,
    },
    /// Included and reverted.
    Reverted {
        /// Block number.
        block: u64,
        /// The revert reason, when known.
        reason: Option<String>,
    },
    /// Never in a block.
    NotIncluded {
        /// Why, as recorded.
        reason: String,
    },
}

/// One saga transaction replayed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReplay {
    /// The step.
    pub step: u32,
    /// Whether it is the step's compensation.
    pub compensation: bool,
    /// The step's action.
    pub action: String,
    /// The chain.
    pub chain: u64,
    /// The transaction.
    pub tx: B256,
    /// What the log says.
    pub recorded: TxResult,
    /// What the fork did.
    pub replayed: TxResult,
    /// Whether they agree (status and events).
    pub matches: bool,
}

/// The first step whose replay differs from the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Divergence {
    /// The step.
    pub step: u32,
    /// The chain.
    pub chain: u64,
    /// What the log says.
    pub expected: TxResult,
    /// What the fork did.
    pub actual: TxResult,
}

/// A recorded failure that reproduced on the fork.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailingStep {
    /// The step.
    pub step: u32,
    /// The chain.
    pub chain: u64,
    /// The step's action.
    pub action: String,
    /// The decoded revert reason.
    pub revert_reason: Option<String>,
    /// The call trace, one line per call, indented by depth.
    pub trace: Vec<String>,
}

/// A fork the replay ran on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fork {
    /// The chain.
    pub chain: u64,
    /// The block forked at.
    pub block: u64,
    /// Original blocks made again on it.
    pub blocks_replayed: u64,
    /// Transactions sent to it (the saga's and others').
    pub txs_replayed: u64,
}

/// What a trial found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialReport {
    /// The change tried.
    pub change: ConfigPatch,
    /// The planner's knobs it ran with.
    pub config: PlannerConfig,
    /// The re-planned steps (action on chain).
    pub plan: Vec<String>,
    /// The outcome on the forks, if the trial got one.
    pub outcome: Option<Outcome>,
    /// Whether the intent would have ended Fulfilled.
    pub fulfilled: bool,
    /// What happened, in a sentence.
    pub summary: String,
    /// What the intent's fills delivered on the forks, and how fast.
    #[serde(default)]
    pub measured: crate::measure::Measured,
    /// Whether the orders were signed by a stand-in user made for the trial (the user signed
    /// for other settlers than the change's: a settler upgrade), holding the user's inputs on
    /// the forks.
    #[serde(default)]
    pub stand_in: bool,
}

/// The replay's findings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The saga.
    pub saga_id: SagaId,
    /// Whether the recorded run (its failure, if it had one) happened again on the forks.
    pub reproduced: bool,
    /// The first difference from the log, if any.
    pub first_divergence: Option<Divergence>,
    /// The recorded failure that reproduced, if any.
    pub failing_step: Option<FailingStep>,
    /// Every saga transaction, in replay order.
    pub steps: Vec<StepReplay>,
    /// The forks.
    pub forks: Vec<Fork>,
    /// What the findings mean, in a sentence.
    pub summary: String,
    /// The trial of a change, when one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<TrialReport>,
    /// Milliseconds the replay took, forks included.
    pub took_ms: u64,
    /// Whether the real saga was resumed with the change, when that was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<ResumeDecision>,
}
