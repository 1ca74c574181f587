//! `Plan::new` refuses step sets that break its rules.

use baton_planner::{Action, Compensation, Plan, PlanError, StepId};

use crate::support::{USDC, amount, usdc_for_weth};

fn rebuild(
    plan: &Plan,
    w: &crate::support::World,
    edit: impl FnOnce(&mut Vec<baton_planner::Step>, &mut Vec<baton_planner::PlannedLeg>),
) -> Result<Plan, PlanError> {
    let mut steps = plan.steps().to_vec();
    let mut legs = plan.legs().to_vec();
    edit(&mut steps, &mut legs);
    Plan::new(
        plan.intent().clone(),
        plan.orders().to_vec(),
        steps,
        legs,
        &w.snap,
    )
}

fn rule(r: Result<Plan, PlanError>) -> String {
    match r {
        Err(PlanError::InvalidPlan { rule, .. }) => rule,
        other => panic!("expected an invalid plan, got {other:?}"),
    }
}

#[test]
fn an_unchanged_plan_is_accepted() {
    let (w, p) = usdc_for_weth();
    assert_eq!(rebuild(&p, &w, |_, _| {}).unwrap(), p);
}

#[test]
fn a_cycle_is_refused() {
    let (w, p) = usdc_for_weth();
    let r = rule(rebuild(&p, &w, |steps, _| {
        steps[0].depends_on.push(StepId(3))
    }));
    assert!(r.contains("cycle"), "{r}");
}

#[test]
fn a_dependency_on_a_missing_step_is_refused() {
    let (w, p) = usdc_for_weth();
    let r = rule(rebuild(&p, &w, |steps, _| {
        steps[2].depends_on.push(StepId(99))
    }));
    assert!(r.contains("not another step"), "{r}");
}

#[test]
fn an_effect_before_the_pivot_without_compensation_is_refused() {
    let (w, p) = usdc_for_weth();
    let r = rule(rebuild(&p, &w, |steps, _| steps[2].compensation = None));
    assert!(r.contains("swap comes before the pivot"), "{r}");
    let r = rule(rebuild(&p, &w, |steps, _| steps[0].compensation = None));
    assert!(r.contains("open comes before the pivot"), "{r}");
}

#[test]
fn a_compensated_pivot_is_refused() {
    let (w, p) = usdc_for_weth();
    let r = rule(rebuild(&p, &w, |steps, _| {
        steps[3].compensation = Some(Compensation::Refund {
            order: p.orders()[0].id(),
            not_before: 0,
        });
    }));
    assert!(r.contains("pivot cannot be compensated"), "{r}");
}

#[test]
fn an_output_not_covered_is_refused() {
    let (w, p) = usdc_for_weth();
    let r = rule(rebuild(&p, &w, |steps, _| {
        if let Action::Fill { amount: a, .. } = &mut steps[3].action {
            *a = amount(1);
        }
    }));
    assert!(r.contains("below output 0's minimum"), "{r}");
    let r = rule(rebuild(&p, &w, |steps, _| {
        if let Action::Fill { output, .. } = &mut steps[3].action {
            *output = 1;
        }
    }));
    assert!(r.contains("output 0 is filled by 0 steps"), "{r}");
}

#[test]
fn over_promised_inventory_and_lost_input_are_refused() {
    let (w, p) = usdc_for_weth();
    let r = rule(rebuild(&p, &w, |_, legs| {
        legs[0].leg.bridged = amount(10_000_000 * USDC)
    }));
    assert!(r.contains("the solver holds"), "{r}");
    let r = rule(rebuild(&p, &w, |_, legs| {
        legs[0].leg.amount_in = amount(999 * USDC)
    }));
    assert!(r.contains("input 0 is"), "{r}");
}
