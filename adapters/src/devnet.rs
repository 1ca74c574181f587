//! The devnet: anvil nodes on 127.0.0.1 with the fixture contracts deployed and seeded.
//!
//! [`Devnet::start`] starts one anvil node per chain (free ports chosen by the OS, chain ids 1001,
//! 1002, …), deploys USDC (6 decimals), WETH and DAI (18) test tokens, USDC/WETH, DAI/WETH and
//! USDC/DAI pools (0.3 %), an origin and a destination settler, and mints to the user and the
//! solver. Dropping the [`Devnet`] stops every node (also when a test panics).
//!
//! Accounts are anvil's well-known dev accounts: 0 deploys and is the solver, 1 is the user, 9 is the
//! attester. Their keys are public test keys, never secrets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;

use crate::contracts::{DestinationSettler, OriginSettler, Pool, TestToken};
use crate::error::{AdapterError, Result};

/// The first devnet chain id; chain `k` (from 0) has id `FIRST_CHAIN_ID + k`.
pub const FIRST_CHAIN_ID: u64 = 1001;
/// Dev account index of the solver (and deployer).
pub const SOLVER: usize = 0;
/// Dev account index of the user.
pub const USER: usize = 1;
/// Dev account index of the attester.
pub const ATTESTER: usize = 9;

/// Finds the anvil binary: `$BATON_ANVIL`, then `PATH`, then `node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil`
/// in the current directory or any ancestor (the repository root after `npm ci`).
pub fn find_anvil() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("BATON_ANVIL")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
    {
        return Ok(p);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("anvil"))
            .find(|p| p.is_file())
    });
    if let Some(p) = on_path {
        return Ok(p);
    }
    let bundled = Path::new("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    let starts = [
        std::env::current_dir().ok(),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
    ];
    starts
        .into_iter()
        .flatten()
        .flat_map(|start| {
            start
                .ancestors()
                .map(|d| d.join(bundled))
                .collect::<Vec<_>>()
        })
        .find(|p| p.is_file())
        .ok_or(AdapterError::AnvilNotFound)
}

/// One devnet chain: its node, a provider that signs as the solver, and the deployed contracts.
pub struct DevnetChain {
    node: AnvilInstance,
    /// The solver's provider (dev account 0).
    pub provider: DynProvider,
    /// Chain id.
    pub chain_id: u64,
    /// Tokens by symbol.
    pub tokens: BTreeMap<String, Address>,
    /// Pools by "A/B" symbol pair.
    pub pools: BTreeMap<String, Address>,
    /// The ERC-7683 origin settler.
    pub origin_settler: Address,
    /// The ERC-7683 destination settler.
    pub destination_settler: Address,
}

impl DevnetChain {
    /// The node's RPC URL.
    pub fn rpc_url(&self) -> String {
        self.node.endpoint()
    }

    /// Dev account `k`'s signer.
    pub fn signer(&self, k: usize) -> PrivateKeySigner {
        PrivateKeySigner::from(self.node.keys()[k].clone())
    }

    /// Dev account `k`'s address.
    pub fn account(&self, k: usize) -> Address {
        self.node.addresses()[k]
    }

    /// A provider that signs as dev account `k`.
    pub fn provider_as(&self, k: usize) -> DynProvider {
        let wallet = EthereumWallet::from(self.signer(k));
        ProviderBuilder::new()
            .wallet(wallet)
            .connect_http(self.node.endpoint_url())
            .erased()
    }
}

/// Running devnet chains; dropping it stops them.
pub struct Devnet {
    /// The chains, in chain-id order.
    pub chains: Vec<DevnetChain>,
}

/// Token amounts minted and seeded, in whole tokens.
const MINT: u64 = 10_000_000;

