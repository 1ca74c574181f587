//! Replay: re-run one saga on local anvil forks of the chains it touched and compare every result
//! with its log. Nothing is ever sent to a real chain: the forks are local processes, stopped when
//! the replay ends.
//!
//! For each chain the saga acted on, an anvil node forks the chain's RPC at the block the saga's
//! first transaction there was built against (its `TxContext` head), with mining off. Then every
//! block the original chain made from there to the saga's last inclusion is made again on the
//! fork, across chains in timestamp order: the same raw transactions in the same order (the saga's
//! and everyone else's — a transaction that drained a pool in between is part of what happened),
//! with the original timestamps. A saga transaction that never got into a block (the node refused
//! it) is sent after the block it was built against. Each saga transaction's result on the fork
//! is compared with its receipt in the log (status, logs); the first difference is the divergence.
//! Where a recorded revert reproduces, the report names the step, its revert reason and its call
//! trace (`debug_traceTransaction` with the call tracer), decoded with the fixture contracts' ABIs.
//!
//! A trial ([`Trial`], `--with`) tries a change on fresh forks: every original block is made again
//! up to the one where the saga failed, without the saga's own transactions, and the intent is then
//! re-planned from the forks' state with the change (the same signed orders: a change of planner
//! knobs does not change them) and run there from the start by an engine on the forks; the report
//! says whether it would have ended Fulfilled.
//!
//! **Not yet:** changing the deadlines (that changes the orders the user signed), and resuming the
//! real saga with the change after a successful trial (`--resume`).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use alloy::json_abi::JsonAbi;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{B256, Bytes, Log};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use baton_planner::{ChainId, StepId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{EngineError, Result};
use crate::event::{Receipt, SagaEvent, SagaId};
use crate::input::SagaInput;
use crate::log::SagaLog;

/// The fixture contracts' ABIs, to name the functions in call traces.
const ARTIFACTS: [&str; 6] = [
    include_str!("../../fixtures/contracts/artifacts/TestToken.json"),
    include_str!("../../fixtures/contracts/artifacts/Pool.json"),
    include_str!("../../fixtures/contracts/artifacts/OriginSettler.json"),
    include_str!("../../fixtures/contracts/artifacts/DestinationSettler.json"),
    include_str!("../../fixtures/contracts/artifacts/CallExecutor.json"),
    include_str!("../../fixtures/contracts/artifacts/Vault.json"),
];

/// What became of one transaction, in the log or on the fork.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxResult {
    /// Included and succeeded.
    Succeeded {
        /// Block number.
        block: u64,
        /// Events emitted.
        logs: usize,
    },
    /// Included and reverted.
    Reverted {
        /// Block number.
        block: u64,
        /// The revert reason, when known.
        reason: Option<String>,
    },
    /// Never in a block.
    NotIncluded {
        /// Why, as recorded.
        reason: String,
    },
}

/// One saga transaction replayed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReplay {
    /// The step.
    pub step: u32,
    /// Whether it is the step's compensation.
    pub compensation: bool,
    /// The step's action.
    pub action: String,
    /// The chain.
    pub chain: u64,
    /// The transaction.
    pub tx: B256,
    /// What the log says.
    pub recorded: TxResult,
    /// What the fork did.
    pub replayed: TxResult,
    /// Whether they agree (status and events).
    pub matches: bool,
}

/// The first step whose replay differs from the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Divergence {
    /// The step.
    pub step: u32,
    /// The chain.
    pub chain: u64,
    /// What the log says.
    pub expected: TxResult,
    /// What the fork did.
    pub actual: TxResult,
}

/// A recorded failure that reproduced on the fork.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailingStep {
    /// The step.
    pub step: u32,
    /// The chain.
    pub chain: u64,
    /// The step's action.
    pub action: String,
    /// The decoded revert reason.
    pub revert_reason: Option<String>,
    /// The call trace, one line per call, indented by depth.
    pub trace: Vec<String>,
}

/// A fork the replay ran on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fork {
    /// The chain.
    pub chain: u64,
    /// The block forked at.
    pub block: u64,
    /// Original blocks made again on it.
    pub blocks_replayed: u64,
    /// Transactions sent to it (the saga's and others').
    pub txs_replayed: u64,
}

