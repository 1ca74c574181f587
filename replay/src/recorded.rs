//! A saga's transactions as its log records them: the raw bytes, what each was built against, and
//! what became of it (its receipt, or the node's refusal).

use alloy::primitives::{B256, Bytes};
use baton_engine::SagaEvent;
use baton_engine::event::Receipt;
use baton_engine::log::StoredEvent;
use baton_planner::{ChainId, StepId};

use crate::report::TxResult;

/// A saga transaction as the log has it.
pub(crate) struct Recorded {
    pub(crate) step: StepId,
    pub(crate) comp: bool,
    pub(crate) chain: ChainId,
    pub(crate) tx: B256,
    pub(crate) raw: Bytes,
    /// The head it was built against, when the log says.
    pub(crate) built_on: Option<u64>,
    pub(crate) result: TxResult,
    pub(crate) receipt: Option<Receipt>,
}

impl Recorded {
    /// The first block of its chain to make again for it, and the last.
    pub(crate) fn span(&self) -> Option<(u64, u64)> {
        let first = match (&self.built_on, &self.receipt) {
            (Some(h), _) => *h,
            (None, Some(r)) => r.block.number.saturating_sub(1),
            (None, None) => return None,
        };
        let last = self.receipt.as_ref().map_or(first + 1, |r| r.block.number);
        Some((first, last))
    }

    /// The block in which it failed (reverted, or would have been included), when it failed.
    pub(crate) fn failed_in(&self) -> Option<u64> {
        match (&self.result, &self.receipt) {
            (TxResult::Succeeded { .. }, _) => None,
            (_, Some(r)) => Some(r.block.number),
            (_, None) => Some(self.built_on? + 1),
        }
    }
}

fn recorded_result(receipt: &Receipt) -> TxResult {
    if receipt.success {
        TxResult::Succeeded {
            block: receipt.block.number,
            logs: receipt.logs.len(),
        }
    } else {
        TxResult::Reverted {
            block: receipt.block.number,
            reason: receipt.revert_reason.clone(),
        }
    }
}

/// The saga's transactions with what the log says became of each: included (its receipt), refused
/// by the node (never included), or neither (replaced or dropped: not replayed, left out).
pub(crate) fn recorded(events: &[StoredEvent]) -> Vec<Recorded> {
    struct Signed {
        tx: Recorded,
        result: Option<TxResult>,
    }
    let mut out: Vec<Signed> = Vec::new();
    for e in events {
        match &e.event {
            SagaEvent::TxSigned {
                step,
                comp,
                tx,
                context,
                ..
            } => out.push(Signed {
                tx: Recorded {
                    step: *step,
                    comp: *comp,
                    chain: tx.chain,
                    tx: tx.hash,
                    raw: tx.raw.clone(),
                    built_on: context.as_ref().map(|c| c.head.number),
                    result: TxResult::NotIncluded {
                        reason: "unknown".into(),
                    },
                    receipt: None,
                },
                result: None,
            }),
            SagaEvent::StepFinal {
                tx: Some(hash),
                receipt: Some(r),
                ..
            } => {
                if let Some(t) = out.iter_mut().find(|t| t.tx.tx == *hash) {
                    t.result = Some(recorded_result(r));
                    t.tx.receipt = Some(r.clone());
                }
            }
            SagaEvent::StepFailed {
                step,
                comp,
                reason,
                receipt,
                ..
            } => match receipt {
                // The step's latest transaction is the one that failed.
                Some(r) => {
                    if let Some(t) = out
                        .iter_mut()
                        .rev()
                        .find(|t| t.tx.step == *step && t.tx.comp == *comp)
                    {
                        t.result = Some(recorded_result(r));
                        t.tx.receipt = Some(r.clone());
                    }
                }
                // Never included: every attempt of the step without a result was refused (each
                // took its own nonce, so all are sent again, in order).
                None => {
                    for t in out
                        .iter_mut()
                        .filter(|t| t.tx.step == *step && t.tx.comp == *comp && t.result.is_none())
                    {
                        t.result = Some(TxResult::NotIncluded {
                            reason: reason.clone(),
                        });
                    }
                }
            },
            _ => {}
        }
    }
    out.into_iter()
        .filter_map(|Signed { mut tx, result }| {
            tx.result = result?;
            Some(tx)
        })
        .collect()
}
