//! Configuration versions over the wire: the bundle (what shapes execution, as versions keep it),
//! a version with its record and approvals, the lifecycle's requests, and what each instance
//! declares. The engine keeps versions as canonical JSON (`baton_engine::changes`); the bundle's
//! shape is this module's [`Bundle`], and [`Bundle::check`] is what a bundle must hold beyond its
//! shape.

use std::collections::HashSet;

use alloy::primitives::{Address, B256};
use baton_engine::changes;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, Code};

/// What shapes execution, as one configuration version: the chains (RPCs, settlers with their
/// code hashes, finality, tokens and pools), the attesters, fees, the planner's knobs, holds and
/// limits, and who approves a change of it. No secret: keys stay where each instance's file names
/// them. Its id is the keccak-256 of its canonical JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// The chains served.
    #[schema(min_items = 1, max_items = 16)]
    pub chains: Vec<ChainBundle>,
    /// The attesters' base URLs (`http://` or `https://`).
    #[schema(max_items = 16)]
    pub attesters: Vec<Url>,
    /// Milliseconds one attester has to answer one request.
    #[schema(minimum = 1, maximum = 600000)]
    pub attest_timeout_ms: u64,
    /// The solver's fee, basis points of each input.
    #[schema(maximum = 10000)]
    pub solver_fee_bps: u32,
    /// Expected seconds from a fill to its attestation.
    #[schema(maximum = 86400)]
    pub route_latency_secs: u64,
    /// The planner's knobs.
    pub planner: PlannerKnobs,
    /// Seconds a saga whose step failed before the pivot is held for an operator.
    #[schema(maximum = 604800)]
    pub hold_for_operator_secs: u64,
    /// Blocks of margin a fill must leave before its order's fill deadline.
    #[schema(maximum = 10000)]
    pub fill_margin_blocks: u64,
    /// Who approves a change of this version.
    pub approval: ApprovalSet,
    /// The version's health conditions after its activation (none: nothing is watched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guards: Option<Guards>,
}

/// A version's health conditions, watched over a window after its activation by every instance.
/// When one trips, intake is braked (every chain paused) and the rollback to the version it
/// changed is proposed, to be approved like any change — or activated at once when
/// `rollback_at_once` says so (the brake is then released once the instance runs it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Guards {
    /// Seconds after activation over which the conditions are watched.
    #[schema(minimum = 1, maximum = 604800)]
    pub window_secs: u64,
    /// How many intents admitted under the version must have their outcome before the outcome
    /// rates count.
    #[schema(minimum = 1, maximum = 100000)]
    pub min_outcomes: u32,
    /// Trips when more of those outcomes than this are refunds, basis points.
    #[schema(maximum = 10000)]
    pub max_refunded_bps: Option<u32>,
    /// Trips when more of those outcomes than this are failures, basis points.
    #[schema(maximum = 10000)]
    pub max_failed_bps: Option<u32>,
    /// Trips when a chain's RPC error rate over the engine's health window is above this, basis
    /// points.
    #[schema(maximum = 10000)]
    pub max_rpc_error_bps: Option<u32>,
    /// Whether the rollback activates at once, without approvals.
    pub rollback_at_once: bool,
}

/// A URL (`http://` or `https://`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Url(pub String);

impl utoipa::PartialSchema for Url {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^https?://[!-~]{1,500}$"))
            .description(Some("An http:// or https:// URL"))
            .into()
    }
}

impl ToSchema for Url {}

