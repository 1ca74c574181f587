//! File formats for intents and liquidity snapshots (fixtures, the CLI), converted into domain
//! types at this boundary. Tokens are named by symbol (resolved on their chain through the
//! snapshot) or by `0x` address; amounts are decimal or `0x` strings in base units.

use std::collections::BTreeMap;

use alloy::primitives::{Address, Bytes, U256};
use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::error::{PlanError, Result};
use crate::ids::{Asset, ChainId, TokenAddress};
use crate::intent::{DestinationCall, Input, Intent, Output};
use crate::snapshot::{ChainConditions, GasSchedule, LiquiditySnapshot, Pool, TokenInfo};

/// An intent file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentSpec {
    /// A short name for displays.
    #[serde(default)]
    pub name: String,
    /// What the intent is for, in a sentence.
    #[serde(default)]
    pub description: String,
    /// The user.
    pub user: Address,
    /// The user's nonce.
    pub nonce: U256,
    /// When the orders must be opened by.
    pub open_deadline: DeadlineSpec,
    /// When the outputs must be filled by.
    pub fill_deadline: DeadlineSpec,
    /// What the user gives.
    pub inputs: Vec<InputSpec>,
    /// What the user must receive.
    pub outputs: Vec<OutputSpec>,
    /// For example intents: the error code planning is expected to end with (`None`: a plan).
    #[serde(default)]
    pub expect: Option<String>,
}

/// A deadline: absolute unix seconds, or seconds after "now" (the snapshot's time).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum DeadlineSpec {
    /// Unix seconds.
    At(u32),
    /// Seconds after now.
    In(u32),
}

/// An input in a file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// The chain.
    pub chain: ChainId,
    /// Symbol or address.
    pub token: String,
    /// Base units.
    pub amount: Amount,
}

/// An output in a file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// The chain.
    pub chain: ChainId,
    /// Symbol or address.
    pub token: String,
    /// The least the recipient must get, base units.
    pub min_amount: Amount,
    /// Who receives it.
    pub recipient: Address,
    /// A call after delivery.
    #[serde(default)]
    pub call: Option<CallSpec>,
}

/// A destination call in a file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    /// The contract called.
    pub target: Address,
    /// Calldata, `0x` hex.
    pub data: Bytes,
}

impl IntentSpec {
    /// Resolves tokens against `snapshot` and checks the intent; relative deadlines count from the
    /// snapshot's time.
    pub fn into_intent(self, snapshot: &LiquiditySnapshot) -> Result<Intent> {
        let now = snapshot.timestamp;
        let at = |d: DeadlineSpec| match d {
            DeadlineSpec::At(t) => Ok(t),
            DeadlineSpec::In(s) => {
                u32::try_from(now.saturating_add(s.into())).map_err(|_| PlanError::InvalidIntent {
                    reason: "the deadline does not fit in a uint32 timestamp".into(),
                })
            }
        };
        let inputs = self
            .inputs
            .into_iter()
            .map(|i| {
                Ok(Input {
                    asset: resolve(snapshot, i.chain, &i.token)?,
                    amount: i.amount,
                })
            })
            .collect::<Result<_>>()?;
        let outputs = self
            .outputs
            .into_iter()
            .map(|o| {
                Ok(Output {
                    asset: resolve(snapshot, o.chain, &o.token)?,
                    min_amount: o.min_amount,
                    recipient: o.recipient,
                    call: o.call.map(|c| DestinationCall {
                        target: c.target,
                        data: c.data,
                    }),
                })
            })
            .collect::<Result<_>>()?;
        Intent::new(
            self.user,
            self.nonce,
            at(self.open_deadline)?,
            at(self.fill_deadline)?,
            inputs,
            outputs,
        )
    }
}

/// Finds `token` (a symbol or an address) on `chain` in the snapshot's token list.
pub fn resolve(snapshot: &LiquiditySnapshot, chain: ChainId, token: &str) -> Result<Asset> {
    snapshot.chain(chain)?;
    if let Ok(address) = token.parse::<Address>() {
        let asset = Asset::new(chain, TokenAddress(address));
        snapshot.token(asset)?;
        return Ok(asset);
    }
    snapshot
        .tokens
        .iter()
        .find(|(a, info)| a.chain == chain && info.symbol == token)
        .map(|(a, _)| *a)
        .ok_or_else(|| PlanError::InvalidIntent {
            reason: format!("no token `{token}` on {chain}"),
        })
}

/// A liquidity snapshot file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSpec {
    /// Unix seconds.
    pub timestamp: u64,
    /// Solver fee, basis points.
    #[serde(default)]
    pub solver_fee_bps: u32,
    /// Latency of routes not listed.
    #[serde(default)]
    pub default_route_latency_secs: u64,
    /// Chains.
    pub chains: Vec<ChainSpec>,
    /// Tokens.
    pub tokens: Vec<TokenSpec>,
    /// Pools.
    #[serde(default)]
    pub pools: Vec<PoolSpec>,
    /// Solver inventory.
    #[serde(default)]
    pub inventory: Vec<InventorySpec>,
    /// Route latencies.
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    /// Gas per step kind; defaults when absent.
    #[serde(default)]
    pub gas: Option<GasSpec>,
}

