//! The saga driver, the middle layer: one saga's driver runs the plan's ready steps, watches their
//! transactions to their confirmations, replaces stuck ones, decides compensation before the
//! pivot, and the outcome from evidence. Every decision is in the log before it acts; after a
//! crash the driver rebuilds its state from the log and goes on.
//!
//! - this file: the driver's loop and its decisions; `chain`: its transactions on a chain
//!   (signing write-ahead, broadcasting, replacing, reorgs); `outcome`: the outcome from evidence;
//! - [`state`]: a saga's state folded from its events; [`input`]: what a saga runs, re-planned on
//!   recovery; [`ops`]: the chain ops of plan steps;
//! - `shared`: what the drivers of one engine share.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use alloy::primitives::U256;
use baton_adapters::port::{ChainAdapter, Conditions, Op};
use baton_planner::step::{Action, Step};
use baton_planner::{ChainId, StepId};
use tracing::{Instrument, info, info_span, warn};

use crate::error::{EngineError, Result};
use crate::event::{Outcome, SagaEvent, SagaId};
use crate::now_ms;
use crate::observe;
use input::Planned;
use shared::Shared;
use state::SagaState;

pub mod attest;
mod chain;
pub mod input;
pub mod ops;
mod outcome;
pub(crate) mod shared;
pub mod state;

/// How long (in blocks) a done step is watched for reorgs.
pub(super) const REORG_WATCH_BLOCKS: u64 = 64;
/// A step signs a transaction with a fresh nonce (after a revert it must get past, or when its
/// transactions are gone and refused) only once that has been so for this many blocks: a node
/// behind the same RPC URL that lags a few blocks may not know yet of the transaction that did it.
pub(super) const FRESH_AFTER_BLOCKS: u64 = 4;
/// Done steps are checked for reorgs every this many ticks.
const REORG_CHECK_EVERY: u64 = 4;

/// A saga being driven.
pub(crate) struct Saga {
    shared: Arc<Shared>,
    /// The adapters of the configuration it was admitted under.
    chains: Arc<crate::saga::shared::Chains>,
    id: SagaId,
    planned: Planned,
    state: SagaState,
    /// The head at which each (step, comp)'s latest transaction was first found pending: when to
    /// replace it.
    sent_at: HashMap<(StepId, bool), u64>,
    /// A step failed for good after the pivot: the driver stops, the saga stays unfinished for an
    /// operator (recovery resumes it).
    halted: bool,
    /// The route label of its metrics.
    route: String,
    /// When it was admitted, unix milliseconds.
    created_ms: i64,
    /// Each step's op (and compensation's), built once: an op may carry attestations.
    ops: HashMap<(StepId, bool), Op>,
    /// Each order's fill attested by a quorum, once collected.
    attested: HashMap<baton_planner::OrderId, attest::Attested>,
    /// Each order's cancel attested by a quorum, once collected.
    cancels: HashMap<baton_planner::OrderId, Vec<alloy::primitives::Bytes>>,
    /// When each (step, comp) began waiting for attesters, while it does.
    waiting_since: HashMap<(StepId, bool), std::time::Instant>,
    /// This driver's lease fence, once acquired.
    fence: Option<i64>,
    /// When the lease lapses, unix milliseconds.
    lease_until: i64,
    /// Ticks so far (reorg checks run every few ticks).
    ticks: u64,
    /// Each chain's conditions, read at most once per tick.
    seen: HashMap<ChainId, Conditions>,
    /// The head at which each (step, comp)'s transaction was last found pending or not yet deep
    /// enough: nothing can change before the next block, so it is not asked again until then.
    checked: HashMap<(StepId, bool), u64>,
    /// The head at which each (step, comp) first found that only a transaction with a fresh nonce
    /// would move it on (see [`FRESH_AFTER_BLOCKS`]).
    fresh_since: HashMap<(StepId, bool), u64>,
    /// Done transactions a reorg took out that could not be put back: alerted once each.
    alerted: std::collections::HashSet<alloy::primitives::B256>,
    /// The head at which each done transaction a reorg took out was first refused when sent again.
    unhealed: HashMap<alloy::primitives::B256, u64>,
    /// The head at which each done transaction was last checked for a reorg.
    healed: HashMap<alloy::primitives::B256, u64>,
    /// When each (step, comp) signed its first transaction in this driver: its latency metric.
    first_signed: HashMap<(StepId, bool), std::time::Instant>,
    /// Appends handed to the writer and not yet known durable (see [`Saga::append`]).
    unsettled: Vec<crate::log::Pending>,
    /// The chains on which a new block may move the saga on, as of this tick (see
    /// [`Saga::pause`]).
    wake: Vec<ChainId>,
}

