//! Properties over random liquidity worlds and intents.

use std::collections::BTreeMap;

use alloy::primitives::U256;
use baton_planner::{Action, LiquidityGraph, Plan, PlannerConfig, plan};
use proptest::prelude::*;

use crate::support::{World, world};

const SYMBOLS: [&str; 4] = ["USDC", "WETH", "DAI", "WBTC"];

#[derive(Debug, Clone)]
struct Case {
    world: World,
    inputs: Vec<(u64, usize, u128)>,
    outputs: Vec<(u64, usize)>,
}

/// Two or three chains, four tokens each (18 decimals); most token pairs pooled with random
/// reserves, random inventory (sometimes none); one or two inputs and outputs with low minimums so
/// most cases plan.
fn case() -> impl Strategy<Value = Case> {
    (2u64..=3)
        .prop_flat_map(|chains| {
            let n = chains as usize;
            let pools = prop::collection::vec(
                prop::option::weighted(0.7, (1u128..=1_000_000, 1u128..=1_000_000)),
                n * 6,
            );
            let inventory = prop::collection::vec(prop_oneof![Just(0u128), 1u128..=100_000], n * 4);
            let inputs = prop::collection::vec((1..=chains, 0usize..4, 1u128..=50_000), 1..=2);
            let outputs = prop::collection::vec((1..=chains, 0usize..4), 1..=2);
            (Just(chains), pools, inventory, inputs, outputs)
        })
        .prop_map(|(chains, pools, inventory, inputs, outputs)| {
            let e = 10u128.pow(18);
            let pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)];
            let mut w = world();
            for c in 1..=chains {
                w = w.chain(c);
                for s in SYMBOLS {
                    w = w.token(c, s, 18);
                }
            }
            let mut pools = pools.into_iter();
            let mut inventory = inventory.into_iter();
            for c in 1..=chains {
                for (a, b) in pairs {
                    if let Some(Some((ra, rb))) = pools.next() {
                        w = w.pool(c, SYMBOLS[a], SYMBOLS[b], ra * e, rb * e);
                    }
                }
                for s in SYMBOLS {
                    w = w.inventory(c, s, inventory.next().unwrap_or(0) * e);
                }
            }
            let inputs = dedup(
                inputs
                    .into_iter()
                    .map(|(c, t, v)| (c, t, v * e / 10))
                    .collect(),
                |x| (x.0, x.1),
            );
            let outputs = dedup(outputs, |x| (x.0, x.1))
                .into_iter()
                .filter(|o| !inputs.iter().any(|i| (i.0, i.1) == *o))
                .collect();
            Case {
                world: w,
                inputs,
                outputs,
            }
        })
}

fn dedup<T: Clone, K: Ord>(v: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut seen = BTreeMap::new();
    v.into_iter()
        .filter(|x| seen.insert(key(x), ()).is_none())
        .collect()
}

fn plan_case(
    c: &Case,
    config: &PlannerConfig,
) -> Option<(LiquidityGraph, Result<Plan, baton_planner::PlanError>)> {
    if c.outputs.is_empty() {
        return None;
    }
    let mut b = c.world.intent();
    for (ch, t, v) in &c.inputs {
        b = b.give(*ch, SYMBOLS[*t], *v);
    }
    for (ch, t) in &c.outputs {
        b = b.want(*ch, SYMBOLS[*t], 1);
    }
    let intent = b.try_build().ok()?;
    let graph = c.world.graph();
    let result = plan(&graph, &intent, config);
    Some((graph, result))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_plan_is_a_dag_whose_order_respects_dependencies(c in case()) {
        let Some((_, Ok(p))) = plan_case(&c, &PlannerConfig::default()) else { return Ok(()) };
        let order = p.topological_order();
        prop_assert_eq!(order.len(), p.steps().len());
        let position: BTreeMap<_, _> = order.iter().enumerate().map(|(k, id)| (*id, k)).collect();
        for s in p.steps() {
            for d in &s.depends_on {
                prop_assert!(position[d] < position[&s.id], "{} before {}", d, s.id);
            }
        }
    }

    #[test]
    fn inputs_are_conserved_and_inventory_never_over_promised(c in case()) {
        let Some((graph, Ok(p))) = plan_case(&c, &PlannerConfig::default()) else { return Ok(()) };
        for (i, input) in p.intent().inputs().iter().enumerate() {
            let taken: U256 = p.legs().iter().filter(|l| l.input == i).map(|l| l.leg.amount_in.raw()).sum();
            prop_assert_eq!(taken, input.amount.raw());
            // What the legs take is the user's whole input, escrowed by exactly one open.
            let escrowed: U256 = p.steps().iter().filter_map(|s| match &s.action {
                Action::Open { inputs, .. } => Some(inputs.iter().filter(|(a, _)| *a == input.asset).map(|(_, m)| m.raw()).sum::<U256>()),
                _ => None,
            }).sum();
            prop_assert_eq!(escrowed, input.amount.raw());
        }
        let mut drawn: BTreeMap<_, U256> = BTreeMap::new();
        for l in p.legs() {
            *drawn.entry(l.leg.path.entry).or_default() += l.leg.bridged.raw();
        }
        for (asset, n) in drawn {
            prop_assert!(n <= graph.snapshot().inventory_of(asset).raw());
        }
        for (q, out) in p.outputs().iter().zip(p.intent().outputs()) {
            prop_assert!(q.guaranteed >= out.min_amount && q.guaranteed <= q.expected);
        }
    }

    #[test]
    fn planning_is_deterministic(c in case()) {
        let Some((graph, first)) = plan_case(&c, &PlannerConfig::default()) else { return Ok(()) };
        let (_, again) = plan_case(&c, &PlannerConfig::default()).unwrap();
        prop_assert_eq!(&first, &again);
        let rebuilt = LiquidityGraph::new(graph.snapshot().clone()).unwrap();
        let intent = match &first { Ok(p) => p.intent().clone(), Err(_) => return Ok(()) };
        prop_assert_eq!(first, plan(&rebuilt, &intent, &PlannerConfig::default()));
    }

    #[test]
    fn splitting_never_delivers_less_than_the_best_single_route(c in case()) {
        let single_output = Case { outputs: c.outputs[..c.outputs.len().min(1)].to_vec(), inputs: c.inputs[..1].to_vec(), ..c };
        let Some((_, Ok(single))) = plan_case(&single_output, &PlannerConfig { split: false, ..PlannerConfig::default() }) else { return Ok(()) };
        let (_, split) = plan_case(&single_output, &PlannerConfig::default()).unwrap();
        let split = split.unwrap();
        prop_assert!(split.outputs()[0].expected >= single.outputs()[0].expected);
    }
}

/// The properties above skip cases that do not plan; make sure enough of them do (and that some
/// split, some have several legs), or the properties would hold vacuously.
#[test]
fn the_random_cases_mostly_plan() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut planned, mut multi_leg, mut total) = (0, 0, 0);
    for _ in 0..400 {
        let c = case().new_tree(&mut runner).unwrap().current();
        if let Some((_, result)) = plan_case(&c, &PlannerConfig::default()) {
            total += 1;
            if let Ok(p) = result {
                planned += 1;
                multi_leg += usize::from(p.legs().len() > 1);
            }
        }
    }
    eprintln!("{planned} of {total} random cases planned, {multi_leg} with several legs");
    assert!(planned * 4 >= total, "{planned} of {total}");
    assert!(multi_leg > 0);
}
