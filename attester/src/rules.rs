//! What makes a fill or a cancel attestable, as functions of the request and of what the chains
//! say. The service reads the chains; these decide.

use alloy::primitives::Address;
use baton_adapters::abi::calls_hash;
use baton_adapters::attestation::Delivery;
use baton_adapters::port::FillEvidence;
use baton_planner::order::{BatonOrderData, GaslessCrossChainOrder, Output};
use baton_planner::{ChainId, Order, OrderId};

use crate::wire::Refusal;

/// A refusal with its sentence.
pub type Refused = (Refusal, String);

/// The order of a request, checked: it decodes, and so does the order its fills were made
/// against (the same intent, user, outputs and calls).
#[derive(Clone, Debug)]
pub struct Checked {
    /// The order whose escrow is at stake.
    pub order: Order,
    /// Its decoded data.
    pub data: BatonOrderData,
    /// The order the fills are made against (`order` itself unless the request names another).
    pub filled_as: OrderId,
}

impl Checked {
    /// Checks `order` and `filled_as` (see [`crate::wire::FillRequest::filled_as`]).
    pub fn new(
        order: &GaslessCrossChainOrder,
        filled_as: Option<&GaslessCrossChainOrder>,
    ) -> Result<Self, Refused> {
        let (order, data) = decode(order)?;
        let filled_as = match filled_as {
            None => order.id(),
            Some(lead) => {
                let (lead, lead_data) = decode(lead)?;
                let same = lead.order().user == order.order().user
                    && lead_data.intentId == data.intentId
                    && lead_data.outputs == data.outputs
                    && lead_data.calls == data.calls;
                if !same {
                    return Err((
                        Refusal::BadRequest,
                        "filled_as is not an order of the same intent (user, intent, outputs and \
                         calls must be the order's)"
                            .into(),
                    ));
                }
                lead.id()
            }
        };
        Ok(Self {
            order,
            data,
            filled_as,
        })
    }

    /// The origin chain.
    pub fn chain(&self) -> ChainId {
        self.order.chain()
    }

    /// The destination chains of the outputs, each once.
    pub fn destinations(&self) -> Result<Vec<ChainId>, Refused> {
        let mut out = Vec::new();
        for o in &self.data.outputs {
            let chain = output_chain(o)?;
            if !out.contains(&chain) {
                out.push(chain);
            }
        }
        Ok(out)
    }
}

fn decode(order: &GaslessCrossChainOrder) -> Result<(Order, BatonOrderData), Refused> {
    let checked = Order::from_signed(order.clone()).ok_or_else(|| {
        (
            Refusal::BadRequest,
            "the order's originChainId is not a chain id".to_string(),
        )
    })?;
    let data = checked.data().ok_or_else(|| {
        (
            Refusal::BadRequest,
            "the order's orderData does not decode as baton's order data".to_string(),
        )
    })?;
    if order.orderDataType != baton_planner::order::order_data_type() {
        return Err((
            Refusal::BadRequest,
            "the order's orderDataType is not baton's".into(),
        ));
    }
    if data.outputs.is_empty() {
        return Err((Refusal::BadRequest, "the order has no outputs".into()));
    }
    Ok((checked, data))
}

/// An output's destination chain.
pub fn output_chain(o: &Output) -> Result<ChainId, Refused> {
    u64::try_from(o.chainId).map(ChainId).map_err(|_| {
        (
            Refusal::BadRequest,
            "an output's chainId is not a chain id".to_string(),
        )
    })
}

/// Checks `fill` (the destination settler's `Filled` event for output `index`) against the
/// order's output and calls, and the filler asked about; the delivery it vouches for.
pub fn delivery(
    data: &BatonOrderData,
    index: u32,
    settler: Address,
    fill: &FillEvidence,
    filler: Address,
) -> Result<Delivery, Refused> {
    let output = &data.outputs[index as usize];
    let chain = output_chain(output)?;
    let calls: Vec<_> = data
        .calls
        .iter()
        .filter(|c| c.outputIndex == index)
        .cloned()
        .collect();
    let wrong = |what: String| Err((Refusal::Mismatch, format!("output {index}: {what}")));
    if fill.filler != filler {
        return wrong(format!("filled by {}, not by {filler}", fill.filler));
    }
    if fill.token.into_word() != output.token {
        return wrong(format!(
            "delivered token {}, the order names another",
            fill.token
        ));
    }
    if fill.recipient.into_word() != output.recipient {
        return wrong(format!(
            "delivered to {}, the order names another recipient",
            fill.recipient
        ));
    }
    if fill.amount < output.amount {
        return wrong(format!(
            "delivered {}, less than the order's {}",
            fill.amount, output.amount
        ));
    }
    if fill.calls_hash != calls_hash(&calls) {
        return wrong("the calls that ran are not the order's".into());
    }
    Ok(Delivery {
        output_index: index,
        chain,
        settler,
        token: fill.token,
        amount: fill.amount,
        recipient: fill.recipient,
    })
}

/// Whether a block `depth` deep (1: the head itself) is final by a rule of `confirmations`.
pub fn is_final(head: u64, block: u64, confirmations: u64) -> bool {
    head.saturating_sub(block) + 1 >= confirmations.max(1)
}

/// The fill deadline has passed on a destination whose final block has `timestamp`.
pub fn deadline_passed(fill_deadline: u32, final_timestamp: u64) -> bool {
    final_timestamp > u64::from(fill_deadline)
}
