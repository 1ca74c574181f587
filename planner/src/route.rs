//! Routing: the best way to turn one input into one output over the liquidity graph.
//!
//! A route is a fill edge (the user's token escrowed on the origin, the same asset delivered from
//! solver inventory on the output's chain) followed by up to `max_hops` pool swaps on that chain.
//! Swaps cannot happen on the origin: the user's tokens sit in escrow until the solver is repaid.
//! Candidates are the simple paths up to `max_hops` from each fill entry to the output, found by a
//! depth-first search over the graph and valued exactly (integer AMM maths, sequential reserves,
//! solver fee and gas netted out). When one route lacks depth, the input is split across the best
//! route and the best pool-disjoint alternative at the split that maximises the total (the total is
//! concave in the split, so a ternary search finds it); the split is kept only when it beats the best
//! single route.

use std::collections::{BTreeMap, BTreeSet};

use alloy::primitives::U256;
use petgraph::graph::NodeIndex;

use crate::amm;
use crate::amount::{Amount, mul_div};
use crate::error::{InventoryShortfall, PlanError, Result};
use crate::graph::{Edge, LiquidityGraph};
use crate::ids::Asset;

/// Search limits that keep planning time bounded on dense graphs.
const MAX_PATHS: usize = 4_096;
const SPLIT_ITERATIONS: u32 = 40;

/// One pool swap of a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hop {
    /// Index into the snapshot's pools.
    pub pool: usize,
    /// From token0 to token1 when true.
    pub zero_for_one: bool,
}

/// A route's shape: the token the fill enters the destination with, then swaps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    /// The solver-inventory token delivered into the route on the output's chain.
    pub entry: Asset,
    /// The swaps from `entry` to the output token.
    pub hops: Vec<Hop>,
}

/// One leg: part (or all) of one input routed to one output, valued against the market.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leg {
    /// The route.
    pub path: Path,
    /// Input taken from the user for this leg.
    pub amount_in: Amount,
    /// Gas charged to this leg, in the input's token (zero when the token has no native price).
    pub gas_in: Amount,
    /// Gas charged to this leg in wei: (origin chain, destination chain).
    pub gas_wei: (U256, U256),
    /// Solver fee charged to this leg, in the input's token.
    pub fee_in: Amount,
    /// Inventory of `path.entry` the leg spends.
    pub bridged: Amount,
    /// The output of each swap, in order.
    pub hop_outs: Vec<Amount>,
    /// What the leg delivers.
    pub out: Amount,
}

/// Why a leg cannot be valued.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Infeasible {
    /// Gas alone eats the input.
    Gas(Amount),
    /// Not enough inventory of the entry token.
    Capacity { needed: Amount, available: Amount },
    /// A pool gives nothing, or the maths overflows.
    Dry,
}

/// Market state while an intent's legs are planned one after another: reserves as changed by the
/// legs planned so far, and inventory promised so far.
#[derive(Clone, Debug)]
pub(crate) struct Market<'g> {
    graph: &'g LiquidityGraph,
    reserves: BTreeMap<usize, (U256, U256)>,
    promised: BTreeMap<Asset, Amount>,
    max_hops: usize,
    split: bool,
}

/// A leg's costs and shape, fixed before its amount is known.
struct Priced<'p> {
    input: Asset,
    path: &'p Path,
    gas_in: Amount,
    gas_wei: (U256, U256),
    dec_in: u8,
    dec_entry: u8,
}

impl<'g> Market<'g> {
    /// A market at the snapshot's state; `split` allows two-route legs.
    pub(crate) fn new(graph: &'g LiquidityGraph, max_hops: usize, split: bool) -> Self {
        Self {
            graph,
            reserves: BTreeMap::new(),
            promised: BTreeMap::new(),
            max_hops,
            split,
        }
    }

    fn reserves(&self, hop: Hop) -> (U256, U256) {
        let (r0, r1) = self.reserves.get(&hop.pool).copied().unwrap_or_else(|| {
            let p = &self.graph.snapshot().pools[hop.pool];
            (p.reserve0.raw(), p.reserve1.raw())
        });
        if hop.zero_for_one { (r0, r1) } else { (r1, r0) }
    }