/// A change to try: the planner's knobs (unset ones stay as the saga had them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// Most pool swaps in one route.
    pub max_hops: Option<usize>,
    /// Swap slippage bound, basis points.
    pub slippage_bps: Option<u32>,
    /// Fee ceiling, percent of the snapshot's gas price.
    pub fee_ceiling_pct: Option<u32>,
    /// Whether a leg may be split across two routes.
    pub split: Option<bool>,
}

impl Change {
    /// `config` with the change's knobs set.
    pub fn apply(&self, mut config: baton_planner::PlannerConfig) -> baton_planner::PlannerConfig {
        if let Some(v) = self.max_hops {
            config.max_hops = v;
        }
        if let Some(v) = self.slippage_bps {
            config.slippage_bps = v;
        }
        if let Some(v) = self.fee_ceiling_pct {
            config.fee_ceiling_pct = v;
        }
        if let Some(v) = self.split {
            config.split = v;
        }
        config
    }
}

/// What a trial needs besides the change: what the solver uses on each chain, and the keys of the
/// solver and the attester (the trial signs new transactions, on the forks only).
pub struct Trial {
    /// The change.
    pub change: Change,
    /// The venues.
    pub venues: Vec<crate::liquidity::Venue>,
    /// The solver's key.
    pub solver: alloy::signers::local::PrivateKeySigner,
    /// The attester's key.
    pub attester: alloy::signers::local::PrivateKeySigner,
}

/// What a trial found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialReport {
    /// The change tried.
    pub change: Change,
    /// The planner's knobs it ran with.
    pub config: baton_planner::PlannerConfig,
    /// The re-planned steps (action on chain).
    pub plan: Vec<String>,
    /// The outcome on the forks, if the trial got one.
    pub outcome: Option<crate::event::Outcome>,
    /// Whether the intent would have ended Fulfilled.
    pub fulfilled: bool,
    /// What happened, in a sentence.
    pub summary: String,
}

/// The replay's findings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The saga.
    pub saga_id: SagaId,
    /// Whether the recorded run (its failure, if it had one) happened again on the forks.
    pub reproduced: bool,
    /// The first difference from the log, if any.
    pub first_divergence: Option<Divergence>,
    /// The recorded failure that reproduced, if any.
    pub failing_step: Option<FailingStep>,
    /// Every saga transaction, in replay order.
    pub steps: Vec<StepReplay>,
    /// The forks.
    pub forks: Vec<Fork>,
    /// What the findings mean, in a sentence.
    pub summary: String,
    /// The trial of a change, when one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<TrialReport>,
    /// Milliseconds the replay took, forks included.
    pub took_ms: u64,
    /// Whether the real saga was resumed with the change, when that was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<ResumeDecision>,
}

/// What came of an operator's request to resume the real saga with a change after its trial.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeDecision {
    /// Whether the saga was resumed (the decision is then in its log, as `resumed`).
    pub resumed: bool,
    /// Why, in a sentence.
    pub summary: String,
    /// The plan it runs from here on (`action on chain`), when resumed.
    pub plan: Vec<String>,
}

impl ResumeDecision {
    /// Not resumed, because of `why`.
    pub fn not_resumed(why: impl std::fmt::Display) -> Self {
        Self {
            resumed: false,
            summary: format!("not resumed: {why}"),
            plan: Vec::new(),
        }
    }
}

