//! A saga's attestations: before a settle, a quorum of attesters' `Fill`; before a refund with
//! cancel, a quorum's `Cancel`. Collected from the engine's attesters (see [`crate::attester`]),
//! kept for the driver's life (asking again after a restart gets the same answers: attesters keep
//! their decisions), and what the step waits for is in the log while it waits.

use alloy::primitives::{Address, Bytes};
use baton_adapters::attestation::{Delivery, OriginSettlerAt};
use baton_attester::wire::{CancelRequest, FillRequest};
use baton_planner::order::GaslessCrossChainOrder;
use baton_planner::step::Action;
use baton_planner::{Order, OrderId, StepId};
use tracing::warn;

use crate::attester::Collected;
use crate::error::{EngineError, Result};
use crate::event::SagaEvent;

use super::Saga;

/// How long a step waits for attesters before the reason is written to its saga's log (and shows
/// in its status).
const NOTE_WAIT_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// A quorum's attestation of an order's fill: what the settle sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attested {
    /// Who filled (and is repaid).
    pub filler: Address,
    /// What the attesters vouch was delivered.
    pub deliveries: Vec<Delivery>,
    /// The quorum's signatures, signer ascending.
    pub signatures: Vec<Bytes>,
}

impl Saga {
    fn order(&self, id: OrderId) -> Result<&Order> {
        Ok(super::ops::order(&self.planned.plan, id)?.1)
    }

    /// The order the destination fills are made against, and who makes them (the solver's account
    /// on the first fill's chain).
    fn filled_as(&self) -> Result<(OrderId, Address)> {
        let fill = self
            .planned
            .plan
            .steps()
            .iter()
            .find_map(|s| match s.action {
                Action::Fill { order, .. } => Some((order, s.chain)),
                _ => None,
            })
            .ok_or_else(|| EngineError::Corrupt("the plan has no fill".into()))?;
        Ok((fill.0, self.adapter(fill.1)?.account()))
    }

    /// What an attester is told of `order`: the order itself and, when the fills are made against
    /// another order of the intent, that one (see `FillRequest::filled_as`).
    fn as_signed(
        &self,
        order: OrderId,
    ) -> Result<(GaslessCrossChainOrder, Option<GaslessCrossChainOrder>)> {
        let (lead, _) = self.filled_as()?;
        let lead = (lead != order)
            .then(|| self.order(lead).map(|l| l.order().clone()))
            .transpose()?;
        Ok((self.order(order)?.order().clone(), lead))
    }

    /// The quorum's attestation of `order`'s fill, for settle step `step`: collected once, `None`
    /// while the quorum is not there yet (the step's waiting reason says why).
    pub(super) async fn fill_attested(
        &mut self,
        step: StepId,
        order: OrderId,
    ) -> Result<Option<Attested>> {
        if let Some(a) = self.attested.get(&order) {
            return Ok(Some(a.clone()));
        }
        let o = self.order(order)?.clone();
        let (_, filler) = self.filled_as()?;
        let (signed, filled_as) = self.as_signed(order)?;
        let req = FillRequest {
            order: signed,
            filled_as,
            filler,
        };
        let at = OriginSettlerAt::of(&o);
        let set = self
            .shared
            .attester_set(self.adapter(o.chain())?.as_ref())
            .await?;
        let collected = self
            .shared
            .knobs()
            .attesters
            .fill(&set, at, order, &req)
            .await;
        let what = format!("attest the fill of order {}", order.0);
        let Some((deliveries, signatures)) = self
            .quorum(step, false, o.chain(), &what, collected)
            .await?
        else {
            return Ok(None);
        };
        let a = Attested {
            filler,
            deliveries,
            signatures,
        };
        self.attested.insert(order, a.clone());
        Ok(Some(a))
    }

    /// The quorum's cancel of `order`, for the compensation of open step `step`: collected once,
    /// `None` while not there yet. The solver asks early (it opened the order and gives up
    /// filling it), signing the request as the order's opener.
    pub(super) async fn cancel_attested(
        &mut self,
        step: StepId,
        order: OrderId,
    ) -> Result<Option<Vec<Bytes>>> {
        if let Some(sigs) = self.cancels.get(&order) {
            return Ok(Some(sigs.clone()));
        }
        let o = self.order(order)?.clone();
        let at = OriginSettlerAt::of(&o);
        let set = self
            .shared
            .attester_set(self.adapter(o.chain())?.as_ref())
            .await?;
        let early = self
            .adapter(o.chain())?
            .sign_digest(at.cancel_request_hash(order))
            .map_err(EngineError::from)?;
        let (signed, filled_as) = self.as_signed(order)?;
        let req = CancelRequest {
            order: signed,
            filled_as,
            early: Some(Bytes::from(early.as_bytes().to_vec())),
        };
        let collected = self
            .shared
            .knobs()
            .attesters
            .cancel(&set, at, order, &req)
            .await;
        let what = format!("cancel order {}", order.0);
        let Some((_, signatures)) = self.quorum(step, true, o.chain(), &what, collected).await?
        else {
            return Ok(None);
        };
        self.cancels.insert(order, signatures.clone());
        Ok(Some(signatures))
    }

    /// What (step, comp) makes of `collected`: a quorum (no longer waiting), or `None` — waiting
    /// (the reason recorded, woken at `chain`'s next block) or refused for good (an alert: the
    /// attesters refuse to `what`).
    async fn quorum(
        &mut self,
        step: StepId,
        comp: bool,
        chain: baton_planner::ChainId,
        what: &str,
        collected: Collected,
    ) -> Result<Option<(Vec<Delivery>, Vec<Bytes>)>> {
        match collected {
            Collected::Quorum {
                deliveries,
                signatures,
            } => {
                self.waiting(step, comp, None).await?;
                Ok(Some((deliveries, signatures)))
            }
            Collected::Waiting(why) => {
                self.wake_on(chain);
                self.waiting(step, comp, Some(why)).await?;
                Ok(None)
            }
            Collected::Refused(why) => {
                self.give_up(format!("the attesters refuse to {what}: {why}"))
                    .await?;
                Ok(None)
            }
        }
    }

    /// Records what (step, comp) waits for, when that changed — once it has waited
    /// [`NOTE_WAIT_AFTER`]: the usual wait of a block or two for the attesters' confirmations is
    /// not worth an event.
    async fn waiting(&mut self, step: StepId, comp: bool, reason: Option<String>) -> Result<()> {
        let st = if comp {
            self.state.comp(step)
        } else {
            self.state.step(step)
        };
        let since = *self
            .waiting_since
            .entry((step, comp))
            .or_insert_with(std::time::Instant::now);
        if reason.is_none() {
            self.waiting_since.remove(&(step, comp));
        }
        if st.waiting == reason || (st.waiting.is_none() && since.elapsed() < NOTE_WAIT_AFTER) {
            return Ok(());
        }
        if let Some(r) = &reason {
            warn!(saga = %self.id, step = step.0, "waiting for attestations: {r}");
        }
        self.append(SagaEvent::Waiting { step, comp, reason }).await
    }
}
