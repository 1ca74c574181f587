//! What a saga delivered and how long it took to its outcome, measured the same way for a saga as
//! it ran and for its trial on forks: a shadow run compares the two.

use std::collections::HashMap;
use std::sync::Arc;

use baton_adapters::port::ChainAdapter;
use baton_engine::view::{SagaView, StepStatus};
use baton_planner::step::Action;
use baton_planner::{ChainId, Plan};
use serde::{Deserialize, Serialize};

/// A saga's deliveries and pace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measured {
    /// Each output of the intent, in its order: the amount its fill delivered (base units), none
    /// for an output not delivered.
    pub delivered: Vec<Option<String>>,
    /// Seconds of chain time from the block of the open to the block of the last fill (none
    /// unless both are final and their blocks readable).
    pub secs_to_outcome: Option<u64>,
}

/// Measures saga `view` of `plan`, reading block times through `chains`.
pub async fn measure(
    view: &SagaView,
    plan: &Plan,
    chains: &HashMap<ChainId, Arc<dyn ChainAdapter>>,
) -> Measured {
    let mut delivered = vec![None; plan.intent().outputs().len()];
    let mut opened = None;
    let mut filled = Vec::new();
    for step in plan.steps() {
        let Some(seen) = view.steps.iter().find(|s| s.id == step.id.0) else {
            continue;
        };
        if seen.progress.state != StepStatus::Final {
            continue;
        }
        let at = seen.progress.block.map(|b| (step.chain, b));
        match &step.action {
            Action::Open { .. } => opened = at,
            Action::Fill { output, amount, .. } => {
                if let Some(slot) = delivered.get_mut(*output) {
                    *slot = Some(amount.raw().to_string());
                }
                filled.extend(at);
            }
            _ => {}
        }
    }
    let time = |(chain, number): (ChainId, u64)| {
        let adapter = chains.get(&chain).cloned();
        async move { adapter?.block(number).await.ok().map(|b| b.timestamp) }
    };
    let mut secs_to_outcome = None;
    if let Some(open) = opened
        && !filled.is_empty()
        && let Some(start) = time(open).await
    {
        let mut last = None;
        for fill in filled {
            let Some(t) = time(fill).await else {
                last = None;
                break;
            };
            last = Some(last.map_or(t, |l: u64| l.max(t)));
        }
        secs_to_outcome = last.map(|l| l.saturating_sub(start));
    }
    Measured {
        delivered,
        secs_to_outcome,
    }
}
