//! The checked plan: a DAG of steps with its routes, expected output, fees and critical path.

use std::collections::BTreeMap;

use alloy::primitives::U256;
use petgraph::algo::toposort;
use petgraph::graph::DiGraph;

use crate::amount::Amount;
use crate::error::{PlanError, Result};
use crate::ids::{Asset, ChainId, StepId};
use crate::intent::Intent;
use crate::order::Order;
use crate::route::Leg;
use crate::snapshot::LiquiditySnapshot;
use crate::step::{Action, Step};

/// A leg of the plan: part of input `input` routed to output `output`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedLeg {
    /// The input's index in the intent.
    pub input: usize,
    /// The output's index in the intent.
    pub output: usize,
    /// The route and its valuation.
    pub leg: Leg,
}

/// What the plan promises for one output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputQuote {
    /// The user's minimum.
    pub min: Amount,
    /// What the routes deliver at the snapshot's reserves, net of fees and gas.
    pub expected: Amount,
    /// What the fill delivers: at least `min`, at most `expected` (the slippage bound).
    pub guaranteed: Amount,
}

/// What the plan costs the user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fees {
    /// Solver fee per input, in the input's token.
    pub solver: Vec<Amount>,
    /// Gas per input, in the input's token (zero where the token has no native price).
    pub gas: Vec<Amount>,
    /// Gas per chain, in wei.
    pub gas_wei: BTreeMap<ChainId, U256>,
}

/// The longest chain of dependent steps, and how long it takes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CriticalPath {
    /// The steps, first to last.
    pub steps: Vec<StepId>,
    /// Blocks on the path (each step's blocks on its own chain, confirmations included).
    pub blocks: u64,
    /// Expected milliseconds: blocks × their chains' block times, plus off-chain latency.
    pub millis: u64,
    /// When each step of [`CriticalPath::steps`] starts, milliseconds after the first one does.
    pub starts_ms: Vec<u64>,
}

impl CriticalPath {
    /// Whole seconds, rounded up.
    pub fn seconds(&self) -> u64 {
        self.millis.div_ceil(1000)
    }
}

/// A checked plan. Its fields are private; [`Plan::new`] is the only way to build one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    intent: Intent,
    orders: Vec<Order>,
    steps: Vec<Step>,
    legs: Vec<PlannedLeg>,
    outputs: Vec<OutputQuote>,
    inventory: BTreeMap<Asset, Amount>,
    fees: Fees,
    order: Vec<StepId>,
    fulfillment: CriticalPath,
    completion: CriticalPath,
}

impl Plan {
    /// Checks `steps` and `legs` against `intent` and `snapshot` and builds the plan.
    ///
    /// This type enforces the following rules:
    /// - every step's id is its index; every dependency names another, existing step; every step's
    ///   chain is in the snapshot;
    /// - the steps form a DAG (no cycle), so a topological order exists;
    /// - every step that has an effect and that a pivot (a fill) depends on, directly or not, has a
    ///   compensation; a pivot has none;
    /// - every order of the intent is opened by exactly one step;
    /// - every output is covered: exactly one fill delivers it, to its recipient, in its token, at
    ///   least its minimum and at most what its legs are expected to deliver;
    /// - inputs are conserved: each input's legs take exactly the input's amount;
    /// - inventory promised (the fills' draw on each token) is at most the snapshot's inventory.
    pub fn new(
        intent: Intent,
        orders: Vec<Order>,
        steps: Vec<Step>,
        legs: Vec<PlannedLeg>,
        snapshot: &LiquiditySnapshot,
    ) -> Result<Self> {
        let order = check_dag(&steps, snapshot)?;
        check_compensations(&steps, &order)?;
        check_opens(&steps, &orders)?;
        let outputs = check_outputs(&intent, &steps, &legs)?;
        check_inputs(&intent, &legs)?;
        let inventory = check_inventory(&legs, snapshot)?;
        let fees = fees(&intent, &legs)?;
        let fulfillment = critical_path(&steps, &order, snapshot, |s| s.action.is_pivot());
        let completion = critical_path(&steps, &order, snapshot, |_| true);
        Ok(Self {
            intent,
            orders,
            steps,
            legs,
            outputs,
            inventory,
            fees,
            order,
            fulfillment,
            completion,
        })
    }