/// A chain in a snapshot file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSpec {
    /// Chain id.
    pub id: ChainId,
    /// Origin settler.
    pub origin_settler: Address,
    /// Destination settler.
    pub destination_settler: Address,
    /// Wei per gas.
    pub gas_price: Amount,
    /// Block time, ms.
    pub block_time_ms: u64,
    /// Confirmations to finality.
    pub finality_blocks: u32,
    /// More confirmations for more value at risk (see [`ConfirmationTier`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confirmation_tiers: Vec<ConfirmationTier>,
}

/// A step on a chain whose value at risk is at least `at_least` (in wei of the chain's native coin,
/// from the tokens' native prices) waits for `blocks` confirmations, when that is more than the
/// chain's finality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmationTier {
    /// The least value at risk, wei of the native coin.
    pub at_least: Amount,
    /// Confirmations from there.
    pub blocks: u32,
}

/// A token in a snapshot file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// Chain id.
    pub chain: ChainId,
    /// Contract.
    pub address: Address,
    /// Symbol.
    pub symbol: String,
    /// Decimals.
    pub decimals: u8,
    /// Base units worth one native coin.
    #[serde(default)]
    pub native_price: Option<Amount>,
}

/// A pool in a snapshot file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// Chain id.
    pub chain: ChainId,
    /// Contract.
    pub address: Address,
    /// Symbol or address.
    pub token0: String,
    /// Symbol or address.
    pub token1: String,
    /// Reserve of token0.
    pub reserve0: Amount,
    /// Reserve of token1.
    pub reserve1: Amount,
    /// Fee, basis points.
    pub fee_bps: u32,
}

/// Inventory in a snapshot file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventorySpec {
    /// Chain id.
    pub chain: ChainId,
    /// Symbol or address.
    pub token: String,
    /// Base units.
    pub amount: Amount,
}

/// A route latency in a snapshot file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// Where the fill happens.
    pub from: ChainId,
    /// Where the attestation is used.
    pub to: ChainId,
    /// Seconds.
    pub latency_secs: u64,
}

/// Gas per step kind in a snapshot file.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GasSpec {
    /// `openFor`.
    pub open: u64,
    /// One swap.
    pub swap: u64,
    /// `fill`.
    pub fill: u64,
    /// `settle`.
    pub settle: u64,
    /// `refund`.
    pub refund: u64,
}

impl SnapshotSpec {
    /// Builds and validates the snapshot.
    pub fn into_snapshot(self) -> Result<LiquiditySnapshot> {
        let mut snap = LiquiditySnapshot {
            timestamp: self.timestamp,
            solver_fee_bps: self.solver_fee_bps,
            default_route_latency_secs: self.default_route_latency_secs,
            gas: self.gas.map_or_else(GasSchedule::default, |g| GasSchedule {
                open: g.open,
                swap: g.swap,
                fill: g.fill,
                settle: g.settle,
                refund: g.refund,
            }),
            ..LiquiditySnapshot::default()
        };
        for c in self.chains {
            snap.chains.insert(
                c.id,
                ChainConditions {
                    origin_settler: c.origin_settler,
                    destination_settler: c.destination_settler,
                    gas_price: c.gas_price.raw(),
                    block_time_ms: c.block_time_ms,
                    finality_blocks: c.finality_blocks,
                    confirmation_tiers: c.confirmation_tiers,
                },
            );
        }
        for t in self.tokens {
            let info = TokenInfo {
                symbol: t.symbol,
                decimals: t.decimals,
                native_price: t.native_price,
            };
            snap.tokens
                .insert(Asset::new(t.chain, TokenAddress(t.address)), info);
        }
        let pools = self
            .pools
            .into_iter()
            .map(|p| {
                Ok(Pool {
                    chain: p.chain,
                    address: p.address,
                    token0: resolve(&snap, p.chain, &p.token0)?.token,
                    token1: resolve(&snap, p.chain, &p.token1)?.token,
                    reserve0: p.reserve0,
                    reserve1: p.reserve1,
                    fee_bps: p.fee_bps,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        snap.pools = pools;
        let mut inventory = BTreeMap::new();
        for i in self.inventory {
            inventory.insert(resolve(&snap, i.chain, &i.token)?, i.amount);
        }
        snap.inventory = inventory;
        for r in self.routes {
            snap.route_latency_secs
                .insert((r.from, r.to), r.latency_secs);
        }
        snap.validate()?;
        Ok(snap)
    }
}
