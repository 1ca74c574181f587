//! A trial of a change ([`Trial`], `--with`): fresh forks made again up to the block where the saga
//! failed, without the saga's own transactions; the intent re-planned there from the forks' state
//! with the change (the same signed orders: a change of planner knobs does not change them) and
//! run from the start by an engine on the forks, on a scratch log. New transactions are signed with
//! the trial's keys, for the forks only.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alloy::providers::DynProvider;
use alloy::providers::ext::AnvilApi;
use alloy::signers::local::PrivateKeySigner;
use baton_adapters::contracts::OriginSettler;
use baton_adapters::evm::{EvmAdapter, EvmConfig};
use baton_adapters::port::ChainAdapter;
use baton_attester::Attester;
use baton_engine::attester::Attesters;
use baton_engine::liquidity::{self, Venue};
use baton_engine::log::db::{Db, ScratchSqlite};
use baton_engine::{Engine, EngineConfig, EngineError, Outcome, SagaInput, SagaLog};
use baton_planner::describe::step_list;
use baton_planner::{ChainId, ConfigPatch, PlannerConfig};

use crate::blocks::{Block, latest_timestamp, make_again};
use crate::error::{ReplayError, Result};
use crate::fork::{Forks, Spans};
use crate::measure::Measured;
use crate::recorded::Recorded;
use crate::report::TrialReport;

/// What a trial needs besides the change: what the solver uses on each chain, and the solver's
/// key (the trial signs new transactions, on the forks only).
///
/// No attester key: the real attesters do not attest what happens on a fork. On each fork (only
/// there) the trial makes its own attester, with a key made for the trial, the origin settler's
/// only member (threshold 1), as the settler's owner would, whose account the fork lets it use.
pub struct Trial {
    /// The change.
    pub change: ConfigPatch,
    /// The venues.
    pub venues: Vec<Venue>,
    /// The solver's key.
    pub solver: PrivateKeySigner,
}

/// What the trial runs against: the original chains and blocks of the replay.
pub(crate) struct Recording<'a> {
    pub(crate) input: &'a SagaInput,
    pub(crate) txs: &'a [Recorded],
    pub(crate) spans: &'a Spans,
    pub(crate) origin: &'a HashMap<ChainId, DynProvider>,
    pub(crate) blocks: &'a [Block],
    pub(crate) rpcs: &'a HashMap<ChainId, String>,
}

