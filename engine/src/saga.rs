//! One saga's driver: runs the plan's ready steps, watches their transactions to their
//! confirmations, replaces stuck ones, decides compensation before the pivot, and the outcome from
//! evidence. Every decision is in the log before it acts; after a crash the driver rebuilds its
//! state from the log and goes on.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use alloy::primitives::U256;
use baton_adapters::AdapterError;
use baton_adapters::port::{
    BlockRef, ChainAdapter, Conditions, EscrowStatus, Inclusion, Op, SignedTx, TxRequest, TxStatus,
};
use baton_planner::step::{Action, Step};
use baton_planner::{ChainId, StepId};
use tracing::{Instrument, info, info_span, warn};

use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::event::{Outcome, SagaEvent, SagaId};
use crate::input::Planned;
use crate::observe;
use crate::ops;
use crate::state::SagaState;

/// How long (in blocks) a done step is watched for reorgs.
const REORG_WATCH_BLOCKS: u64 = 64;
/// Done steps are checked for reorgs every this many ticks.
const REORG_CHECK_EVERY: u64 = 4;

/// A saga being driven.
pub(crate) struct Saga {
    shared: Arc<Shared>,
    id: SagaId,
    planned: Planned,
    state: SagaState,
    /// Head of the chain when each (step, comp) last sent a transaction: when to replace it.
    sent_at: HashMap<(StepId, bool), u64>,
    /// A step failed for good after the pivot: the driver stops, the saga stays unfinished for an
    /// operator (recovery resumes it).
    halted: bool,
    /// The route label of its metrics.
    route: String,
    /// When it was admitted, unix milliseconds.
    created_ms: i64,
    /// Each step's op (and compensation's), built once: an op may carry an attestation.
    ops: HashMap<(StepId, bool), Op>,
    /// Ticks so far (reorg checks run every few ticks).
    ticks: u64,
    /// Each chain's conditions, read at most once per tick.
    seen: HashMap<ChainId, Conditions>,
}

impl Saga {
    pub(crate) fn new(
        shared: Arc<Shared>,
        id: SagaId,
        planned: Planned,
        state: SagaState,
        created_ms: i64,
    ) -> Self {
        Self {
            route: observe::route(&planned.plan),
            created_ms,
            shared,
            id,
            planned,
            state,
            sent_at: HashMap::new(),
            halted: false,
            ops: HashMap::new(),
            ticks: 0,
            seen: HashMap::new(),
        }
    }

    async fn append(&mut self, event: SagaEvent) -> Result<()> {
        let started = std::time::Instant::now();
        let appended = self.shared.log.append(self.id, event.clone()).await?;
        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.shared.commit_ns.fetch_add(ns, Ordering::Relaxed);
        self.state.apply(appended.seq, &event);
        match &event {
            SagaEvent::StepFinal { step, comp, .. } => {
                self.shared.steps_done.fetch_add(1, Ordering::Relaxed);
                if let Ok(s) = self.step(*step) {
                    observe::step_done(s.action.name(), *comp);
                }
            }
            SagaEvent::Decided { outcome } => {
                let secs = (now_ms() - self.created_ms).max(0) as f64 / 1000.0;
                observe::decided(&self.route, outcome, secs);
            }
            SagaEvent::Alert { reason } => observe::alert(&self.route, reason),
            _ => {}
        }
        let n = self.shared.appended.fetch_add(1, Ordering::SeqCst) + 1;
        if self.shared.config.stop_after_events == Some(n) {
            return Err(EngineError::Stopped(n));
        }
        Ok(())
    }

    fn adapter(&self, chain: ChainId) -> Result<Arc<dyn ChainAdapter>> {
        self.shared
            .chains
            .get(&chain)
            .cloned()
            .ok_or(EngineError::NoAdapter(chain.0))
    }

    fn step(&self, id: StepId) -> Result<&Step> {
        self.planned
            .plan
            .step(id)
            .ok_or_else(|| EngineError::Corrupt(format!("no step {}", id.0)))
    }