    /// The intent planned.
    pub fn intent(&self) -> &Intent {
        &self.intent
    }
    /// One ERC-7683 order per origin chain; the first is the lead.
    pub fn orders(&self) -> &[Order] {
        &self.orders
    }
    /// The steps, indexed by [`StepId`].
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
    /// The step with id `id`.
    pub fn step(&self, id: StepId) -> Option<&Step> {
        self.steps.get(id.index())
    }
    /// The routes.
    pub fn legs(&self) -> &[PlannedLeg] {
        &self.legs
    }
    /// Per output: minimum, expected and guaranteed amounts.
    pub fn outputs(&self) -> &[OutputQuote] {
        &self.outputs
    }
    /// Inventory promised per token.
    pub fn inventory(&self) -> &BTreeMap<Asset, Amount> {
        &self.inventory
    }
    /// Fees and gas.
    pub fn fees(&self) -> &Fees {
        &self.fees
    }
    /// A topological order of the steps (dependencies first).
    pub fn topological_order(&self) -> &[StepId] {
        &self.order
    }
    /// The critical path to the user's outcome: every fill final. The floor the engine is
    /// measured against, and the ETA.
    pub fn critical_path(&self) -> &CriticalPath {
        &self.fulfillment
    }
    /// The critical path to the end of the saga: the solver repaid on every origin.
    pub fn completion_path(&self) -> &CriticalPath {
        &self.completion
    }
}

fn invalid(step: usize, rule: impl Into<String>) -> PlanError {
    PlanError::InvalidPlan {
        step: StepId(step as u32),
        rule: rule.into(),
    }
}

fn check_dag(steps: &[Step], snapshot: &LiquiditySnapshot) -> Result<Vec<StepId>> {
    let mut g = DiGraph::<usize, ()>::with_capacity(steps.len(), steps.len() * 2);
    let nodes: Vec<_> = (0..steps.len()).map(|i| g.add_node(i)).collect();
    for (i, s) in steps.iter().enumerate() {
        if s.id.index() != i {
            return Err(invalid(
                i,
                format!("its id is {} but it sits at index {i}", s.id),
            ));
        }
        if !snapshot.chains.contains_key(&s.chain) {
            return Err(invalid(i, format!("it acts on unknown {}", s.chain)));
        }
        for d in &s.depends_on {
            if d.index() >= steps.len() || d.index() == i {
                return Err(invalid(
                    i,
                    format!("it depends on {d}, which is not another step"),
                ));
            }
            g.add_edge(nodes[d.index()], nodes[i], ());
        }
    }
    let order = toposort(&g, None)
        .map_err(|cycle| invalid(g[cycle.node_id()], "it is on a dependency cycle"))?;
    Ok(order.into_iter().map(|n| StepId(g[n] as u32)).collect())
}

/// Marks the ancestors of every pivot, then requires a compensation on each that has an effect.
fn check_compensations(steps: &[Step], order: &[StepId]) -> Result<()> {
    let mut before_pivot = vec![false; steps.len()];
    for id in order.iter().rev() {
        let s = &steps[id.index()];
        if s.action.is_pivot() || before_pivot[id.index()] {
            for d in &s.depends_on {
                before_pivot[d.index()] = true;
            }
        }
    }
    for (i, s) in steps.iter().enumerate() {
        if s.action.is_pivot() && s.compensation.is_some() {
            return Err(invalid(i, "a pivot cannot be compensated"));
        }
        if before_pivot[i] && s.action.has_effect() && s.compensation.is_none() {
            return Err(invalid(
                i,
                format!(
                    "its {} comes before the pivot and has no compensation",
                    s.action.name()
                ),
            ));
        }
    }
    Ok(())
}

fn check_opens(steps: &[Step], orders: &[Order]) -> Result<()> {
    for o in orders {
        let opens = steps
            .iter()
            .filter(|s| matches!(&s.action, Action::Open { order, .. } if *order == o.id()))
            .count();
        if opens != 1 {
            return Err(invalid(
                0,
                format!("order {} is opened by {opens} steps", o.id()),
            ));
        }
    }
    Ok(())
}

fn check_outputs(intent: &Intent, steps: &[Step], legs: &[PlannedLeg]) -> Result<Vec<OutputQuote>> {
    let mut quotes = Vec::with_capacity(intent.outputs().len());
    for (j, out) in intent.outputs().iter().enumerate() {
        let fills: Vec<(usize, &Step)> = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.action, Action::Fill { output, .. } if output == j))
            .collect();
        let [(i, fill)] = fills.as_slice() else {
            return Err(invalid(
                0,
                format!("output {j} is filled by {} steps, not one", fills.len()),
            ));
        };
        let Action::Fill {
            token,
            amount,
            recipient,
            ..
        } = &fill.action
        else {
            unreachable!("filtered on Fill");
        };
        let expected = Amount::sum(
            legs.iter().filter(|l| l.output == j).map(|l| l.leg.out),
            "expected output",
        )?;
        if *token != out.asset || *recipient != out.recipient || fill.chain != out.asset.chain {
            return Err(invalid(
                *i,
                format!("it does not deliver output {j}'s token to its recipient"),
            ));
        }
        if *amount < out.min_amount {
            return Err(invalid(
                *i,
                format!(
                    "it delivers {amount}, below output {j}'s minimum {}",
                    out.min_amount
                ),
            ));
        }
        if *amount > expected {
            return Err(invalid(
                *i,
                format!("it delivers {amount}, more than its routes bring ({expected})"),
            ));
        }
        quotes.push(OutputQuote {
            min: out.min_amount,
            expected,
            guaranteed: *amount,
        });
    }
    if let Some((i, _)) = steps.iter().enumerate().find(
        |(_, s)| matches!(s.action, Action::Fill { output, .. } if output >= intent.outputs().len()),
    ) {
        return Err(invalid(i, "it fills an output the intent does not have"));
    }
    Ok(quotes)
}