impl Trial {
    /// Tries the change against `rec` on fresh forks started with `anvil`.
    pub(crate) async fn run(
        &self,
        rec: Recording<'_>,
        anvil: &Path,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<TrialReport> {
        // The block where the saga first failed (or its last block).
        let failed_in = rec.txs.iter().find_map(|t| {
            let number = t.failed_in()?;
            rec.blocks
                .iter()
                .find(|b| b.chain == t.chain && b.number == number)
                .map(Block::key)
        });
        // Blocks are in key order: the ones up to the failure are a prefix.
        let upto = &rec.blocks[..rec
            .blocks
            .iter()
            .take_while(|b| failed_in.is_none_or(|f| b.key() <= f))
            .count()];
        let forks = Forks::start(rec.spans, rec.rpcs, anvil, progress)?;
        let own: Vec<_> = rec.txs.iter().map(|t| t.tx).collect();
        make_again(upto, rec.origin, &forks, &own, &[]).await?;
        // What the blocks made again left pending is dropped: the trial starts from those blocks
        // alone. Without the saga's own transactions, the solver's later ones (other sagas') wait
        // in the pool on a nonce gap, and the trial's first transactions would collide with them.
        for fork in forks.0.values() {
            fork.provider
                .anvil_drop_all_transactions()
                .await
                .map_err(|e| ReplayError::Trial(format!("emptying a fork's pool: {e}")))?;
        }
        progress("re-planning on the forks with the change and running the intent there …");

        let mut chains: HashMap<ChainId, Arc<dyn ChainAdapter>> = HashMap::new();
        let mut attester_chains = Vec::new();
        let attester_key = PrivateKeySigner::random();
        let mut venues = Vec::new();
        for (chain, fork) in &forks.0 {
            let venue = self
                .venues
                .iter()
                .find(|v| v.chain == *chain)
                .ok_or(ReplayError::NoVenue(*chain))?;
            let adapter = EvmAdapter::new(
                EvmConfig::new(*chain, fork.node.endpoint_url(), venue.settlers),
                self.solver.clone(),
            )
            .map_err(EngineError::from)?;
            chains.insert(*chain, Arc::new(adapter));
            venues.push(venue.clone());
            install_attester(
                &fork.provider,
                venue.settlers.origin,
                attester_key.address(),
            )
            .await?;
            attester_chains.push(
                baton_attester::devnet::evm_chain(
                    *chain,
                    fork.node.endpoint_url().as_str(),
                    &[venue.settlers],
                    &attester_key,
                    1,
                )
                .map_err(ReplayError::Trial)?,
            );
        }
        let providers: HashMap<ChainId, DynProvider> = forks
            .0
            .iter()
            .map(|(chain, fork)| (*chain, fork.provider.clone()))
            .collect();
        let attester = Attester::in_memory(attester_key, attester_chains)
            .await
            .map_err(|e| ReplayError::Trial(e.to_string()))?;
        let attester = Arc::new(attester);
        let attesters = Attesters::new(vec![attester], Duration::from_secs(10));
        // The forks make a block every 300 ms while the trial runs, each one second of chain time
        // after the last (time goes on from where the saga failed, not from now: deadlines hold).
        let mut clocks: Vec<(DynProvider, u64)> = Vec::new();
        for (chain, fork) in &forks.0 {
            let last = upto
                .iter()
                .filter(|b| b.chain == *chain)
                .map(|b| b.timestamp)
                .max();
            let at_fork = latest_timestamp(&fork.provider).await.unwrap_or(0);
            clocks.push((fork.provider.clone(), last.unwrap_or(at_fork).max(at_fork)));
        }
        let miner = tokio::spawn(async move {
            loop {
                for (p, t) in &mut clocks {
                    *t += 1;
                    let _ = p.anvil_set_next_block_timestamp(*t).await;
                    let _ = p.evm_mine(None).await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        let config = self.change.apply(rec.input.config);
        let outcome = self
            .engine_run(rec.input, config, &chains, &venues, attesters, &providers)
            .await;
        miner.abort();
        drop(forks);
        let (plan, outcome, measured, stand_in, summary) = match outcome {
            Ok(ran) => {
                let mut summary = match &ran.outcome {
                    Some(o) => format!("with the change the intent ends {o:?} on the forks"),
                    None => {
                        "with the change the intent reached no outcome within two minutes".into()
                    }
                };
                if ran.stand_in {
                    summary.push_str(
                        " (its orders signed by a stand-in user: the user signed for other \
                         settlers)",
                    );
                }
                (ran.plan, ran.outcome, ran.measured, ran.stand_in, summary)
            }
            Err(e) => (
                Vec::new(),
                None,
                Measured::default(),
                false,
                format!("the change cannot run: {e}"),
            ),
        };
        Ok(TrialReport {
            change: self.change,
            config,
            plan,
            fulfilled: outcome == Some(Outcome::Fulfilled),
            outcome,
            summary,
            measured,
            stand_in,
        })
    }

    /// Re-plans `input` with `config` over the forks' liquidity and runs it with an engine on a
    /// scratch saga log; returns the plan's steps, the outcome (none after two minutes), what it
    /// delivered how fast, and whether a stand-in signed for the user.
    async fn engine_run(
        &self,
        input: &SagaInput,
        config: PlannerConfig,
        chains: &HashMap<ChainId, Arc<dyn ChainAdapter>>,
        venues: &[Venue],
        attesters: Attesters,
        forks: &HashMap<ChainId, DynProvider>,
    ) -> Result<Ran> {
        let snapshot = liquidity::read(
            chains,
            venues,
            input.snapshot.solver_fee_bps,
            input.snapshot.default_route_latency_secs,
        )
        .await?;
        // The solver lets the venues' settlers pull its inventory, as a switch to the change
        // would before its activation (new settlers have no allowance yet).
        for venue in venues {
            if let Some(adapter) = chains.get(&venue.chain) {
                liquidity::approve_inventory(adapter.as_ref(), venue).await?;
            }
        }
        let mut changed = input.replanned(snapshot, config);
        let mut planned = changed.plan_stored()?;
        let stand_in_signs = !planned.signed_by_user();
        if stand_in_signs {
            // The user signed for other settlers than the change's (a settler upgrade): a stand-in
            // signs on the forks, holding what the user gave (see `stand_in`).
            changed = stand_in(changed, forks).await?;
            planned = changed.plan()?;
        }
        let plan = step_list(&planned.plan);
        let scratch = ScratchSqlite::new("trial");
        let db = Db::connect(&scratch.url()).await?;
        let engine = Engine::new(
            SagaLog::new(db),
            chains.values().cloned().collect(),
            attesters,
            EngineConfig {
                poll: Duration::from_millis(100),
                instance: "replay-trial".into(),
                ..Default::default()
            },
        );
        let saga = engine.submit(changed).await?;
        let outcome = match tokio::time::timeout(Duration::from_secs(120), engine.wait(saga)).await
        {
            Ok(outcome) => Some(outcome?),
            Err(_) => None,
        };
        let measured = match engine.view(saga).await? {
            Some(view) => crate::measure::measure(&view, &planned.plan, chains).await,
            None => Measured::default(),
        };
        drop(engine);
        Ok(Ran {
            plan,
            outcome,
            measured,
            stand_in: stand_in_signs,
        })
    }
}

/// What a trial's engine run came to.
struct Ran {
    plan: Vec<String>,
    outcome: Option<Outcome>,
    measured: Measured,
    stand_in: bool,
}

/// `input` signed by a stand-in for its user, made for the trial: on the forks (only there) the
/// user's inputs move to it and it lets the change's origin settlers pull them, so the intent runs
/// on settlers its user never signed for — a settler upgrade's — from the same funds.
async fn stand_in(
    mut input: SagaInput,
    forks: &HashMap<ChainId, DynProvider>,
) -> Result<SagaInput> {
    use alloy::signers::SignerSync;
    let fail = |e: String| ReplayError::Trial(format!("preparing the stand-in user: {e}"));
    let user = input.intent.user;
    let stand_in = PrivateKeySigner::random();
    input.intent.user = stand_in.address();
    let planned = input.plan_stored()?;
    for given in planned.plan.intent().inputs() {
        let fork = forks
            .get(&given.asset.chain)
            .ok_or(ReplayError::NoVenue(given.asset.chain))?;
        let settler = planned
            .plan
            .orders()
            .iter()
            .find(|o| o.chain() == given.asset.chain)
            .map(|o| o.order().originSettler)
            .ok_or_else(|| fail(format!("no order on chain {}", given.asset.chain)))?;
        let token = baton_adapters::contracts::TestToken::new(given.asset.token.0, fork);
        let transfer = token.transfer(stand_in.address(), given.amount.raw());
        send_as(fork, user, transfer.into_transaction_request()).await?;
        let approve = token.approve(settler, alloy::primitives::U256::MAX);
        send_as(fork, stand_in.address(), approve.into_transaction_request()).await?;
    }
    input.signatures = planned
        .plan
        .orders()
        .iter()
        .map(|o| {
            stand_in
                .sign_hash_sync(&o.signing_hash())
                .map(|s| alloy::primitives::Bytes::from(s.as_bytes().to_vec()))
                .map_err(|e| fail(e.to_string()))
        })
        .collect::<Result<_>>()?;
    Ok(input)
}

/// On a fork only: sends `tx` as `who` (impersonated, given gas money) and waits for it to
/// succeed in a block the trial's miner makes.
async fn send_as(
    fork: &DynProvider,
    who: alloy::primitives::Address,
    tx: alloy::rpc::types::TransactionRequest,
) -> Result<()> {
    use alloy::providers::Provider;
    let fail = |e: String| ReplayError::Trial(format!("preparing the stand-in user: {e}"));
    let gas = alloy::primitives::U256::from(10u64).pow(alloy::primitives::U256::from(18u8));
    fork.anvil_impersonate_account(who)
        .await
        .map_err(|e| fail(e.to_string()))?;
    fork.anvil_set_balance(who, gas)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let receipt = fork
        .send_transaction(tx.from(who))
        .await
        .map_err(|e| fail(e.to_string()))?
        .get_receipt()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !receipt.status() {
        return Err(fail(format!("a transaction from {who} reverted")));
    }
    fork.anvil_stop_impersonating_account(who)
        .await
        .map_err(|e| fail(e.to_string()))
}

/// On a fork only: makes `attester` the only member (threshold 1) of `settler`'s attester set, sent
/// as the settler's owner (the fork lets anyone send as any account), and mines it.
async fn install_attester(
    fork: &DynProvider,
    settler: alloy::primitives::Address,
    attester: alloy::primitives::Address,
) -> Result<()> {
    let fail = |e: String| ReplayError::Trial(format!("installing the trial's attester: {e}"));
    let s = OriginSettler::new(settler, fork);
    let owner = s.owner().call().await.map_err(|e| fail(e.to_string()))?;
    fork.anvil_impersonate_account(owner)
        .await
        .map_err(|e| fail(e.to_string()))?;
    fork.anvil_set_balance(
        owner,
        alloy::primitives::U256::from(10u64).pow(alloy::primitives::U256::from(18u8)),
    )
    .await
    .map_err(|e| fail(e.to_string()))?;
    let pending = s
        .setAttesters(vec![attester], alloy::primitives::U256::from(1u8))
        .from(owner)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    fork.evm_mine(None).await.map_err(|e| fail(e.to_string()))?;
    let receipt = pending
        .get_receipt()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !receipt.status() {
        return Err(fail("setAttesters reverted".into()));
    }
    fork.anvil_stop_impersonating_account(owner)
        .await
        .map_err(|e| fail(e.to_string()))
}
