//! A plan as text, for the CLI and logs.

use std::fmt::Write;

use crate::amount::Amount;
use crate::ids::Asset;
use crate::plan::Plan;
use crate::snapshot::LiquiditySnapshot;
use crate::step::{Action, Compensation};

/// `amount` of `asset` in whole tokens with its symbol, e.g. `1000.5 USDC`.
pub fn units(snapshot: &LiquiditySnapshot, asset: Asset, amount: Amount) -> String {
    let Some(info) = snapshot.tokens.get(&asset) else {
        return format!("{amount} of {asset}");
    };
    let digits = amount.to_string();
    let d = usize::from(info.decimals);
    let (whole, frac) = if digits.len() > d {
        digits.split_at(digits.len() - d)
    } else {
        ("0", digits.as_str())
    };
    let frac = format!("{frac:0>d$}");
    let frac = frac.trim_end_matches('0');
    let sep = if frac.is_empty() { "" } else { "." };
    format!("{whole}{sep}{frac} {}@{}", info.symbol, asset.chain.0)
}

/// `plan`'s steps, one `action on chain` each, in plan order: what a replay's trial and a resumed
/// saga report as the plan they run.
pub fn step_list(plan: &Plan) -> Vec<String> {
    plan.steps()
        .iter()
        .map(|s| format!("{} on {}", s.action.name(), s.chain))
        .collect()
}

/// A readable account of `plan`: orders, routes, amounts, fees, steps and critical paths.
pub fn describe(plan: &Plan, snapshot: &LiquiditySnapshot) -> String {
    let mut s = String::new();
    let u = |asset, amount| units(snapshot, asset, amount);
    let intent = plan.intent();
    let _ = writeln!(s, "intent {}", intent.id());
    for (k, o) in plan.orders().iter().enumerate() {
        let lead = if k == 0 { " (lead)" } else { "" };
        let _ = writeln!(s, "  order {} on chain {}{lead}", o.id(), o.chain().0);
    }
    for l in plan.legs() {
        let input = intent.inputs()[l.input].asset;
        let mut route = format!(
            "{} → fill {}",
            u(input, l.leg.amount_in),
            u(l.leg.path.entry, l.leg.bridged)
        );
        for (hop, out) in l.leg.path.hops.iter().zip(&l.leg.hop_outs) {
            let Some(pool) = snapshot.pools.get(hop.pool) else {
                continue;
            };
            let _ = write!(
                route,
                " → swap {} → {}",
                pool.address,
                u(swap_output(pool, hop.zero_for_one), *out)
            );
        }
        let _ = writeln!(s, "  leg input {} → output {}: {route}", l.input, l.output);
    }
    for (j, q) in plan.outputs().iter().enumerate() {
        let a = intent.outputs()[j].asset;
        let _ = writeln!(
            s,
            "  output {j}: min {}, expected {}, guaranteed {}",
            u(a, q.min),
            u(a, q.expected),
            u(a, q.guaranteed)
        );
    }
    for (i, input) in intent.inputs().iter().enumerate() {
        let f = plan.fees();
        let _ = writeln!(
            s,
            "  fees on input {i}: solver {}, gas {}",
            u(input.asset, f.solver[i]),
            u(input.asset, f.gas[i])
        );
    }
    let _ = writeln!(s, "  steps:");
    for step in plan.steps() {
        let deps = if step.depends_on.is_empty() {
            "-".to_string()
        } else {
            step.depends_on
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let what = match &step.action {
            Action::Open { inputs, .. } => inputs
                .iter()
                .map(|(a, m)| u(*a, *m))
                .collect::<Vec<_>>()
                .join(" + "),
            Action::WaitFinality { of } => {
                format!("{of} final at {} confirmations", step.timing.confirmations)
            }
            Action::Swap {
                token_in,
                token_out,
                amount_in,
                min_out,
                ..
            } => {
                format!(
                    "{} → ≥ {}",
                    u(*token_in, *amount_in),
                    u(*token_out, *min_out)
                )
            }
            Action::Fill {
                token,
                amount,
                recipient,
                call,
                ..
            } => {
                let call = if call.is_some() { " + call" } else { "" };
                format!("{} to {recipient}{call}", u(*token, *amount))
            }
            Action::Attest { fill } => format!("fill {fill}"),
            Action::Settle { .. } => "repay the solver".to_string(),
        };
        let comp = match &step.compensation {
            Some(Compensation::Refund { .. }) => "  ⟲ refund",
            Some(Compensation::SwapBack { .. }) => "  ⟲ swap back",
            None if step.action.is_pivot() => "  ◆ pivot",
            None => "",
        };
        let _ = writeln!(
            s,
            "    {:<4} {:<13} chain {:<6} after {:<10} {what}{comp}",
            step.id.to_string(),
            step.action.name(),
            step.chain.0,
            deps
        );
    }
    let path = |p: &crate::plan::CriticalPath| {
        let ids = p
            .steps
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("→");
        format!("{ids}: {} blocks, {} s", p.blocks, p.seconds())
    };
    let _ = writeln!(
        s,
        "  critical path to fulfillment {}",
        path(plan.critical_path())
    );
    let _ = writeln!(
        s,
        "  critical path to settlement  {}",
        path(plan.completion_path())
    );
    s
}

/// The token a swap through `pool` in the given direction gives.
fn swap_output(pool: &crate::snapshot::Pool, zero_for_one: bool) -> Asset {
    Asset::new(
        pool.chain,
        if zero_for_one {
            pool.token1
        } else {
            pool.token0
        },
    )
}
