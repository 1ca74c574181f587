//! The decision to resume a held saga with a change after its trial on forks: resumed only when the
//! trial fulfilled the intent and the engine accepts the change (the saga is still held, the done
//! steps stay as they were). The API's replay endpoint and anything else that resumes take it here.

use std::future::Future;

use baton_engine::{Engine, EngineError, SagaId};
use baton_planner::ConfigPatch;
use baton_planner::spec::SnapshotSpec;
use serde::{Deserialize, Serialize};

use crate::report::TrialReport;

/// What came of an operator's request to resume the real saga with a change after its trial.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeDecision {
    /// Whether the saga was resumed (the decision is then in its log, as `resumed`).
    pub resumed: bool,
    /// Why, in a sentence.
    pub summary: String,
    /// The plan it runs from here on (`action on chain`), when resumed.
    pub plan: Vec<String>,
}

impl ResumeDecision {
    /// Not resumed, because of `why`.
    pub fn not_resumed(why: impl std::fmt::Display) -> Self {
        Self {
            resumed: false,
            summary: format!("not resumed: {why}"),
            plan: Vec::new(),
        }
    }
}

/// Resumes `saga` on `engine` with `change` on behalf of `by` when `trial` fulfilled the intent,
/// re-planned over `snapshot` (awaited only then: the chains' liquidity now). A change the engine
/// refuses for the saga's state ([`EngineError::Conflict`]) is a decision not to resume, with the
/// engine's reason; any other failure is the caller's error.
pub async fn resume_after_trial<E: From<EngineError>>(
    engine: &Engine,
    saga: SagaId,
    change: ConfigPatch,
    trial: &TrialReport,
    by: &str,
    snapshot: impl Future<Output = Result<SnapshotSpec, E>>,
) -> Result<ResumeDecision, E> {
    if !trial.fulfilled {
        return Ok(ResumeDecision::not_resumed(
            "the trial did not fulfil the intent",
        ));
    }
    let snapshot = snapshot.await?;
    match engine.resume_with(saga, snapshot, change, by).await {
        Ok(plan) => Ok(ResumeDecision {
            resumed: true,
            summary: format!(
                "resumed by {by} with the change, re-planned over the chains' liquidity now"
            ),
            plan,
        }),
        Err(EngineError::Conflict(why)) => Ok(ResumeDecision::not_resumed(why)),
        Err(e) => Err(e.into()),
    }
}