/// One chain of a bundle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChainBundle {
    /// The chain id; its RPC must answer with it.
    #[schema(minimum = 1, maximum = 9007199254740991_u64)]
    pub id: u64,
    /// JSON-RPC over HTTP.
    pub rpc_url: Url,
    /// Calls per second to the RPC (the adapter's default when null).
    #[schema(minimum = 1, maximum = 1000000)]
    pub requests_per_second: Option<u32>,
    /// The first block searched for settler events (the adapter's default when null).
    #[schema(maximum = 9007199254740991_u64)]
    pub logs_from_block: Option<u64>,
    /// The most blocks one `eth_getLogs` spans (the adapter's default when null).
    #[schema(minimum = 1, maximum = 1000000)]
    pub logs_max_range: Option<u64>,
    /// The ERC-7683 origin settler.
    pub origin_settler: Contract,
    /// The ERC-7683 destination settler.
    pub destination_settler: Contract,
    /// Blocks after which a block is final.
    #[schema(maximum = 100000)]
    pub finality_blocks: u32,
    /// More confirmations for more value at risk.
    #[schema(max_items = 8)]
    pub confirmation_tiers: Vec<TierBundle>,
    /// The tokens the solver trades.
    #[schema(min_items = 1, max_items = 32)]
    pub tokens: Vec<TokenBundle>,
    /// The pools the solver may swap through.
    #[schema(max_items = 32)]
    pub pools: Vec<PoolBundle>,
}

/// A contract: its address and the keccak-256 of its code there (what validation checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// The address.
    #[schema(value_type = String, pattern = "^0x[0-9a-fA-F]{40}$")]
    pub address: Address,
    /// keccak-256 of its runtime code.
    #[schema(value_type = String, pattern = "^0x[0-9a-fA-F]{64}$")]
    pub code_hash: B256,
}

/// A confirmation tier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierBundle {
    /// The least value at risk, wei of the chain's native coin (decimal).
    #[schema(pattern = "^[0-9]{1,39}$")]
    pub at_least: String,
    /// Confirmations from there.
    #[schema(maximum = 100000)]
    pub blocks: u32,
}

/// A token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBundle {
    /// Its symbol (the same on two chains is the same asset).
    #[schema(min_length = 1, max_length = 32, pattern = "^[A-Za-z0-9._-]+$")]
    pub symbol: String,
    /// The contract.
    #[schema(value_type = String, pattern = "^0x[0-9a-fA-F]{40}$")]
    pub address: Address,
    /// keccak-256 of its runtime code.
    #[schema(value_type = String, pattern = "^0x[0-9a-fA-F]{64}$")]
    pub code_hash: B256,
    /// Decimals.
    #[schema(maximum = 36)]
    pub decimals: u8,
    /// Base units per ether, to price gas (decimal); null: not priced.
    #[schema(pattern = "^[0-9]{1,39}$")]
    pub native_price: Option<String>,
}

/// A pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolBundle {
    /// The contract.
    #[schema(value_type = String, pattern = "^0x[0-9a-fA-F]{40}$")]
    pub address: Address,
    /// keccak-256 of its runtime code.
    #[schema(value_type = String, pattern = "^0x[0-9a-fA-F]{64}$")]
    pub code_hash: B256,
    /// Its fee, basis points.
    #[schema(maximum = 10000)]
    pub fee_bps: u32,
}

/// The planner's knobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannerKnobs {
    /// Most pool swaps in one route.
    #[schema(minimum = 1, maximum = 8)]
    pub max_hops: u32,
    /// Swap slippage bound, basis points.
    #[schema(maximum = 10000)]
    pub slippage_bps: u32,
    /// A step waits while gas is above this percentage of the snapshot's price.
    #[schema(minimum = 100, maximum = 100000)]
    pub fee_ceiling_pct: u32,
    /// Whether a leg may be split across two routes.
    pub split: bool,
}

/// Who approves a change of a version: `quorum` distinct `approvers` signing the new version's
/// approval message. With no approvers (and a quorum of 0), an admin API key approves alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSet {
    /// The operator keys' addresses.
    #[schema(schema_with = addresses)]
    pub approvers: Vec<Address>,
    /// How many of them must approve (1 to their number; 0 when there are none).
    #[schema(maximum = 16)]
    pub quorum: u32,
}

/// Up to 16 addresses (`0x` and 40 hex digits each).
fn addresses() -> utoipa::openapi::Array {
    let item = utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(crate::dto::wire::ADDRESS));
    utoipa::openapi::ArrayBuilder::new()
        .items(item)
        .max_items(Some(16))
        .description(Some("The operator keys' addresses"))
        .build()
}

