//! `baton bench e2e`: real intents on anvil chains with real block times, driven by the engine
//! in this process (the solver's EVM adapters, a durable SQLite saga log), each 100 USDC on one
//! chain for at least 95 USDC on the next (open, wait for finality, fill, attest, settle).
//!
//! Each intent's time to outcome (from its submission to its `Fulfilled` decision in the log) is
//! divided by its plan's critical-path bound: the blocks on the plan's critical path (the open,
//! its finality, the fill, confirmations included) × the block time. With `--baseline
//! sequential`, as many fresh intents of the same shape again go through the engine at once, and
//! as many more through a script that does what a hand-written bot does: for each intent, each
//! step in order — sign one transaction, send it, wait for its receipt, then the next.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use anyhow::{Context, Result, bail};
use baton_adapters::devnet::{Devnet, SOLVER, USER, dev_signer};
use baton_adapters::evm::{EvmAdapter, EvmConfig};
use baton_adapters::follow::{FollowConfig, Followed};
use baton_adapters::port::{ChainAdapter, TxRequest, TxStatus};
use baton_attester::client::Attest;
use baton_attester::wire::FillRequest;
use baton_engine::attester::{Attesters, Collected};
use baton_engine::event::SagaEvent;
use baton_engine::liquidity::{self, Venue};
use baton_engine::saga::input::Planned;
use baton_engine::{Db, Engine, EngineConfig, Outcome, SagaId, SagaInput, SagaLog};
use baton_planner::ChainId;
use baton_planner::spec::SnapshotSpec;
use baton_planner::step::Action;
use clap::{Args, ValueEnum};
use serde_json::json;

use crate::measure::Progress;
use crate::report::{Report, percentile, round3};

/// `baton bench e2e`.
#[derive(Args)]
pub struct E2eArgs {
    /// Anvil chains.
    #[arg(long, default_value_t = 2)]
    chains: usize,
    /// Seconds per block.
    #[arg(long, default_value_t = 1)]
    block_time: u64,
    /// Intents submitted at once.
    #[arg(long, default_value_t = 200)]
    intents: usize,
    /// Also compare with a baseline.
    #[arg(long, value_enum)]
    baseline: Option<Baseline>,
    /// Intents of the baseline comparison (run through the engine at once, and through the
    /// baseline).
    #[arg(long, default_value_t = 50)]
    baseline_intents: usize,
    /// Calls per second each adapter may make to its anvil node.
    #[arg(long, default_value_t = 2_000)]
    rpc_rate: u32,
    /// Milliseconds between two looks at each chain's head by its follower (0: no follower, every
    /// read goes to the node).
    #[arg(long, default_value_t = 250)]
    follow_poll_ms: u64,
    /// One JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// A baseline to compare the engine with.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Baseline {
    /// One intent after another, one transaction at a time, each waiting for its receipt.
    Sequential,
}

/// How deep a fill is before the bench's attesters attest it.
const ATTESTER_CONFIRMATIONS: u64 = 2;

/// The chains, the solver's adapters and venues on them, and intents to make.
struct Setup {
    _devnet: Devnet,
    chains: HashMap<ChainId, Arc<dyn ChainAdapter>>,
    venues: Vec<Venue>,
    ids: Vec<ChainId>,
    nonce: u64,
    block_ms: u64,
    /// The devnet's three attesters, in this process (each with adapters of its own).
    attesters: Attesters,
}

