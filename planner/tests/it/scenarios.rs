//! Planning stories: what a route delivers, how the DAG is shaped, and how bad intents are refused.

use alloy::primitives::U256;
use baton_planner::spec::ConfirmationTier;
use baton_planner::{Action, ChainId, Compensation, PlanError, PlannerConfig, StepId, plan};

use crate::support::{ETH, NOW, USDC, amount, direct_pool_output, two_chains, usdc_for_weth};

#[test]
fn a_cross_chain_swap_fills_from_inventory_and_swaps_on_the_destination() {
    let (w, p) = usdc_for_weth();

    // Free gas, no solver fee: exactly the pool's constant-product output for 1,000 USDC.
    let expected = direct_pool_output(1_000 * USDC);
    assert_eq!(p.outputs()[0].expected.raw(), expected);
    assert!(p.outputs()[0].guaranteed >= amount(39 * ETH / 100));
    assert!(p.outputs()[0].guaranteed <= p.outputs()[0].expected);
    assert_eq!(p.legs().len(), 1);
    assert_eq!(p.legs()[0].leg.path.entry, w.asset(2, "USDC"));
    assert_eq!(
        p.inventory().get(&w.asset(2, "USDC")),
        Some(&amount(1_000 * USDC))
    );

    let names: Vec<&str> = p.steps().iter().map(|s| s.action.name()).collect();
    assert_eq!(
        names,
        ["open", "wait-finality", "swap", "fill", "attest", "settle"]
    );
    let deps: Vec<Vec<u32>> = p
        .steps()
        .iter()
        .map(|s| s.depends_on.iter().map(|d| d.0).collect())
        .collect();
    assert_eq!(
        deps,
        [vec![], vec![0], vec![0], vec![1, 2], vec![3], vec![4]]
    );
    assert!(matches!(
        p.steps()[0].compensation,
        Some(Compensation::Refund { .. })
    ));
    assert!(matches!(
        p.steps()[2].compensation,
        Some(Compensation::SwapBack { .. })
    ));
    assert!(p.steps()[3].action.is_pivot() && p.steps()[3].compensation.is_none());
    // open (1 block) → finality (2 confirmations: 1 more) or the swap (1 block) → fill (2
    // confirmations: 2 blocks): 4 one-second blocks (of the tied paths, the later step's).
    assert_eq!(p.critical_path().steps, [StepId(0), StepId(2), StepId(3)]);
    assert_eq!(
        (p.critical_path().blocks, p.critical_path().seconds()),
        (4, 4)
    );
    // The fill starts when the swap and the finality are done, 2 s after the open starts.
    assert_eq!(p.critical_path().starts_ms, [0, 1_000, 2_000]);
    // … then attest (2 s) and settle (2 blocks).
    assert_eq!(
        (p.completion_path().blocks, p.completion_path().seconds()),
        (6, 8)
    );
}

#[test]
fn the_same_asset_across_chains_is_delivered_without_a_swap() {
    let w = two_chains().solver_fee(10);
    let p = w
        .intent()
        .give(1, "USDC", 1_000 * USDC)
        .want(2, "USDC", 990 * USDC)
        .plan()
        .unwrap();
    // 10 bps fee on 1,000 USDC: 999 delivered, all of it guaranteed (no swap, no slippage).
    assert_eq!(p.outputs()[0].expected, amount(999 * USDC));
    assert_eq!(p.outputs()[0].guaranteed, amount(999 * USDC));
    assert_eq!(p.fees().solver[0], amount(USDC));
    assert!(
        p.steps()
            .iter()
            .all(|s| !matches!(s.action, Action::Swap { .. }))
    );
}

