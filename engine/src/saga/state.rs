//! A saga's state, folded from its events. Applying an event twice changes nothing.

use std::collections::BTreeMap;

use alloy::primitives::B256;
use baton_adapters::port::{BlockRef, SignedTx};
use baton_planner::StepId;

use crate::event::{FailureKind, Outcome, SagaEvent};

/// What is known of one step, or of its compensation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepState {
    /// Signed transactions, by attempt (replacements share a nonce).
    pub txs: Vec<SignedTx>,
    /// Done, and where (on-chain).
    pub done: Option<Option<BlockRef>>,
    /// The transaction that did it (on-chain).
    pub done_by: Option<B256>,
    /// Failed for good: how and why.
    pub failed: Option<Failure>,
    /// Attempts made before the last operator retry (they do not count against the budget).
    pub retried_after: u32,
    /// What it waits for off the chain (attestations), while it does.
    pub waiting: Option<String>,
}

impl StepState {
    /// Whether the step is done.
    pub fn is_done(&self) -> bool {
        self.done.is_some()
    }
}

/// How and why a step failed for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// How.
    pub kind: FailureKind,
    /// Why, in the words of the chain or the node.
    pub reason: String,
}

/// A saga's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SagaState {
    /// Steps.
    pub steps: BTreeMap<StepId, StepState>,
    /// Compensations, by the step they undo.
    pub comps: BTreeMap<StepId, StepState>,
    /// Why the saga is compensating, once it is.
    pub compensating: Option<String>,
    /// Alerts raised.
    pub alerts: Vec<String>,
    /// The user's outcome, once decided.
    pub outcome: Option<Outcome>,
    /// Whether the saga is over.
    pub completed: bool,
    /// Held for an operator until then (unix milliseconds); the reason is in the alerts.
    pub held_until_ms: Option<i64>,
    /// The plan hash of the latest operator resume, when there was one (the saga runs that
    /// plan).
    pub resumed_plan: Option<B256>,
    /// The last applied event's sequence number.
    pub seq: u64,
}

