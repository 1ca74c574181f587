//! The two harnesses baton ships: the sim, and evm on anvil nodes.

use std::sync::Arc;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use baton_planner::ChainId;
use serde_json::json;

use super::{FUNDS, Harness, Role};
use crate::abi::Settlers;
use crate::devnet::{ATTESTERS, Devnet, DevnetChain, SOLVER, USER, dev_attester_set, dev_signer};
use crate::error::{AdapterError, Result};
use crate::port::{BoxFuture, ChainAdapter};
use crate::sim::{SimChain, SimConfig};

/// The adapters of a harness, by chain and role.
#[derive(Default)]
struct Accounts(Vec<(ChainId, Role, Arc<dyn ChainAdapter>)>);

impl Accounts {
    fn add(&mut self, chain: ChainId, role: Role, adapter: Arc<dyn ChainAdapter>) {
        self.0.push((chain, role, adapter));
    }

    fn get(&self, chain: ChainId, role: Role) -> Arc<dyn ChainAdapter> {
        self.0
            .iter()
            .find(|(c, r, _)| *c == chain && *r == role)
            .map(|(_, _, a)| a.clone())
            .unwrap_or_else(|| panic!("no adapter for {role:?} on chain {}", chain.0))
    }
}

/// Two sim chains (1001, 1002) with USDC, the user and solver funded on both: the sim harness.
pub struct SimWorld {
    chains: [SimChain; 2],
    adapters: Accounts,
    user: PrivateKeySigner,
    attesters: Vec<PrivateKeySigner>,
    /// (chain, symbol, address) of every token.
    tokens: Vec<(ChainId, &'static str, Address)>,
}

impl SimWorld {
    /// Builds the two chains from genesis time `genesis_time`.
    pub fn new(genesis_time: u64) -> Self {
        let user = dev_signer(USER);
        let solver = dev_signer(SOLVER);
        let chains = [1001, 1002].map(|id| {
            SimChain::new(SimConfig::new(
                ChainId(id),
                dev_attester_set(),
                genesis_time,
            ))
        });
        let mut adapters = Accounts::default();
        let mut tokens = Vec::new();
        for chain in &chains {
            let usdc = chain.add_token("USDC");
            for who in [user.address(), solver.address()] {
                chain.mint(usdc, who, U256::from(FUNDS) * U256::from(10));
            }
            tokens.push((chain.chain_id(), "USDC", usdc));
            adapters.add(
                chain.chain_id(),
                Role::User,
                Arc::new(chain.adapter(user.clone())),
            );
            adapters.add(
                chain.chain_id(),
                Role::Solver,
                Arc::new(chain.adapter(solver.clone())),
            );
        }
        Self {
            chains,
            adapters,
            user,
            attesters: ATTESTERS.map(dev_signer).to_vec(),
            tokens,
        }
    }

    /// The sim chain with id `chain`.
    pub fn chain(&self, chain: ChainId) -> &SimChain {
        self.chains
            .iter()
            .find(|c| c.chain_id() == chain)
            .unwrap_or(&self.chains[0])
    }
}

fn done<'a>(r: Result<()>) -> BoxFuture<'a, Result<()>> {
    Box::pin(std::future::ready(r))
}

impl Harness for SimWorld {
    fn chains(&self) -> [ChainId; 2] {
        [self.chains[0].chain_id(), self.chains[1].chain_id()]
    }
    fn adapter(&self, chain: ChainId, role: Role) -> Arc<dyn ChainAdapter> {
        self.adapters.get(chain, role)
    }
    fn user(&self) -> &PrivateKeySigner {
        &self.user
    }
    fn attesters(&self) -> &[PrivateKeySigner] {
        &self.attesters
    }
    fn token(&self, chain: ChainId, symbol: &str) -> Address {
        self.tokens
            .iter()
            .find(|(c, s, _)| *c == chain && *s == symbol)
            .map(|(_, _, t)| *t)
            .unwrap_or_default()
    }
    fn settlers(&self, chain: ChainId) -> Settlers {
        self.chain(chain).settlers()
    }
    fn mine(&self, chain: ChainId, blocks: u64) -> BoxFuture<'_, Result<()>> {
        self.chain(chain).mine(blocks);
        done(Ok(()))
    }
    fn advance_time(&self, chain: ChainId, secs: u64) -> BoxFuture<'_, Result<()>> {
        self.chain(chain).advance_time(secs);
        done(Ok(()))
    }
    fn reorg(&self, chain: ChainId, depth: u64) -> BoxFuture<'_, Result<()>> {
        done(self.chain(chain).reorg(depth))
    }
}

