//! A saga's on-chain steps: sign and send, watch to the confirmations, replace, resend, heal
//! reorgs.

use std::sync::atomic::Ordering;

use alloy::primitives::Address;
use alloy::primitives::U256;
use baton_adapters::AdapterError;
use baton_adapters::port::{BlockRef, Conditions, Op, SignedTx, TxRequest, TxStatus};
use baton_planner::step::Step;
use baton_planner::{ChainId, StepId};
use tracing::warn;

use crate::error::{EngineError, Result};
use crate::event::{FailureKind, Read, Receipt, SagaEvent, TxContext};
use crate::observe;
use crate::saga::ops;

use super::{FRESH_AFTER_BLOCKS, REORG_WATCH_BLOCKS, Saga, comp_ceiling};

impl Saga {
    /// A done step whose transaction a reorg took out of the chain is sent again (the same bytes:
    /// the same nonce, so it cannot happen twice), for as long as its block is recent.
    pub(super) async fn heal_reorgs(&mut self) -> Result<()> {
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
            // Old enough, or already checked at this head.
            if head >= block.number + REORG_WATCH_BLOCKS
                || self.healed.insert(tx.hash, head) == Some(head)
            {
                continue;
            }
            match adapter.status(&tx, Some(&block)).await? {
                TxStatus::ReorgedOut { .. } | TxStatus::Dropped => {
                    warn!(saga = %self.id, step = id.0, "reorged out after it was done; sending it again");
                    let Err(AdapterError::Rejected { reason, .. }) = adapter.broadcast(&tx).await
                    else {
                        continue;
                    };
                    // Refused for as long as a lagging node could hide its block: the new chain
                    // will not take it (its nonce went to something else, or its state is gone),
                    // and a person has to look.
                    let since = *self.unhealed.entry(tx.hash).or_insert(head);
                    if head >= since + FRESH_AFTER_BLOCKS && self.alerted.insert(tx.hash) {
                        self.append(SagaEvent::Alert {
                            reason: format!(
                                "step {} was final in block {} until a reorg removed it, and its \
                                 transaction cannot be sent again: {reason}",
                                id.0, block.number
                            ),
                        })
                        .await?;
                    }
                }
                TxStatus::Included(inc) if !inc.success && self.alerted.insert(tx.hash) => {
                    self.append(SagaEvent::Alert {
                        reason: format!(
                            "step {} was final in block {} until a reorg removed it; sent again, it \
                             reverted: {}",
                            id.0,
                            block.number,
                            inc.revert_reason.unwrap_or_else(|| "reverted".into())
                        ),
                    })
                    .await?;
                }
                _ => {
                    self.unhealed.remove(&tx.hash);
                }
            }
        }
        Ok(())
    }

    /// Blocks from `block` to the head, both counted (1 when it is the head). It does not check
    /// that `block` is still canonical: reorgs of done steps are healed by [`Saga::heal_reorgs`].
    pub(super) async fn depth(&mut self, chain: ChainId, block: BlockRef) -> Result<u64> {
        let head = self.conditions(chain).await?.head;
        Ok((head.number + 1).saturating_sub(block.number))
    }

    /// Moves one on-chain step (or compensation) along: sign and send, watch, replace, finish.
    pub(super) async fn advance(&mut self, step: &Step, comp: bool, op: Op) -> Result<()> {
        let key = (step.id, comp);
        // Whatever this look does, the step's next news comes with a block on its chain.
        self.wake_on(step.chain);
        let st = if comp {
            self.state.comp(step.id)
        } else {
            self.state.step(step.id)
        };
        let adapter = self.adapter(step.chain)?;
        // The attempt budget, counted from the last operator retry.
        let max_attempts = st
            .retried_after
            .saturating_add(self.shared.config.max_attempts);
        // Attempts so far: the next one's number.
        let attempt = u32::try_from(st.txs.len()).unwrap_or(u32::MAX);
        if st.txs.is_empty() {
            // Hold while an operator paused the chain (or everything).
            if self.shared.controls.holds(step.chain) {
                return Ok(());
            }
            let c = self.conditions(step.chain).await?;
            // Hold while the chain is too expensive or unhealthy (compensations are not held by fees).
            if !comp && U256::from(c.base_fee) > step.timing.fee_ceiling {
                return Ok(());
            }
            if self.shared.unhealthy(step.chain) {
                return Ok(());
            }
            return self.sign_and_send(step, comp, op, 0, None).await;
        }
        let head = self.conditions(step.chain).await?.head.number;
        if self.checked.get(&key) == Some(&head) {
            return Ok(());
        }
        let confirmations = u64::from(step.timing.confirmations).max(1);
        // Every transaction of the step is looked at: one that succeeded is the step's result
        // even when a later one reverted (the later one found the work done), and one still
        // pending may yet land.
        let (mut succeeded, mut reverted, mut pending) = (None, None, None);
        for tx in st.txs.iter().rev() {
            match adapter.status(tx, None).await? {
                TxStatus::Included(inc) if inc.success => {
                    succeeded = Some((tx, inc));
                    break;
                }
                TxStatus::Included(inc) => {
                    reverted = reverted.or(Some(inc));
                }
                TxStatus::Pending => pending = pending.or(Some(tx)),
                TxStatus::Dropped | TxStatus::ReorgedOut { .. } => {}
            }
        }
        if succeeded.is_some() || pending.is_some() {
            self.fresh_since.remove(&key);
        }
        if let Some((tx, inc)) = succeeded {
            if head + 1 >= inc.block.number + confirmations {
                return self
                    .append(SagaEvent::StepFinal {
                        step: step.id,
                        comp,
                        block: Some(inc.block),
                        tx: Some(tx.hash),
                        receipt: Some(Receipt::from(&inc)),
                    })
                    .await;
            }
            self.checked.insert(key, head);
            return Ok(());
        }
        if let Some(tx) = pending {
            let since = *self.sent_at.entry(key).or_insert(head);
            if head >= since + self.shared.config.replace_after_blocks && attempt < max_attempts {
                return self
                    .sign_and_send(step, comp, op, attempt, Some(tx.nonce))
                    .await;
            }
            self.checked.insert(key, head);
            return Ok(());
        }
        if let Some(inc) = reverted {
            let reason = inc
                .revert_reason
                .clone()
                .unwrap_or_else(|| "reverted".into());
            // A compensation, or a step after the pivot, must finish: try again (the reverted
            // transaction used up its nonce, so a fresh one cannot double anything).
            let must_finish = comp || (self.fill_committed() && !step.action.is_pivot());
            if must_finish && attempt < max_attempts {
                if !self.fresh_is_due(key, head) {
                    return Ok(());
                }
                warn!(saga = %self.id, step = step.id.0, comp, %reason, "reverted; retrying");
                return self.sign_and_send(step, comp, op, attempt, None).await;
            }
            return self
                .append(SagaEvent::StepFailed {
                    step: step.id,
                    comp,
                    reason,
                    receipt: Some(Receipt::from(&inc)),
                    failure: Some(FailureKind::Reverted),
                })
                .await;
        }
        // Nothing pending or included: send the latest again; if the node refuses it (its nonce was
        // used by something else), it can never land, and a fresh nonce is safe.
        let Some(last) = st.txs.last() else {
            return Ok(());
        };
        match adapter.broadcast(last).await {
            Ok(()) => Ok(()),
            Err(AdapterError::Rejected {
                reason, refusal, ..
            }) => {
                // Refused outright (not for its nonce: that one is used, or held by a pending
                // transaction): the nonce is free again, so it does not leave a gap that would hold
                // every later transaction of the account on this chain.
                if !self.fresh_is_due(key, head) {
                    return Ok(());
                }
                if !refusal.keeps_nonce() {
                    adapter.release(last);
                }
                if attempt >= max_attempts {
                    return self
                        .append(SagaEvent::StepFailed {
                            step: step.id,
                            comp,
                            reason: format!("refused by the node: {reason}"),
                            receipt: None,
                            failure: Some(FailureKind::RejectedByNode),
                        })
                        .await;
                }
                self.sign_and_send(step, comp, op, attempt, None).await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether a fresh nonce for `key` is due at `head`: the want has held for
    /// [`FRESH_AFTER_BLOCKS`] blocks (a lagging node may not have shown the transaction that did
    /// the work). Counted from the first look that wanted one; forgotten once it is signed.
    fn fresh_is_due(&mut self, key: (StepId, bool), head: u64) -> bool {
        let since = *self.fresh_since.entry(key).or_insert(head);
        if head >= since + FRESH_AFTER_BLOCKS {
            self.fresh_since.remove(&key);
            return true;
        }
        self.checked.insert(key, head);
        false
    }

    /// What `op` is built against on `chain`: the head and base fee of `c`, and the state it
    /// depends on (a swap's pool reserves; the balance a fill delivers from or an open pulls).
    async fn context(&self, chain: ChainId, op: &Op, c: Conditions) -> Result<TxContext> {
        let adapter = self.adapter(chain)?;
        let mut reads = Vec::new();
        let wanted: Vec<(Address, Address)> = match op {
            Op::Swap { pool, .. } => {
                let r = adapter.reserves(*pool).await?;
                reads.push(Read::Reserves {
                    pool: *pool,
                    reserve0: r.reserve0,
                    reserve1: r.reserve1,
                });
                Vec::new()
            }
            Op::Fill { output, .. } => {
                vec![(Address::from_word(output.token), adapter.account())]
            }
            Op::Open { order, .. } => ops::open_inputs(order)
                .into_iter()
                .map(|token| (token, order.user))
                .collect(),
            _ => Vec::new(),
        };
        for (token, owner) in wanted {
            reads.push(Read::Balance {
                token,
                owner,
                amount: adapter.balance(token, owner).await?,
            });
        }
        Ok(TxContext {
            head: c.head,
            base_fee: U256::from(c.base_fee),
            reads,
        })
    }

    /// Signs attempt `attempt` of `op` (fees raised 12.5 % per attempt over the step's ceiling, or
    /// what the chain asks for a compensation), reusing `nonce` for a replacement; logs it, then
    /// broadcasts it.
    pub(super) async fn sign_and_send(
        &mut self,
        step: &Step,
        comp: bool,
        op: Op,
        attempt: u32,
        nonce: Option<u64>,
    ) -> Result<()> {
        let c = self.conditions(step.chain).await?;
        if let Op::Fill { fill_deadline, .. } = &op
            && !comp
        {
            let knobs = self.shared.knobs();
            let margin_blocks = knobs.fill_margin_blocks;
            let room_ms = knobs.fill_room_ms(c.block_time_ms);
            let wait_ms = (self.adapter(step.chain)?.backlog()).map_or(0, |b| b.sent_wait_ms());
            if !fill_can_land(&c, *fill_deadline, room_ms, wait_ms) {
                if nonce.is_some() {
                    // A replacement: the transaction it would replace may still land in time (or
                    // is refused by the settler if late); keep watching it.
                    return Ok(());
                }
                warn!(saga = %self.id, step = step.id.0, fill_deadline, "too close to the fill deadline to sign the fill");
                return self
                    .append(SagaEvent::StepFailed {
                        step: step.id,
                        comp,
                        reason: format!(
                            "not signed: the fill could not land before the fill deadline {fill_deadline} \
                             (the chain's clock is at {}, its blocks {} ms apart, {wait_ms} ms of the \
                             solver's transactions ahead, {margin_blocks} blocks of margin)",
                            c.timestamp, c.block_time_ms
                        ),
                        receipt: None,
                        failure: Some(FailureKind::PastFillDeadline),
                    })
                    .await;
            }
        }
        let base_fee = c.base_fee;
        let context = self.context(step.chain, &op, c).await?;
        let fees = ops::fees(
            &op,
            comp_ceiling(step.timing.fee_ceiling, comp, base_fee),
            attempt,
        );
        let adapter = self.adapter(step.chain)?;
        let tx = adapter.prepare(TxRequest { op, fees, nonce }).await?;
        // Write-ahead: the bytes are in the log before the chain sees them.
        let logged = self
            .append(SagaEvent::TxSigned {
                step: step.id,
                comp,
                attempt,
                tx: tx.clone(),
                context: Some(context),
            })
            .await;
        if matches!(logged, Err(EngineError::NotAdmitted)) && nonce.is_none() {
            // Refused unwritten (the saga's admission did not commit): the chain never sees it,
            // so its fresh nonce goes back.
            adapter.release(&tx);
        }
        logged?;
        // Blocks pending are counted from the first look that finds this transaction pending, not
        // from its signing: the wait for the log's commit is not the chain's delay (on chains with
        // fast blocks it lasts several), and replacing for it only doubles the work.
        self.sent_at.remove(&(step.id, comp));
        self.first_signed
            .entry((step.id, comp))
            .or_insert_with(std::time::Instant::now);
        observe::tx_signed(step.chain.0, attempt, nonce.is_some());
        self.shared.signed.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = adapter.broadcast(&tx).await {
            // Retried at the next tick (status Dropped → rebroadcast, or a fresh nonce if refused).
            warn!(saga = %self.id, step = step.id.0, error = %e, "broadcast failed");
        }
        Ok(())
    }
}

/// Whether a fill signed now can be expected to land by `fill_deadline` on the chain of `c`: its
/// clock, `wait_ms` behind the account's transactions sent before it, and the fill's room
/// ([`crate::EngineConfig::fill_room_ms`]: the block it lands in and the margin) are not past it.
fn fill_can_land(c: &Conditions, fill_deadline: u32, room_ms: u64, wait_ms: u64) -> bool {
    c.timestamp
        .saturating_mul(1_000)
        .saturating_add(wait_ms)
        .saturating_add(room_ms)
        <= u64::from(fill_deadline).saturating_mul(1_000)
}
