//! Plan steps as chain ops: what a step (or its compensation) sends, and its gas.

use alloy::primitives::{Address, U256};
use alloy::sol_types::SolEvent;
use baton_adapters::contracts::Pool;
use baton_adapters::port::{Fees, Inclusion, Op};
use baton_planner::order::{Call, Output};
use baton_planner::step::{Action, Compensation, Step};
use baton_planner::{Order, OrderId, Plan};

use crate::error::{EngineError, Result};
use crate::saga::attest::Attested;
use crate::saga::input::Planned;

/// Gas limit per op kind: generous bounds for the fixture contracts.
pub fn gas_limit(op: &Op) -> u64 {
    match op {
        Op::Open { .. } => 400_000,
        Op::Fill { calls, .. } => 250_000 + 150_000 * calls.len() as u64,
        Op::Swap { .. } => 200_000,
        _ => 150_000,
    }
}

/// The fees of attempt `attempt` under a fee ceiling: the ceiling as max fee (a priority fee of at
/// most 1 gwei), each replacement 12.5 % above the one before.
pub fn fees(op: &Op, ceiling: U256, attempt: u32) -> Fees {
    let ceiling = u128::try_from(ceiling).unwrap_or(u128::MAX).max(1);
    let mut fees = Fees {
        gas_limit: gas_limit(op),
        max_fee_per_gas: ceiling,
        max_priority_fee_per_gas: ceiling.min(1_000_000_000),
    };
    for _ in 0..attempt {
        fees = fees.bumped();
    }
    fees
}

/// Order `id` of `plan`, with its place among the plan's orders.
pub(crate) fn order(plan: &Plan, id: OrderId) -> Result<(usize, &Order)> {
    plan.orders()
        .iter()
        .enumerate()
        .find(|(_, o)| o.id() == id)
        .ok_or_else(|| EngineError::Corrupt(format!("the plan has no order {}", id.0)))
}

/// The op of an on-chain step, sent by `solver`; a settle sends the quorum's attestation of its
/// order's fill (`attested`).
pub fn forward(
    planned: &Planned,
    step: &Step,
    solver: Address,
    attested: Option<&Attested>,
) -> Result<Op> {
    let plan = &planned.plan;
    Ok(match &step.action {
        Action::Open { order: id, .. } => {
            let (i, o) = order(plan, *id)?;
            Op::Open {
                order: o.order().clone(),
                signature: planned.signatures[i].clone(),
            }
        }
        Action::Swap {
            pool,
            token_in,
            amount_in,
            min_out,
            ..
        } => Op::Swap {
            pool: *pool,
            token_in: token_in.token.0,
            amount_in: amount_in.raw(),
            min_out: min_out.raw(),
            to: solver,
        },
        Action::Fill {
            order,
            output,
            token,
            amount,
            recipient,
            call,
        } => {
            let index =
                u32::try_from(*output).map_err(|_| EngineError::Corrupt("output".into()))?;
            Op::Fill {
                order_id: *order,
                output_index: index,
                output: Output {
                    token: token.token.0.into_word(),
                    amount: amount.raw(),
                    recipient: recipient.into_word(),
                    chainId: U256::from(step.chain.0),
                },
                calls: call
                    .iter()
                    .map(|c| Call {
                        outputIndex: index,
                        target: c.target,
                        data: c.data.clone(),
                    })
                    .collect(),
                fill_deadline: plan.intent().fill_deadline(),
            }
        }
        Action::Settle { order: id } => {
            let a = attested.ok_or_else(|| {
                EngineError::Corrupt(format!("settling order {} unattested", id.0))
            })?;
            Op::Settle {
                order_id: *id,
                filler: a.filler,
                deliveries: a.deliveries.clone(),
                attestations: a.signatures.clone(),
            }
        }
        Action::WaitFinality { .. } | Action::Attest { .. } => {
            return Err(EngineError::Corrupt(format!(
                "step {} has no transaction",
                step.id.0
            )));
        }
    })
}

/// The op that undoes `step`; `done` is the step's own inclusion (a swap back returns what the
/// swap actually produced); a refund sends the quorum's cancel (`cancel`).
pub fn compensation(
    step: &Step,
    done: &Inclusion,
    solver: Address,
    cancel: Option<&[alloy::primitives::Bytes]>,
) -> Result<Option<Op>> {
    let Some(comp) = &step.compensation else {
        return Ok(None);
    };
    Ok(Some(match comp {
        Compensation::Refund { order: id, .. } => Op::RefundWithCancel {
            order_id: *id,
            attestations: cancel
                .ok_or_else(|| {
                    EngineError::Corrupt(format!("refunding order {} without a cancel", id.0))
                })?
                .to_vec(),
        },
        Compensation::SwapBack {
            pool,
            token_in,
            min_out,
            ..
        } => {
            let out = done
                .logs
                .iter()
                .filter(|l| l.address == *pool)
                .find_map(|l| Pool::Swap::decode_log(l).ok())
                .map(|e| e.amountOut)
                .ok_or_else(|| EngineError::Corrupt("the swap left no Swap event".into()))?;
            Op::Swap {
                pool: *pool,
                token_in: token_in.token.0,
                amount_in: out,
                min_out: min_out.raw(),
                to: solver,
            }
        }
    }))
}

/// The input tokens an `openFor` of `order` pulls from its user (none when its data does not
/// decode: the open would revert anyway).
pub fn open_inputs(
    order: &baton_planner::order::GaslessCrossChainOrder,
) -> Vec<alloy::primitives::Address> {
    use alloy::sol_types::SolValue;
    baton_planner::order::BatonOrderData::abi_decode(&order.orderData)
        .map(|d| d.inputs.iter().map(|i| i.token).collect())
        .unwrap_or_default()
}
