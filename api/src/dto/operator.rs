//! The operators' and the chains' endpoints: chain health, inventory, the saga filter, pauses and
//! operator actions (converted from the engine's), retries and replay requests.

use baton_engine::control;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// One chain's conditions and health.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ChainStatus {
    /// The chain id.
    pub chain: u64,
    /// Whether its RPC answered now.
    pub reachable: bool,
    /// Reachable, RPC error rate under the engine's threshold (where it holds new steps), and not
    /// paused.
    pub healthy: bool,
    /// Paused by an operator (or by the emergency brake).
    pub paused: bool,
    /// Head block number.
    pub head: Option<u64>,
    /// The head's timestamp, unix seconds.
    pub timestamp: Option<u64>,
    /// Base fee, wei.
    pub base_fee: Option<String>,
    /// Observed block time, milliseconds.
    pub block_time_ms: Option<u64>,
    /// RPC calls made so far.
    pub rpc_calls: Option<u64>,
    /// RPC calls that failed.
    pub rpc_errors: Option<u64>,
    /// Recent RPC error rate, 0 to 1.
    pub rpc_error_rate: Option<f64>,
}

/// The solver's inventory of one token on one chain.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct InventoryItem {
    /// The chain id.
    pub chain: u64,
    /// The token's symbol.
    pub token: String,
    /// Its address.
    pub address: String,
    /// What the solver holds, base units.
    pub balance: String,
    /// Promised to running intents.
    pub reserved: String,
    /// Free for new intents.
    pub available: String,
}

/// Which sagas to list.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SagaFilter {
    /// Only sagas in this stored state.
    pub state: Option<SagaState>,
    /// Only sagas whose latest outcome is this one.
    pub outcome: Option<OutcomeKind>,
    /// Only sagas whose route starts or ends on this chain.
    pub chain: Option<u64>,
    /// Only sagas on this route, exactly as `SagaSummary.route` gives it (`31337>31338`).
    #[param(max_length = 200)]
    pub route: Option<String>,
    /// Only sagas admitted at most this many seconds ago (up to ten years).
    #[param(minimum = 0, maximum = 315360000)]
    pub max_age_secs: Option<u32>,
    /// Only sagas admitted at least this many seconds ago (up to ten years).
    #[param(minimum = 0, maximum = 315360000)]
    pub min_age_secs: Option<u32>,
    /// At most this many (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// An outcome as a word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// Fulfilled.
    Fulfilled,
    /// Refunded.
    Refunded,
    /// Failed.
    Failed,
}

impl OutcomeKind {
    /// As the saga log stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fulfilled => "fulfilled",
            Self::Refunded => "refunded",
            Self::Failed => "failed",
        }
    }
}

/// Which outcomes to chart.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OutcomeWindow {
    /// How far back, seconds (default a day; at most 30 days).
    #[param(minimum = 60, maximum = 2592000)]
    pub window_secs: Option<u32>,
    /// Each interval, seconds (default an hour; at most a day). The window holds at most 1,000
    /// intervals.
    #[param(minimum = 10, maximum = 86400)]
    pub bucket_secs: Option<u32>,
}

/// Outcomes decided in one interval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OutcomeBucket {
    /// The interval's start, unix milliseconds.
    pub start_ms: i64,
    /// Sagas fulfilled in it.
    pub fulfilled: u64,
    /// Sagas refunded in it.
    pub refunded: u64,
    /// Sagas failed in it.
    pub failed: u64,
}

/// One route's outcomes over the window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RouteOutcomes {
    /// The route (`31337>31338`; `unknown` for sagas admitted before routes were kept).
    pub route: String,
    /// Sagas fulfilled.
    pub fulfilled: u64,
    /// Sagas refunded.
    pub refunded: u64,
    /// Sagas failed.
    pub failed: u64,
    /// Median time from admission to outcome, seconds.
    pub p50_secs: f64,
    /// 99th percentile of the time from admission to outcome, seconds.
    pub p99_secs: f64,
}

/// Outcomes over time: per interval of the window, and per route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Outcomes {
    /// The window's start (rounded down to an interval), unix milliseconds.
    pub since_ms: i64,
    /// Each interval's length, seconds.
    pub bucket_secs: u32,
    /// Every interval from `since_ms` to now, oldest first.
    pub buckets: Vec<OutcomeBucket>,
    /// Every route with an outcome in the window.
    pub routes: Vec<RouteOutcomes>,
}

