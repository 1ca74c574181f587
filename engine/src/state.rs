//! A saga's state, folded from its events. Applying an event twice changes nothing.

use std::collections::BTreeMap;

use alloy::primitives::B256;
use baton_adapters::port::{BlockRef, SignedTx};
use baton_planner::StepId;

use crate::event::{Outcome, SagaEvent};

/// What is known of one step, or of its compensation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepState {
    /// Signed transactions, by attempt (replacements share a nonce).
    pub txs: Vec<SignedTx>,
    /// Done, and where (on-chain).
    pub done: Option<Option<BlockRef>>,
    /// The transaction that did it (on-chain).
    pub done_by: Option<B256>,
    /// Failed for good, and why.
    pub failed: Option<String>,
    /// Attempts made before the last operator retry (they do not count against the budget).
    pub retried_after: u32,
}

impl StepState {
    /// Whether the step is done.
    pub fn is_done(&self) -> bool {
        self.done.is_some()
    }
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
                step, comp, reason, ..
            } => {
                self.entry(*step, *comp).failed = Some(reason.clone());
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
        }
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