impl Setup {
    async fn new(args: &E2eArgs) -> Result<Self> {
        eprintln!(
            "starting {} anvil chains ({} s blocks) and deploying the contracts …",
            args.chains, args.block_time
        );
        let devnet = Devnet::start(args.chains, Some(args.block_time)).await?;
        let file = devnet.file();
        let mut chains: HashMap<ChainId, Arc<dyn ChainAdapter>> = HashMap::new();
        let mut venues = Vec::new();
        for (c, described) in devnet.chains.iter().zip(&file.chains) {
            let venue = liquidity::devnet_venue(described);
            let mut config = EvmConfig::new(
                venue.chain,
                described.rpc_url.parse().context("RPC URL")?,
                venue.settlers,
            );
            config.requests_per_second =
                std::num::NonZeroU32::new(args.rpc_rate).context("--rpc-rate must be ≥ 1")?;
            let mut solver: Arc<dyn ChainAdapter> =
                Arc::new(EvmAdapter::new(config, dev_signer(SOLVER))?);
            if args.follow_poll_ms > 0 {
                let followed = Followed::new(
                    solver,
                    FollowConfig {
                        poll: Duration::from_millis(args.follow_poll_ms),
                        ..FollowConfig::default()
                    },
                );
                followed.sync().await?;
                followed.spawn();
                solver = followed;
            }
            liquidity::approve_inventory(solver.as_ref(), &venue).await?;
            let user = c.adapter(USER)?;
            liquidity::approve(&user, &[(c.tokens["USDC"], c.origin_settler)]).await?;
            chains.insert(venue.chain, solver);
            venues.push(venue);
        }
        let mut ids: Vec<ChainId> = chains.keys().copied().collect();
        ids.sort();
        let attesters = baton_attester::devnet::in_process(&file.chains, ATTESTER_CONFIRMATIONS)
            .await
            .map_err(anyhow::Error::msg)?
            .into_iter()
            .map(|a| a as Arc<dyn Attest>)
            .collect();
        Ok(Self {
            attesters: Attesters::new(attesters, Duration::from_secs(5)),
            _devnet: devnet,
            chains,
            venues,
            ids,
            nonce: u64::from(fastrand::u32(..)) << 16,
            block_ms: args.block_time * 1_000,
        })
    }

    fn adapters(&self) -> Vec<Arc<dyn ChainAdapter>> {
        self.chains.values().cloned().collect()
    }

    async fn snapshot(&self) -> Result<SnapshotSpec> {
        Ok(liquidity::read(&self.chains, &self.venues, 5, 2).await?)
    }

    /// `n` fresh intents, signed by the user: intent k gives 100 USDC on chain k mod n for at
    /// least 95 USDC on the next chain.
    async fn inputs(&mut self, n: usize) -> Result<Vec<SagaInput>> {
        let snapshot = self.snapshot().await?;
        let user = dev_signer(USER);
        let recipient = dev_signer(USER + 1).address();
        let mut inputs = Vec::with_capacity(n);
        for k in 0..n {
            let from = self.ids[k % self.ids.len()];
            let to = self.ids[(k + 1) % self.ids.len()];
            self.nonce += 1;
            let intent = serde_json::from_value(json!({
                "user": user.address(),
                "nonce": self.nonce.to_string(),
                "open_deadline": { "at": snapshot.timestamp + 900 },
                "fill_deadline": { "at": snapshot.timestamp + 1_800 },
                "inputs": [{ "chain": from.0, "token": "USDC", "amount": "100000000" }],
                "outputs": [{ "chain": to.0, "token": "USDC", "min_amount": "95000000", "recipient": recipient }]
            }))?;
            let mut input = SagaInput {
                intent,
                snapshot: snapshot.clone(),
                config: Default::default(),
                signatures: Vec::new(),
                config_version: None,
            };
            input.sign_as(&user)?;
            inputs.push(input);
        }
        Ok(inputs)
    }
}

/// What one batch through the engine took.
struct EngineRun {
    /// Per intent: time to outcome / critical-path bound.
    ratios: Vec<f64>,
    /// Time to outcome per intent.
    times: Vec<Duration>,
    /// From each submission to its saga's completion (the solver repaid on the attesters'
    /// quorum), sorted.
    settled: Vec<Duration>,
    /// From the first submission to the last `Fulfilled`.
    makespan: Duration,
    /// Critical-path blocks of the first plan.
    blocks: u64,
    /// JSON-RPC requests the solver's adapters sent from the first submission to the last
    /// outcome, by method.
    rpc: BTreeMap<String, u64>,
}