impl Bundle {
    /// Each chain's JSON-RPC URL: what replays and shadow runs fork from.
    pub fn rpc_urls(&self) -> std::collections::HashMap<baton_planner::ChainId, String> {
        self.chains
            .iter()
            .map(|c| (baton_planner::ChainId(c.id), c.rpc_url.0.clone()))
            .collect()
    }

    /// What a bundle must hold beyond its shape: each chain once; within a chain, each token
    /// symbol and address once and settlers distinct; each approver once and a quorum that they
    /// can reach (and that is 1 or more when there are approvers); URLs that parse.
    pub fn check(&self) -> Result<(), ApiError> {
        let invalid = |m: String| Err(ApiError::new(Code::InvalidConfig, m));
        let mut chains = HashSet::new();
        for chain in &self.chains {
            if !chains.insert(chain.id) {
                return invalid(format!("chain {} is in the bundle twice", chain.id));
            }
            url(&chain.rpc_url, &format!("chain {}'s rpc_url", chain.id))?;
            if chain.origin_settler.address == chain.destination_settler.address {
                return invalid(format!(
                    "chain {}: the origin and destination settlers are one address",
                    chain.id
                ));
            }
            let mut symbols = HashSet::new();
            let mut addresses = HashSet::new();
            for token in &chain.tokens {
                if !symbols.insert(&token.symbol) || !addresses.insert(token.address) {
                    return invalid(format!(
                        "chain {}: token {} ({}) is listed twice",
                        chain.id, token.symbol, token.address
                    ));
                }
            }
        }
        for attester in &self.attesters {
            url(attester, "an attester's URL")?;
        }
        if let Some(g) = &self.guards {
            if !(1..=604_800).contains(&g.window_secs) || !(1..=100_000).contains(&g.min_outcomes) {
                return invalid(
                    "guards: window_secs is 1 to 604800 and min_outcomes 1 to 100000".into(),
                );
            }
            let limits = [g.max_refunded_bps, g.max_failed_bps, g.max_rpc_error_bps];
            if limits.iter().flatten().any(|bps| *bps > 10_000) {
                return invalid("guards: a rate is at most 10000 basis points".into());
            }
            if limits.iter().all(Option::is_none) {
                return invalid("guards without a condition: set a max_…_bps".into());
            }
        }
        let approvers: HashSet<_> = self.approval.approvers.iter().collect();
        if approvers.len() != self.approval.approvers.len() {
            return invalid("an approver is listed twice".into());
        }
        let quorum = self.approval.quorum as usize;
        match (approvers.len(), quorum) {
            (0, 0) => Ok(()),
            (0, _) => invalid("a quorum without approvers: list them, or set quorum 0".into()),
            (_, 0) => invalid("approvers with a quorum of 0: set how many must approve".into()),
            (n, q) if q > n => invalid(format!("a quorum of {q} out of {n} approvers")),
            _ => Ok(()),
        }
    }

    /// The bundle as JSON (what the engine keeps).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// Its id: keccak-256 of its canonical JSON.
    pub fn id(&self) -> B256 {
        alloy::primitives::keccak256(changes::canonical(&self.to_value()).as_bytes())
    }
}

fn url(url: &Url, what: &str) -> Result<reqwest::Url, ApiError> {
    reqwest::Url::parse(&url.0)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            ApiError::new(
                Code::InvalidConfig,
                format!("{what} {:?} is not an http(s) URL", url.0),
            )
        })
}

/// Where a version is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VersionState {
    /// Proposed; validation is under way.
    Proposed,
    /// Its chains and contracts are what it says.
    Validated,
    /// Approved by a quorum.
    Approved,
    /// Set to activate at `activate_at_ms`.
    Scheduled,
    /// What new intents run under.
    Active,
    /// Was active; a newer version took over.
    Superseded,
    /// Was active; an older version was activated again.
    RolledBack,
    /// Refused before it was active (see its record).
    Rejected,
}

impl From<changes::State> for VersionState {
    fn from(s: changes::State) -> Self {
        use changes::State as S;
        match s {
            S::Proposed => Self::Proposed,
            S::Validated => Self::Validated,
            S::Approved => Self::Approved,
            S::Scheduled => Self::Scheduled,
            S::Active => Self::Active,
            S::Superseded => Self::Superseded,
            S::RolledBack => Self::RolledBack,
            S::Rejected => Self::Rejected,
        }
    }
}

