//! One replay from start to end: read the saga's transactions from the log, fork each chain it
//! acted on, make the original blocks again, compare, and try the change when asked.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use baton_engine::{EngineError, SagaId, SagaLog};
use baton_planner::ChainId;

use crate::blocks::{make_again, original_blocks};
use crate::compare::compare;
use crate::error::{ReplayError, Result};
use crate::fork::{Forks, Spans, connect};
use crate::recorded::{Recorded, recorded};
use crate::report::{Fork, Report, TxResult};
use crate::trial::{Recording, Trial};

/// Replays `saga` from `log` on forks of the chains at `rpcs` (chain → JSON-RPC URL of the real
/// chain), with anvil at `anvil`, and tries `trial`'s change when given; `progress` hears what is
/// happening.
pub async fn replay(
    log: &SagaLog,
    saga: SagaId,
    rpcs: &HashMap<ChainId, String>,
    anvil: &Path,
    trial: Option<&Trial>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Report> {
    let started = Instant::now();
    let (input, events, _) = baton_engine::saga::input::stored(log, saga)
        .await?
        .ok_or(EngineError::NotFound(saga))?;
    let plan = input.plan_stored()?.plan;
    let txs = recorded(&events);
    if txs.is_empty() {
        return Err(ReplayError::NothingToReplay(saga));
    }
    let mut spans = Spans::new();
    for (chain, (first, last)) in txs.iter().filter_map(|t| Some((t.chain, t.span()?))) {
        let e = spans.entry(chain).or_insert((first, last));
        e.0 = e.0.min(first);
        e.1 = e.1.max(last);
    }

    let origin = connect(&spans, rpcs)?;
    let blocks = original_blocks(&origin, &spans).await?;
    let forks = Forks::start(&spans, rpcs, anvil, progress)?;
    progress(&format!(
        "replaying {} block(s) on {} fork(s) …",
        blocks.len(),
        forks.0.len()
    ));
    let refused: Vec<&Recorded> = txs
        .iter()
        .filter(|t| matches!(t.result, TxResult::NotIncluded { .. }))
        .collect();
    let stats = make_again(&blocks, &origin, &forks, &[], &refused).await?;
    let found = compare(&txs, &forks, &plan).await?;
    drop(forks); // stops the anvil forks

    let trial = match trial {
        Some(trial) => {
            let recording = Recording {
                input: &input,
                txs: &txs,
                spans: &spans,
                origin: &origin,
                blocks: &blocks,
                rpcs,
            };
            Some(trial.run(recording, anvil, progress).await?)
        }
        None => None,
    };
    Ok(Report {
        saga_id: saga,
        reproduced: found.reproduced(),
        summary: found.summary(),
        first_divergence: found.first_divergence,
        failing_step: found.failing_step,
        steps: found.steps,
        forks: spans
            .iter()
            .map(|(chain, (first, _))| {
                let (blocks_replayed, txs_replayed) = stats.get(chain).copied().unwrap_or_default();
                Fork {
                    chain: chain.0,
                    block: *first,
                    blocks_replayed,
                    txs_replayed,
                }
            })
            .collect(),
        trial,
        took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        resume: None,
    })
}
