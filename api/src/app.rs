//! What every handler shares: the engine, the venues, the settings and keys, the metrics recorder
//! and the liquidity snapshot read from the chains (cached briefly).

use std::sync::{Arc, OnceLock};

use alloy::primitives::{Address, B256};
use baton_engine::Engine;
use baton_engine::adapters::port::ChainAdapter;
use baton_engine::liquidity::{self, Venue};
use baton_planner::spec::SnapshotSpec;
use baton_planner::{ChainId, PlannerConfig};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::auth::Keys;
use crate::error::{ApiError, Code};

/// The API's knobs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The solver's fee, basis points of each input.
    pub solver_fee_bps: u32,
    /// Expected seconds between a fill and its attestation across chains.
    pub route_latency_secs: u64,
    /// The planner's knobs.
    pub planner: PlannerConfig,
    /// The largest request body accepted, bytes.
    pub body_limit: usize,
    /// Each chain's JSON-RPC URL, for replays (forks are made from it), as the app starts (the
    /// [`Runtime`] holds those of the version it runs).
    pub rpc_urls: std::collections::HashMap<ChainId, String>,
    /// How long a liquidity snapshot read from the chains serves quotes and submissions before it
    /// is read again (every read costs a few RPC calls per token and pool).
    pub snapshot_ttl: std::time::Duration,
    /// How long an `Idempotency-Key` answers the same intent; after that it is forgotten (and
    /// deleted), and may name a new request.
    pub idempotency_ttl: std::time::Duration,
    /// Event streams (`GET /v1/intents/{id}/events`) one API key may hold open at once.
    pub streams_per_key: usize,
    /// How webhooks are delivered.
    pub webhooks: crate::webhooks::WebhookSettings,
    /// How many of the latest finished sagas a proposed version's shadow run re-runs on forks
    /// (0: none).
    pub shadow_sagas: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            solver_fee_bps: 5,
            route_latency_secs: 2,
            planner: PlannerConfig::default(),
            body_limit: 64 * 1024,
            rpc_urls: std::collections::HashMap::new(),
            snapshot_ttl: std::time::Duration::from_millis(500),
            idempotency_ttl: std::time::Duration::from_secs(24 * 3600),
            streams_per_key: 16,
            webhooks: crate::webhooks::WebhookSettings::default(),
            shadow_sagas: 50,
        }
    }
}

/// What new intents run under: the configuration this instance runs (the solver's venues, fees
/// and the planner's knobs), switched as a whole when another version becomes active.
#[derive(Clone, Debug)]
pub struct Runtime {
    /// The id of its bundle (none where no configuration version is run, as in-process tests).
    pub version: Option<B256>,
    /// What the solver uses on each chain.
    pub venues: Vec<Venue>,
    /// The solver's fee, basis points of each input.
    pub solver_fee_bps: u32,
    /// Expected seconds between a fill and its attestation across chains.
    pub route_latency_secs: u64,
    /// The planner's knobs.
    pub planner: PlannerConfig,
    /// The engine's attesters, hold and fill margin under it, set in the engine when it is run
    /// (none: the engine keeps its own).
    pub engine: Option<baton_engine::Knobs>,
    /// Each chain's JSON-RPC URL: what replays fork from.
    pub rpc_urls: std::collections::HashMap<ChainId, String>,
}

/// What every handler shares.
pub struct App {
    /// The engine (its saga log, adapters and operator controls).
    pub engine: Arc<Engine>,
    /// What new intents run under.
    runtime: std::sync::RwLock<Arc<Runtime>>,
    /// Knobs (`solver_fee_bps`, `route_latency_secs` and `planner` as the app started; the
    /// [`Runtime`] holds those it runs).
    pub settings: Settings,
    /// API keys.
    pub keys: Keys,
    /// The solver's key, for replay trials on forks (never logged or returned); without it a
    /// replay cannot try a change.
    pub trial_key: Option<alloy::signers::local::PrivateKeySigner>,
    /// What this instance declares of the configuration it runs (none: it declares nothing, as
    /// in-process tests).
    pub declared: Option<crate::changes::Declared>,
    /// Builds what another configuration version runs on (none: this app runs one configuration).
    pub switcher: Option<Arc<dyn crate::changes::Switch>>,
    /// The last version this instance could not switch to (said once).
    pub(crate) switch_warned: std::sync::Mutex<Option<B256>>,
    /// What this instance remembers of the active version's guards.
    pub(crate) guards: std::sync::Mutex<crate::changes::guards::Watch>,
    /// A version made ready ahead of its activation.
    pub(crate) staged: tokio::sync::Mutex<Option<crate::changes::Staged>>,
    /// Wakes the configuration pull (a proposal to validate, a version scheduled).
    pub(crate) changes_wake: tokio::sync::Notify,
    pub(crate) metrics: PrometheusHandle,
    /// Event streams open, by API key name.
    pub(crate) streams: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    /// Wakes the webhook deliverer.
    pub(crate) webhook_wake: tokio::sync::Notify,
    /// When expired idempotency keys were last deleted, unix milliseconds.
    pub(crate) keys_expired_ms: std::sync::atomic::AtomicI64,
    /// The latest snapshot and when it was read.
    snapshot: tokio::sync::Mutex<Option<(std::time::Instant, SnapshotSpec)>>,
}

