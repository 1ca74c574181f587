//! Operators' commands: pausing a chain or everything, retrying a stopped saga, resuming a held one
//! with a change. Every command is recorded as an operator action.

use tracing::info;

use super::Engine;
use crate::control::{self, OperatorAction, Pause, Scope};
use crate::error::{EngineError, Result};
use crate::event::{SagaEvent, SagaId};
use crate::now_ms;
use crate::saga::input::{Planned, SagaInput};
use crate::saga::state::SagaState;

impl Engine {
    /// Pauses `scope` (no new transaction starts there; with [`Scope::All`] no intent is admitted
    /// either) on behalf of `by`, recorded with `reason`; returns the pauses in force.
    pub async fn pause(&self, scope: Scope, by: &str, reason: &str) -> Result<Vec<Pause>> {
        info!(%scope, by, reason, "paused by an operator");
        control::set(
            self.shared.log.db(),
            &self.shared.controls,
            scope,
            true,
            by,
            reason,
            now_ms(),
        )
        .await
    }

    /// Lifts the pause of `scope` on behalf of `by`; returns the pauses in force.
    pub async fn resume(&self, scope: Scope, by: &str) -> Result<Vec<Pause>> {
        info!(%scope, by, "resumed by an operator");
        control::set(
            self.shared.log.db(),
            &self.shared.controls,
            scope,
            false,
            by,
            "",
            now_ms(),
        )
        .await
    }

    /// The pauses in force (as stored: another instance's pauses count too).
    pub async fn pauses(&self) -> Result<Vec<Pause>> {
        control::load(self.shared.log.db(), &self.shared.controls).await
    }

    /// The latest `limit` operator actions, newest first.
    pub async fn operator_actions(&self, limit: i64) -> Result<Vec<OperatorAction>> {
        control::actions(self.shared.log.db(), limit).await
    }

    /// Retries a saga that stopped (for an operator, or because its driver ended) on behalf of
    /// `by`: writes `Retried` to its log (failed steps get a fresh budget of attempts, a `Failed`
    /// outcome is withdrawn) and drives it again here.
    pub async fn retry(&self, saga: SagaId, by: &str) -> Result<()> {
        let running = self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&saga)
            .is_some_and(|t| !t.is_finished());
        if running {
            return Err(EngineError::Conflict(format!(
                "saga {saga} is running; only a stopped saga can be retried"
            )));
        }
        let (input, events, mut state) = self
            .stored(saga)
            .await?
            .ok_or(EngineError::NotFound(saga))?;
        if state.completed {
            return Err(EngineError::Conflict(format!(
                "saga {saga} is completed; there is nothing to retry"
            )));
        }
        let planned = input.plan_stored()?;
        let retried = SagaEvent::Retried { by: by.to_owned() };
        let appended = self.shared.log.append(saga, retried.clone()).await?;
        state.apply(appended.seq, &retried);
        control::record(
            self.shared.log.db(),
            by,
            "retry",
            &saga.to_string(),
            "",
            now_ms(),
        )
        .await?;
        info!(%saga, by, "retried by an operator");
        self.shared.set_stopped_for_operator(saga, false);
        let created_ms = events.first().map_or_else(now_ms, |e| e.at_ms);
        self.spawn(saga, planned, state, created_ms, None);
        Ok(())
    }

    /// The input and state of `saga` when an operator may resume it with a change
    /// ([`Engine::resume_with`]); otherwise [`EngineError::Conflict`] saying why not.
    pub async fn resumable(&self, saga: SagaId) -> Result<(SagaInput, SagaState)> {
        let (stored, _, state) = self
            .stored(saga)
            .await?
            .ok_or(EngineError::NotFound(saga))?;
        state.resumable().map_err(|why| {
            EngineError::Conflict(format!("saga {saga} cannot be resumed: {why}"))
        })?;
        Ok((stored, state))
    }

    /// Resumes a saga held for an operator (see [`crate::EngineConfig::hold_for_operator`]) with
    /// `change`, on behalf of `by`: re-plans the intent over `snapshot` (the chains' liquidity
    /// now) with the saga's knobs changed, checks that the plan still has the user's signed
    /// orders and keeps every done step as it was, logs the decision (`Resumed`, and the operator
    /// action), and drives the new plan here. Returns the new plan's steps (`action on chain`).
    ///
    /// The saga's lease is taken first, so a driver elsewhere cannot act on the old plan
    /// afterwards; a saga whose lease another instance holds is refused. Inventory stays
    /// reserved as it was at admission (a re-plan that needs other tokens is not re-reserved).
    pub async fn resume_with(
        &self,
        saga: SagaId,
        snapshot: baton_planner::spec::SnapshotSpec,
        change: baton_planner::ConfigPatch,
        by: &str,
    ) -> Result<Vec<String>> {
        let (stored, state) = self.resumable(saga).await?;
        let old = stored.plan_stored()?;
        let input = stored.replanned(snapshot, change.apply(stored.config));
        let planned = input.plan().map_err(|e| {
            EngineError::Conflict(format!(
                "with the change, the intent does not plan over the chains' liquidity now with \
                 the user's signed orders: {e}"
            ))
        })?;
        self.shared.adapters_for(&planned)?;
        let same = |p: &Planned, id| {
            p.plan
                .step(id)
                .map(|s| (s.chain, format!("{:?}", s.action)))
        };
        for (id, st) in &state.steps {
            if st.is_done() && same(&old, *id) != same(&planned, *id) {
                return Err(EngineError::Conflict(format!(
                    "with the change, step {} (done) would be another step; the change must keep \
                     the done steps",
                    id.0
                )));
            }
        }

        // Stop the held driver here, and fence out any other.
        let held = self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&saga);
        if let Some(task) = held {
            task.abort();
            let _ = task.await;
        }
        let owner = &self.shared.config.instance;
        let ttl = self.shared.config.lease_ms();
        let fence = self
            .shared
            .log
            .acquire_lease(saga, owner, now_ms(), ttl)
            .await?
            .ok_or_else(|| {
                EngineError::Conflict(format!(
                    "saga {saga} is driven by another instance; resume it there"
                ))
            })?;
        let lease = Some((fence, now_ms() + ttl));
        let resumed = SagaEvent::Resumed {
            by: by.to_owned(),
            change,
            input: serde_json::to_value(&input).map_err(|e| EngineError::Corrupt(e.to_string()))?,
            plan: planned.hash,
        };
        self.shared.log.append_fenced(saga, resumed, fence).await?;
        let events = self.shared.log.events(saga).await?;
        let state = SagaState::from_events(events.iter().map(|e| (e.seq, &e.event)));
        let created_ms = events.first().map_or_else(now_ms, |e| e.at_ms);
        if state.held_until_ms.is_some() || state.resumed_plan != Some(planned.hash) {
            // The hold ended (compensation began) before the resume was written: the saga goes on
            // as it was.
            self.spawn(saga, old, state.clone(), created_ms, lease);
            return Err(EngineError::Conflict(format!(
                "saga {saga} stopped being held before the resume was logged: {}",
                state.compensating.unwrap_or_default()
            )));
        }
        control::record(
            self.shared.log.db(),
            by,
            "resume-saga",
            &saga.to_string(),
            &serde_json::to_string(&change).unwrap_or_default(),
            now_ms(),
        )
        .await?;
        info!(%saga, by, ?change, "resumed with a change by an operator");
        self.shared.set_stopped_for_operator(saga, false);
        let steps = baton_planner::describe::step_list(&planned.plan);
        self.spawn(saga, planned, state, created_ms, lease);
        Ok(steps)
    }
}