#[test]
fn a_shallow_pool_makes_the_planner_split_across_a_second_route() {
    // Chain 2: a shallow direct USDC/WETH pool, and a deep path USDC → DAI → WETH.
    let w = two_chains()
        .pool(2, "USDC", "DAI", 5_000_000 * USDC, 5_000_000 * ETH)
        .pool(2, "DAI", "WETH", 5_000_000 * ETH, 2_000 * ETH);
    let mut w = w;
    w.snap.pools[1].reserve0 = amount(50_000 * USDC); // chain 2's USDC/WETH pool: 50k USDC / 20 WETH
    w.snap.pools[1].reserve1 = amount(20 * ETH);
    let graph = w.graph();
    let intent = w
        .intent()
        .give(1, "USDC", 100_000 * USDC)
        .want(2, "WETH", 30 * ETH)
        .build();

    let split = plan(&graph, &intent, &PlannerConfig::default()).unwrap();
    let single = plan(
        &graph,
        &intent,
        &PlannerConfig {
            split: false,
            ..PlannerConfig::default()
        },
    )
    .unwrap();
    assert_eq!(split.legs().len(), 2, "{:?}", split.legs());
    assert_eq!(single.legs().len(), 1);
    assert!(split.outputs()[0].expected > single.outputs()[0].expected);
    let hops: Vec<usize> = split.legs().iter().map(|l| l.leg.path.hops.len()).collect();
    assert!(hops.contains(&1) && hops.contains(&2), "{hops:?}");
    // The two legs take the whole input between them and share no pool.
    assert_eq!(
        split.legs()[0].leg.amount_in.raw() + split.legs()[1].leg.amount_in.raw(),
        U256::from(100_000 * USDC)
    );
    let fill = split.steps().iter().find(|s| s.action.is_pivot()).unwrap();
    assert_eq!(
        fill.depends_on.len(),
        3,
        "finality + the last swap of each leg"
    );
}

#[test]
fn two_inputs_on_two_chains_open_two_orders_and_fill_after_both_are_final() {
    let w = two_chains().pool(2, "DAI", "USDC", 1_000_000 * ETH, 1_000_000 * USDC);
    let p = w
        .intent()
        .give(1, "USDC", 600 * USDC)
        .give(2, "DAI", 400 * ETH)
        .want(2, "USDC", 990 * USDC)
        .plan()
        .unwrap();
    assert_eq!(p.orders().len(), 2);
    let finals: Vec<StepId> = p
        .steps()
        .iter()
        .filter(|s| matches!(s.action, Action::WaitFinality { .. }))
        .map(|s| s.id)
        .collect();
    let fill = p.steps().iter().find(|s| s.action.is_pivot()).unwrap();
    for f in &finals {
        assert!(fill.depends_on.contains(f));
    }
    let settles = p
        .steps()
        .iter()
        .filter(|s| matches!(s.action, Action::Settle { .. }))
        .count();
    assert_eq!(settles, 2);
    // Each input is routed whole: USDC filled across chains, DAI swapped on its own chain.
    for (i, input) in p.intent().inputs().iter().enumerate() {
        let taken: U256 = p
            .legs()
            .iter()
            .filter(|l| l.input == i)
            .map(|l| l.leg.amount_in.raw())
            .sum();
        assert_eq!(taken, input.amount.raw());
    }
}

#[test]
fn two_outputs_on_two_chains_share_the_input_and_each_meets_its_minimum() {
    let w = two_chains().pool(1, "USDC", "DAI", 1_000_000 * USDC, 1_000_000 * ETH);
    let p = w
        .intent()
        .give(1, "USDC", 2_000 * USDC)
        .want(2, "WETH", 35 * ETH / 100)
        .want(1, "DAI", 1_000 * ETH)
        .plan()
        .unwrap();
    assert_eq!(p.outputs().len(), 2);
    for (q, out) in p.outputs().iter().zip(p.intent().outputs()) {
        assert!(q.guaranteed >= out.min_amount);
    }
    let fills = p.steps().iter().filter(|s| s.action.is_pivot()).count();
    assert_eq!(fills, 2);
    let settle = p
        .steps()
        .iter()
        .find(|s| matches!(s.action, Action::Settle { .. }))
        .unwrap();
    assert_eq!(
        settle.depends_on.len(),
        2,
        "settle waits for both attestations"
    );
}