impl Devnet {
    /// Starts `chains` anvil nodes (automine when `block_time` is `None`) and deploys and seeds the
    /// fixture contracts on each.
    pub async fn start(chains: usize, block_time: Option<u64>) -> Result<Self> {
        let anvil = find_anvil()?;
        let mut out = Vec::with_capacity(chains);
        for k in 0..chains {
            let chain_id = FIRST_CHAIN_ID + k as u64;
            let mut builder = Anvil::at(&anvil)
                .port(0u16)
                .chain_id(chain_id)
                .arg("--host")
                .arg("127.0.0.1");
            if let Some(secs) = block_time {
                builder = builder.block_time(secs);
            }
            let node = builder
                .try_spawn()
                .map_err(|e| AdapterError::AnvilStart(e.to_string()))?;
            out.push(deploy(node, chain_id).await?);
        }
        Ok(Self { chains: out })
    }
}

async fn deploy(node: AnvilInstance, chain_id: u64) -> Result<DevnetChain> {
    let solver = PrivateKeySigner::from(node.keys()[SOLVER].clone());
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(solver))
        .connect_http(node.endpoint_url())
        .erased();
    let fail = |what: &str| {
        let what = what.to_string();
        move |e: alloy::contract::Error| AdapterError::chain(what, e)
    };
    let mut tokens = BTreeMap::new();
    for (symbol, decimals) in [("USDC", 6u8), ("WETH", 18), ("DAI", 18)] {
        let token = TestToken::deploy(&provider, symbol.to_string(), symbol.to_string(), decimals)
            .await
            .map_err(fail("deploying a test token"))?;
        let unit = U256::from(10u64).pow(U256::from(decimals));
        for account in [node.addresses()[SOLVER], node.addresses()[USER]] {
            send(
                token.mint(account, U256::from(MINT) * unit).send().await,
                "minting",
            )
            .await?;
        }
        tokens.insert(symbol.to_string(), *token.address());
    }
    let mut pools = BTreeMap::new();
    // Prices: 2,500 USDC = 2,500 DAI = 1 WETH.
    let seeds = [
        ("USDC", "WETH", 1_000_000u64, 400u64),
        ("DAI", "WETH", 500_000, 200),
        ("USDC", "DAI", 500_000, 500_000),
    ];
    for (a, b, ra, rb) in seeds {
        let pool = Pool::deploy(&provider, tokens[a], tokens[b], U256::from(30u8))
            .await
            .map_err(fail("deploying a pool"))?;
        let amount = |symbol: &str, whole: u64| {
            let decimals = if symbol == "USDC" { 6u8 } else { 18 };
            U256::from(whole) * U256::from(10u64).pow(U256::from(decimals))
        };
        for symbol in [a, b] {
            let token = TestToken::new(tokens[symbol], &provider);
            send(
                token.approve(*pool.address(), U256::MAX).send().await,
                "approving a pool",
            )
            .await?;
        }
        send(
            pool.addLiquidity(amount(a, ra), amount(b, rb)).send().await,
            "seeding a pool",
        )
        .await?;
        pools.insert(format!("{a}/{b}"), *pool.address());
    }
    let origin_settler = *OriginSettler::deploy(&provider, node.addresses()[ATTESTER])
        .await
        .map_err(fail("deploying the origin settler"))?
        .address();
    let destination_settler = *DestinationSettler::deploy(&provider)
        .await
        .map_err(fail("deploying the destination settler"))?
        .address();
    Ok(DevnetChain {
        provider,
        chain_id,
        tokens,
        pools,
        origin_settler,
        destination_settler,
        node,
    })
}

/// Waits for a sent transaction's receipt and requires success.
pub async fn send<N: alloy::network::Network>(
    pending: std::result::Result<
        alloy::providers::PendingTransactionBuilder<N>,
        alloy::contract::Error,
    >,
    what: &str,
) -> Result<N::ReceiptResponse> {
    use alloy::network::ReceiptResponse;
    let receipt = pending
        .map_err(|e| AdapterError::chain(what, e))?
        .get_receipt()
        .await
        .map_err(|e| AdapterError::chain(what, e))?;
    if !receipt.status() {
        return Err(AdapterError::chain(what, "the transaction reverted"));
    }
    Ok(receipt)
}
