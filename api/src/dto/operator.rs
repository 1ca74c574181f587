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
pub struct SagaFilter {
    /// Only sagas in this state: `running`, `held`, `resumed`, `compensating`, `decided`,
    /// `retried`, `completed`.
    pub state: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
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
    #[schema(value_type = Option<Object>)]
    pub with: Option<baton_planner::ConfigPatch>,
    /// After a trial that fulfils the intent, resume the real saga with the change (it must be
    /// held for an operator: its step failed before the pivot and it has not compensated).
    #[serde(default)]
    pub resume: bool,
}

/// Why an operator pauses.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// Why (recorded with the action).
    #[serde(default)]
    pub reason: String,
}

/// A pause in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Pause {
    /// What it covers: `"all"` or `{"chain": 1001}`.
    #[schema(value_type = Object)]
    pub scope: serde_json::Value,
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
            scope: serde_json::to_value(p.scope).unwrap_or_default(),
            by: p.by,
            reason: p.reason,
            at_ms: p.at_ms,
        }
    }
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