    /// Records `leg` as planned: its swaps move reserves, its fill promises inventory.
    pub(crate) fn commit(&mut self, leg: &Leg) -> Result<()> {
        let mut amount = leg.bridged;
        for (hop, out) in leg.path.hops.iter().zip(&leg.hop_outs) {
            let (rin, rout) = self.reserves(*hop);
            let rin = rin.checked_add(amount.raw()).ok_or(PlanError::Overflow {
                what: "pool reserve",
            })?;
            let rout = rout.saturating_sub(out.raw());
            let entry = if hop.zero_for_one {
                (rin, rout)
            } else {
                (rout, rin)
            };
            self.reserves.insert(hop.pool, entry);
            amount = *out;
        }
        let promised = self.promised.entry(leg.path.entry).or_default();
        *promised = promised.checked_add(leg.bridged, "promised inventory")?;
        Ok(())
    }

    /// The best way to route `amount` of `input` to `target`: one leg, or two when splitting
    /// delivers more. `fixed` charges the per-order gas (open, fill, settle) to the first leg.
    pub(crate) fn route(
        &self,
        input: Asset,
        target: Asset,
        amount: Amount,
        fixed: bool,
    ) -> Result<Vec<Leg>> {
        let paths = self.paths(input, target);
        if paths.is_empty() {
            return Err(PlanError::NoRoute {
                from: input,
                to: target,
            });
        }
        let priced: Vec<Priced<'_>> = paths
            .iter()
            .map(|p| self.price(input, p, fixed))
            .collect::<Result<_>>()?;
        // Rank every path at the full amount, ignoring inventory, best first.
        let mut ranked: Vec<(usize, Amount)> = priced
            .iter()
            .enumerate()
            .filter_map(|(i, p)| self.value(p, amount, false).ok().map(|leg| (i, leg.out)))
            .collect();
        ranked.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then(paths[a.0].hops.len().cmp(&paths[b.0].hops.len()))
        });
        let Some(&(top, _)) = ranked.first() else {
            return Err(self.explain(&priced[0], amount, target));
        };
        let best = ranked.iter().find_map(|(i, _)| {
            self.value(&priced[*i], amount, true)
                .ok()
                .map(|leg| (*i, leg))
        });
        let first = best.as_ref().map_or(top, |(i, _)| *i);
        let pools: BTreeSet<usize> = paths[first].hops.iter().map(|h| h.pool).collect();
        let alternative = ranked
            .iter()
            .map(|(i, _)| *i)
            .find(|i| *i != first && paths[*i].hops.iter().all(|h| !pools.contains(&h.pool)));
        let split = match alternative.filter(|_| self.split) {
            Some(second) => {
                let second = self.price(input, &paths[second], false)?;
                self.split(&priced[first], &second, amount)
            }
            None => None,
        };
        match (best, split) {
            (Some((_, single)), Some((a, b)))
                if a.out.checked_add(b.out, "split")? > single.out =>
            {
                Ok(vec![a, b])
            }
            (Some((_, single)), _) => Ok(vec![single]),
            (None, Some((a, b))) => Ok(vec![a, b]),
            (None, None) => Err(self.explain(&priced[first], amount, target)),
        }
    }

    /// Every simple path of fill-then-swaps from `input` to `target`, in a deterministic order.
    fn paths(&self, input: Asset, target: Asset) -> Vec<Path> {
        let mut found = Vec::new();
        let (Some(from), Some(to)) = (self.graph.node(input), self.graph.node(target)) else {
            return found;
        };
        for (entry, edge) in self.graph.edges(from) {
            if edge != Edge::Fill || self.graph.asset(entry).chain != target.chain {
                continue;
            }
            let mut stack = vec![entry];
            let mut hops = Vec::new();
            self.dfs(entry, to, &mut stack, &mut hops, &mut found);
        }
        found
    }

    fn dfs(
        &self,
        at: NodeIndex,
        to: NodeIndex,
        stack: &mut Vec<NodeIndex>,
        hops: &mut Vec<Hop>,
        found: &mut Vec<Path>,
    ) {
        if found.len() >= MAX_PATHS {
            return;
        }
        if at == to {
            found.push(Path {
                entry: self.graph.asset(stack[0]),
                hops: hops.clone(),
            });
            return;
        }
        if hops.len() >= self.max_hops {
            return;
        }
        for (next, edge) in self.graph.edges(at) {
            let Edge::Swap { pool, zero_for_one } = edge else {
                continue;
            };
            if stack.contains(&next) {
                continue;
            }
            stack.push(next);
            hops.push(Hop { pool, zero_for_one });
            self.dfs(next, to, stack, hops, found);
            hops.pop();
            stack.pop();
        }
    }

    /// The fixed costs of routing `input` along `path`.
    fn price<'p>(&self, input: Asset, path: &'p Path, fixed: bool) -> Result<Priced<'p>> {
        let snap = self.graph.snapshot();
        let gas = snap.gas;
        let origin = snap.chain(input.chain)?;
        let dest = snap.chain(path.entry.chain)?;
        let origin_units = if fixed { gas.open + gas.settle } else { 0 };
        let dest_units = gas.swap * path.hops.len() as u64 + if fixed { gas.fill } else { 0 };
        let wei = |units: u64, price: U256| {
            U256::from(units)
                .checked_mul(price)
                .ok_or(PlanError::Overflow { what: "gas cost" })
        };
        let gas_wei = (
            wei(origin_units, origin.gas_price)?,
            wei(dest_units, dest.gas_price)?,
        );
        let total_wei = gas_wei
            .0
            .checked_add(gas_wei.1)
            .ok_or(PlanError::Overflow { what: "gas cost" })?;
        let token_in = snap.token(input)?;
        let gas_in = match token_in.native_price {
            Some(price) => price.mul_div(
                total_wei,
                U256::from(10u64).pow(U256::from(18u8)),
                "gas in input token",
            )?,
            None => Amount::ZERO,
        };
        Ok(Priced {
            input,
            path,
            gas_in,
            gas_wei,
            dec_in: token_in.decimals,
            dec_entry: snap.token(path.entry)?.decimals,
        })
    }

    /// Values `amount` along a priced path against the current market.
    fn value(
        &self,
        p: &Priced<'_>,
        amount: Amount,
        check_inventory: bool,
    ) -> Result<Leg, Infeasible> {
        let snap = self.graph.snapshot();
        let net = amount
            .checked_sub(p.gas_in, "")
            .map_err(|_| Infeasible::Gas(p.gas_in))?;
        if net.is_zero() {
            return Err(Infeasible::Gas(p.gas_in));
        }
        let keep = U256::from(10_000 - snap.solver_fee_bps);
        let after_fee = net
            .mul_div(keep, U256::from(10_000u32), "")
            .map_err(|_| Infeasible::Dry)?;
        let fee_in = net.saturating_sub(after_fee);
        let bridged = convert(after_fee, p.dec_in, p.dec_entry).ok_or(Infeasible::Dry)?;
        if bridged.is_zero() {
            return Err(Infeasible::Dry);
        }
        if check_inventory {
            let available = snap.inventory_of(p.path.entry).saturating_sub(
                self.promised
                    .get(&p.path.entry)
                    .copied()
                    .unwrap_or_default(),
            );
            if bridged > available {
                return Err(Infeasible::Capacity {
                    needed: bridged,
                    available,
                });
            }
        }
        let mut hop_outs = Vec::with_capacity(p.path.hops.len());
        let mut cur = bridged.raw();
        for hop in &p.path.hops {
            let (rin, rout) = self.reserves(*hop);
            let fee = snap.pools[hop.pool].fee_bps;
            cur = amm::amount_out(cur, rin, rout, fee).ok_or(Infeasible::Dry)?;
            if cur.is_zero() {
                return Err(Infeasible::Dry);
            }
            hop_outs.push(Amount::new(cur));
        }
        Ok(Leg {
            path: p.path.clone(),
            amount_in: amount,
            gas_in: p.gas_in,
            gas_wei: p.gas_wei,
            fee_in,
            bridged,
            hop_outs,
            out: Amount::new(cur),
        })
    }

    /// The best split of `amount` between `a` (which carries the fixed gas) and `b`, if any split
    /// is feasible.
    fn split(&self, a: &Priced<'_>, b: &Priced<'_>, amount: Amount) -> Option<(Leg, Leg)> {
        let total = amount.raw();
        let cap_a = self.max_input(a, amount);
        let cap_b = self.max_input(b, amount);
        // x goes to `a`, total − x to `b`.
        let lo = (a.gas_in.raw() + U256::from(1u8)).max(total.saturating_sub(cap_b.raw()));
        let hi = cap_a
            .raw()
            .min(total.saturating_sub(b.gas_in.raw() + U256::from(1u8)));
        if lo > hi {
            return None;
        }
        let eval = |x: U256| -> Option<(Leg, Leg)> {
            let la = self.value(a, Amount::new(x), false).ok()?;
            let lb = self.value(b, Amount::new(total - x), false).ok()?;
            Some((la, lb))
        };
        let score = |x: U256| eval(x).map(|(la, lb)| la.out.raw().saturating_add(lb.out.raw()));
        let (mut lo, mut hi) = (lo, hi);
        for _ in 0..SPLIT_ITERATIONS {
            if hi - lo < U256::from(3u8) {
                break;
            }
            let third = (hi - lo) / U256::from(3u8);
            let (m1, m2) = (lo + third, hi - third);
            if score(m1) < score(m2) {
                lo = m1 + U256::from(1u8);
            } else {
                hi = m2;
            }
        }
        let mid = lo + (hi - lo) / U256::from(2u8);
        let best = [lo, mid, hi].into_iter().max_by_key(|x| score(*x))?;
        let (la, lb) = eval(best)?;
        self.fits_inventory(&[&la, &lb]).then_some((la, lb))
    }

    /// The largest input up to `limit` whose fill fits the remaining inventory along `p`.
    fn max_input(&self, p: &Priced<'_>, limit: Amount) -> Amount {
        let fits = |x: U256| {
            !matches!(
                self.value(p, Amount::new(x), true),
                Err(Infeasible::Capacity { .. })
            )
        };
        if fits(limit.raw()) {
            return limit;
        }
        let (mut lo, mut hi) = (U256::ZERO, limit.raw());
        while hi - lo > U256::from(1u8) {
            let mid = lo + (hi - lo) / U256::from(2u8);
            if fits(mid) { lo = mid } else { hi = mid }
        }
        Amount::new(lo)
    }

    /// Whether the legs together fit the remaining inventory of their entry tokens.
    fn fits_inventory(&self, legs: &[&Leg]) -> bool {
        let snap = self.graph.snapshot();
        let mut need: BTreeMap<Asset, U256> = BTreeMap::new();
        for leg in legs {
            *need.entry(leg.path.entry).or_default() += leg.bridged.raw();
        }
        need.iter().all(|(asset, n)| {
            let used = self.promised.get(asset).copied().unwrap_or_default().raw();
            used.saturating_add(*n) <= snap.inventory_of(*asset).raw()
        })
    }

    /// The error that says why `amount` cannot go along `p`, with what would work.
    fn explain(&self, p: &Priced<'_>, amount: Amount, target: Asset) -> PlanError {
        match self.value(p, amount, true) {
            Err(Infeasible::Gas(gas)) => PlanError::AmountTooSmall { input: 0, gas },
            Err(Infeasible::Capacity { needed, available }) => {
                PlanError::InsufficientInventory(Box::new(InventoryShortfall {
                    asset: p.path.entry,
                    needed,
                    available,
                    max_input: self.max_input(p, amount),
                }))
            }
            _ => PlanError::NoRoute {
                from: p.input,
                to: target,
            },
        }
    }
}

/// Converts an amount between tokens of one asset with different decimals, rounding down.
fn convert(amount: Amount, from_decimals: u8, to_decimals: u8) -> Option<Amount> {
    let ten = U256::from(10u8);
    let raw = match from_decimals.cmp(&to_decimals) {
        std::cmp::Ordering::Equal => amount.raw(),
        std::cmp::Ordering::Less => amount
            .raw()
            .checked_mul(ten.pow(U256::from(to_decimals - from_decimals)))?,
        std::cmp::Ordering::Greater => mul_div(
            amount.raw(),
            U256::from(1u8),
            ten.pow(U256::from(from_decimals - to_decimals)),
        )?,
    };
    Some(Amount::new(raw))
}
