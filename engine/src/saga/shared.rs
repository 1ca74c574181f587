//! What every saga driver of an engine shares: the log, the solver's adapters, the attesters, the
//! engine's knobs, the operators' pauses, the chain-conditions cache, and the work counters.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use baton_adapters::attestation::AttesterSet;
use baton_adapters::port::{ChainAdapter, Conditions};
use baton_planner::ChainId;

use crate::attester::Attesters;
use crate::conditions::ConditionsCache;
use crate::config::EngineConfig;
use crate::control::Controls;
use crate::error::{EngineError, Result};
use crate::log::SagaLog;
use crate::saga::input::Planned;

/// How long an attester set read from a chain is used before it is read again (the owner's
/// changes reach the engine within this).
pub(crate) const ATTESTER_SET_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// The solver's adapter on each chain, as one configuration sets them.
pub type Chains = HashMap<ChainId, Arc<dyn ChainAdapter>>;

/// Makes the adapters of a configuration version the engine does not keep: the sagas admitted
/// under it run to their end on them (the server's: it reads the version's bundle).
pub trait VersionChains: Send + Sync {
    /// Version `version`'s adapters.
    fn chains(
        &self,
        version: alloy::primitives::B256,
    ) -> futures_util::future::BoxFuture<'_, Result<Vec<Arc<dyn ChainAdapter>>>>;
}

/// What every saga task shares.
pub(crate) struct Shared {
    /// Where the adapters of versions not kept come from (none: every saga runs on `chains`).
    pub(crate) source: std::sync::OnceLock<Arc<dyn VersionChains>>,
    pub(crate) log: SagaLog,
    /// The adapters new sagas use (the configuration this instance runs).
    chains: std::sync::RwLock<Arc<Chains>>,
    /// Each configuration version's adapters, for the sagas admitted under it.
    versions: std::sync::RwLock<HashMap<alloy::primitives::B256, Arc<Chains>>>,
    /// The attesters, the hold and the margin, as the version this instance runs sets them.
    knobs: std::sync::RwLock<crate::config::Knobs>,
    /// Each origin chain's attester set as last read, and when; held while one is read, so the
    /// sagas that find it stale at once wait for one read instead of each making its own.
    #[allow(clippy::type_complexity)]
    attester_sets: tokio::sync::Mutex<
        HashMap<(ChainId, Option<alloy::primitives::Address>), (std::time::Instant, AttesterSet)>,
    >,
    pub(crate) config: EngineConfig,
    pub(crate) appended: AtomicU64,
    pub(crate) busy_ns: AtomicU64,
    pub(crate) commit_ns: AtomicU64,
    pub(crate) steps_done: AtomicU64,
    pub(crate) signed: AtomicU64,
    pub(crate) ticks: AtomicU64,
    pub(crate) controls: Controls,
    /// Whether the pause reloader runs.
    pub(crate) watching: AtomicBool,
    /// Whether the lapsed-lease claimer runs.
    pub(crate) claiming: AtomicBool,
    /// Each chain's latest conditions, shared by every saga polling it.
    pub(crate) conditions: ConditionsCache,
    /// Sagas whose driver here stopped for an operator (a step failed after the pivot): not
    /// claimed again until an operator retries or resumes them.
    pub(crate) stopped_for_operator: Mutex<HashSet<crate::event::SagaId>>,
}

impl Shared {
    /// What the drivers of an engine over `log` and `chains` share.
    pub(crate) fn new(
        log: SagaLog,
        chains: Chains,
        attesters: Attesters,
        config: EngineConfig,
    ) -> Self {
        Self {
            conditions: ConditionsCache::new(&chains, config.health_window),
            log,
            source: std::sync::OnceLock::new(),
            chains: std::sync::RwLock::new(Arc::new(chains)),
            versions: std::sync::RwLock::new(HashMap::new()),
            knobs: std::sync::RwLock::new(crate::config::Knobs {
                attesters: Arc::new(attesters),
                hold_for_operator: config.hold_for_operator,
                fill_margin_blocks: config.fill_margin_blocks,
            }),
            attester_sets: tokio::sync::Mutex::new(HashMap::new()),
            config,
            appended: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            commit_ns: AtomicU64::new(0),
            steps_done: AtomicU64::new(0),
            signed: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            controls: Controls::default(),
            watching: AtomicBool::new(false),
            claiming: AtomicBool::new(false),
            stopped_for_operator: Mutex::new(HashSet::new()),
        }
    }

