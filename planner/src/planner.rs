//! Planning: an intent and a liquidity graph in, a checked [`Plan`] out.

use std::collections::BTreeMap;

use alloy::primitives::U256;

use crate::amount::Amount;
use crate::error::{PlanError, Result};
use crate::graph::LiquidityGraph;
use crate::ids::{Asset, StepId};
use crate::intent::Intent;
use crate::plan::{Plan, PlannedLeg};
use crate::route::{Leg, Market};
use crate::snapshot::{ChainConditions, LiquiditySnapshot};
use crate::step::{Action, Compensation, Step, Timing};

/// Parts per billion: the unit of an output's share of every input.
const PPB: u64 = 1_000_000_000;

/// Knobs of the planner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlannerConfig {
    /// Most pool swaps in one route.
    pub max_hops: usize,
    /// How far a swap may fall below its expected output before it reverts, in basis points. The
    /// bound shrinks where needed so the guaranteed delivery never drops below the user's minimum.
    pub slippage_bps: u32,
    /// A step waits while its chain's gas price is above this percentage of the snapshot's price.
    pub fee_ceiling_pct: u32,
    /// Whether a leg may be split across two routes when that delivers more.
    pub split: bool,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        Self {
            max_hops: 3,
            slippage_bps: 50,
            fee_ceiling_pct: 300,
            split: true,
        }
    }
}

/// Plans `intent` over `graph`: routes every input to the outputs, builds the step DAG and checks
/// it (see [`Plan::new`] for the rules). Pure: the same intent, graph and config give the same plan.
///
/// With several outputs, each output gets the same share of every input; the shares are the least
/// that meet each minimum, scaled up together to use the whole input.
pub fn plan(graph: &LiquidityGraph, intent: &Intent, config: &PlannerConfig) -> Result<Plan> {
    let snap = graph.snapshot();
    check_known(snap, intent)?;
    let now = snap.timestamp;
    for (which, deadline) in [
        ("open", intent.open_deadline()),
        ("fill", intent.fill_deadline()),
    ] {
        if u64::from(deadline) <= now {
            return Err(PlanError::DeadlinePassed {
                which,
                deadline: deadline.into(),
                now,
            });
        }
    }
    let orders = intent.orders(|c| snap.chains.get(&c).map(|c| c.origin_settler))?;
    let shares = shares(graph, intent, config)?;
    let legs = route_legs(graph, intent, config, &shares)?;
    let steps = build_steps(snap, intent, config, &orders, &legs)?;
    let plan = Plan::new(intent.clone(), orders, steps, legs, snap)?;
    let needed_secs = plan.critical_path().seconds();
    if now.saturating_add(needed_secs) > u64::from(intent.fill_deadline()) {
        return Err(PlanError::DeadlineTooSoon {
            deadline: intent.fill_deadline().into(),
            now,
            needed_secs,
        });
    }
    Ok(plan)
}

fn check_known(snap: &LiquiditySnapshot, intent: &Intent) -> Result<()> {
    for asset in intent
        .inputs()
        .iter()
        .map(|i| i.asset)
        .chain(intent.outputs().iter().map(|o| o.asset))
    {
        snap.token(asset)?;
    }
    Ok(())
}

