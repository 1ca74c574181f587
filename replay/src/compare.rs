//! Comparing each saga transaction's result on its fork with its receipt in the log: the first
//! difference is the divergence; a recorded revert that happens again is the failing step, with
//! its revert reason and call trace.

use alloy::primitives::Log;
use alloy::providers::Provider;
use alloy::rpc::types::TransactionReceipt;
use baton_engine::event::Receipt;
use baton_planner::{Plan, StepId};

use crate::error::{ReplayError, Result};
use crate::fork::Forks;
use crate::recorded::Recorded;
use crate::render::describe;
use crate::report::{Divergence, FailingStep, StepReplay, TxResult};
use crate::trace;

/// What the comparison found.
pub(crate) struct Findings {
    pub(crate) steps: Vec<StepReplay>,
    pub(crate) first_divergence: Option<Divergence>,
    pub(crate) failing_step: Option<FailingStep>,
}

/// Compares every transaction of `txs` (in order) on `forks` with the log.
pub(crate) async fn compare(txs: &[Recorded], forks: &Forks, plan: &Plan) -> Result<Findings> {
    let action = |step: StepId| {
        plan.step(step)
            .map_or_else(|| "?".to_owned(), |s| s.action.name().to_owned())
    };
    let mut found = Findings {
        steps: Vec::new(),
        first_divergence: None,
        failing_step: None,
    };
    for t in txs {
        let fork = forks.provider(t.chain);
        let receipt = fork
            .get_transaction_receipt(t.tx)
            .await
            .map_err(|e| ReplayError::rpc("eth_getTransactionReceipt", e))?;
        let mut call = None;
        let replayed = match &receipt {
            None => TxResult::NotIncluded {
                reason: "the fork did not include it".into(),
            },
            Some(r) if r.status() => TxResult::Succeeded {
                block: r.block_number.unwrap_or(0),
                logs: r.inner.logs().len(),
            },
            Some(r) => {
                call = trace::call_trace(fork, t.tx).await;
                TxResult::Reverted {
                    block: r.block_number.unwrap_or(0),
                    reason: call.as_ref().and_then(trace::revert_reason),
                }
            }
        };
        let recorded = t.result.clone();
        let matches = same(&recorded, &replayed, t.receipt.as_ref(), receipt.as_ref());
        if !matches && found.first_divergence.is_none() {
            found.first_divergence = Some(Divergence {
                step: t.step.0,
                chain: t.chain.0,
                expected: recorded.clone(),
                actual: replayed.clone(),
            });
        }
        if matches
            && found.failing_step.is_none()
            && let TxResult::Reverted { reason, .. } = &replayed
        {
            found.failing_step = Some(FailingStep {
                step: t.step.0,
                chain: t.chain.0,
                action: action(t.step),
                revert_reason: reason.clone(),
                trace: call.as_ref().map(trace::decode_trace).unwrap_or_default(),
            });
        }
        found.steps.push(StepReplay {
            step: t.step.0,
            compensation: t.comp,
            action: action(t.step),
            chain: t.chain.0,
            tx: t.tx,
            recorded,
            replayed,
            matches,
        });
    }
    Ok(found)
}

impl Findings {
    /// Whether the recorded run happened again: no divergence.
    pub(crate) fn reproduced(&self) -> bool {
        self.first_divergence.is_none()
    }

    /// What the findings mean, in a sentence.
    pub(crate) fn summary(&self) -> String {
        let had_failure = self
            .steps
            .iter()
            .any(|s| !matches!(s.recorded, TxResult::Succeeded { .. }));
        match (&self.first_divergence, &self.failing_step, had_failure) {
            (Some(d), _, _) => format!(
                "did not reproduce: step {} on chain {} {} in the log but {} on the fork{}",
                d.step,
                d.chain,
                describe(&d.expected),
                describe(&d.actual),
                if matches!(d.expected, TxResult::NotIncluded { .. }) {
                    " — the recorded failure came from the chain's RPC, not from the chain's state"
                } else {
                    ""
                }
            ),
            (None, Some(f), _) => format!(
                "reproduced: step {} ({}) on chain {} reverts again: {}",
                f.step,
                f.action,
                f.chain,
                f.revert_reason.as_deref().unwrap_or("no reason given")
            ),
            (None, None, true) => "reproduced: every transaction ends as recorded".into(),
            (None, None, false) => "reproduced: every transaction succeeds as recorded".into(),
        }
    }
}

/// Whether the fork's result agrees with the log: the same status and, for successes, the same
/// events (addresses, topics, data).
fn same(
    recorded: &TxResult,
    replayed: &TxResult,
    receipt: Option<&Receipt>,
    fork: Option<&TransactionReceipt>,
) -> bool {
    match (recorded, replayed) {
        (TxResult::Succeeded { .. }, TxResult::Succeeded { .. }) => {
            let Some(receipt) = receipt else { return true };
            let fork_logs: Vec<Log> = fork
                .map(|r| r.inner.logs().iter().map(|l| l.inner.clone()).collect())
                .unwrap_or_default();
            fork_logs == receipt.logs
        }
        (TxResult::Reverted { .. }, TxResult::Reverted { .. }) => true,
        (TxResult::NotIncluded { .. }, TxResult::NotIncluded { .. }) => true,
        _ => false,
    }
}
