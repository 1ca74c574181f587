//! Liquidity read from the chains into a snapshot the planner routes over: the solver's inventory
//! (its balances), pool reserves, and each chain's clock, gas price and block time — all through
//! the adapters. What cannot be read (which tokens and pools to use, decimals, prices, finality) is
//! configuration: a [`Venue`] per chain.

use std::collections::HashMap;
use std::sync::Arc;

use alloy::primitives::{Address, U256};
use baton_adapters::abi::Settlers;
use baton_adapters::port::ChainAdapter;
use baton_planner::spec::{ChainSpec, InventorySpec, PoolSpec, RouteSpec, SnapshotSpec, TokenSpec};
use baton_planner::{Amount, ChainId};
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// A token the solver trades on a chain.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VenueToken {
    /// Its symbol (the same symbol on two chains is the same asset, bridged by fills).
    pub symbol: String,
    /// The contract.
    pub address: Address,
    /// Decimals.
    pub decimals: u8,
    /// Base units of the token per 1 native token (ether), to price gas; none: not priced.
    pub native_price: Option<Amount>,
}

/// A pool the solver may swap through.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VenuePool {
    /// The contract.
    pub address: Address,
    /// Its fee, basis points.
    pub fee_bps: u32,
}

/// What the solver uses on one chain.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Venue {
    /// The chain.
    pub chain: ChainId,
    /// Its settlers.
    pub settlers: Settlers,
    /// Blocks after which a block is final.
    pub finality_blocks: u32,
    /// Tokens.
    pub tokens: Vec<VenueToken>,
    /// Pools.
    pub pools: Vec<VenuePool>,
}

/// Reads a snapshot over `venues` through the solver's adapters (`chains`). The snapshot's time is
/// the latest chain clock; a chain's gas price is its base fee plus a 1 gwei tip.
pub async fn read(
    chains: &HashMap<ChainId, Arc<dyn ChainAdapter>>,
    venues: &[Venue],
    solver_fee_bps: u32,
    route_latency_secs: u64,
) -> Result<SnapshotSpec> {
    let mut snapshot = SnapshotSpec {
        timestamp: 0,
        solver_fee_bps,
        default_route_latency_secs: route_latency_secs,
        chains: Vec::new(),
        tokens: Vec::new(),
        pools: Vec::new(),
        inventory: Vec::new(),
        routes: Vec::new(),
        gas: None,
    };
    for venue in venues {
        let adapter = chains
            .get(&venue.chain)
            .ok_or(EngineError::NoAdapter(venue.chain.0))?;
        let c = adapter.conditions().await?;
        snapshot.timestamp = snapshot.timestamp.max(c.timestamp);
        snapshot.chains.push(ChainSpec {
            id: venue.chain,
            origin_settler: venue.settlers.origin,
            destination_settler: venue.settlers.destination,
            gas_price: Amount::new(U256::from(c.base_fee) + U256::from(1_000_000_000u64)),
            block_time_ms: if c.block_time_ms > 0 {
                c.block_time_ms
            } else {
                1_000
            },
            finality_blocks: venue.finality_blocks,
        });
        let symbol = |address: Address| {
            venue
                .tokens
                .iter()
                .find(|t| t.address == address)
                .map(|t| t.symbol.clone())
        };
        for token in &venue.tokens {
            snapshot.tokens.push(TokenSpec {
                chain: venue.chain,
                address: token.address,
                symbol: token.symbol.clone(),
                decimals: token.decimals,
                native_price: token.native_price,
            });
            let held = adapter.balance(token.address, adapter.account()).await?;
            if held > U256::ZERO {
                snapshot.inventory.push(InventorySpec {
                    chain: venue.chain,
                    token: token.symbol.clone(),
                    amount: Amount::new(held),
                });
            }
        }
        for pool in &venue.pools {
            let r = adapter.reserves(pool.address).await?;
            let (Some(token0), Some(token1)) = (symbol(r.token0), symbol(r.token1)) else {
                continue; // a pool of a token the venue does not trade
            };
            snapshot.pools.push(PoolSpec {
                chain: venue.chain,
                address: pool.address,
                token0,
                token1,
                reserve0: Amount::new(r.reserve0),
                reserve1: Amount::new(r.reserve1),
                fee_bps: pool.fee_bps,
            });
        }
    }
    for from in venues {
        for to in venues {
            if from.chain != to.chain {
                snapshot.routes.push(RouteSpec {
                    from: from.chain,
                    to: to.chain,
                    latency_secs: route_latency_secs,
                });
            }
        }
    }
    Ok(snapshot)
}