/// Submits `inputs` at once to a fresh engine and waits for all to complete.
async fn through_engine(
    setup: &Setup,
    inputs: Vec<SagaInput>,
    what: &'static str,
) -> Result<EngineRun> {
    let scratch = baton_engine::log::db::ScratchSqlite::new("bench-e2e");
    let db = Db::connect(&scratch.url()).await?;
    let engine = Arc::new(Engine::new(
        SagaLog::new(db),
        setup.adapters(),
        setup.attesters.clone(),
        EngineConfig {
            instance: format!("bench-e2e-{}", fastrand::u32(..)),
            ..EngineConfig::default()
        },
    ));
    let n = inputs.len();
    let bounds: Vec<u64> = inputs
        .iter()
        .map(|i| Ok(i.plan()?.plan.critical_path().blocks))
        .collect::<Result<_>>()?;
    let calls_before = rpc_calls(setup);
    let start_ms = baton_engine::now_ms();
    let mut tasks = tokio::task::JoinSet::new();
    for (k, input) in inputs.into_iter().enumerate() {
        let engine = engine.clone();
        tasks.spawn(async move {
            let submitted = baton_engine::now_ms();
            let saga = engine.submit(input).await?;
            let outcome = engine.wait(saga).await?;
            anyhow::Ok((k, saga, submitted, outcome))
        });
    }
    let mut progress = Progress::new(what, n);
    let mut done = Vec::with_capacity(n);
    while let Some(result) = tasks.join_next().await {
        done.push(result??);
        progress.tick(done.len());
    }
    let mut ratios = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    let mut settled = Vec::with_capacity(n);
    let mut last_ms = start_ms;
    for (k, saga, submitted, outcome) in done {
        if outcome != Outcome::Fulfilled {
            bail!("saga {saga} ended {outcome:?}");
        }
        let decided = event_at(&engine, saga, |e| matches!(e, SagaEvent::Decided { .. })).await?;
        let completed = event_at(&engine, saga, |e| matches!(e, SagaEvent::Completed)).await?;
        settled.push(Duration::from_millis(
            u64::try_from(completed - submitted).unwrap_or(0),
        ));
        last_ms = last_ms.max(decided);
        let took = Duration::from_millis(u64::try_from(decided - submitted).unwrap_or(0));
        let bound = (bounds[k] * setup.block_ms) as f64;
        ratios.push(took.as_secs_f64() * 1e3 / bound);
        times.push(took);
    }
    let mut rpc = rpc_calls(setup);
    for (method, n) in calls_before {
        if let Some(after) = rpc.get_mut(&method) {
            *after = after.saturating_sub(n);
        }
    }
    rpc.retain(|_, n| *n > 0);
    drop(engine);
    ratios.sort_by(f64::total_cmp);
    times.sort();
    settled.sort();
    Ok(EngineRun {
        ratios,
        times,
        settled,
        makespan: Duration::from_millis(u64::try_from(last_ms - start_ms).unwrap_or(0)),
        blocks: bounds.first().copied().unwrap_or(0),
        rpc,
    })
}

/// The JSON-RPC requests the solver's adapters sent so far, by method, summed over the chains.
fn rpc_calls(setup: &Setup) -> BTreeMap<String, u64> {
    let mut calls = BTreeMap::new();
    for adapter in setup.adapters() {
        for (method, n) in adapter.rpc_calls_by_method() {
            *calls.entry(method).or_default() += n;
        }
    }
    calls
}

/// When the first event of `saga` that is `what` was written, unix milliseconds.
async fn event_at(engine: &Engine, saga: SagaId, what: impl Fn(&SagaEvent) -> bool) -> Result<i64> {
    engine
        .log()
        .events(saga)
        .await?
        .iter()
        .find(|e| what(&e.event))
        .map(|e| e.at_ms)
        .with_context(|| format!("saga {saga} has no such event"))
}