#[test]
fn bad_intents_are_refused_with_what_is_wrong() {
    let w = two_chains();
    fn err<T: std::fmt::Debug>(r: Result<T, PlanError>) -> PlanError {
        r.unwrap_err()
    }

    let e = err(w.intent().give(9, "USDC", 1).want(2, "WETH", 1).plan());
    assert!(matches!(e, PlanError::UnknownChain { .. }), "{e}");
    assert_eq!(e.code(), "unknown_chain");

    let intent = w.intent().give(1, "USDC", 1).want(2, "WETH", 1).build();
    let mut without_weth = w.clone();
    without_weth.snap.tokens.remove(&w.asset(2, "WETH"));
    without_weth.snap.pools.retain(|p| p.chain.0 != 2);
    without_weth.snap.inventory.remove(&w.asset(2, "WETH"));
    let e = plan(&without_weth.graph(), &intent, &PlannerConfig::default())
        .err()
        .unwrap();
    assert!(matches!(e, PlanError::UnknownToken { .. }), "{e}");
    assert_eq!(e.code(), "unknown_token");

    let e = err(w.intent().give(1, "USDC", 0).want(2, "WETH", 1).try_build());
    assert!(matches!(e, PlanError::ZeroAmount { .. }), "{e}");
    assert_eq!(e.code(), "amount_out_of_range");

    // 2^128 base units is absurd; 2^128 − 1 is accepted as an amount and refused for liquidity.
    let e = err(w
        .intent()
        .give(1, "USDC", u128::MAX)
        .want(2, "WETH", 1)
        .plan());
    assert!(matches!(e, PlanError::InsufficientInventory(_)), "{e}");
    let mut huge = w
        .intent()
        .give(1, "USDC", 1)
        .want(2, "WETH", 1)
        .build()
        .inputs()
        .to_vec();
    huge[0].amount = baton_planner::Amount::new(U256::from(1u8) << 128);
    let outputs = w.intent().want(2, "WETH", 1).build_outputs();
    let e = err(baton_planner::Intent::new(
        crate::support::addr("user"),
        U256::ZERO,
        1,
        2,
        huge,
        outputs,
    ));
    assert!(matches!(e, PlanError::AmountOutOfRange { .. }), "{e}");

    let e = err(w
        .intent()
        .give(1, "USDC", 1_000 * USDC)
        .want(2, "WETH", 1)
        .fill_within(0)
        .plan());
    assert!(matches!(e, PlanError::DeadlinePassed { .. }), "{e}");
    assert_eq!(e.code(), "deadline_passed");

    let e = err(w
        .intent()
        .give(1, "USDC", 1_000 * USDC)
        .want(2, "WETH", 1)
        .fill_within(3)
        .plan());
    let PlanError::DeadlineTooSoon {
        needed_secs, now, ..
    } = e
    else {
        panic!("{e}")
    };
    assert_eq!((needed_secs, now), (4, NOW));
    assert!(
        w.intent()
            .give(1, "USDC", 1_000 * USDC)
            .want(2, "WETH", 1)
            .fill_within(4)
            .plan()
            .is_ok()
    );

    let e = err(w
        .intent()
        .give(1, "USDC", 1_000 * USDC)
        .want(2, "WETH", ETH)
        .plan());
    let PlanError::InsufficientLiquidity {
        output: 0,
        min,
        best,
    } = e
    else {
        panic!("{e}")
    };
    assert_eq!(min, amount(ETH));
    let expected = direct_pool_output(1_000 * USDC);
    assert_eq!(
        best.raw(),
        expected,
        "the error names what the best route delivers"
    );

    let e = err(w.intent().give(1, "USDC", 1).want(1, "USDC", 1).try_build());
    assert!(matches!(e, PlanError::InvalidIntent { .. }), "{e}");
}