/// Two anvil nodes started by [`Devnet::start`], automine off, with `evm` adapters: the evm
/// harness. The nodes stop when it is dropped.
pub struct DevnetWorld {
    devnet: Devnet,
    adapters: Accounts,
    user: PrivateKeySigner,
    attesters: Vec<PrivateKeySigner>,
}

impl DevnetWorld {
    /// Starts the two nodes, deploys, then turns automine off.
    pub async fn start() -> Result<Self> {
        let devnet = Devnet::start(2, None).await?;
        let mut adapters = Accounts::default();
        for chain in &devnet.chains {
            anvil(chain, "evm_setAutomine", json!([false])).await?;
            let id = ChainId(chain.chain_id);
            adapters.add(id, Role::User, Arc::new(chain.adapter(USER)?));
            adapters.add(id, Role::Solver, Arc::new(chain.adapter(SOLVER)?));
        }
        Ok(Self {
            devnet,
            adapters,
            user: dev_signer(USER),
            attesters: ATTESTERS.map(dev_signer).to_vec(),
        })
    }

    /// The node of `chain` (its URL, settlers and accounts), to reach it other ways.
    pub fn node(&self, chain: ChainId) -> &DevnetChain {
        self.devnet
            .chains
            .iter()
            .find(|c| c.chain_id == chain.0)
            .unwrap_or(&self.devnet.chains[0])
    }
}

/// Calls an anvil-only JSON-RPC method.
pub async fn anvil(
    chain: &DevnetChain,
    method: &'static str,
    params: serde_json::Value,
) -> Result<serde_json::Value> {
    use alloy::providers::Provider;
    chain
        .provider
        .raw_request(method.into(), params)
        .await
        .map_err(|e| AdapterError::chain(method, e))
}

impl Harness for DevnetWorld {
    fn chains(&self) -> [ChainId; 2] {
        [
            ChainId(self.devnet.chains[0].chain_id),
            ChainId(self.devnet.chains[1].chain_id),
        ]
    }
    fn adapter(&self, chain: ChainId, role: Role) -> Arc<dyn ChainAdapter> {
        self.adapters.get(chain, role)
    }
    fn user(&self) -> &PrivateKeySigner {
        &self.user
    }
    fn attesters(&self) -> &[PrivateKeySigner] {
        &self.attesters
    }
    fn token(&self, chain: ChainId, symbol: &str) -> Address {
        self.node(chain)
            .tokens
            .get(symbol)
            .copied()
            .unwrap_or_default()
    }
    fn settlers(&self, chain: ChainId) -> Settlers {
        self.node(chain).settlers()
    }
    fn mine(&self, chain: ChainId, blocks: u64) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            anvil(self.node(chain), "anvil_mine", json!([blocks])).await?;
            Ok(())
        })
    }
    fn advance_time(&self, chain: ChainId, secs: u64) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            anvil(self.node(chain), "evm_increaseTime", json!([secs])).await?;
            Ok(())
        })
    }
    fn reorg(&self, chain: ChainId, depth: u64) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            anvil(self.node(chain), "anvil_reorg", json!([depth, []])).await?;
            Ok(())
        })
    }
}
