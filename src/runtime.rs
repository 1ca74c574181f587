//! What a server runs a configuration version on: the solver's adapter on each chain, built as
//! the version's bundle sets the chain (its RPC, settlers, limits) and kept by that, so versions
//! that leave a chain as it was share its adapter, and every adapter on one chain takes the
//! solver's nonces from one source. The server's [`Switch`] (a newly active version: adapters for
//! the chains it changes, the inventory's approvals, then new intents) and [`VersionChains`]
//! (the adapters of an older version whose sagas are recovered or claimed here) are this.

use std::collections::HashMap;
use std::sync::Arc;

use alloy::primitives::B256;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, Result};
use baton_adapters::evm::{EvmAdapter, EvmConfig};
use baton_adapters::follow::{FollowConfig, Followed};
use baton_adapters::nonce::{NonceCounter, NonceSource};
use baton_adapters::port::ChainAdapter;
use baton_api::app::Runtime;
use baton_api::changes::Switch;
use baton_api::dto::config::Bundle;
use baton_attester::client::{Attest, HttpAttester};
use baton_engine::attester::Attesters;
use baton_engine::changes::Changes;
use baton_engine::liquidity::Venue;
use baton_engine::{Db, Engine, Knobs, SagaLog, SharedNonces, StoredEvents, VersionChains};
use baton_planner::{ChainId, PlannerConfig};
use futures_util::future::BoxFuture;
use tracing::{info, warn};

use crate::config::{Endpoint, chains_of};

/// The adapters built so far, and how to build more.
pub(crate) struct Adapters {
    solver: PrivateKeySigner,
    log: SagaLog,
    instance: String,
    nonce_claim: std::time::Duration,
    follow: Option<FollowConfig>,
    /// By what configures them (chain, settlers, RPC and its limits).
    built: tokio::sync::Mutex<HashMap<String, Arc<dyn ChainAdapter>>>,
    /// Each chain's nonce source, shared by every adapter on it.
    nonces: std::sync::Mutex<HashMap<ChainId, Arc<dyn NonceSource>>>,
}

impl Adapters {
    /// Adapters signing as `solver`, with the engine's saga `log` (settler events kept in its
    /// database; on PostgreSQL the nonces shared with the other instances, as `instance`).
    pub(crate) fn new(
        solver: PrivateKeySigner,
        log: SagaLog,
        instance: String,
        nonce_claim: std::time::Duration,
        follow: Option<FollowConfig>,
    ) -> Self {
        Self {
            solver,
            log,
            instance,
            nonce_claim,
            follow,
            built: tokio::sync::Mutex::default(),
            nonces: std::sync::Mutex::default(),
        }
    }

    fn nonces(&self, chain: ChainId) -> Arc<dyn NonceSource> {
        let mut nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        nonces
            .entry(chain)
            .or_insert_with(|| match self.log.db() {
                // Several instances may sign as the solver on this database: they share its nonces.
                Db::Postgres(_) => Arc::new(SharedNonces::new(
                    &self.log,
                    &self.instance,
                    self.nonce_claim,
                )),
                Db::Sqlite(_) => Arc::new(NonceCounter::default()),
            })
            .clone()
    }

    /// The adapter on `venue`'s chain as `venue` and `endpoint` set it: the one built before for
    /// the same settings, or a new one.
    pub(crate) async fn adapter(
        &self,
        venue: &Venue,
        endpoint: &Endpoint,
    ) -> Result<Arc<dyn ChainAdapter>> {
        let key = format!(
            "{}|{}|{}|{}|{:?}|{:?}|{:?}",
            venue.chain,
            venue.settlers.origin,
            venue.settlers.destination,
            endpoint.url,
            endpoint.requests_per_second,
            endpoint.logs_from_block,
            endpoint.logs_max_range
        );
        let mut built = self.built.lock().await;
        if let Some(adapter) = built.get(&key) {
            return Ok(adapter.clone());
        }
        let url = &endpoint.url;
        let mut evm = EvmConfig::new(
            venue.chain,
            url.parse()
                .with_context(|| format!("chain {}: RPC URL {url:?}", venue.chain))?,
            venue.settlers,
        );
        if let Some(rps) = endpoint
            .requests_per_second
            .and_then(std::num::NonZeroU32::new)
        {
            evm.requests_per_second = rps;
        }
        if let Some(from) = endpoint.logs_from_block {
            evm.logs_from_block = from;
        }
        if let Some(max) = endpoint.logs_max_range {
            evm.logs_max_range = max.max(1);
        }
        // Settler events of old blocks are kept in the saga log's database: read once, also
        // across restarts and instances.
        let evm = EvmAdapter::new(evm, self.solver.clone())?
            .with_events(Arc::new(StoredEvents::new(self.log.db())))
            .with_nonces(self.nonces(venue.chain));
        let mut adapter: Arc<dyn ChainAdapter> = Arc::new(evm);
        if let Some(follow) = self.follow {
            // One read per block instead of per request; it follows until the adapter is dropped.
            let followed = Followed::new(adapter, follow);
            // Until its first block, reads go to the node; the task tries again.
            if let Err(e) = followed.sync().await {
                warn!(chain = venue.chain.0, error = %e, "the follower could not read the chain yet");
            }
            followed.spawn();
            adapter = followed;
        }
        built.insert(key, adapter.clone());
        Ok(adapter)
    }

