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
    /// More confirmations for more value at risk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confirmation_tiers: Vec<baton_planner::spec::ConfirmationTier>,
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
            confirmation_tiers: venue.confirmation_tiers.clone(),
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

/// The venue of a devnet chain (from its devnet file): its three test tokens priced at 2,500 USDC
/// = 2,500 DAI = 1 WETH = 1 ETH, its pools at 0.3 %, final at 2 confirmations.
pub fn devnet_venue(chain: &baton_adapters::devnet::DevnetFileChain) -> Venue {
    let price = |symbol: &str| match symbol {
        "USDC" => U256::from(2_500_000_000u64),
        "WETH" => U256::from(10u64).pow(U256::from(18)),
        _ => U256::from(2_500u64) * U256::from(10u64).pow(U256::from(18)),
    };
    Venue {
        chain: ChainId(chain.chain_id),
        settlers: Settlers {
            origin: chain.origin_settler,
            destination: chain.destination_settler,
        },
        finality_blocks: 2,
        confirmation_tiers: Vec::new(),
        tokens: baton_adapters::devnet::TOKENS
            .iter()
            .filter_map(|(symbol, decimals)| {
                Some(VenueToken {
                    symbol: (*symbol).to_owned(),
                    address: *chain.tokens.get(*symbol)?,
                    decimals: *decimals,
                    native_price: Some(Amount::new(price(symbol))),
                })
            })
            .collect(),
        pools: chain
            .pools
            .values()
            .map(|p| VenuePool {
                address: *p,
                fee_bps: 30,
            })
            .collect(),
    }
}

/// Lets the destination settler and every pool of `venue` move the solver's tokens; see
/// [`approve`].
pub async fn approve_inventory(adapter: &dyn ChainAdapter, venue: &Venue) -> Result<usize> {
    let mut pairs = Vec::new();
    for token in &venue.tokens {
        pairs.push((token.address, venue.settlers.destination));
        for pool in &venue.pools {
            pairs.push((token.address, pool.address));
        }
    }
    approve(adapter, &pairs).await
}

/// Lets each spender move the adapter's account's token, for every `(token, spender)`: an unlimited
/// approval, sent only where the current one is below half of that. Waits until every approval is
/// included; returns how many were sent.
pub async fn approve(adapter: &dyn ChainAdapter, pairs: &[(Address, Address)]) -> Result<usize> {
    use baton_adapters::port::{Fees, Op, TxRequest, TxStatus};
    let owner = adapter.account();
    let mut sent = Vec::new();
    for (token, spender) in pairs {
        if adapter.allowance(*token, owner, *spender).await? >= U256::MAX >> 1 {
            continue;
        }
        let base_fee = adapter.conditions().await?.base_fee;
        let fees = Fees {
            gas_limit: 100_000,
            max_fee_per_gas: base_fee.saturating_mul(2) + 1_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
        };
        let op = Op::Approve {
            token: *token,
            spender: *spender,
            amount: U256::MAX,
        };
        let tx = adapter.prepare(TxRequest::new(op, fees)).await?;
        adapter.broadcast(&tx).await?;
        sent.push(tx);
    }
    for tx in &sent {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            match adapter.status(tx, None).await? {
                TxStatus::Included(inc) if inc.success => break,
                TxStatus::Included(inc) => {
                    return Err(EngineError::Invalid(format!(
                        "an approval reverted: {}",
                        inc.revert_reason.unwrap_or_default()
                    )));
                }
                _ if std::time::Instant::now() > deadline => {
                    return Err(EngineError::Invalid(
                        "an approval was not included within 60 s".into(),
                    ));
                }
                _ => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
            }
        }
    }
    Ok(sent.len())
}