impl Saga {
    pub(crate) fn new(
        shared: Arc<Shared>,
        id: SagaId,
        planned: Planned,
        state: SagaState,
        created_ms: i64,
        lease: Option<(i64, i64)>,
    ) -> Self {
        Self {
            chains: shared.chains_for(planned.config_version),
            route: observe::route(&planned.plan),
            created_ms,
            shared,
            id,
            planned,
            state,
            sent_at: HashMap::new(),
            halted: false,
            ops: HashMap::new(),
            attested: HashMap::new(),
            cancels: HashMap::new(),
            waiting_since: HashMap::new(),
            fence: lease.map(|l| l.0),
            lease_until: lease.map_or(0, |l| l.1),
            ticks: 0,
            seen: HashMap::new(),
            checked: HashMap::new(),
            fresh_since: HashMap::new(),
            alerted: std::collections::HashSet::new(),
            unhealed: HashMap::new(),
            healed: HashMap::new(),
            first_signed: HashMap::new(),
            unsettled: Vec::new(),
            wake: Vec::new(),
        }
    }

    /// Appends `event` to the saga's log and applies it. A signed transaction (which is broadcast
    /// next) is awaited until durable, and with it every event before it; any other event records
    /// what was observed or decided without acting outside the log, so it is handed to the writer
    /// and the driver goes on: the next signed transaction, or the end of the run, waits for it.
    /// Had a crash lost it, the driver would observe the same again after recovery.
    pub(super) async fn append(&mut self, event: SagaEvent) -> Result<()> {
        let started = std::time::Instant::now();
        let pending = self
            .shared
            .log
            .send(self.id, event.clone(), self.fence)
            .await?;
        if matches!(event, SagaEvent::TxSigned { .. }) {
            let appended = pending.await.map_err(|_| EngineError::WriterGone)?;
            // Earlier appends were written first: all are settled now.
            self.settle_appends().await?;
            let appended = appended?;
            self.state.apply(appended.seq, &event);
        } else {
            self.unsettled.push(pending);
            let next = self.state.seq + 1;
            self.state.apply(next, &event);
        }
        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.shared.commit_ns.fetch_add(ns, Ordering::Relaxed);
        match &event {
            SagaEvent::StepFinal { step, comp, .. } => {
                self.shared.steps_done.fetch_add(1, Ordering::Relaxed);
                if let Some(s) = self.planned.plan.step(*step) {
                    observe::step_done(s.action.name(), *comp);
                    if let Some(t) = self.first_signed.remove(&(*step, *comp)) {
                        observe::step_latency(
                            s.chain.0,
                            s.action.name(),
                            t.elapsed().as_secs_f64(),
                        );
                    }
                }
            }
            SagaEvent::Decided { outcome } => {
                let secs = (now_ms() - self.created_ms).max(0) as f64 / 1000.0;
                observe::decided(&self.route, outcome, secs);
            }
            SagaEvent::Alert { reason } => observe::alert(&self.route, reason),
            _ => {}
        }
        if let Err(stop) = self.shared.count_event() {
            // Crash injection stops the driver right after this event is durable, as if the
            // process died then.
            self.settle_appends().await?;
            return Err(stop);
        }
        Ok(())
    }

    /// Waits until every append handed to the writer is durable. If one was refused (the batch
    /// failed, or the lease moved on), the saga's state is read back from the log, which is the
    /// truth, and the error is returned when it means this driver must stop.
    pub(super) async fn settle_appends(&mut self) -> Result<()> {
        let mut refused = None;
        for pending in self.unsettled.drain(..) {
            match pending.await.map_err(|_| EngineError::WriterGone)? {
                Ok(_) => {}
                Err(e) => refused = Some(e),
            }
        }
        let Some(e) = refused else { return Ok(()) };
        warn!(saga = %self.id, error = %e, "an append was refused; reading the saga's log again");
        let events = self.shared.log.events(self.id).await?;
        self.state = SagaState::from_events(events.iter().map(|e| (e.seq, &e.event)));
        match e {
            EngineError::LeaseLost | EngineError::LeaseHeld => Err(e),
            _ => Ok(()),
        }
    }