impl SagaState {
    /// Folds events in order.
    pub fn from_events<'a>(events: impl IntoIterator<Item = (u64, &'a SagaEvent)>) -> Self {
        let mut state = Self::default();
        for (seq, event) in events {
            state.apply(seq, event);
        }
        state
    }

    /// Applies event `seq`; an event at or below the last applied one is ignored.
    pub fn apply(&mut self, seq: u64, event: &SagaEvent) {
        if seq <= self.seq {
            return;
        }
        self.seq = seq;
        match event {
            SagaEvent::Started { .. } => {}
            SagaEvent::TxSigned { step, comp, tx, .. } => {
                let s = self.entry(*step, *comp);
                if !s.txs.iter().any(|t| t.hash == tx.hash) {
                    s.txs.push(tx.clone());
                }
            }
            SagaEvent::StepFinal {
                step,
                comp,
                block,
                tx,
                ..
            } => {
                let s = self.entry(*step, *comp);
                s.done = Some(*block);
                s.done_by = *tx;
            }
            SagaEvent::StepFailed {
                step,
                comp,
                reason,
                receipt,
                failure,
            } => {
                self.entry(*step, *comp).failed = Some(Failure {
                    kind: FailureKind::of(*failure, receipt.as_ref()),
                    reason: reason.clone(),
                });
            }
            SagaEvent::Waiting { step, comp, reason } => {
                self.entry(*step, *comp).waiting = reason.clone()
            }
            SagaEvent::Compensating { reason } => {
                self.compensating.get_or_insert_with(|| reason.clone());
            }
            SagaEvent::Alert { reason } => self.alerts.push(reason.clone()),
            SagaEvent::Decided { outcome } => {
                self.outcome.get_or_insert_with(|| outcome.clone());
            }
            SagaEvent::Completed => self.completed = true,
            SagaEvent::Retried { .. } => {
                for s in self.steps.values_mut().chain(self.comps.values_mut()) {
                    if s.failed.take().is_some() || !s.is_done() {
                        s.retried_after = u32::try_from(s.txs.len()).unwrap_or(u32::MAX);
                    }
                }
                if matches!(self.outcome, Some(Outcome::Failed { .. })) {
                    self.outcome = None;
                }
                self.alerts.clear();
            }
            SagaEvent::Held { until_ms, .. } => {
                if self.compensating.is_none() && self.held_until_ms.is_none() {
                    self.held_until_ms = Some(*until_ms);
                }
            }
            SagaEvent::Resumed { plan, .. } => {
                if self.resumable().is_ok() {
                    // The steps not done start again under the new plan.
                    self.steps.retain(|_, s| s.is_done());
                    self.held_until_ms = None;
                    self.alerts.clear();
                    self.resumed_plan = Some(*plan);
                }
            }
        }
    }

    /// Whether an operator may resume the saga with a change: it is held, not compensating, and
    /// no step it has not finished has a transaction that may still land. Otherwise, why not.
    pub fn resumable(&self) -> std::result::Result<(), String> {
        if self.completed {
            return Err("the saga is completed".into());
        }
        if let Some(why) = &self.compensating {
            return Err(format!("the saga is compensating ({why})"));
        }
        if self.held_until_ms.is_none() {
            return Err(
                "the saga is not held for an operator (only a saga whose step failed before the \
                 pivot, with hold-for-operator-secs set, can be resumed with a change)"
                    .into(),
            );
        }
        if let Some((id, _)) = self
            .steps
            .iter()
            .find(|(_, s)| !s.is_done() && s.failed.is_none() && !s.txs.is_empty())
        {
            return Err(format!(
                "step {} has a transaction in flight; wait for it to land or fail",
                id.0
            ));
        }
        Ok(())
    }

    fn entry(&mut self, step: StepId, comp: bool) -> &mut StepState {
        if comp {
            self.comps.entry(step).or_default()
        } else {
            self.steps.entry(step).or_default()
        }
    }

    /// Whether a step is done (no copy of its state).
    pub fn is_done(&self, step: StepId) -> bool {
        self.steps.get(&step).is_some_and(StepState::is_done)
    }

    /// A step's state (empty when nothing is recorded).
    pub fn step(&self, step: StepId) -> StepState {
        self.steps.get(&step).cloned().unwrap_or_default()
    }

    /// A compensation's state (empty when nothing is recorded).
    pub fn comp(&self, step: StepId) -> StepState {
        self.comps.get(&step).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use alloy::primitives::{Address, Bytes};
    use baton_adapters::port::BlockRef;
    use baton_planner::ChainId;

    use super::*;

    fn signed(step: u32, nonce: u64) -> SagaEvent {
        SagaEvent::TxSigned {
            step: StepId(step),
            comp: false,
            attempt: 0,
            tx: SignedTx {
                chain: ChainId(1),
                from: Address::ZERO,
                nonce,
                hash: B256::with_last_byte(u8::try_from(nonce).unwrap()),
                raw: Bytes::new(),
            },
            context: None,
        }
    }

    fn resumed() -> SagaEvent {
        SagaEvent::Resumed {
            by: "ops".into(),
            change: baton_planner::ConfigPatch::default(),
            input: serde_json::Value::Null,
            plan: B256::with_last_byte(7),
        }
    }

    /// Open done, swap failed, then held: a resume clears the swap (its steps start again under
    /// the new plan) and keeps the open.
    fn held() -> Vec<SagaEvent> {
        vec![
            signed(0, 1),
            SagaEvent::StepFinal {
                step: StepId(0),
                comp: false,
                block: Some(BlockRef {
                    number: 3,
                    hash: B256::ZERO,
                }),
                tx: None,
                receipt: None,
            },
            signed(2, 2),
            SagaEvent::StepFailed {
                step: StepId(2),
                comp: false,
                reason: "minOut".into(),
                receipt: None,
                failure: Some(FailureKind::Reverted),
            },
            SagaEvent::Alert {
                reason: "held".into(),
            },
            SagaEvent::Held {
                reason: "minOut".into(),
                until_ms: 10,
            },
        ]
    }

    fn fold(events: &[SagaEvent]) -> SagaState {
        SagaState::from_events(events.iter().enumerate().map(|(i, e)| (i as u64 + 1, e)))
    }

    #[test]
    fn a_resume_restarts_the_steps_not_done_and_keeps_the_done_ones() {
        let mut events = held();
        let state = fold(&events);
        assert_eq!(state.held_until_ms, Some(10));
        assert!(state.resumable().is_ok());
        events.push(resumed());
        let state = fold(&events);
        assert_eq!(state.held_until_ms, None);
        assert!(state.alerts.is_empty());
        assert_eq!(state.resumed_plan, Some(B256::with_last_byte(7)));
        assert!(state.is_done(StepId(0)));
        assert!(!state.steps.contains_key(&StepId(2)), "{state:?}");
        assert!(state.resumable().is_err(), "not held any more");
    }

    #[test]
    fn a_resume_after_compensation_began_or_with_a_transaction_in_flight_changes_nothing() {
        let mut events = held();
        events.push(SagaEvent::Compensating {
            reason: "the hold ended".into(),
        });
        let before = fold(&events);
        assert!(before.resumable().unwrap_err().contains("compensating"));
        events.push(resumed());
        let after = fold(&events);
        assert_eq!(after.resumed_plan, None);
        assert!(after.steps.contains_key(&StepId(2)));

        let mut events = held();
        events.push(signed(1, 3));
        let in_flight = fold(&events);
        assert!(in_flight.resumable().unwrap_err().contains("in flight"));
        events.push(resumed());
        assert_eq!(fold(&events).resumed_plan, None);
    }
}