/// The hand-written bot: each intent after the one before, each on-chain step a transaction sent
/// and waited for (its receipt) before the next; finality waited for by polling the head.
/// Returns the time from its start to the last fill's receipt.
async fn sequential(setup: &Setup, inputs: Vec<SagaInput>) -> Result<Duration> {
    let start = Instant::now();
    let mut last_fill = Duration::ZERO;
    let mut progress = Progress::new("intents by the sequential script", inputs.len());
    for (k, input) in inputs.into_iter().enumerate() {
        let planned: Planned = input.plan()?;
        let mut included: HashMap<baton_planner::StepId, u64> = HashMap::new();
        for id in planned.plan.topological_order().to_vec() {
            let step = planned.plan.step(id).context("a step of the plan")?.clone();
            let chain = setup.chains[&step.chain].clone();
            match &step.action {
                Action::WaitFinality { of } => {
                    let at = included[of] + u64::from(step.timing.confirmations).max(1) - 1;
                    while chain.head().await?.number < at {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                // The fill's receipt is the evidence; the settle carries the attestation.
                Action::Attest { .. } => {}
                _ => {
                    let attested = match step.action {
                        Action::Settle { order } => Some(attested(setup, &planned, order).await?),
                        _ => None,
                    };
                    let op = baton_engine::saga::ops::forward(
                        &planned,
                        &step,
                        chain.account(),
                        attested.as_ref(),
                    )?;
                    let base_fee = chain.conditions().await?.base_fee;
                    let ceiling =
                        U256::from(base_fee.saturating_mul(2).saturating_add(1_000_000_000));
                    let fees = baton_engine::saga::ops::fees(&op, ceiling, 0);
                    let tx = chain.prepare(TxRequest::new(op, fees)).await?;
                    chain.broadcast(&tx).await?;
                    let block = loop {
                        match chain.status(&tx, None).await? {
                            TxStatus::Included(inc) if inc.success => break inc.block.number,
                            TxStatus::Included(inc) => bail!(
                                "the script's {} reverted: {:?}",
                                step.action.name(),
                                inc.revert_reason
                            ),
                            _ => tokio::time::sleep(Duration::from_millis(100)).await,
                        }
                    };
                    included.insert(id, block);
                    if matches!(step.action, Action::Fill { .. }) {
                        last_fill = start.elapsed();
                    }
                }
            }
        }
        progress.tick(k + 1);
    }
    Ok(last_fill)
}

/// The script asks the attesters, as the engine does, until a quorum attests `order`'s fill.
async fn attested(
    setup: &Setup,
    planned: &Planned,
    order: baton_planner::OrderId,
) -> Result<baton_engine::saga::attest::Attested> {
    let o = planned
        .plan
        .orders()
        .iter()
        .find(|o| o.id() == order)
        .context("the settled order")?;
    let filler = setup.chains[&o.chain()].account();
    let req = FillRequest {
        order: o.order().clone(),
        filled_as: None,
        filler,
    };
    let at = baton_adapters::attestation::OriginSettlerAt::of(o);
    let set = setup.chains[&o.chain()].attesters().await?;
    loop {
        match setup.attesters.fill(&set, at, order, &req).await {
            Collected::Quorum {
                deliveries,
                signatures,
            } => {
                return Ok(baton_engine::saga::attest::Attested {
                    filler,
                    deliveries,
                    signatures,
                });
            }
            Collected::Waiting(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            Collected::Refused(why) => bail!("the attesters refuse: {why}"),
        }
    }
}

pub(crate) async fn run(args: E2eArgs) -> Result<Report> {
    if args.chains < 2 || args.intents == 0 || args.block_time == 0 {
        bail!("--chains must be at least 2, --intents and --block-time at least 1");
    }
    let mut setup = Setup::new(&args).await?;
    let inputs = setup.inputs(args.intents).await?;
    eprintln!("{} intents through the engine at once …", args.intents);
    let run = through_engine(&setup, inputs, "intents fulfilled and settled").await?;
    let per_block =
        args.intents as f64 / (run.makespan.as_secs_f64() * 1e3 / setup.block_ms as f64);

    let mut report = Report::new("e2e", args.json);
    report
        .value("chains", json!(args.chains))
        .value("block_time_secs", json!(args.block_time))
        .value("intents", json!(args.intents))
        .value("rpc_rate", json!(args.rpc_rate))
        .value("follow_poll_ms", json!(args.follow_poll_ms))
        .value("critical_path_blocks", json!(run.blocks))
        .figure(
            "ratio_p50",
            json!(round3(percentile(&run.ratios, 0.5))),
            "time to outcome / critical-path bound, p50",
            format!("{:.2}", percentile(&run.ratios, 0.5)),
            "≤ 1.10",
        )
        .figure(
            "ratio_p99",
            json!(round3(percentile(&run.ratios, 0.99))),
            "time to outcome / critical-path bound, p99",
            format!("{:.2}", percentile(&run.ratios, 0.99)),
            "",
        )
        .figure(
            "outcome_p50_secs",
            json!(round3(percentile(&run.times, 0.5).as_secs_f64())),
            "time to outcome p50",
            format!(
                "{:.2} s (bound {} blocks = {} s)",
                percentile(&run.times, 0.5).as_secs_f64(),
                run.blocks,
                run.blocks * args.block_time
            ),
            "",
        )
        .figure(
            "settled_p50_secs",
            json!(round3(percentile(&run.settled, 0.5).as_secs_f64())),
            "time to the solver's repayment p50 (a quorum of 2 of 3 attesters, 2 blocks deep)",
            format!(
                "{:.2} s (p99 {:.2} s)",
                percentile(&run.settled, 0.5).as_secs_f64(),
                percentile(&run.settled, 0.99).as_secs_f64()
            ),
            "",
        )
        .figure(
            "intents_per_block",
            json!(round3(per_block)),
            "intents fulfilled per block",
            format!("{per_block:.1}"),
            "",
        );
    let intents = args.intents as f64;
    let calls: u64 = run.rpc.values().sum();
    let per_intent = calls as f64 / intents;
    let by_method: serde_json::Map<String, serde_json::Value> = run
        .rpc
        .iter()
        .map(|(method, n)| (method.clone(), json!(round3(*n as f64 / intents))))
        .collect();
    let busiest: Vec<String> = {
        let mut methods: Vec<(&String, &u64)> = run.rpc.iter().collect();
        methods.sort_by(|a, b| b.1.cmp(a.1));
        methods
            .iter()
            .take(4)
            .map(|(m, n)| format!("{m} {:.1}", **n as f64 / intents))
            .collect()
    };
    report
        .figure(
            "rpc_calls_per_intent",
            json!(round3(per_intent)),
            "RPC calls per fulfilled intent (the solver's, every chain, retries counted)",
            format!("{per_intent:.1} ({})", busiest.join(", ")),
            "≤ 4",
        )
        .value("rpc_calls_per_intent_by_method", json!(by_method));
    if let Some(Baseline::Sequential) = args.baseline {
        let n = args.baseline_intents.max(1);
        let inputs = setup.inputs(n).await?;
        eprintln!("{n} intents through the engine at once, for the baseline …");
        let engine_run =
            through_engine(&setup, inputs, "intents (engine, for the baseline)").await?;
        let inputs = setup.inputs(n).await?;
        eprintln!("{n} intents through the sequential script …");
        let script = sequential(&setup, inputs).await?;
        let speedup = script.as_secs_f64() / engine_run.makespan.as_secs_f64();
        report
            .value("baseline_intents", json!(n))
            .figure(
                "engine_secs",
                json!(round3(engine_run.makespan.as_secs_f64())),
                "baseline: the engine, all fulfilled",
                format!("{:.1} s", engine_run.makespan.as_secs_f64()),
                "",
            )
            .figure(
                "sequential_secs",
                json!(round3(script.as_secs_f64())),
                "baseline: the sequential script, all fulfilled",
                format!("{:.1} s", script.as_secs_f64()),
                "",
            )
            .figure(
                "speedup",
                json!(round3(speedup)),
                "speed-up over the sequential script",
                format!("{speedup:.1}×"),
                "≥ 3×",
            );
    }
    Ok(report)
}