/// Each output's share of every input, in parts per billion, summing to exactly one billion.
fn shares(graph: &LiquidityGraph, intent: &Intent, config: &PlannerConfig) -> Result<Vec<u64>> {
    let outputs = intent.outputs();
    if outputs.len() == 1 {
        return Ok(vec![PPB]);
    }
    let market = Market::new(graph, config.max_hops, config.split);
    // What output `j` receives when it gets `share` ppb of every input (each input valued alone).
    let delivered = |j: usize, share: u64| -> Result<Amount> {
        let mut total = Amount::ZERO;
        for input in intent.inputs() {
            let part = input
                .amount
                .mul_div(U256::from(share), U256::from(PPB), "input share")?;
            if part.is_zero() {
                continue;
            }
            match market.route(input.asset, outputs[j].asset, part, true) {
                Ok(legs) => {
                    total = total.checked_add(
                        Amount::sum(legs.iter().map(|l| l.out), "output")?,
                        "output",
                    )?;
                }
                Err(PlanError::AmountTooSmall { .. } | PlanError::InsufficientInventory(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    };
    let mut least = Vec::with_capacity(outputs.len());
    for (j, out) in outputs.iter().enumerate() {
        let (mut lo, mut hi) = (0u64, PPB);
        let best = delivered(j, PPB)?;
        if best < out.min_amount {
            return Err(PlanError::InsufficientLiquidity {
                output: j,
                min: out.min_amount,
                best,
            });
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if delivered(j, mid)? >= out.min_amount {
                hi = mid
            } else {
                lo = mid
            }
        }
        least.push(hi);
    }
    let sum: u64 = least.iter().sum();
    let mut shares: Vec<u64> = least
        .iter()
        .map(|s| (u128::from(*s) * u128::from(PPB) / u128::from(sum)) as u64)
        .collect();
    let assigned: u64 = shares.iter().sum();
    if let Some(last) = shares.last_mut() {
        *last += PPB - assigned;
    }
    Ok(shares)
}

/// Routes every (input, output) part in a fixed order over one market, so later legs see the
/// reserves and inventory earlier legs use. Each input is split exactly: the last output takes the
/// rounding remainder.
fn route_legs(
    graph: &LiquidityGraph,
    intent: &Intent,
    config: &PlannerConfig,
    shares: &[u64],
) -> Result<Vec<PlannedLeg>> {
    let mut market = Market::new(graph, config.max_hops, config.split);
    let mut planned = Vec::new();
    for (i, input) in intent.inputs().iter().enumerate() {
        let mut left = input.amount;
        for (j, output) in intent.outputs().iter().enumerate() {
            let part = if j + 1 == shares.len() {
                left
            } else {
                input
                    .amount
                    .mul_div(U256::from(shares[j]), U256::from(PPB), "input share")?
            };
            left = left.checked_sub(part, "input remainder")?;
            if part.is_zero() {
                continue;
            }
            let legs = market
                .route(input.asset, output.asset, part, true)
                .map_err(|e| match e {
                    PlanError::AmountTooSmall { gas, .. } => {
                        PlanError::AmountTooSmall { input: i, gas }
                    }
                    other => other,
                })?;
            for leg in legs {
                market.commit(&leg)?;
                planned.push(PlannedLeg {
                    input: i,
                    output: j,
                    leg,
                });
            }
        }
    }
    for (j, out) in intent.outputs().iter().enumerate() {
        let best = Amount::sum(
            planned.iter().filter(|l| l.output == j).map(|l| l.leg.out),
            "output",
        )?;
        if best < out.min_amount {
            return Err(PlanError::InsufficientLiquidity {
                output: j,
                min: out.min_amount,
                best,
            });
        }
    }
    Ok(planned)
}

/// Each leg's guaranteed delivery: direct legs deliver exactly; swap legs share what is left of the
/// guaranteed total `max(min, expected − slippage on the swapped part)` in proportion to their
/// expected output.
fn guaranteed(
    legs: &[&PlannedLeg],
    min: Amount,
    slippage_bps: u32,
) -> Result<(Amount, Vec<Amount>)> {
    let expected = Amount::sum(legs.iter().map(|l| l.leg.out), "expected output")?;
    let direct = Amount::sum(
        legs.iter()
            .filter(|l| l.leg.path.hops.is_empty())
            .map(|l| l.leg.out),
        "direct output",
    )?;
    let swapped = expected.checked_sub(direct, "swapped output")?;
    let slip = swapped.mul_div(U256::from(slippage_bps), U256::from(10_000u32), "slippage")?;
    let total = expected.saturating_sub(slip).max(min);
    // What the swap legs must deliver between them; the last swap leg takes the rounding remainder.
    let swap_share = total.checked_sub(direct, "guaranteed swapped")?;
    let mut left = swap_share;
    let last_swap = legs.iter().rposition(|l| !l.leg.path.hops.is_empty());
    let mut mins = Vec::with_capacity(legs.len());
    for (k, l) in legs.iter().enumerate() {
        let m = if l.leg.path.hops.is_empty() {
            l.leg.out
        } else {
            let m = if Some(k) == last_swap {
                left
            } else {
                l.leg
                    .out
                    .mul_div(swap_share.raw(), swapped.raw(), "leg minimum")?
            };
            left = left.checked_sub(m, "leg minimum")?;
            m
        };
        mins.push(m);
    }
    Ok((total, mins))
}

struct StepsBuilder {
    steps: Vec<Step>,
}

impl StepsBuilder {
    fn push(
        &mut self,
        chain: crate::ids::ChainId,
        action: Action,
        depends_on: Vec<StepId>,
        timing: Timing,
        compensation: Option<Compensation>,
    ) -> StepId {
        let id = StepId(self.steps.len() as u32);
        self.steps.push(Step {
            id,
            chain,
            action,
            depends_on,
            timing,
            compensation,
        });
        id
    }
}

fn on_chain(
    c: &ChainConditions,
    config: &PlannerConfig,
    confirmations: u32,
    blocks: u64,
) -> Result<Timing> {
    Ok(Timing {
        confirmations,
        fee_ceiling: Amount::new(c.gas_price)
            .mul_div(
                U256::from(config.fee_ceiling_pct),
                U256::from(100u8),
                "fee ceiling",
            )?
            .raw(),
        earliest_start: None,
        blocks,
        latency_ms: 0,
    })
}

/// The value of `amounts` in wei of their chain's native coin, from the tokens' native prices;
/// `None` when a token has none (or is unknown).
fn native_value(
    snap: &LiquiditySnapshot,
    amounts: impl IntoIterator<Item = (Asset, Amount)>,
) -> Option<U256> {
    let wei_per_coin = U256::from(10u64).pow(U256::from(18u8));
    let mut total = U256::ZERO;
    for (asset, amount) in amounts {
        let price = snap.token(asset).ok()?.native_price?.raw();
        if price.is_zero() {
            return None;
        }
        total = total.saturating_add(amount.raw().saturating_mul(wei_per_coin) / price);
    }
    Some(total)
}

/// The DAG: per order an open and its finality wait; per output its swaps (which may start once
/// the open is included: they spend solver inventory and can be swapped back), its fill (the pivot,
/// after every open is final) and the fill's attestation; per order a settle after every
/// attestation.
fn build_steps(
    snap: &LiquiditySnapshot,
    intent: &Intent,
    config: &PlannerConfig,
    orders: &[crate::order::Order],
    legs: &[PlannedLeg],
) -> Result<Vec<Step>> {
    let mut b = StepsBuilder { steps: Vec::new() };
    let mut opens = BTreeMap::new();
    let mut finals = Vec::new();
    // Per order: the confirmations its escrow's value asks for (its finality wait, its settle).
    let mut escrow_confirmations = Vec::with_capacity(orders.len());
    for order in orders {
        let c = snap.chain(order.chain())?;
        let inputs: Vec<(Asset, Amount)> = intent
            .inputs()
            .iter()
            .filter(|i| i.asset.chain == order.chain())
            .map(|i| (i.asset, i.amount))
            .collect();
        let confirmations = c.confirmations_for(native_value(snap, inputs.iter().copied()));
        escrow_confirmations.push(confirmations);
        let refund = Compensation::Refund {
            order: order.id(),
            not_before: intent.fill_deadline().into(),
        };
        let open = b.push(
            order.chain(),
            Action::Open {
                order: order.id(),
                inputs,
            },
            vec![],
            on_chain(c, config, 0, 1)?,
            Some(refund),
        );
        let fin = b.push(
            order.chain(),
            Action::WaitFinality { of: open },
            vec![open],
            Timing {
                fee_ceiling: U256::ZERO,
                // The open's block is its first confirmation.
                ..on_chain(
                    c,
                    config,
                    confirmations,
                    u64::from(confirmations.saturating_sub(1)),
                )?
            },
            None,
        );
        opens.insert(order.chain(), open);
        finals.push(fin);
    }
    let lead = orders
        .first()
        .map(|o| o.id())
        .ok_or(PlanError::InvalidIntent {
            reason: "no inputs".into(),
        })?;
    let mut attests = Vec::new();
    for (j, output) in intent.outputs().iter().enumerate() {
        let dest = snap.chain(output.asset.chain)?;
        let of_j: Vec<&PlannedLeg> = legs.iter().filter(|l| l.output == j).collect();
        let (amount, mins) = guaranteed(&of_j, output.min_amount, config.slippage_bps)?;
        let mut fill_deps = finals.clone();
        for (l, leg_min) in of_j.iter().zip(mins) {
            let origin = intent.inputs()[l.input].asset.chain;
            let mut prev = opens[&origin];
            let last = swap_steps(&mut b, snap, config, &l.leg, leg_min, &mut prev)?;
            if last {
                fill_deps.push(prev);
            }
        }
        let fill = b.push(
            output.asset.chain,
            Action::Fill {
                order: lead,
                output: j,
                token: output.asset,
                amount,
                recipient: output.recipient,
                call: output.call.clone(),
            },
            fill_deps,
            {
                let confirmations =
                    dest.confirmations_for(native_value(snap, [(output.asset, amount)]));
                on_chain(dest, config, confirmations, u64::from(confirmations.max(1)))?
            },
            None,
        );
        let latency_s = orders
            .iter()
            .map(|o| snap.route_latency(output.asset.chain, o.chain()))
            .max()
            .unwrap_or(0);
        let attest = b.push(
            output.asset.chain,
            Action::Attest { fill },
            vec![fill],
            Timing {
                confirmations: 0,
                fee_ceiling: U256::ZERO,
                earliest_start: None,
                blocks: 0,
                latency_ms: latency_s.saturating_mul(1000),
            },
            None,
        );
        attests.push(attest);
    }
    for (order, confirmations) in orders.iter().zip(escrow_confirmations) {
        let c = snap.chain(order.chain())?;
        b.push(
            order.chain(),
            Action::Settle { order: order.id() },
            attests.clone(),
            on_chain(c, config, confirmations, u64::from(confirmations.max(1)))?,
            None,
        );
    }
    Ok(b.steps)
}

/// Pushes one swap step per hop of `leg`, chained from `*prev`; returns whether any was pushed.
fn swap_steps(
    b: &mut StepsBuilder,
    snap: &LiquiditySnapshot,
    config: &PlannerConfig,
    leg: &Leg,
    leg_min: Amount,
    prev: &mut StepId,
) -> Result<bool> {
    let dest = snap.chain(leg.path.entry.chain)?;
    let mut amount_in = leg.bridged;
    let keep = |bps: u32| U256::from(10_000u32.saturating_sub(bps));
    let bps = U256::from(10_000u32);
    for (k, (hop, out)) in leg.path.hops.iter().zip(&leg.hop_outs).enumerate() {
        let pool = &snap.pools[hop.pool];
        let (t_in, t_out) = if hop.zero_for_one {
            (pool.token0, pool.token1)
        } else {
            (pool.token1, pool.token0)
        };
        let (token_in, token_out) = (Asset::new(pool.chain, t_in), Asset::new(pool.chain, t_out));
        let min_out = if k + 1 == leg.path.hops.len() {
            leg_min
        } else {
            out.mul_div(keep(config.slippage_bps), bps, "swap minimum")?
        };
        let back_min = amount_in
            .mul_div(keep(pool.fee_bps), bps, "swap-back minimum")?
            .mul_div(keep(pool.fee_bps), bps, "swap-back minimum")?
            .mul_div(keep(config.slippage_bps), bps, "swap-back minimum")?;
        *prev = b.push(
            pool.chain,
            Action::Swap {
                pool: pool.address,
                token_in,
                token_out,
                amount_in,
                expected_out: *out,
                min_out,
            },
            vec![*prev],
            on_chain(dest, config, 0, 1)?,
            Some(Compensation::SwapBack {
                pool: pool.address,
                token_in: token_out,
                token_out: token_in,
                min_out: back_min,
            }),
        );
        amount_in = *out;
    }
    Ok(!leg.path.hops.is_empty())
}