fn check_inputs(intent: &Intent, legs: &[PlannedLeg]) -> Result<()> {
    for (i, input) in intent.inputs().iter().enumerate() {
        let taken = Amount::sum(
            legs.iter()
                .filter(|l| l.input == i)
                .map(|l| l.leg.amount_in),
            "input taken",
        )?;
        if taken != input.amount {
            return Err(invalid(
                0,
                format!("input {i} is {} but its legs take {taken}", input.amount),
            ));
        }
    }
    Ok(())
}

fn check_inventory(
    legs: &[PlannedLeg],
    snapshot: &LiquiditySnapshot,
) -> Result<BTreeMap<Asset, Amount>> {
    let mut promised: BTreeMap<Asset, Amount> = BTreeMap::new();
    for l in legs {
        let p = promised.entry(l.leg.path.entry).or_default();
        *p = p.checked_add(l.leg.bridged, "promised inventory")?;
    }
    for (asset, amount) in &promised {
        let held = snapshot.inventory_of(*asset);
        if *amount > held {
            return Err(invalid(
                0,
                format!("it promises {amount} of {asset}, the solver holds {held}"),
            ));
        }
    }
    Ok(promised)
}

fn fees(intent: &Intent, legs: &[PlannedLeg]) -> Result<Fees> {
    let n = intent.inputs().len();
    let mut fees = Fees {
        solver: vec![Amount::ZERO; n],
        gas: vec![Amount::ZERO; n],
        gas_wei: BTreeMap::new(),
    };
    for l in legs {
        fees.solver[l.input] = fees.solver[l.input].checked_add(l.leg.fee_in, "solver fee")?;
        fees.gas[l.input] = fees.gas[l.input].checked_add(l.leg.gas_in, "gas")?;
        let chains = [intent.inputs()[l.input].asset.chain, l.leg.path.entry.chain];
        for (chain, wei) in chains.into_iter().zip([l.leg.gas_wei.0, l.leg.gas_wei.1]) {
            let total = fees.gas_wei.entry(chain).or_default();
            *total = total.saturating_add(wei);
        }
    }
    Ok(fees)
}

/// The longest path (by time, then blocks) among paths ending at a step that `ends` selects.
fn critical_path(
    steps: &[Step],
    order: &[StepId],
    snapshot: &LiquiditySnapshot,
    ends: impl Fn(&Step) -> bool,
) -> CriticalPath {
    // finish[i] = (millis, blocks) of the longest path ending with step i; prev[i] its predecessor.
    let mut finish = vec![(0u64, 0u64); steps.len()];
    let mut prev: Vec<Option<usize>> = vec![None; steps.len()];
    for id in order {
        let i = id.index();
        let s = &steps[i];
        let block_ms = snapshot.chains.get(&s.chain).map_or(0, |c| c.block_time_ms);
        let own = (
            s.timing
                .blocks
                .saturating_mul(block_ms)
                .saturating_add(s.timing.latency_ms),
            s.timing.blocks,
        );
        let start = s
            .depends_on
            .iter()
            .map(|d| (finish[d.index()], d.index()))
            .max();
        let (base, p) = start.map_or(((0, 0), None), |(f, d)| (f, Some(d)));
        finish[i] = (base.0.saturating_add(own.0), base.1.saturating_add(own.1));
        prev[i] = p;
    }
    let Some(last) = (0..steps.len())
        .filter(|i| ends(&steps[*i]))
        .max_by_key(|i| (finish[*i], *i))
    else {
        return CriticalPath::default();
    };
    let mut path = vec![StepId(last as u32)];
    let mut at = last;
    while let Some(p) = prev[at] {
        path.push(StepId(p as u32));
        at = p;
    }
    path.reverse();
    let starts_ms = path
        .iter()
        .map(|s| {
            let before = steps[s.index()].depends_on.iter();
            before.map(|d| finish[d.index()].0).max().unwrap_or(0)
        })
        .collect();
    CriticalPath {
        steps: path,
        blocks: finish[last].1,
        millis: finish[last].0,
        starts_ms,
    }
}
