//! What the engine tells operators: metric names in one place, and the events that matter as named
//! functions (a Prometheus exporter, installed by the server, publishes the metrics).

use baton_planner::Plan;
use baton_planner::step::Action;

use crate::event::Outcome;

/// Sagas admitted. Labels: `route`.
pub const SAGAS_ADMITTED: &str = "baton_sagas_admitted_total";
/// Outcomes decided. Labels: `route`, `outcome` (`fulfilled`, `refunded`, `failed`).
pub const SAGA_OUTCOMES: &str = "baton_saga_outcomes_total";
/// Seconds from admission to the user's outcome. Labels: `route`, `outcome`.
pub const TIME_TO_OUTCOME: &str = "baton_saga_time_to_outcome_seconds";
/// Steps done. Labels: `action`, `compensation` (`true`/`false`).
pub const STEPS_DONE: &str = "baton_steps_done_total";
/// Seconds from a step's first signed transaction to its being final. Labels: `chain`, `action`.
pub const STEP_SECONDS: &str = "baton_step_seconds";
/// Transactions signed. Labels: `chain`, `kind` (`first`, `replacement`, `resend`).
pub const TXS_SIGNED: &str = "baton_transactions_signed_total";
/// Operator alerts raised. Labels: `route`.
pub const ALERTS: &str = "baton_alerts_total";

/// A plan's route label: origin chains, then destination chains, e.g. `1001+1002>1002`.
pub fn route(plan: &Plan) -> String {
    let mut origins: Vec<u64> = plan.orders().iter().map(|o| o.chain().0).collect();
    let mut dests: Vec<u64> = plan
        .steps()
        .iter()
        .filter(|s| matches!(s.action, Action::Fill { .. }))
        .map(|s| s.chain.0)
        .collect();
    for list in [&mut origins, &mut dests] {
        list.sort_unstable();
        list.dedup();
    }
    let join = |l: &[u64]| l.iter().map(u64::to_string).collect::<Vec<_>>().join("+");
    format!("{}>{}", join(&origins), join(&dests))
}

/// A saga was admitted.
pub fn admitted(route: &str) {
    metrics::counter!(SAGAS_ADMITTED, "route" => route.to_owned()).increment(1);
}

/// A saga's outcome was decided, `secs` after its admission.
pub fn decided(route: &str, outcome: &Outcome, secs: f64) {
    let label = outcome.kind();
    metrics::counter!(SAGA_OUTCOMES, "route" => route.to_owned(), "outcome" => label).increment(1);
    metrics::histogram!(TIME_TO_OUTCOME, "route" => route.to_owned(), "outcome" => label)
        .record(secs);
    tracing::info!(route, outcome = label, secs, "outcome decided");
}

/// A step (or its compensation) is done.
pub fn step_done(action: &'static str, compensation: bool) {
    metrics::counter!(STEPS_DONE, "action" => action, "compensation" => if compensation { "true" } else { "false" })
        .increment(1);
}

/// An on-chain step became final `secs` after its first transaction was signed.
pub fn step_latency(chain: u64, action: &'static str, secs: f64) {
    metrics::histogram!(STEP_SECONDS, "chain" => chain.to_string(), "action" => action)
        .record(secs);
}

/// A transaction was signed; `attempt` 0 is the first, a reused nonce a replacement.
pub fn tx_signed(chain: u64, attempt: u32, replacement: bool) {
    let kind = match (attempt, replacement) {
        (0, _) => "first",
        (_, true) => "replacement",
        (_, false) => "resend",
    };
    metrics::counter!(TXS_SIGNED, "chain" => chain.to_string(), "kind" => kind).increment(1);
}

/// An operator must look at a saga.
pub fn alert(route: &str, reason: &str) {
    metrics::counter!(ALERTS, "route" => route.to_owned()).increment(1);
    tracing::error!(route, reason, "operator alert");
}