    /// The adapters `bundle` runs on, with their venues.
    async fn of(&self, bundle: &Bundle) -> Result<Vec<(Venue, Arc<dyn ChainAdapter>)>> {
        let mut out = Vec::new();
        for (venue, endpoint) in chains_of(bundle)? {
            let adapter = self.adapter(&venue, &endpoint).await?;
            out.push((venue, adapter));
        }
        Ok(out)
    }
}

/// How this server comes to run another configuration version, and finds older versions'
/// adapters.
pub(crate) struct Switcher {
    /// The adapters.
    pub(crate) adapters: Arc<Adapters>,
    /// The engine they are handed to.
    pub(crate) engine: std::sync::OnceLock<Arc<Engine>>,
    /// The saga log's database (the versions' bundles).
    pub(crate) db: Db,
}

impl Switch for Switcher {
    fn prepare<'a>(
        &'a self,
        id: B256,
        bundle: &'a Bundle,
    ) -> BoxFuture<'a, std::result::Result<Runtime, String>> {
        Box::pin(async move {
            let engine = self.engine.get().ok_or("the engine is not running yet")?;
            let chains = self
                .adapters
                .of(bundle)
                .await
                .map_err(|e| format!("{e:#}"))?;
            for (venue, adapter) in &chains {
                let approved = crate::server::approve_inventory(adapter.as_ref(), venue)
                    .await
                    .map_err(|e| format!("chain {}: approving the inventory: {e}", venue.chain))?;
                if approved > 0 {
                    info!(
                        chain = venue.chain.0,
                        approved, "approved the solver's inventory"
                    );
                }
            }
            engine.set_chains(id, chains.iter().map(|c| c.1.clone()).collect(), false);
            let knobs = knobs_of(bundle).map_err(|e| format!("{e:#}"))?;
            let mut runtime =
                runtime_of(Some(id), bundle, chains.into_iter().map(|c| c.0).collect());
            runtime.engine = Some(knobs);
            Ok(runtime)
        })
    }

    fn venues(&self, bundle: &Bundle) -> std::result::Result<Vec<Venue>, String> {
        let chains = crate::config::chains_of(bundle).map_err(|e| format!("{e:#}"))?;
        Ok(chains.into_iter().map(|c| c.0).collect())
    }
}

impl VersionChains for Switcher {
    fn chains(
        &self,
        version: B256,
    ) -> BoxFuture<'_, baton_engine::Result<Vec<Arc<dyn ChainAdapter>>>> {
        Box::pin(async move {
            let found = Changes::new(self.db.clone())
                .version(version)
                .await?
                .ok_or(baton_engine::EngineError::UnknownVersion(version))?;
            let bundle: Bundle = serde_json::from_str(&found.body).map_err(|e| {
                baton_engine::EngineError::Corrupt(format!("version {}: {e}", found.number))
            })?;
            let chains = self
                .adapters
                .of(&bundle)
                .await
                .map_err(|e| baton_engine::EngineError::Invalid(format!("{e:#}")))?;
            Ok(chains.into_iter().map(|c| c.1).collect())
        })
    }
}

/// What new intents run under with `bundle` (version `version`) on `venues`.
/// The attesters (asked over HTTP), the hold and the fill margin `bundle` sets.
pub(crate) fn knobs_of(bundle: &Bundle) -> Result<Knobs> {
    let timeout = std::time::Duration::from_millis(bundle.attest_timeout_ms);
    let mut members: Vec<Arc<dyn Attest>> = Vec::new();
    for url in &bundle.attesters {
        let url: reqwest::Url = url
            .0
            .parse()
            .with_context(|| format!("attester URL {:?}", url.0))?;
        members.push(Arc::new(
            HttpAttester::new(url, timeout).map_err(anyhow::Error::msg)?,
        ));
    }
    Ok(Knobs {
        attesters: Arc::new(Attesters::new(members, timeout)),
        hold_for_operator: std::time::Duration::from_secs(bundle.hold_for_operator_secs),
        fill_margin_blocks: bundle.fill_margin_blocks,
    })
}

pub(crate) fn runtime_of(version: Option<B256>, bundle: &Bundle, venues: Vec<Venue>) -> Runtime {
    Runtime {
        version,
        venues,
        solver_fee_bps: bundle.solver_fee_bps,
        route_latency_secs: bundle.route_latency_secs,
        planner: PlannerConfig {
            max_hops: bundle.planner.max_hops as usize,
            slippage_bps: bundle.planner.slippage_bps,
            fee_ceiling_pct: bundle.planner.fee_ceiling_pct,
            split: bundle.planner.split,
        },
        engine: None,
        rpc_urls: bundle.rpc_urls(),
    }
}
