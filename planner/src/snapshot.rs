//! The liquidity snapshot: everything the planner knows about the chains, read at one moment.

use std::collections::BTreeMap;

use alloy::primitives::{Address, U256};

use crate::amount::Amount;
use crate::error::{PlanError, Result};
use crate::ids::{Asset, ChainId, TokenAddress};

/// What baton read from every chain at [`LiquiditySnapshot::timestamp`]. The planner's only input
/// besides the intent: it reads no clock, so `timestamp` is its "now".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiquiditySnapshot {
    /// Unix seconds at which the snapshot was taken.
    pub timestamp: u64,
    /// Per-chain settlers and network conditions.
    pub chains: BTreeMap<ChainId, ChainConditions>,
    /// Every token the solver will touch, with its symbol (tokens with one symbol on several chains
    /// are the same asset, fillable across chains) and decimals.
    pub tokens: BTreeMap<Asset, TokenInfo>,
    /// Constant-product pools.
    pub pools: Vec<Pool>,
    /// Solver inventory per (chain, token).
    pub inventory: BTreeMap<Asset, Amount>,
    /// Seconds from a fill being final on the first chain to its attestation being usable on the
    /// second (the per-route latency estimate). Routes not listed use `default_route_latency_secs`.
    pub route_latency_secs: BTreeMap<(ChainId, ChainId), u64>,
    /// Latency of a route not in `route_latency_secs`.
    pub default_route_latency_secs: u64,
    /// The solver's fee on every filled amount, in basis points.
    pub solver_fee_bps: u32,
    /// Gas each kind of step uses.
    pub gas: GasSchedule,
}

/// A chain's settlers and network conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainConditions {
    /// The ERC-7683 origin settler (escrow) on this chain.
    pub origin_settler: Address,
    /// The ERC-7683 destination settler on this chain.
    pub destination_settler: Address,
    /// Current gas price (base fee plus tip), wei per gas.
    pub gas_price: U256,
    /// Observed block time, milliseconds.
    pub block_time_ms: u64,
    /// Confirmations after which a block is treated as final.
    pub finality_blocks: u32,
    /// More confirmations for more value at risk.
    pub confirmation_tiers: Vec<crate::spec::ConfirmationTier>,
}

impl ChainConditions {
    /// Confirmations for a step with `value` at risk (wei of the native coin; `None` when some
    /// token has no price: the highest tier): the chain's finality, or the highest tier the value
    /// reaches when that asks for more.
    pub fn confirmations_for(&self, value: Option<U256>) -> u32 {
        self.confirmation_tiers
            .iter()
            .filter(|t| value.is_none_or(|v| v >= t.at_least.raw()))
            .map(|t| t.blocks)
            .fold(self.finality_blocks, u32::max)
    }
}

/// A token's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// The symbol; one symbol on several chains marks one asset.
    pub symbol: String,
    /// ERC-20 decimals.
    pub decimals: u8,
    /// How many base units of this token one native coin (10^18 wei) is worth, if known: used to net
    /// gas out of amounts. Without it the plan still reports gas in wei but cannot deduct it.
    pub native_price: Option<Amount>,
}

/// A constant-product pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    /// The chain it lives on.
    pub chain: ChainId,
    /// The pool contract.
    pub address: Address,
    /// The first token.
    pub token0: TokenAddress,
    /// The second token.
    pub token1: TokenAddress,
    /// Reserve of `token0`.
    pub reserve0: Amount,
    /// Reserve of `token1`.
    pub reserve1: Amount,
    /// Swap fee in basis points (30 = 0.3 %).
    pub fee_bps: u32,
}

/// Gas used by each kind of step (estimates, conservative).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GasSchedule {
    /// `openFor` on the origin settler.
    pub open: u64,
    /// One pool swap.
    pub swap: u64,
    /// `fill` on the destination settler, without its destination call.
    pub fill: u64,
    /// `settle` on the origin settler.
    pub settle: u64,
    /// `refund` on the origin settler.
    pub refund: u64,
}

impl Default for GasSchedule {
    fn default() -> Self {
        Self {
            open: 160_000,
            swap: 110_000,
            fill: 90_000,
            settle: 80_000,
            refund: 60_000,
        }
    }
}

impl LiquiditySnapshot {
    /// Conditions of `chain`, or [`PlanError::UnknownChain`].
    pub fn chain(&self, chain: ChainId) -> Result<&ChainConditions> {
        self.chains
            .get(&chain)
            .ok_or(PlanError::UnknownChain { chain })
    }

    /// Metadata of `asset`, or [`PlanError::UnknownToken`] (or unknown chain).
    pub fn token(&self, asset: Asset) -> Result<&TokenInfo> {
        self.chain(asset.chain)?;
        self.tokens
            .get(&asset)
            .ok_or(PlanError::UnknownToken { asset })
    }

    /// Solver inventory of `asset` (zero when none).
    pub fn inventory_of(&self, asset: Asset) -> Amount {
        self.inventory.get(&asset).copied().unwrap_or_default()
    }

    /// Seconds from a fill final on `from` to its attestation usable on `to`.
    pub fn route_latency(&self, from: ChainId, to: ChainId) -> u64 {
        self.route_latency_secs
            .get(&(from, to))
            .copied()
            .unwrap_or(self.default_route_latency_secs)
    }

    /// Checks internal consistency: every pool and inventory names known tokens on known chains,
    /// fees are below 100 %, block times are positive, a pool's two tokens differ.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(PlanError::InvalidSnapshot { reason });
        for (id, c) in &self.chains {
            if c.block_time_ms == 0 {
                return bad(format!("{id} has a zero block time"));
            }
        }
        for asset in self.tokens.keys() {
            if !self.chains.contains_key(&asset.chain) {
                return bad(format!("token {asset} is on a chain without conditions"));
            }
        }
        for (i, p) in self.pools.iter().enumerate() {
            if p.fee_bps >= 10_000 {
                return bad(format!(
                    "pool {i} ({}) charges {} bps",
                    p.address, p.fee_bps
                ));
            }
            if p.token0 == p.token1 {
                return bad(format!(
                    "pool {i} ({}) pairs a token with itself",
                    p.address
                ));
            }
            for t in [p.token0, p.token1] {
                if !self.tokens.contains_key(&Asset::new(p.chain, t)) {
                    return bad(format!("pool {i} ({}) holds unknown token {t}", p.address));
                }
            }
        }
        for asset in self.inventory.keys() {
            if !self.tokens.contains_key(asset) {
                return bad(format!("inventory of unknown token {asset}"));
            }
        }
        if self.solver_fee_bps >= 10_000 {
            return bad(format!("solver fee {} bps", self.solver_fee_bps));
        }
        Ok(())
    }
}