    /// Drives the saga to its end.
    pub(crate) async fn run(mut self) -> Result<Outcome> {
        if !self.state.started {
            let intent = self.planned.plan.intent().id();
            self.append(SagaEvent::Started {
                intent,
                plan: self.planned.hash,
            })
            .await?;
        }
        self.rebroadcast_in_flight().await;
        loop {
            if self.state.completed || self.halted {
                return self
                    .state
                    .outcome
                    .clone()
                    .ok_or_else(|| EngineError::Corrupt("stopped without an outcome".into()));
            }
            let started = std::time::Instant::now();
            let ticked = self.tick().await;
            let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.shared.busy_ns.fetch_add(ns, Ordering::Relaxed);
            match ticked {
                Ok(()) => {}
                Err(
                    e @ (EngineError::Stopped(_) | EngineError::Db(_) | EngineError::WriterGone),
                ) => {
                    return Err(e);
                }
                // A chain that cannot be reached now is tried again at the next tick.
                Err(e) => warn!(saga = %self.id, error = %e, "tick failed; retrying"),
            }
            tokio::time::sleep(self.shared.config.poll).await;
        }
    }

    /// After a restart: every signed, unfinished transaction is sent again (same bytes: harmless).
    async fn rebroadcast_in_flight(&self) {
        let all = self
            .state
            .steps
            .iter()
            .map(|(id, s)| (*id, s))
            .chain(self.state.comps.iter().map(|(id, s)| (*id, s)));
        for (id, st) in all {
            if st.is_done() || st.failed.is_some() {
                continue;
            }
            let Ok(step) = self.step(id) else { continue };
            let Ok(adapter) = self.adapter(step.chain) else {
                continue;
            };
            for tx in &st.txs {
                let _ = adapter.broadcast(tx).await;
            }
        }
    }

    /// Whether a fill may still land: one has a signed transaction that has not failed. From then
    /// on the saga only moves forward.
    fn fill_committed(&self) -> bool {
        self.planned.plan.steps().iter().any(|s| {
            let st = self.state.step(s.id);
            s.action.is_pivot() && !st.txs.is_empty() && st.failed.is_none()
        })
    }

    /// `chain`'s conditions as of this tick (one read per chain per tick).
    async fn conditions(&mut self, chain: ChainId) -> Result<Conditions> {
        if let Some(c) = self.seen.get(&chain) {
            return Ok(*c);
        }
        let c = self.adapter(chain)?.conditions().await?;
        self.seen.insert(chain, c);
        Ok(c)
    }

    async fn tick(&mut self) -> Result<()> {
        self.seen.clear();
        self.ticks += 1;
        if self.ticks.is_multiple_of(REORG_CHECK_EVERY) {
            self.heal_reorgs().await?;
        }
        if self.state.compensating.is_some() {
            return self.compensate().await;
        }
        let order: Vec<StepId> = self.planned.plan.topological_order().to_vec();
        for id in order {
            let st = self.state.step(id);
            if st.is_done() {
                continue;
            }
            let step = self.step(id)?.clone();
            if let Some(reason) = st.failed {
                return self.failed(&step, reason).await;
            }
            if !step
                .depends_on
                .iter()
                .all(|d| self.state.step(*d).is_done())
            {
                continue;
            }
            match &step.action {
                Action::WaitFinality { of } => {
                    let Some(Some(block)) = self.state.step(*of).done else {
                        continue;
                    };
                    if self.depth(step.chain, block).await?
                        >= u64::from(step.timing.confirmations).max(1)
                    {
                        self.append(SagaEvent::StepFinal {
                            step: id,
                            comp: false,
                            block: Some(block),
                            tx: None,
                        })
                        .await?;
                    }
                }
                Action::Attest { fill } => self.attest(id, *fill).await?,
                _ => {
                    let op = match self.ops.get(&(id, false)) {
                        Some(op) => op.clone(),
                        None => {
                            let solver = self.adapter(step.chain)?.account();
                            let op = ops::forward(
                                &self.planned,
                                &step,
                                solver,
                                self.shared.attester.as_ref(),
                            )?;
                            self.ops.insert((id, false), op.clone());
                            op
                        }
                    };
                    let span = info_span!(
                        "step",
                        step.id = id.0,
                        step.action = step.action.name(),
                        chain.id = step.chain.0
                    );
                    self.advance(&step, false, op).instrument(span).await?;
                }
            }
        }
        self.decide().await?;
        if self.state.compensating.is_none() && !self.fill_committed() {
            self.check_deadline().await?;
        }
        Ok(())
    }