/// A saga transaction as the log has it.
struct Recorded {
    step: StepId,
    comp: bool,
    chain: ChainId,
    tx: B256,
    raw: Bytes,
    built_on: Option<u64>,
    result: Option<TxResult>,
    receipt: Option<Receipt>,
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
/// by the node (never included), or neither (replaced or dropped: not replayed).
fn recorded(events: &[crate::log::StoredEvent]) -> Vec<Recorded> {
    let mut out: Vec<Recorded> = Vec::new();
    for e in events {
        match &e.event {
            SagaEvent::TxSigned {
                step,
                comp,
                tx,
                context,
                ..
            } => out.push(Recorded {
                step: *step,
                comp: *comp,
                chain: tx.chain,
                tx: tx.hash,
                raw: tx.raw.clone(),
                built_on: context.as_ref().map(|c| c.head.number),
                result: None,
                receipt: None,
            }),
            SagaEvent::StepFinal {
                tx: Some(hash),
                receipt: Some(r),
                ..
            } => {
                if let Some(t) = out.iter_mut().find(|t| t.tx == *hash) {
                    t.result = Some(recorded_result(r));
                    t.receipt = Some(r.clone());
                }
            }
            SagaEvent::StepFailed {
                step,
                comp,
                reason,
                receipt,
            } => {
                // The step's latest transaction is the one that failed.
                match receipt {
                    Some(r) => {
                        if let Some(t) = out
                            .iter_mut()
                            .rev()
                            .find(|t| t.step == *step && t.comp == *comp)
                        {
                            t.result = Some(recorded_result(r));
                            t.receipt = Some(r.clone());
                        }
                    }
                    // Never included: every attempt of the step without a result was refused
                    // (each took its own nonce, so all are sent again, in order).
                    None => {
                        for t in out
                            .iter_mut()
                            .filter(|t| t.step == *step && t.comp == *comp && t.result.is_none())
                        {
                            t.result = Some(TxResult::NotIncluded {
                                reason: reason.clone(),
                            });
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out.retain(|t| t.result.is_some());
    out
}

async fn rpc(provider: &DynProvider, method: &'static str, params: Value) -> Result<Value> {
    provider
        .client()
        .request::<_, Value>(method, params)
        .await
        .map_err(|e| EngineError::Replay(format!("{method}: {e}")))
}

fn hex_u64(v: &Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok()
}

/// One original block to make again on a fork.
struct Block {
    chain: ChainId,
    number: u64,
    timestamp: u64,
    txs: Vec<B256>,
}

/// Replays `saga` from `log` on forks of the chains at `rpcs` (chain → JSON-RPC URL of the real
/// chain), with anvil at `anvil`; `progress` hears what is happening.
pub async fn replay(
    log: &SagaLog,
    saga: SagaId,
    rpcs: &HashMap<ChainId, String>,
    anvil: &std::path::Path,
    trial: Option<&Trial>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Report> {
    let started = Instant::now();
    let body = log.input(saga).await?.ok_or(EngineError::NotFound(saga))?;
    let events = log.events(saga).await?;
    let (input, _) = SagaInput::running(saga, &body, events.iter().map(|e| &e.event))?;
    let plan = input.plan_stored()?.plan;
    let txs = recorded(&events);
    if txs.is_empty() {
        return Err(EngineError::Replay(format!(
            "saga {saga} has no transaction with a recorded result to replay"
        )));
    }
    let action = |step: StepId| {
        plan.step(step)
            .map_or_else(|| "?".to_owned(), |s| s.action.name().to_owned())
    };

    // Where each chain starts and ends.
    let mut span: BTreeMap<ChainId, (u64, u64)> = BTreeMap::new();
    for t in &txs {
        let first = match (&t.built_on, &t.receipt) {
            (Some(h), _) => *h,
            (None, Some(r)) => r.block.number.saturating_sub(1),
            (None, None) => continue,
        };
        let last = t.receipt.as_ref().map_or(first + 1, |r| r.block.number);
        let e = span.entry(t.chain).or_insert((first, last));
        e.0 = e.0.min(first);
        e.1 = e.1.max(last);
    }

    let origin = connect(&span, rpcs)?;
    let blocks = original_blocks(&origin, &span).await?;
    let forks = start_forks(&span, rpcs, anvil, progress)?;
    progress(&format!(
        "replaying {} block(s) on {} fork(s) …",
        blocks.len(),
        forks.len()
    ));
    let refused: Vec<&Recorded> = txs
        .iter()
        .filter(|t| matches!(t.result, Some(TxResult::NotIncluded { .. })))
        .collect();
    let stats = make_again(&blocks, &origin, &forks, &[], &refused).await?;

    // Compare.
    let mut steps = Vec::new();
    let mut first_divergence = None;
    let mut failing_step = None;
    for t in &txs {
        let fork = &forks[&t.chain].1;
        let receipt = rpc(fork, "eth_getTransactionReceipt", json!([t.tx])).await?;
        let mut trace = Value::Null;
        let replayed = if receipt.is_null() {
            TxResult::NotIncluded {
                reason: "the fork did not include it".into(),
            }
        } else if receipt["status"].as_str() == Some("0x1") {
            TxResult::Succeeded {
                block: hex_u64(&receipt["blockNumber"]).unwrap_or(0),
                logs: receipt["logs"].as_array().map_or(0, Vec::len),
            }
        } else {
            trace = rpc(
                fork,
                "debug_traceTransaction",
                json!([t.tx, { "tracer": "callTracer" }]),
            )
            .await
            .unwrap_or(Value::Null);
            TxResult::Reverted {
                block: hex_u64(&receipt["blockNumber"]).unwrap_or(0),
                reason: revert_reason(&trace),
            }
        };
        let recorded = t.result.clone().unwrap_or(TxResult::NotIncluded {
            reason: "unknown".into(),
        });
        let matches = same(&recorded, &replayed, t.receipt.as_ref(), &receipt);
        if !matches && first_divergence.is_none() {
            first_divergence = Some(Divergence {
                step: t.step.0,
                chain: t.chain.0,
                expected: recorded.clone(),
                actual: replayed.clone(),
            });
        }
        if matches
            && failing_step.is_none()
            && let TxResult::Reverted { reason, .. } = &replayed
        {
            failing_step = Some(FailingStep {
                step: t.step.0,
                chain: t.chain.0,
                action: action(t.step),
                revert_reason: reason.clone(),
                trace: decode_trace(&trace),
            });
        }
        steps.push(StepReplay {
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
    let had_failure = steps
        .iter()
        .any(|s| !matches!(s.recorded, TxResult::Succeeded { .. }));
    let reproduced = first_divergence.is_none();
    let summary = match (&first_divergence, &failing_step, had_failure) {
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
    };
    drop(forks); // stops the anvil forks
    let trial = match trial {
        Some(trial) => Some(
            try_change(
                &input, &txs, &span, &origin, &blocks, rpcs, anvil, trial, progress,
            )
            .await?,
        ),
        None => None,
    };
    let report = Report {
        saga_id: saga,
        reproduced,
        first_divergence,
        failing_step,
        steps,
        forks: span
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
        summary,
        trial,
        took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        resume: None,
    };
    Ok(report)
}

/// Tries `trial`'s change: fresh forks made again up to the block where the saga failed, without
/// the saga's own transactions; the intent re-planned there with the change and run from the start
/// by an engine on the forks (new transactions are signed with the trial's keys, for the forks
/// only).
#[allow(clippy::too_many_arguments)]
async fn try_change(
    input: &SagaInput,
    txs: &[Recorded],
    span: &BTreeMap<ChainId, (u64, u64)>,
    origin: &HashMap<ChainId, DynProvider>,
    blocks: &[Block],
    rpcs: &HashMap<ChainId, String>,
    anvil: &std::path::Path,
    trial: &Trial,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<TrialReport> {
    use std::sync::Arc;

    use baton_adapters::evm::{EvmAdapter, EvmConfig};
    use baton_adapters::port::ChainAdapter;

    let key = |b: &Block| (b.timestamp, b.chain, b.number);
    // The block where the saga first failed (or its last block).
    let failed_in = txs.iter().find_map(|t| {
        let number = match (&t.result, &t.receipt) {
            (Some(TxResult::Succeeded { .. }), _) => return None,
            (_, Some(r)) => r.block.number,
            (_, None) => t.built_on? + 1,
        };
        blocks
            .iter()
            .find(|b| b.chain == t.chain && b.number == number)
            .map(key)
    });
    // Blocks are in key order: the ones up to the failure are a prefix.
    let upto = &blocks[..blocks
        .iter()
        .take_while(|b| failed_in.is_none_or(|f| key(b) <= f))
        .count()];
    let forks = start_forks(span, rpcs, anvil, progress)?;
    let own: Vec<B256> = txs.iter().map(|t| t.tx).collect();
    make_again(upto, origin, &forks, &own, &[]).await?;
    progress("re-planning on the forks with the change and running the intent there …");

    let mut chains: HashMap<ChainId, Arc<dyn ChainAdapter>> = HashMap::new();
    let mut venues = Vec::new();
    for (chain, (node, _)) in &forks {
        let venue = trial
            .venues
            .iter()
            .find(|v| v.chain == *chain)
            .ok_or_else(|| EngineError::Replay(format!("no venue for chain {chain}")))?;
        let adapter = EvmAdapter::new(
            EvmConfig::new(*chain, node.endpoint_url(), venue.settlers),
            trial.solver.clone(),
        )?;
        chains.insert(*chain, Arc::new(adapter));
        venues.push(venue.clone());
    }
    // The forks make a block every 300 ms while the trial runs, each one second of chain time
    // after the last (time goes on from where the saga failed, not from now: deadlines hold).
    let mut clocks: Vec<(DynProvider, u64)> = Vec::new();
    for (chain, (_, p)) in &forks {
        let last = upto
            .iter()
            .filter(|b| b.chain == *chain)
            .map(|b| b.timestamp)
            .max();
        let at_fork = rpc(p, "eth_getBlockByNumber", json!(["latest", false]))
            .await
            .ok()
            .and_then(|b| hex_u64(&b["timestamp"]))
            .unwrap_or(0);
        clocks.push((p.clone(), last.unwrap_or(at_fork).max(at_fork)));
    }
    let miner = tokio::spawn(async move {
        loop {
            for (p, t) in &mut clocks {
                *t += 1;
                let _ = rpc(p, "evm_setNextBlockTimestamp", json!([*t])).await;
                let _ = rpc(p, "evm_mine", json!([])).await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    });
    let config = trial.change.apply(input.config);
    let outcome = run_trial(input, config, &chains, &venues, trial).await;
    miner.abort();
    drop(forks);
    let (plan, outcome, summary) = match outcome {
        Ok((plan, outcome)) => {
            let summary = match &outcome {
                Some(o) => format!("with the change the intent ends {o:?} on the forks"),
                None => "with the change the intent reached no outcome within two minutes".into(),
            };
            (plan, outcome, summary)
        }
        Err(e) => (Vec::new(), None, format!("the change cannot run: {e}")),
    };
    Ok(TrialReport {
        change: trial.change,
        config,
        plan,
        fulfilled: outcome == Some(crate::event::Outcome::Fulfilled),
        outcome,
        summary,
    })
}

/// Re-plans `input` with `config` over the forks' liquidity and runs it with an engine on a
/// scratch saga log; returns the plan's steps and the outcome (none on timeout).
async fn run_trial(
    input: &SagaInput,
    config: baton_planner::PlannerConfig,
    chains: &HashMap<ChainId, std::sync::Arc<dyn baton_adapters::port::ChainAdapter>>,
    venues: &[crate::liquidity::Venue],
    trial: &Trial,
) -> Result<(Vec<String>, Option<crate::event::Outcome>)> {
    use std::sync::Arc;
    let snapshot = crate::liquidity::read(
        chains,
        venues,
        input.snapshot.solver_fee_bps,
        input.snapshot.default_route_latency_secs,
    )
    .await?;
    let changed = input.replanned(snapshot, config);
    let planned = changed.plan()?;
    let plan = step_list(&planned.plan);
    let scratch = crate::db::ScratchSqlite::new("trial");
    let db = crate::db::Db::connect(&scratch.url()).await?;
    let engine = crate::engine::Engine::new(
        SagaLog::new(db),
        chains.values().cloned().collect(),
        Arc::new(crate::attester::LocalAttester(trial.attester.clone())),
        crate::engine::EngineConfig {
            poll: std::time::Duration::from_millis(100),
            instance: "replay-trial".into(),
            ..Default::default()
        },
    );
    let saga = engine.submit(changed).await?;
    let outcome =
        match tokio::time::timeout(std::time::Duration::from_secs(120), engine.wait(saga)).await {
            Ok(outcome) => Some(outcome?),
            Err(_) => None,
        };
    drop(engine);
    Ok((plan, outcome))
}

/// A plan's steps, one `action on chain` each, in plan order.
pub fn step_list(plan: &baton_planner::Plan) -> Vec<String> {
    plan.steps()
        .iter()
        .map(|s| format!("{} on {}", s.action.name(), s.chain))
        .collect()
}

/// Providers of the real chains the saga acted on (read only).
fn connect(
    span: &BTreeMap<ChainId, (u64, u64)>,
    rpcs: &HashMap<ChainId, String>,
) -> Result<HashMap<ChainId, DynProvider>> {
    let mut origin = HashMap::new();
    for chain in span.keys() {
        let url = rpcs.get(chain).ok_or_else(|| {
            EngineError::Replay(format!(
                "no RPC URL for chain {chain} (the saga acted on it)"
            ))
        })?;
        let parsed = url
            .parse()
            .map_err(|e| EngineError::Replay(format!("chain {chain}: RPC URL {url:?}: {e}")))?;
        origin.insert(*chain, ProviderBuilder::new().connect_http(parsed).erased());
    }
    Ok(origin)
}

/// An anvil fork of each chain at the start of its span, mining off, on 127.0.0.1.
fn start_forks(
    span: &BTreeMap<ChainId, (u64, u64)>,
    rpcs: &HashMap<ChainId, String>,
    anvil: &std::path::Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<HashMap<ChainId, (AnvilInstance, DynProvider)>> {
    let mut forks = HashMap::new();
    for (chain, (first, _)) in span {
        let url = rpcs.get(chain).ok_or_else(|| {
            EngineError::Replay(format!(
                "no RPC URL for chain {chain} (the saga acted on it)"
            ))
        })?;
        progress(&format!("forking chain {chain} at block {first} …"));
        let node = Anvil::at(anvil)
            .port(0u16)
            .fork(url.clone())
            .fork_block_number(*first)
            .arg("--host")
            .arg("127.0.0.1")
            .arg("--no-mining")
            .try_spawn()
            .map_err(|e| {
                EngineError::Replay(format!(
                    "cannot fork chain {chain} at block {first}: {e}; the RPC may have no state at that block (not an archive node): try a later block"
                ))
            })?;
        let provider = ProviderBuilder::new()
            .connect_http(node.endpoint_url())
            .erased();
        forks.insert(*chain, (node, provider));
    }
    Ok(forks)
}

/// Every original block after the start of each chain's span to its end, across chains in
/// timestamp order.
async fn original_blocks(
    origin: &HashMap<ChainId, DynProvider>,
    span: &BTreeMap<ChainId, (u64, u64)>,
) -> Result<Vec<Block>> {
    let mut blocks = Vec::new();
    for (chain, (first, last)) in span {
        for number in first + 1..=*last {
            let b = rpc(
                &origin[chain],
                "eth_getBlockByNumber",
                json!([format!("0x{number:x}"), false]),
            )
            .await?;
            if b.is_null() {
                break;
            }
            blocks.push(Block {
                chain: *chain,
                number,
                timestamp: hex_u64(&b["timestamp"]).unwrap_or(0),
                txs: b["transactions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|h| h.as_str()?.parse().ok())
                    .collect(),
            });
        }
    }
    blocks.sort_by_key(|b| (b.timestamp, b.chain, b.number));
    Ok(blocks)
}

/// Makes `blocks` again on the forks: each block's raw transactions in order (except `skip`),
/// then the `refused` saga transactions built against the block before, at the original
/// timestamp. Returns blocks and transactions replayed per chain.
async fn make_again(
    blocks: &[Block],
    origin: &HashMap<ChainId, DynProvider>,
    forks: &HashMap<ChainId, (AnvilInstance, DynProvider)>,
    skip: &[B256],
    refused: &[&Recorded],
) -> Result<BTreeMap<ChainId, (u64, u64)>> {
    let mut stats: BTreeMap<ChainId, (u64, u64)> = BTreeMap::new();
    for block in blocks {
        let fork = &forks[&block.chain].1;
        let s = stats.entry(block.chain).or_default();
        for hash in block.txs.iter().filter(|h| !skip.contains(h)) {
            let raw = rpc(
                &origin[&block.chain],
                "eth_getRawTransactionByHash",
                json!([hash]),
            )
            .await?;
            // A transaction the fork refuses shows in the comparison.
            let _ = rpc(fork, "eth_sendRawTransaction", json!([raw])).await;
            s.1 += 1;
        }
        for t in refused
            .iter()
            .filter(|t| t.chain == block.chain && t.built_on.is_some_and(|h| h + 1 == block.number))
        {
            let _ = rpc(fork, "eth_sendRawTransaction", json!([t.raw])).await;
        }
        rpc(fork, "evm_setNextBlockTimestamp", json!([block.timestamp])).await?;
        rpc(fork, "evm_mine", json!([])).await?;
        s.0 += 1;
    }
    Ok(stats)
}

fn describe(r: &TxResult) -> String {
    match r {
        TxResult::Succeeded { block, .. } => format!("succeeded (block {block})"),
        TxResult::Reverted { block, reason } => format!(
            "reverted (block {block}: {})",
            reason.as_deref().unwrap_or("no reason")
        ),
        TxResult::NotIncluded { reason } => format!("was never included ({reason})"),
    }
}

/// Whether the fork's result agrees with the log: the same status and, for successes, the same
/// events (addresses, topics, data).
fn same(recorded: &TxResult, replayed: &TxResult, receipt: Option<&Receipt>, fork: &Value) -> bool {
    match (recorded, replayed) {
        (TxResult::Succeeded { .. }, TxResult::Succeeded { .. }) => {
            let Some(receipt) = receipt else { return true };
            let fork_logs: Vec<Log> =
                serde_json::from_value::<Vec<alloy::rpc::types::Log>>(fork["logs"].clone())
                    .map(|l| l.into_iter().map(|l| l.inner).collect())
                    .unwrap_or_default();
            fork_logs == receipt.logs
        }
        (TxResult::Reverted { .. }, TxResult::Reverted { .. }) => true,
        (TxResult::NotIncluded { .. }, TxResult::NotIncluded { .. }) => true,
        _ => false,
    }
}

/// The revert reason of a call trace (`revertReason`, else the `Error(string)` in its output).
fn revert_reason(trace: &Value) -> Option<String> {
    if let Some(r) = trace["revertReason"].as_str() {
        return Some(r.to_owned());
    }
    let output: Bytes = trace["output"].as_str()?.parse().ok()?;
    alloy::sol_types::decode_revert_reason(&output)
}

/// The call trace as lines: `CALL Pool.swap(…) → reverted: reason`, indented by depth.
fn decode_trace(trace: &Value) -> Vec<String> {
    let mut names: HashMap<[u8; 4], String> = HashMap::new();
    for artifact in ARTIFACTS {
        let Ok(v) = serde_json::from_str::<Value>(artifact) else {
            continue;
        };
        let contract = v["contractName"].as_str().unwrap_or("?").to_owned();
        let Ok(abi) = serde_json::from_value::<JsonAbi>(v["abi"].clone()) else {
            continue;
        };
        for f in abi.functions() {
            names
                .entry(f.selector().0)
                .or_insert_with(|| format!("{contract}.{}", f.signature()));
        }
    }
    let mut lines = Vec::new();
    fn walk(call: &Value, depth: usize, names: &HashMap<[u8; 4], String>, lines: &mut Vec<String>) {
        if call.is_null() {
            return;
        }
        let input: Bytes = call["input"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_default();
        let function = input
            .get(..4)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .and_then(|sel| names.get(&sel).cloned())
            .unwrap_or_else(|| {
                if input.is_empty() {
                    "(transfer)".into()
                } else {
                    format!(
                        "0x{}",
                        alloy::primitives::hex::encode(&input[..input.len().min(4)])
                    )
                }
            });
        let outcome = match (call["error"].as_str(), revert_reason(call)) {
            (Some(_), Some(reason)) => format!(" → reverted: {reason}"),
            (Some(error), None) => format!(" → {error}"),
            _ => String::new(),
        };
        lines.push(format!(
            "{}{} {} to {}{outcome}",
            "  ".repeat(depth),
            call["type"].as_str().unwrap_or("CALL"),
            function,
            call["to"].as_str().unwrap_or("?"),
        ));
        for child in call["calls"].as_array().into_iter().flatten() {
            walk(child, depth + 1, names, lines);
        }
    }
    walk(trace, 0, &names, &mut lines);
    lines
}

/// The report as text for a terminal.
pub fn render(report: &Report) -> String {
    let mut out = format!("replay of saga {}\n", report.saga_id);
    for f in &report.forks {
        out.push_str(&format!(
            "  fork of chain {} at block {}: {} block(s), {} transaction(s) replayed\n",
            f.chain, f.block, f.blocks_replayed, f.txs_replayed
        ));
    }
    for s in &report.steps {
        out.push_str(&format!(
            "  {} step {:>2}{} {:<8} chain {}: log {}, fork {}\n",
            if s.matches { "=" } else { "≠" },
            s.step,
            if s.compensation {
                " (compensation)"
            } else {
                ""
            },
            s.action,
            s.chain,
            describe(&s.recorded),
            describe(&s.replayed),
        ));
    }
    if let Some(f) = &report.failing_step {
        out.push_str(&format!(
            "failing step {} ({}) on chain {}: {}\n",
            f.step,
            f.action,
            f.chain,
            f.revert_reason.as_deref().unwrap_or("no reason given")
        ));
        for line in &f.trace {
            out.push_str(&format!("    {line}\n"));
        }
    }
    out.push_str(&format!("{}\n", report.summary));
    if let Some(t) = &report.trial {
        out.push_str(&format!("trial {}: {}\n", json!(t.change), t.summary));
        for step in &t.plan {
            out.push_str(&format!("    {step}\n"));
        }
    }
    if let Some(r) = &report.resume {
        out.push_str(&format!("resume: {}\n", r.summary));
    }
    out.push_str(&format!("(took {} ms)\n", report.took_ms));
    out
}