    /// The attesters, the hold and the margin, as they are now.
    pub(crate) fn knobs(&self) -> crate::config::Knobs {
        self.knobs.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sets what [`Shared::knobs`] answers.
    pub(crate) fn set_knobs(&self, knobs: crate::config::Knobs) {
        *self.knobs.write().unwrap_or_else(|p| p.into_inner()) = knobs;
    }

    /// The adapters new sagas use.
    pub(crate) fn chains(&self) -> Arc<Chains> {
        self.chains
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The adapters of the sagas admitted under `version`: its own when this engine has them, else
    /// those new sagas use (a saga admitted before versions were recorded, or under the version
    /// this engine runs).
    pub(crate) fn chains_for(&self, version: Option<alloy::primitives::B256>) -> Arc<Chains> {
        version
            .and_then(|v| {
                self.versions
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&v)
                    .cloned()
            })
            .unwrap_or_else(|| self.chains())
    }

    /// Makes sure the adapters of every version in `versions` are kept, from the
    /// [`VersionChains`] source, before sagas admitted under them are driven here.
    pub(crate) async fn keep_versions(
        &self,
        versions: impl IntoIterator<Item = Option<alloy::primitives::B256>>,
    ) {
        let Some(source) = self.source.get() else {
            return;
        };
        let wanted: HashSet<_> = versions.into_iter().flatten().collect();
        for version in wanted {
            let kept = self
                .versions
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&version);
            if kept {
                continue;
            }
            match source.chains(version).await {
                Ok(chains) => {
                    let chains = chains.into_iter().map(|a| (a.chain_id(), a)).collect();
                    self.set_chains(version, chains, false);
                }
                Err(e) => tracing::error!(
                    %version,
                    error = %e,
                    "no adapters for a configuration version some sagas run under; they run on the current ones"
                ),
            }
        }
    }

    /// Makes new sagas use the adapters kept for `version`; false when none are kept.
    pub(crate) fn use_chains(&self, version: alloy::primitives::B256) -> bool {
        let kept = self
            .versions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&version)
            .cloned();
        match kept {
            Some(chains) => {
                *self.chains.write().unwrap_or_else(|p| p.into_inner()) = chains;
                true
            }
            None => false,
        }
    }

    /// Keeps `chains` as `version`'s adapters; with `current`, new sagas use them from now on.
    pub(crate) fn set_chains(
        &self,
        version: alloy::primitives::B256,
        chains: Chains,
        current: bool,
    ) {
        let chains = Arc::new(chains);
        self.versions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(version, chains.clone());
        if current {
            *self.chains.write().unwrap_or_else(|p| p.into_inner()) = chains;
        }
    }

    /// The attester set of `adapter`'s origin settler, read from the chain at most every
    /// [`ATTESTER_SET_TTL`] (per chain and settler: sagas of two versions may use two).
    pub(crate) async fn attester_set(&self, adapter: &dyn ChainAdapter) -> Result<AttesterSet> {
        let key = (adapter.chain_id(), adapter.settlers().map(|s| s.origin));
        let mut sets = self.attester_sets.lock().await;
        if let Some((at, set)) = sets.get(&key)
            && at.elapsed() < ATTESTER_SET_TTL
        {
            return Ok(set.clone());
        }
        let set = adapter.attesters().await?;
        sets.insert(key, (std::time::Instant::now(), set.clone()));
        Ok(set)
    }

    /// `chain`'s conditions, from the cache ([`ConditionsCache::get`]).
    pub(crate) async fn conditions(&self, chain: ChainId) -> Result<Conditions> {
        self.conditions.get(chain, self.chains().get(&chain)).await
    }

    /// Whether `chain`'s RPC has failed too often over the recent window to start new steps on it.
    pub(crate) fn unhealthy(&self, chain: ChainId) -> bool {
        self.conditions
            .health(chain)
            .is_some_and(|h| h.calls >= 20 && h.error_rate > self.config.unhealthy_error_rate)
    }

    /// Whether this engine has an adapter on every chain of `planned`'s steps.
    pub(crate) fn adapters_for(&self, planned: &Planned) -> Result<()> {
        let chains = self.chains_for(planned.config_version);
        match planned
            .plan
            .steps()
            .iter()
            .find(|step| !chains.contains_key(&step.chain))
        {
            Some(step) => Err(EngineError::NoAdapter(step.chain.0)),
            None => Ok(()),
        }
    }

    /// Notes whether saga `id` is stopped here for an operator.
    pub(crate) fn set_stopped_for_operator(&self, id: crate::event::SagaId, stopped: bool) {
        let mut set = self
            .stopped_for_operator
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if stopped {
            set.insert(id);
        } else {
            set.remove(&id);
        }
    }

    /// Whether saga `id` is stopped here for an operator.
    pub(crate) fn is_stopped_for_operator(&self, id: crate::event::SagaId) -> bool {
        self.stopped_for_operator
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&id)
    }

    /// Counts one appended event; with crash injection on, `Err(Stopped)` at the chosen one.
    pub(crate) fn count_event(&self) -> Result<()> {
        let n = self.appended.fetch_add(1, Ordering::SeqCst) + 1;
        if self.config.stop_after_events == Some(n) {
            return Err(EngineError::Stopped(n));
        }
        Ok(())
    }
}