    /// A done step whose transaction a reorg took out of the chain is sent again (the same bytes:
    /// the same nonce, so it cannot happen twice), for as long as its block is recent.
    async fn heal_reorgs(&mut self) -> Result<()> {
        let done: Vec<(StepId, SignedTx, BlockRef)> = self
            .state
            .steps
            .iter()
            .chain(self.state.comps.iter())
            .filter_map(|(id, st)| {
                let block = st.done.flatten()?;
                let tx = st.txs.iter().find(|t| Some(t.hash) == st.done_by)?;
                Some((*id, tx.clone(), block))
            })
            .collect();
        for (id, tx, block) in done {
            let chain = self.step(id)?.chain;
            let adapter = self.adapter(chain)?;
            let head = self.conditions(chain).await?.head.number;
            if head >= block.number + REORG_WATCH_BLOCKS {
                continue;
            }
            match adapter.status(&tx, Some(&block)).await? {
                TxStatus::ReorgedOut { .. } | TxStatus::Dropped => {
                    warn!(saga = %self.id, step = id.0, "reorged out after it was done; sending it again");
                    let _ = adapter.broadcast(&tx).await;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// A step failed for good: compensate before the pivot; after it, alert and keep the outcome
    /// honest.
    async fn failed(&mut self, step: &Step, reason: String) -> Result<()> {
        if self.fill_committed() {
            let alert = format!(
                "step {} ({}) failed after the pivot: {reason}",
                step.id.0,
                step.action.name()
            );
            if !self.state.alerts.contains(&alert) {
                warn!(saga = %self.id, "{alert}");
                self.append(SagaEvent::Alert {
                    reason: alert.clone(),
                })
                .await?;
            }
            if self.state.outcome.is_none() {
                self.append(SagaEvent::Decided {
                    outcome: Outcome::Failed {
                        reason: alert,
                        needs_operator: true,
                    },
                })
                .await?;
            }
            self.halted = true;
            Ok(())
        } else {
            info!(saga = %self.id, step = step.id.0, %reason, "compensating");
            self.append(SagaEvent::Compensating {
                reason: format!(
                    "step {} ({}) failed: {reason}",
                    step.id.0,
                    step.action.name()
                ),
            })
            .await
        }
    }

    /// Blocks on top of `block` (1 when it is the head), 0 when it is no longer canonical.
    async fn depth(&mut self, chain: ChainId, block: BlockRef) -> Result<u64> {
        let head = self.conditions(chain).await?.head;
        Ok((head.number + 1).saturating_sub(block.number))
    }

    /// Moves one on-chain step (or compensation) along: sign and send, watch, replace, finish.
    async fn advance(&mut self, step: &Step, comp: bool, op: Op) -> Result<()> {
        let key = (step.id, comp);
        let st = if comp {
            self.state.comp(step.id)
        } else {
            self.state.step(step.id)
        };
        let adapter = self.adapter(step.chain)?;
        let ceiling = step.timing.fee_ceiling;
        let max_attempts = self.shared.config.max_attempts;
        if st.txs.is_empty() {
            let c = self.conditions(step.chain).await?;
            // Hold while the chain is too expensive or unhealthy (compensations are not held by fees).
            if !comp && U256::from(c.base_fee) > ceiling {
                return Ok(());
            }
            if c.rpc_error_rate() > self.shared.config.unhealthy_error_rate && c.rpc_calls >= 20 {
                return Ok(());
            }
            let fees = ops::fees(&op, comp_ceiling(ceiling, comp, c.base_fee), 0);
            return self
                .sign_and_send(step, comp, op, fees, 0, None, c.head.number)
                .await;
        }
        let head = self.conditions(step.chain).await?.head.number;
        let confirmations = u64::from(step.timing.confirmations).max(1);
        for tx in st.txs.iter().rev() {
            match adapter.status(tx, None).await? {
                TxStatus::Included(inc) => {
                    if !inc.success {
                        let reason = inc.revert_reason.unwrap_or_else(|| "reverted".into());
                        let attempt = u32::try_from(st.txs.len()).unwrap_or(u32::MAX);
                        // After the pivot the saga only moves forward: try again (the reverted
                        // transaction used up its nonce, so a fresh one cannot double anything).
                        let forward_only =
                            !comp && self.fill_committed() && !step.action.is_pivot();
                        if forward_only && attempt < max_attempts {
                            warn!(saga = %self.id, step = step.id.0, %reason, "reverted after the pivot; retrying");
                            let base = self.conditions(step.chain).await?.base_fee;
                            let fees = ops::fees(&op, comp_ceiling(ceiling, comp, base), attempt);
                            return self
                                .sign_and_send(step, comp, op, fees, attempt, None, head)
                                .await;
                        }
                        return self
                            .append(SagaEvent::StepFailed {
                                step: step.id,
                                comp,
                                reason,
                            })
                            .await;
                    }
                    if head + 1 >= inc.block.number + confirmations {
                        return self
                            .append(SagaEvent::StepFinal {
                                step: step.id,
                                comp,
                                block: Some(inc.block),
                                tx: Some(tx.hash),
                            })
                            .await;
                    }
                    return Ok(());
                }
                TxStatus::Pending => {
                    let since = *self.sent_at.entry(key).or_insert(head);
                    let attempt = u32::try_from(st.txs.len()).unwrap_or(u32::MAX);
                    if head >= since + self.shared.config.replace_after_blocks
                        && attempt < max_attempts
                    {
                        let base = self.conditions(step.chain).await?.base_fee;
                        let fees = ops::fees(&op, comp_ceiling(ceiling, comp, base), attempt);
                        return self
                            .sign_and_send(step, comp, op, fees, attempt, Some(tx.nonce), head)
                            .await;
                    }
                    return Ok(());
                }
                TxStatus::Dropped | TxStatus::ReorgedOut { .. } => {}
            }
        }
        // Nothing pending or included: send the latest again; if the node refuses it (its nonce was
        // used by something else), it can never land, and a fresh nonce is safe.
        let Some(last) = st.txs.last() else {
            return Ok(());
        };
        match adapter.broadcast(last).await {
            Ok(()) => Ok(()),
            Err(AdapterError::Rejected { reason, .. }) => {
                let attempt = u32::try_from(st.txs.len()).unwrap_or(u32::MAX);
                if attempt >= max_attempts {
                    return self
                        .append(SagaEvent::StepFailed {
                            step: step.id,
                            comp,
                            reason: format!("refused by the node: {reason}"),
                        })
                        .await;
                }
                let base = self.conditions(step.chain).await?.base_fee;
                let fees = ops::fees(&op, comp_ceiling(ceiling, comp, base), attempt);
                self.sign_and_send(step, comp, op, fees, attempt, None, head)
                    .await
            }
            Err(e) => Err(e.into()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn sign_and_send(
        &mut self,
        step: &Step,
        comp: bool,
        op: Op,
        fees: baton_adapters::port::Fees,
        attempt: u32,
        nonce: Option<u64>,
        head: u64,
    ) -> Result<()> {
        let adapter = self.adapter(step.chain)?;
        let tx = adapter.prepare(TxRequest { op, fees, nonce }).await?;
        // Write-ahead: the bytes are in the log before the chain sees them.
        self.append(SagaEvent::TxSigned {
            step: step.id,
            comp,
            attempt,
            tx: tx.clone(),
        })
        .await?;
        self.sent_at.insert((step.id, comp), head);
        observe::tx_signed(step.chain.0, attempt, nonce.is_some());
        if let Err(e) = adapter.broadcast(&tx).await {
            // Retried at the next tick (status Dropped → rebroadcast, or a fresh nonce if refused).
            warn!(saga = %self.id, step = step.id.0, error = %e, "broadcast failed");
        }
        Ok(())
    }

    /// The attestation step: the fill must show in the destination settler's events.
    async fn attest(&mut self, id: StepId, fill: StepId) -> Result<()> {
        let fill_step = self.step(fill)?.clone();
        let Action::Fill {
            order,
            output,
            amount,
            recipient,
            ..
        } = &fill_step.action
        else {
            return Err(EngineError::Corrupt(format!(
                "step {} attests a non-fill",
                id.0
            )));
        };
        let evidence = self.adapter(fill_step.chain)?.evidence(*order).await?;
        let seen = evidence.fills.iter().find(|f| {
            f.output_index as usize == *output
                && f.recipient == *recipient
                && f.amount >= amount.raw()
        });
        if let Some(f) = seen {
            self.append(SagaEvent::StepFinal {
                step: id,
                comp: false,
                block: Some(f.at.block),
                tx: Some(f.at.tx),
            })
            .await?;
        }
        Ok(())
    }

    /// Fulfilled once every fill is done and the destination's events show each output delivered
    /// to its recipient at least at the user's minimum; completed once every settle is done.
    async fn decide(&mut self) -> Result<()> {
        if self.state.outcome.is_none() {
            let plan = &self.planned.plan;
            let fills: Vec<Step> = plan
                .steps()
                .iter()
                .filter(|s| s.action.is_pivot())
                .cloned()
                .collect();
            if fills.iter().all(|s| self.state.step(s.id).is_done()) {
                for s in &fills {
                    let Action::Fill {
                        order,
                        output,
                        recipient,
                        ..
                    } = &s.action
                    else {
                        continue;
                    };
                    let min = plan.intent().outputs()[*output].min_amount.raw();
                    let evidence = self.adapter(s.chain)?.evidence(*order).await?;
                    let delivered = evidence.fills.iter().any(|f| {
                        f.output_index as usize == *output
                            && f.recipient == *recipient
                            && f.amount >= min
                    });
                    if !delivered {
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
            .all(|s| self.state.step(s.id).is_done());
        if self.state.outcome == Some(Outcome::Fulfilled) && settled {
            self.append(SagaEvent::Completed).await?;
        }
        Ok(())
    }

    /// Gives up before the pivot when what remains of the critical path cannot end before the fill
    /// deadline on the destination's clock.
    async fn check_deadline(&mut self) -> Result<()> {
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
        let mut remaining_ms = 0u64;
        for id in &plan.critical_path().steps {
            let step = plan
                .step(*id)
                .ok_or_else(|| EngineError::Corrupt(format!("no step {}", id.0)))?;
            if !self.state.step(*id).is_done() {
                let block_ms = if c.block_time_ms > 0 {
                    c.block_time_ms
                } else {
                    1_000
                };
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
    async fn compensate(&mut self) -> Result<()> {
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
            if st.txs.is_empty() {
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
                return Ok(()); // wait until it lands or drops
            }
            let Some(done) = done else { continue };
            let cst = self.state.comp(id);
            if cst.is_done() {
                continue;
            }
            if let Some(reason) = cst.failed {
                let reason = format!("the compensation of step {} failed: {reason}", id.0);
                self.append(SagaEvent::Alert {
                    reason: reason.clone(),
                })
                .await?;
                self.append(SagaEvent::Decided {
                    outcome: Outcome::Failed {
                        reason,
                        needs_operator: true,
                    },
                })
                .await?;
                return self.append(SagaEvent::Completed).await;
            }
            let solver = adapter.account();
            let cached = self.ops.get(&(id, true)).cloned();
            let Some(op) = cached.map(Some).map_or_else(
                || {
                    ops::compensation(
                        &self.planned,
                        &step,
                        &done,
                        solver,
                        self.shared.attester.as_ref(),
                    )
                },
                Ok,
            )?
            else {
                continue;
            };
            self.ops.insert((id, true), op.clone());
            return self.advance(&step, true, op).await;
        }
        // Every compensation is done: the escrows must say so.
        for order in self.planned.plan.orders() {
            let status = self.adapter(order.chain())?.escrow(order.id()).await?;
            if status == EscrowStatus::Opened || status == EscrowStatus::Settled {
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

/// Compensations are never held by the fee ceiling: they pay what the chain asks, within reason.
fn comp_ceiling(ceiling: U256, comp: bool, base_fee: u128) -> U256 {
    if comp {
        ceiling.max(U256::from(base_fee.saturating_mul(2)))
    } else {
        ceiling
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