impl App {
    /// The API over `engine` (already recovered), `venues`, `settings` and `keys`; installs the
    /// process's Prometheus recorder the first time.
    pub fn new(engine: Arc<Engine>, venues: Vec<Venue>, settings: Settings, keys: Keys) -> Self {
        let runtime = Runtime {
            version: None,
            venues,
            solver_fee_bps: settings.solver_fee_bps,
            route_latency_secs: settings.route_latency_secs,
            planner: settings.planner,
            engine: None,
            rpc_urls: settings.rpc_urls.clone(),
        };
        Self {
            engine,
            runtime: std::sync::RwLock::new(Arc::new(runtime)),
            settings,
            keys,
            trial_key: None,
            declared: None,
            switcher: None,
            staged: tokio::sync::Mutex::new(None),
            switch_warned: std::sync::Mutex::new(None),
            guards: std::sync::Mutex::default(),
            changes_wake: tokio::sync::Notify::new(),
            metrics: metrics_handle(),
            keys_expired_ms: std::sync::atomic::AtomicI64::new(0),
            streams: Arc::default(),
            webhook_wake: tokio::sync::Notify::new(),
            snapshot: tokio::sync::Mutex::new(None),
        }
    }

    pub(crate) fn adapter(&self, chain: ChainId) -> Result<Arc<dyn ChainAdapter>, ApiError> {
        self.engine.chains().get(&chain).cloned().ok_or_else(|| {
            ApiError::new(Code::UnknownChain, format!("baton does not serve {chain}"))
        })
    }

    /// The venue on `chain` new intents run under.
    pub(crate) fn venue(&self, chain: ChainId) -> Result<Venue, ApiError> {
        self.runtime()
            .venues
            .iter()
            .find(|v| v.chain == chain)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(Code::UnknownChain, format!("baton does not serve {chain}"))
            })
    }

    /// What new intents run under now.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Runs `runtime` for new intents from now on (its adapters handed to the engine before), and
    /// its attesters, hold and fill margin for every saga.
    pub async fn run(&self, runtime: Runtime) {
        let mut cached = self.snapshot.lock().await;
        if let Some(knobs) = &runtime.engine {
            self.engine.set_knobs(knobs.clone());
        }
        *self.runtime.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(runtime);
        *cached = None;
    }

    /// The liquidity snapshot read from the chains, at most `snapshot_ttl` old. Concurrent
    /// requests share one read.
    pub(crate) async fn snapshot(&self) -> Result<SnapshotSpec, ApiError> {
        let mut cached = self.snapshot.lock().await;
        if let Some((at, snapshot)) = cached.as_ref()
            && at.elapsed() < self.settings.snapshot_ttl
        {
            return Ok(snapshot.clone());
        }
        let runtime = self.runtime();
        let snapshot = liquidity::read(
            &self.engine.chains(),
            &runtime.venues,
            runtime.solver_fee_bps,
            runtime.route_latency_secs,
        )
        .await?;
        *cached = Some((std::time::Instant::now(), snapshot.clone()));
        Ok(snapshot)
    }
}

/// The process's Prometheus recorder (installed once; `/metrics` renders it).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was installed before; /metrics shows only what reaches this one");
            }
            handle
        })
        .clone()
}

/// The venue's token named `token` (symbol or address) on `chain`, checked.
pub(crate) fn known_token(
    venues: &[Venue],
    what: &str,
    chain: u64,
    token: &str,
) -> Result<String, ApiError> {
    let venue = venues.iter().find(|v| v.chain.0 == chain).ok_or_else(|| {
        let known: Vec<String> = venues.iter().map(|v| v.chain.0.to_string()).collect();
        ApiError::new(
            Code::UnknownChain,
            format!(
                "{what}: baton does not serve chain {chain}; it serves {}",
                known.join(", ")
            ),
        )
    })?;
    let address: Option<Address> = token.parse().ok();
    venue
        .tokens
        .iter()
        .find(|t| t.symbol == token || Some(t.address) == address)
        .map(|t| t.symbol.clone())
        .ok_or_else(|| {
            let known: Vec<&str> = venue.tokens.iter().map(|t| t.symbol.as_str()).collect();
            ApiError::new(
                Code::UnknownToken,
                format!(
                    "{what}: baton does not trade {token:?} on chain {chain}; it trades {}",
                    known.join(", ")
                ),
            )
        })
}