impl Outcomes {
    /// The API's view of `series`.
    pub fn from_series(series: baton_engine::outcomes::Series, bucket_secs: u32) -> Self {
        let bucket_ms = series.bucket_ms;
        Self {
            since_ms: series.since_ms,
            bucket_secs,
            buckets: series
                .buckets
                .into_iter()
                .zip(0i64..)
                .map(|(c, i)| OutcomeBucket {
                    start_ms: series.since_ms + i * bucket_ms,
                    fulfilled: c.fulfilled,
                    refunded: c.refunded,
                    failed: c.failed,
                })
                .collect(),
            routes: series
                .routes
                .into_iter()
                .map(|r| RouteOutcomes {
                    route: r.route,
                    fulfilled: r.counts.fulfilled,
                    refunded: r.counts.refunded,
                    failed: r.counts.failed,
                    p50_secs: r.p50_secs,
                    p99_secs: r.p99_secs,
                })
                .collect(),
        }
    }
}

/// A saga's stored state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SagaState {
    /// Steps are running.
    Running,
    /// Held for an operator.
    Held,
    /// Resumed by an operator with a change.
    Resumed,
    /// Undoing its done steps.
    Compensating,
    /// The outcome is decided.
    Decided,
    /// Retried by an operator.
    Retried,
    /// Nothing is left to do.
    Completed,
}

impl SagaState {
    /// As the saga log stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Held => "held",
            Self::Resumed => "resumed",
            Self::Compensating => "compensating",
            Self::Decided => "decided",
            Self::Retried => "retried",
            Self::Completed => "completed",
        }
    }
}

/// A retry that was started.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Retrying {
    /// The saga retried.
    pub retrying: String,
    /// Who retried it (the API key's name).
    pub by: String,
}

/// What to try in a replay.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Planner knobs to try on fresh forks (`max_hops`, `slippage_bps`, `fee_ceiling_pct`,
    /// `split`): the intent is re-planned where the saga failed and run there.
    #[serde(default)]
    pub with: Option<ConfigChange>,
    /// After a trial that fulfils the intent, resume the real saga with the change (it must be
    /// held for an operator: its step failed before the pivot and it has not compensated).
    #[serde(default)]
    pub resume: bool,
}

/// Planner knobs to change; unset ones stay as they were.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigChange {
    /// Most pool swaps in one route.
    #[schema(minimum = 1, maximum = 8)]
    pub max_hops: Option<u8>,
    /// Swap slippage bound, basis points.
    #[schema(maximum = 10000)]
    pub slippage_bps: Option<u16>,
    /// Fee ceiling, percent of the snapshot's gas price.
    #[schema(minimum = 1, maximum = 10000)]
    pub fee_ceiling_pct: Option<u16>,
    /// Whether a leg may be split across two routes.
    pub split: Option<bool>,
}

impl From<ConfigChange> for baton_planner::ConfigPatch {
    fn from(c: ConfigChange) -> Self {
        Self {
            max_hops: c.max_hops.map(usize::from),
            slippage_bps: c.slippage_bps.map(u32::from),
            fee_ceiling_pct: c.fee_ceiling_pct.map(u32::from),
            split: c.split,
        }
    }
}

/// Why an operator pauses.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// Why (recorded with the action).
    #[serde(default)]
    #[schema(max_length = 500)]
    pub reason: String,
}

/// A pause in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Pause {
    /// What it covers: `"all"` (the emergency brake) or `{"chain": 1001}`.
    pub scope: PauseScope,
    /// Who paused.
    pub by: String,
    /// Why.
    pub reason: String,
    /// When, unix milliseconds.
    pub at_ms: i64,
}

impl From<control::Pause> for Pause {
    fn from(p: control::Pause) -> Self {
        Self {
            scope: match p.scope {
                control::Scope::All => PauseScope::All,
                control::Scope::Chain(chain) => PauseScope::Chain(chain.0),
            },
            by: p.by,
            reason: p.reason,
            at_ms: p.at_ms,
        }
    }
}

/// What a pause covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PauseScope {
    /// Every chain, and intake: the emergency brake.
    All,
    /// One chain (its id).
    Chain(u64),
}

/// One recorded operator action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OperatorAction {
    /// When, unix milliseconds.
    pub at_ms: i64,
    /// Who.
    pub by: String,
    /// What (`pause`, `resume`, `retry`, `resume-saga`).
    pub action: String,
    /// On what (`chain:1001`, `all`, a saga id).
    pub target: String,
    /// Anything else (the reason given).
    pub detail: String,
}

impl From<control::OperatorAction> for OperatorAction {
    fn from(a: control::OperatorAction) -> Self {
        Self {
            at_ms: a.at_ms,
            by: a.by,
            action: a.action,
            target: a.target,
            detail: a.detail,
        }
    }
}

/// An API key as its holder sees it (never the secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyInfo {
    /// Its name: who acts, in the saga log and the operator record.
    pub name: String,
    /// What it may do.
    pub role: crate::auth::Role,
}