    pub(super) fn adapter(&self, chain: ChainId) -> Result<Arc<dyn ChainAdapter>> {
        self.chains
            .get(&chain)
            .cloned()
            .ok_or(EngineError::NoAdapter(chain.0))
    }

    pub(super) fn step(&self, id: StepId) -> Result<&Step> {
        self.planned
            .plan
            .step(id)
            .ok_or_else(|| EngineError::Corrupt(format!("no step {}", id.0)))
    }

    /// Takes the saga's lease, or renews it when half of it has run out; an error when another
    /// instance holds or took it.
    async fn lease(&mut self) -> Result<()> {
        let ttl = self.shared.config.lease_ms();
        let now = now_ms();
        let owner = &self.shared.config.instance;
        match self.fence {
            None => {
                let fence = self
                    .shared
                    .log
                    .acquire_lease(self.id, owner, now, ttl)
                    .await?
                    .ok_or(EngineError::LeaseHeld)?;
                self.fence = Some(fence);
                self.lease_until = now + ttl;
            }
            Some(fence) if now >= self.lease_until - ttl / 2 => {
                if !self
                    .shared
                    .log
                    .renew_lease(self.id, owner, fence, now, ttl)
                    .await?
                {
                    return Err(EngineError::LeaseLost);
                }
                self.lease_until = now + ttl;
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Drives the saga (admitted: its `Started` event is in the log) to its end.
    pub(crate) async fn run(mut self) -> Result<Outcome> {
        self.lease().await?;
        self.rebroadcast_in_flight().await;
        loop {
            if self.state.completed || self.halted {
                // Everything the run appended is durable before it ends (read back if refused).
                self.settle_appends().await?;
            }
            // Settling may have read the log back: look again.
            if self.state.completed || self.halted {
                return self
                    .state
                    .outcome
                    .clone()
                    .ok_or_else(|| EngineError::Corrupt("stopped without an outcome".into()));
            }
            self.lease().await?;
            let started = std::time::Instant::now();
            let ticked = self.tick().await;
            let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.shared.busy_ns.fetch_add(ns, Ordering::Relaxed);
            self.shared.ticks.fetch_add(1, Ordering::Relaxed);
            match ticked {
                Ok(()) => {}
                Err(e) if e.is_fatal() => return Err(e),
                // A chain that cannot be reached now is tried again at the next tick.
                Err(e) => warn!(saga = %self.id, error = %e, "tick failed; retrying"),
            }
            self.pause().await;
        }
    }

    /// Notes that a new block on `chain` may move the saga on (a transaction to land or deepen, a
    /// fill's events to show, a fee or health hold to lift).
    pub(super) fn wake_on(&mut self, chain: ChainId) {
        if !self.wake.contains(&chain) {
            self.wake.push(chain);
        }
    }

    /// Waits between two ticks: until a chain the last tick waits on announces another head than
    /// the one the tick saw, or for the poll interval, whichever comes first (only the poll when
    /// none of those chains has a head feed). Time-driven decisions — lease renewals, holds,
    /// operators' pauses — keep the poll's pace.
    async fn pause(&mut self) {
        let mut feeds = futures_util::stream::FuturesUnordered::new();
        for chain in self.wake.drain(..) {
            let Some(feed) = self.shared.conditions.head_feed(chain) else {
                continue;
            };
            let mut feed = feed.clone();
            let seen = self
                .seen
                .get(&chain)
                .map_or_else(|| *feed.borrow(), |c| c.head);
            feeds.push(async move {
                // A closed feed (the chain's adapter is gone) leaves the poll to wake the saga.
                if feed.wait_for(|head| *head != seen).await.is_err() {
                    std::future::pending::<()>().await;
                }
            });
        }
        // Without feeds, `next` is `None` at once and only the poll is waited for.
        tokio::select! {
            () = tokio::time::sleep(self.shared.config.poll) => {}
            Some(()) = futures_util::StreamExt::next(&mut feeds) => {}
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
    pub(super) fn fill_committed(&self) -> bool {
        self.planned.plan.steps().iter().any(|s| {
            s.action.is_pivot()
                && self
                    .state
                    .steps
                    .get(&s.id)
                    .is_some_and(|st| !st.txs.is_empty() && st.failed.is_none())
        })
    }

    /// `chain`'s conditions as of this tick (one read per chain per tick).
    pub(super) async fn conditions(&mut self, chain: ChainId) -> Result<Conditions> {
        if let Some(c) = self.seen.get(&chain) {
            return Ok(*c);
        }
        let c = self.shared.conditions(chain).await?;
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
            if let Some(failure) = st.failed {
                return self.failed(&step, failure.reason).await;
            }
            if !step.depends_on.iter().all(|d| self.state.is_done(*d)) {
                continue;
            }
            match &step.action {
                Action::WaitFinality { of } => {
                    let Some(Some(block)) = self.state.step(*of).done else {
                        continue;
                    };
                    self.wake_on(step.chain);
                    if self.depth(step.chain, block).await?
                        >= u64::from(step.timing.confirmations).max(1)
                    {
                        self.append(SagaEvent::StepFinal {
                            step: id,
                            comp: false,
                            block: Some(block),
                            tx: None,
                            receipt: None,
                        })
                        .await?;
                    }
                }
                Action::Attest { fill } => self.attest(id, *fill).await?,
                _ => {
                    let op = match self.ops.get(&(id, false)) {
                        Some(op) => op.clone(),
                        None => {
                            let attested = match step.action {
                                Action::Settle { order } => {
                                    match self.fill_attested(id, order).await? {
                                        Some(a) => Some(a),
                                        None => continue,
                                    }
                                }
                                _ => None,
                            };
                            let solver = self.adapter(step.chain)?.account();
                            let op = ops::forward(&self.planned, &step, solver, attested.as_ref())?;
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

    /// Something only an operator can fix: an alert, the outcome `Failed` if none was reached, and
    /// the driver stops with the saga unfinished (its reservations kept) until recovery resumes it.
    pub(super) async fn give_up(&mut self, alert: String) -> Result<()> {
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
        self.shared.set_stopped_for_operator(self.id, true);
        Ok(())
    }

    /// A step failed for good: compensate before the pivot; after it, alert and keep the outcome
    /// honest.
    pub(super) async fn failed(&mut self, step: &Step, reason: String) -> Result<()> {
        if self.fill_committed() {
            self.give_up(format!(
                "step {} ({}) failed after the pivot: {reason}",
                step.id.0,
                step.action.name()
            ))
            .await
        } else if self.hold(step, &reason).await? {
            // Held: nothing to do but watch the fill deadline.
            self.check_deadline().await
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

    /// The hold for an operator after `step` failed before the pivot: starts it (an alert and a
    /// `Held` event) when holds are on and none has been; whether the saga is held now (false:
    /// holds are off, or this one is over, so compensate).
    async fn hold(&mut self, step: &Step, reason: &str) -> Result<bool> {
        let hold = self.shared.knobs().hold_for_operator;
        if let Some(until_ms) = self.state.held_until_ms {
            return Ok(now_ms() < until_ms);
        }
        if hold.is_zero() {
            return Ok(false);
        }
        let until_ms = now_ms() + i64::try_from(hold.as_millis()).unwrap_or(i64::MAX / 2);
        let why = format!(
            "step {} ({}) failed before the pivot: {reason}",
            step.id.0,
            step.action.name()
        );
        warn!(saga = %self.id, step = step.id.0, %reason, "held for an operator");
        self.append(SagaEvent::Alert {
            reason: format!(
                "{why}; held for an operator for {} s (replay it with a change and resume, or it \
                 compensates)",
                hold.as_secs()
            ),
        })
        .await?;
        self.append(SagaEvent::Held {
            reason: why,
            until_ms,
        })
        .await?;
        Ok(true)
    }
}

/// Compensations are never held by the fee ceiling: they pay what the chain asks, within reason.
pub(super) fn comp_ceiling(ceiling: U256, comp: bool, base_fee: u128) -> U256 {
    if comp {
        ceiling.max(U256::from(base_fee.saturating_mul(2)))
    } else {
        ceiling
    }
}