/// A configuration version.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfigVersion {
    /// keccak-256 of its bundle's canonical JSON.
    pub id: String,
    /// 1, 2, … in the order versions were first proposed.
    pub number: u64,
    /// The version it changes.
    pub parent: Option<String>,
    /// Where it is.
    pub state: VersionState,
    /// Who first proposed it.
    pub proposed_by: String,
    /// First proposed at, unix milliseconds.
    pub created_ms: i64,
    /// Its state set at, unix milliseconds.
    pub updated_ms: i64,
    /// When scheduled at a time: active from then, unix milliseconds.
    pub activate_at_ms: Option<i64>,
    /// When scheduled at a block: active once the chain's head reaches it.
    pub activate_at_block: Option<BlockTarget>,
}

/// A chain's block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockTarget {
    /// The chain id.
    #[schema(minimum = 1, maximum = 9007199254740991_u64)]
    pub chain: u64,
    /// The block number.
    #[schema(maximum = 9007199254740991_u64)]
    pub block: u64,
}

impl From<&changes::Version> for ConfigVersion {
    fn from(v: &changes::Version) -> Self {
        Self {
            id: v.id.to_string(),
            number: v.number,
            parent: v.parent.map(|p| p.to_string()),
            state: v.state.into(),
            proposed_by: v.proposed_by.clone(),
            created_ms: v.created_ms,
            updated_ms: v.updated_ms,
            activate_at_ms: v.activate_at_ms,
            activate_at_block: v
                .activate_at_block
                .map(|(chain, block)| BlockTarget { chain, block }),
        }
    }
}

/// A version with its bundle, its record and its approvals.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfigVersionDetail {
    /// The version.
    pub version: ConfigVersion,
    /// Its bundle (a [`Bundle`]; a version recorded before bundles had their present shape is
    /// shown as stored).
    #[schema(value_type = Object)]
    pub bundle: serde_json::Value,
    /// Its transitions, in order.
    pub history: Vec<ConfigTransition>,
    /// The approvals it has.
    pub approvals: Vec<ConfigApproval>,
    /// What an approver signs (EIP-191) to approve it.
    pub approval_message: String,
    /// Who approves it: the active version's approvers and quorum.
    pub approved_by: ApprovalSet,
    /// Its shadow run, when one was started.
    pub shadow: Option<ShadowRun>,
}

/// A version's shadow run: the latest finished sagas re-run on anvil forks under its bundle, each
/// outcome compared with the saga's own. Regressions block approval until an operator overrides
/// them with a reason.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ShadowRun {
    /// The instance that runs (or ran) it.
    pub by_instance: String,
    /// Started at, unix milliseconds.
    pub started_ms: i64,
    /// Finished at (none: running).
    pub finished_ms: Option<i64>,
    /// Sagas re-run.
    pub sagas: u64,
    /// Sagas that ended worse under the version.
    pub regressions: u64,
    /// Each saga re-run, and the ones skipped.
    pub report: Option<crate::changes::shadow::ShadowReport>,
    /// Who overrode the regressions.
    pub overridden_by: Option<String>,
    /// Why.
    pub override_reason: Option<String>,
    /// When, unix milliseconds.
    pub overridden_ms: Option<i64>,
}

/// One recorded transition.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfigTransition {
    /// Its place in the record.
    pub seq: u64,
    /// The state it left (none: proposed).
    pub from: Option<VersionState>,
    /// The state it entered.
    pub to: VersionState,
    /// Who made it.
    pub by: String,
    /// Why (for a validation, what was checked or found).
    pub detail: String,
    /// When, unix milliseconds.
    pub at_ms: i64,
}

impl From<&changes::Transition> for ConfigTransition {
    fn from(t: &changes::Transition) -> Self {
        Self {
            seq: t.seq,
            from: t.from.map(Into::into),
            to: t.to.into(),
            by: t.by.clone(),
            detail: t.detail.clone(),
            at_ms: t.at_ms,
        }
    }
}