#[test]
fn no_pool_path_is_no_route() {
    let w = two_chains();
    // DAI on chain 2 has inventory but no pool joins it to WETH.
    let e = w
        .intent()
        .give(1, "DAI", 1_000 * ETH)
        .want(2, "WETH", 1)
        .plan()
        .err()
        .unwrap();
    assert!(matches!(e, PlanError::NoRoute { .. }), "{e}");
    assert_eq!(e.code(), "no_route");
}

#[test]
fn too_little_inventory_names_the_largest_input_that_can_be_filled() {
    let w = two_chains()
        .inventory(2, "USDC", 200_000 * USDC)
        .solver_fee(5);
    let e = w
        .intent()
        .give(1, "USDC", 300_000 * USDC)
        .want(2, "USDC", 1)
        .plan()
        .err()
        .unwrap();
    let PlanError::InsufficientInventory(shortfall) = e else {
        panic!("{e}")
    };
    let (available, max_input) = (shortfall.available, shortfall.max_input);
    assert_eq!(available, amount(200_000 * USDC));
    // The named amount plans; one unit more does not.
    let fits = w
        .intent()
        .give(1, "USDC", max_input.raw().to::<u128>())
        .want(2, "USDC", 1)
        .plan();
    assert!(fits.is_ok(), "{:?}", fits.err());
    let over = w
        .intent()
        .give(1, "USDC", max_input.raw().to::<u128>() + 1)
        .want(2, "USDC", 1)
        .plan();
    assert!(matches!(over, Err(PlanError::InsufficientInventory(_))));
}

/// The confirmations a step of `plan` waits for, by name ("wait-finality", "fill", "settle").
fn confirmations(plan: &baton_planner::Plan, kind: &str) -> u32 {
    plan.steps()
        .iter()
        .find(|s| s.action.name() == kind)
        .unwrap()
        .timing
        .confirmations
}

#[test]
fn more_value_at_risk_waits_for_more_confirmations() {
    let mut w = two_chains();
    // USDC at 2,500 per native coin; from 10 coins of value 6 blocks, from 100 coins 12.
    for c in [1, 2] {
        let chain = w.snap.chains.get_mut(&ChainId(c)).unwrap();
        chain.confirmation_tiers = vec![
            ConfirmationTier {
                at_least: amount(100 * 10u128.pow(18)),
                blocks: 12,
            },
            ConfirmationTier {
                at_least: amount(10 * 10u128.pow(18)),
                blocks: 6,
            },
        ];
        let usdc = w.asset(c, "USDC");
        w.snap.tokens.get_mut(&usdc).unwrap().native_price = Some(amount(2_500 * USDC));
    }
    let plan = |w: &crate::support::World, give: u128| {
        w.intent()
            .give(1, "USDC", give * USDC)
            .want(2, "USDC", give * USDC * 99 / 100)
            .plan()
            .unwrap()
    };
    // 1,000 USDC: 0.4 coins, the chain's finality (2).
    let small = plan(&w, 1_000);
    assert_eq!(confirmations(&small, "wait-finality"), 2);
    assert_eq!(confirmations(&small, "fill"), 2);
    // 50,000 USDC: 20 coins, 6 on both chains.
    let large = plan(&w, 50_000);
    assert_eq!(confirmations(&large, "wait-finality"), 6);
    assert_eq!(confirmations(&large, "fill"), 6);
    assert_eq!(confirmations(&large, "settle"), 6);
    // 400,000 USDC: 160 coins, 12.
    assert_eq!(confirmations(&plan(&w, 400_000), "wait-finality"), 12);
    // Without a price the value is unknown: the highest tier.
    let usdc = w.asset(1, "USDC");
    w.snap.tokens.get_mut(&usdc).unwrap().native_price = None;
    assert_eq!(confirmations(&plan(&w, 1_000), "wait-finality"), 12);
}
