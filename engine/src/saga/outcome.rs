//! A saga's ends: attestation from fill evidence, the user's outcome, deadline budgeting, and
//! compensation.

use alloy::primitives::U256;
use baton_adapters::port::{EscrowStatus, FillEvidence, Inclusion, TxStatus, WantedFill};
use baton_planner::StepId;
use baton_planner::step::{Action, Compensation};

use crate::error::{EngineError, Result};
use crate::event::{Outcome, SagaEvent};
use crate::saga::ops;

use super::Saga;

impl Saga {
    /// The destination settler's `Filled` event showing fill step `fill`'s output delivered to its
    /// recipient, at least `at_least` of it (`None`: the planned amount).
    async fn delivered(
        &self,
        fill: StepId,
        at_least: Option<U256>,
    ) -> Result<Option<FillEvidence>> {
        let step = self.step(fill)?;
        let Action::Fill {
            order,
            output,
            amount,
            recipient,
            ..
        } = &step.action
        else {
            return Err(EngineError::Corrupt(format!(
                "step {} is not a fill",
                fill.0
            )));
        };
        let wanted = WantedFill {
            output_index: u32::try_from(*output)
                .map_err(|_| EngineError::Corrupt(format!("output {output} out of range")))?,
            recipient: *recipient,
            at_least: at_least.unwrap_or(amount.raw()),
        };
        Ok(self.adapter(step.chain)?.fill_of(*order, wanted).await?)
    }

    /// The attestation step: the fill must show in the destination settler's events.
    pub(super) async fn attest(&mut self, id: StepId, fill: StepId) -> Result<()> {
        self.wake_on(self.step(fill)?.chain);
        if let Some(f) = self.delivered(fill, None).await? {
            self.append(SagaEvent::StepFinal {
                step: id,
                comp: false,
                block: Some(f.at.block),
                tx: Some(f.at.tx),
                receipt: None,
            })
            .await?;
        }
        Ok(())
    }

    /// Fulfilled once every fill is done and the destination's events show each output delivered
    /// to its recipient at least at the user's minimum; completed once every settle is done.
    pub(super) async fn decide(&mut self) -> Result<()> {
        if self.state.outcome.is_none() {
            let plan = &self.planned.plan;
            let fills: Vec<(StepId, U256)> = plan
                .steps()
                .iter()
                .filter_map(|s| match &s.action {
                    Action::Fill { output, .. } => {
                        Some((s.id, plan.intent().outputs()[*output].min_amount.raw()))
                    }
                    _ => None,
                })
                .collect();
            if fills.iter().all(|(id, _)| self.state.is_done(*id)) {
                for (id, min) in fills {
                    self.wake_on(self.step(id)?.chain);
                    if self.delivered(id, Some(min)).await?.is_none() {
                        return Ok(());
                    }
                }
                self.append(SagaEvent::Decided {
                    outcome: Outcome::Fulfilled,
                })
                .await?;
            }
        }
        let settled = self
            .planned
            .plan
            .steps()
            .iter()
            .filter(|s| matches!(s.action, Action::Settle { .. }))
            .all(|s| self.state.is_done(s.id));
        if self.state.outcome == Some(Outcome::Fulfilled) && settled {
            self.append(SagaEvent::Completed).await?;
        }
        Ok(())
    }

    /// Gives up before the pivot when what remains of the critical path cannot end before the fill
    /// deadline on the destination's clock.
    pub(super) async fn check_deadline(&mut self) -> Result<()> {
        let Some(dest) = self
            .planned
            .plan
            .steps()
            .iter()
            .find(|s| s.action.is_pivot())
            .map(|s| s.chain)
        else {
            return Ok(());
        };
        let c = self.conditions(dest).await?;
        let plan = &self.planned.plan;
        let block_ms = if c.block_time_ms > 0 {
            c.block_time_ms
        } else {
            1_000
        };
        let mut remaining_ms = 0u64;
        for id in &plan.critical_path().steps {
            if !self.state.is_done(*id) {
                let step = self.step(*id)?;
                remaining_ms += step.timing.blocks * block_ms + step.timing.latency_ms;
            }
        }
        let deadline = u64::from(plan.intent().fill_deadline());
        if c.timestamp + remaining_ms.div_ceil(1000) > deadline {
            self.append(SagaEvent::Compensating {
                reason: format!(
                    "the rest of the plan needs {} s; the fill deadline is {} s away",
                    remaining_ms.div_ceil(1000),
                    deadline.saturating_sub(c.timestamp)
                ),
            })
            .await?;
        }
        Ok(())
    }

    /// Undoes the done steps in reverse dependency order, then decides Refunded (from the escrows'
    /// state) — or Failed when a compensation cannot finish.
    pub(super) async fn compensate(&mut self) -> Result<()> {
        let order: Vec<StepId> = self
            .planned
            .plan
            .topological_order()
            .iter()
            .rev()
            .copied()
            .collect();
        for id in order {
            let step = self.step(id)?.clone();
            if !step.action.has_effect() || step.compensation.is_none() {
                continue;
            }
            let st = self.state.step(id);
            let cst = self.state.comp(id);
            if st.txs.is_empty() || cst.is_done() {
                continue;
            }
            // What became of the step itself decides whether there is anything to undo.
            let adapter = self.adapter(step.chain)?;
            let mut done: Option<Inclusion> = None;
            let mut pending = false;
            for tx in &st.txs {
                match adapter.status(tx, None).await? {
                    TxStatus::Included(inc) if inc.success => done = Some(inc),
                    TxStatus::Pending => pending = true,
                    _ => {}
                }
            }
            if done.is_none() && pending {
                self.wake_on(step.chain);
                return Ok(()); // wait until it lands or drops
            }
            let Some(done) = done else { continue };
            if let Some(failure) = cst.failed {
                return self
                    .give_up(format!(
                        "the compensation of step {} failed: {}",
                        id.0, failure.reason
                    ))
                    .await;
            }
            let solver = adapter.account();
            let op = match self.ops.get(&(id, true)) {
                Some(op) => op.clone(),
                None => {
                    let cancel = match step.compensation {
                        Some(Compensation::Refund { order, .. }) => {
                            match self.cancel_attested(id, order).await? {
                                Some(sigs) => Some(sigs),
                                None => return Ok(()),
                            }
                        }
                        _ => None,
                    };
                    let built = ops::compensation(&step, &done, solver, cancel.as_deref())?;
                    let Some(op) = built else { continue };
                    self.ops.insert((id, true), op.clone());
                    op
                }
            };
            return self.advance(&step, true, op).await;
        }
        // Every compensation is done: the escrows must say so.
        for order in self.planned.plan.orders() {
            let status = self.adapter(order.chain())?.escrow(order.id()).await?;
            if status == EscrowStatus::Opened || status == EscrowStatus::Settled {
                self.wake_on(order.chain());
                return Ok(());
            }
        }
        if self.state.outcome.is_none() {
            self.append(SagaEvent::Decided {
                outcome: Outcome::Refunded,
            })
            .await?;
        }
        self.append(SagaEvent::Completed).await
    }
}