/// One approval.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfigApproval {
    /// The approver's address.
    pub approver: String,
    /// Its signature.
    pub signature: String,
    /// The API key that sent it.
    pub by: String,
    /// When, unix milliseconds.
    pub at_ms: i64,
}

impl From<&changes::Approval> for ConfigApproval {
    fn from(a: &changes::Approval) -> Self {
        Self {
            approver: a.approver.to_checksum(None),
            signature: a.signature.clone(),
            by: a.by.clone(),
            at_ms: a.at_ms,
        }
    }
}

/// An approval of a version.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    /// An approver's EIP-191 signature over the version's `approval_message`. Omitted only when
    /// the active version names no approvers: then an admin key approves alone.
    #[schema(pattern = "^0x[0-9a-fA-F]{130}$")]
    pub signature: Option<String>,
}

/// When an approved version activates: at a time, or at a chain's block (not both).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    /// Unix milliseconds (now, when omitted or past).
    #[schema(minimum = 0, maximum = 253402300799999_i64)]
    pub at_ms: Option<i64>,
    /// A block of a chain baton serves: active once its head reaches it.
    pub at_block: Option<BlockTarget>,
}

/// An operator's decision on a version, and why: its rejection, or the override of the
/// regressions its shadow run found.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    /// Why, recorded with who decided.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// Which version to roll back to.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// A version that was active (its id); by default the one the active version changed.
    #[schema(pattern = "^0x[0-9a-fA-F]{64}$")]
    pub to: Option<String>,
}

/// What one instance declares.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct InstanceStatus {
    /// Its name.
    pub instance: String,
    /// The id of the bundle it runs.
    pub running: String,
    /// That bundle's version number (none: it is no version; the instance runs its own file).
    pub running_version: Option<u64>,
    /// A version it has pulled and switches to when it activates.
    pub staged: Option<String>,
    /// When it started, unix milliseconds.
    pub started_ms: i64,
    /// When it last declared, unix milliseconds.
    pub seen_ms: i64,
    /// How often it pulls the versions and declares itself, milliseconds.
    pub pull_every_ms: i64,
    /// It declared within the last ten seconds (or three of its pull intervals, when longer).
    pub alive: bool,
    /// Alive, and not running the active version.
    pub lagging: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bundle read back from its stored JSON has the same id: what an instance runs is the
    /// version it read (absent optional fields stay absent, nulls stay nulls).
    #[test]
    fn a_bundle_read_back_hashes_to_its_id() {
        let hash = format!("0x{}", "11".repeat(32));
        let contract = |a: &str| serde_json::json!({ "address": format!("0x{}", a.repeat(20)), "code_hash": hash });
        let stored = serde_json::json!({
            "chains": [{
                "id": 1001, "rpc_url": "http://127.0.0.1:8545", "requests_per_second": null,
                "logs_from_block": 7, "logs_max_range": null,
                "origin_settler": contract("aa"), "destination_settler": contract("bb"),
                "finality_blocks": 2, "confirmation_tiers": [{ "at_least": "1000", "blocks": 4 }],
                "tokens": [{ "symbol": "USDC", "address": format!("0x{}", "cc".repeat(20)),
                             "code_hash": hash, "decimals": 6, "native_price": "2000000000" }],
                "pools": [],
            }],
            "attesters": ["http://127.0.0.1:8090/"], "attest_timeout_ms": 3000, "solver_fee_bps": 5,
            "route_latency_secs": 2,
            "planner": { "max_hops": 3, "slippage_bps": 50, "fee_ceiling_pct": 300, "split": true },
            "hold_for_operator_secs": 0, "fill_margin_blocks": 1,
            "approval": { "approvers": [format!("0x{}", "dd".repeat(20))], "quorum": 1 },
        });
        let body = changes::canonical(&stored);
        let bundle: Bundle = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(changes::canonical(&bundle.to_value()), body);
        assert_eq!(bundle.id(), alloy::primitives::keccak256(body.as_bytes()));
        assert!(bundle.check().is_ok());
    }
}
