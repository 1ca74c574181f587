//! The devnet: anvil nodes on 127.0.0.1 with the fixture contracts deployed and seeded.
//!
//! [`Devnet::start`] starts one anvil node per chain (free ports chosen by the OS, chain ids 1001,
//! 1002, …), deploys USDC (6 decimals), WETH and DAI (18) test tokens, USDC/WETH, DAI/WETH and
//! USDC/DAI pools (0.3 %), an origin and a destination settler, and mints to the user and the
//! solver. Dropping the [`Devnet`] stops every node (also when a test panics).
//!
//! Accounts are anvil's well-known dev accounts: 0 deploys and is the solver, 1 is the user, 6 owns
//! the origin settlers, 7, 8 and 9 are the attesters (any 2 of them settle or cancel an order).
//! Their keys are public test keys, never secrets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::http::reqwest::Url;

use crate::contracts::{DestinationSettler, OriginSettler, Pool, TestToken};
use crate::error::{AdapterError, Result};

/// The first devnet chain id; chain `k` (from 0) has id `FIRST_CHAIN_ID + k`.
pub const FIRST_CHAIN_ID: u64 = 1001;
/// Dev account index of the solver (and deployer).
pub const SOLVER: usize = 0;
/// Dev account index of the user.
pub const USER: usize = 1;
/// Dev account index of the origin settlers' owner (who may change their attester set).
pub const SETTLER_OWNER: usize = 6;
/// Dev account indices of the devnet's attesters.
pub const ATTESTERS: [usize; 3] = [7, 8, 9];
/// How many of [`ATTESTERS`] settle or cancel an order.
pub const ATTESTER_THRESHOLD: usize = 2;
/// Seconds after an order's fill deadline before anyone may `refund` it on the devnet's origin
/// settlers (the attesters' time to attest a fill made by the deadline, and the solver's to settle).
pub const SETTLE_WINDOW_SECS: u32 = 60;

/// The devnet settlers' attester set: [`ATTESTERS`] with [`ATTESTER_THRESHOLD`].
pub fn dev_attester_set() -> crate::attestation::AttesterSet {
    crate::attestation::AttesterSet {
        members: ATTESTERS.iter().map(|&k| dev_signer(k).address()).collect(),
        threshold: ATTESTER_THRESHOLD,
    }
}

/// Finds the anvil binary: `$BATON_ANVIL` when set (and nothing else then), then `PATH`, then
/// `node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil`
/// in the current directory or any ancestor (the repository root after `npm ci`).
pub fn find_anvil() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("BATON_ANVIL").map(PathBuf::from) {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(AdapterError::AnvilNotFound)
        };
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

/// The private keys of anvil's ten well-known dev accounts (its default mnemonic). Public test keys:
/// they hold funds only on local devnets and may appear in devnet files.
pub const DEV_KEYS: [&str; 10] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
];

/// Dev account `k`'s signer (`k` < 10).
pub fn dev_signer(k: usize) -> PrivateKeySigner {
    DEV_KEYS[k % DEV_KEYS.len()]
        .parse()
        .expect("the dev keys are valid private keys")
}

/// How a devnet node lives: stopped with the [`Devnet`] (tests), or left running for
/// `baton devnet down` (the CLI).
enum Node {
    Guarded(AnvilInstance),
    Detached(Child),
}

/// One devnet chain: its node, a provider that signs as the solver, and the deployed contracts.
pub struct DevnetChain {
    node: Node,
    rpc_url: Url,
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
    /// Settler pairs deployed since ([`DevnetChain::deploy_settlers`]): a settler upgrade's.
    pub other_settlers: Vec<crate::abi::Settlers>,
}

impl DevnetChain {
    /// Deploys another settler pair on the chain, with the devnet's attester set, as a settler
    /// upgrade would; records it in [`DevnetChain::other_settlers`] and answers it.
    pub async fn deploy_settlers(&mut self) -> Result<crate::abi::Settlers> {
        let settlers = deploy_settlers(&self.provider).await?;
        self.other_settlers.push(settlers);
        Ok(settlers)
    }

    fn new(node: Node, rpc_url: Url, chain_id: u64, c: Contracts) -> Self {
        let provider = provider(&rpc_url, SOLVER);
        Self {
            node,
            rpc_url,
            provider,
            chain_id,
            tokens: c.tokens,
            pools: c.pools,
            origin_settler: c.origin_settler,
            destination_settler: c.destination_settler,
            other_settlers: Vec::new(),
        }
    }

    /// The node's RPC URL.
    pub fn rpc_url(&self) -> &Url {
        &self.rpc_url
    }

    /// Dev account `k`'s signer.
    pub fn signer(&self, k: usize) -> PrivateKeySigner {
        dev_signer(k)
    }

    /// Dev account `k`'s address.
    pub fn account(&self, k: usize) -> Address {
        dev_signer(k).address()
    }

    /// A provider that signs as dev account `k`.
    pub fn provider_as(&self, k: usize) -> DynProvider {
        provider(&self.rpc_url, k)
    }

    /// The chain's settler contracts.
    pub fn settlers(&self) -> crate::abi::Settlers {
        crate::abi::Settlers {
            origin: self.origin_settler,
            destination: self.destination_settler,
        }
    }

    /// An [`crate::evm::EvmAdapter`] acting as dev account `k`, with the default configuration.
    pub fn adapter(&self, k: usize) -> Result<crate::evm::EvmAdapter> {
        crate::evm::EvmAdapter::new(
            crate::evm::EvmConfig::new(
                baton_planner::ChainId(self.chain_id),
                self.rpc_url().clone(),
                self.settlers(),
            ),
            self.signer(k),
        )
    }

    /// The node's process id, when it was started detached.
    pub fn pid(&self) -> Option<u32> {
        match &self.node {
            Node::Guarded(_) => None,
            Node::Detached(child) => Some(child.id()),
        }
    }

    /// The keys anvil reported at start (guarded nodes only).
    pub fn reported_keys(&self) -> Option<Vec<PrivateKeySigner>> {
        match &self.node {
            Node::Guarded(n) => Some(
                n.keys()
                    .iter()
                    .cloned()
                    .map(PrivateKeySigner::from)
                    .collect(),
            ),
            Node::Detached(_) => None,
        }
    }
}

fn provider(url: &Url, k: usize) -> DynProvider {
    ProviderBuilder::new()
        .wallet(EthereumWallet::from(dev_signer(k)))
        .connect_http(url.clone())
        .erased()
}

/// Running devnet chains; dropping it stops the guarded ones.
pub struct Devnet {
    /// The chains, in chain-id order.
    pub chains: Vec<DevnetChain>,
}

/// Token amounts minted to the user and the solver, in whole tokens.
const MINT: u64 = 10_000_000;

impl Devnet {
    /// Starts `chains` anvil nodes on free ports (automine when `block_time` is `None`), deploys and
    /// seeds the fixture contracts on each. The nodes stop when the `Devnet` is dropped.
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
            let url = node.endpoint_url();
            let contracts = deploy(&url).await?;
            out.push(DevnetChain::new(
                Node::Guarded(node),
                url,
                chain_id,
                contracts,
            ));
        }
        Ok(Self { chains: out })
    }

    /// Like [`Devnet::start`], but the nodes keep running after this process exits (for
    /// `baton devnet up`); stop them with [`stop_detached`]. If deploying fails, the nodes started so
    /// far are stopped.
    pub async fn start_detached(chains: usize, block_time: Option<u64>) -> Result<Self> {
        let anvil = find_anvil()?;
        let mut out: Vec<DevnetChain> = Vec::with_capacity(chains);
        for k in 0..chains {
            match start_one_detached(&anvil, FIRST_CHAIN_ID + k as u64, block_time).await {
                Ok(chain) => out.push(chain),
                Err(e) => {
                    stop_detached(out.iter().filter_map(DevnetChain::pid));
                    return Err(e);
                }
            }
        }
        Ok(Self { chains: out })
    }
}

/// Starts one detached node and deploys onto it; stops the node again if deploying fails.
async fn start_one_detached(
    anvil: &Path,
    chain_id: u64,
    block_time: Option<u64>,
) -> Result<DevnetChain> {
    let (child, url) = spawn_detached(anvil, chain_id, block_time).await?;
    match deploy(&url).await {
        Ok(contracts) => Ok(DevnetChain::new(
            Node::Detached(child),
            url,
            chain_id,
            contracts,
        )),
        Err(e) => {
            stop_detached([child.id()]);
            Err(e)
        }
    }
}

/// Starts anvil on a free port without tying its life to this process, and waits until it answers.
async fn spawn_detached(
    anvil: &Path,
    chain_id: u64,
    block_time: Option<u64>,
) -> Result<(Child, Url)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| AdapterError::AnvilStart(format!("no free port: {e}")))?
        .port();
    let mut cmd = Command::new(anvil);
    cmd.args([
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--chain-id",
        &chain_id.to_string(),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if let Some(secs) = block_time {
        cmd.args(["--block-time", &secs.to_string()]);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| AdapterError::AnvilStart(e.to_string()))?;
    let url: Url = format!("http://127.0.0.1:{port}")
        .parse()
        .map_err(|e| AdapterError::AnvilStart(format!("{e}")))?;
    let probe = ProviderBuilder::new().connect_http(url.clone());
    for _ in 0..100 {
        if probe.get_chain_id().await.is_ok() {
            return Ok((child, url));
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(AdapterError::AnvilStart(format!(
                "anvil exited at start ({status}); is port {port} taken?"
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    Err(AdapterError::AnvilStart(
        "anvil did not answer within 5 s".into(),
    ))
}

/// Stops detached devnet nodes by process id: SIGTERM, then SIGKILL if a node is still there after
/// 5 s. A pid that no longer belongs to an anvil process (the node died and the pid was reused) is
/// left alone. Returns once every node is gone.
pub fn stop_detached(pids: impl IntoIterator<Item = u32>) {
    stop_processes(pids, "anvil");
}

/// Stops processes by id whose command line contains `marker` (others — a pid reused since — are
/// left alone): SIGTERM, then SIGKILL after 5 s. Returns once every one is gone.
pub fn stop_processes(pids: impl IntoIterator<Item = u32>, marker: &str) {
    let is_it = |pid: u32| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(marker))
            .unwrap_or(false)
    };
    let signal = |sig: &str, pid: u32| {
        let _ = Command::new("kill")
            .args([sig, &pid.to_string()])
            .stderr(Stdio::null())
            .status();
    };
    let pids: Vec<u32> = pids.into_iter().filter(|p| is_it(*p)).collect();
    for pid in &pids {
        signal("-TERM", *pid);
    }
    for _ in 0..100 {
        if !pids.iter().any(|p| is_it(*p)) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for pid in pids.into_iter().filter(|p| is_it(*p)) {
        signal("-KILL", pid);
    }
}

/// Maps a failed deployment or call to what failed.
fn fail(what: &'static str) -> impl Fn(alloy::contract::Error) -> AdapterError {
    move |e| AdapterError::chain(what, e)
}

async fn deploy(rpc_url: &Url) -> Result<Contracts> {
    let provider = provider(rpc_url, SOLVER);
    let mut tokens = BTreeMap::new();
    for (symbol, decimals) in TOKENS {
        let token = TestToken::deploy(&provider, symbol.to_string(), symbol.to_string(), decimals)
            .await
            .map_err(fail("deploying a test token"))?;
        for account in [dev_signer(SOLVER).address(), dev_signer(USER).address()] {
            send(
                token.mint(account, units(symbol, MINT)).send().await,
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
        for symbol in [a, b] {
            let token = TestToken::new(tokens[symbol], &provider);
            send(
                token.approve(*pool.address(), U256::MAX).send().await,
                "approving a pool",
            )
            .await?;
        }
        send(
            pool.addLiquidity(units(a, ra), units(b, rb)).send().await,
            "seeding a pool",
        )
        .await?;
        pools.insert(format!("{a}/{b}"), *pool.address());
    }
    let settlers = deploy_settlers(&provider).await?;
    Ok(Contracts {
        tokens,
        pools,
        origin_settler: settlers.origin,
        destination_settler: settlers.destination,
    })
}

/// Deploys a settler pair on the devnet chain at `rpc_url`, as the solver (dev account 0): an
/// origin settler owned by the settler owner with the devnet's attester set, and a destination
/// settler (`baton devnet settlers`: a settler upgrade's new pair).
pub async fn deploy_settler_pair(rpc_url: &Url) -> Result<crate::abi::Settlers> {
    deploy_settlers(&provider(rpc_url, SOLVER)).await
}

/// Deploys a settler pair through `provider`: an origin settler owned by the settler owner with
/// the devnet's attester set, and a destination settler.
async fn deploy_settlers(provider: &DynProvider) -> Result<crate::abi::Settlers> {
    let set = dev_attester_set();
    let origin = *OriginSettler::deploy(
        provider,
        dev_signer(SETTLER_OWNER).address(),
        set.members,
        U256::from(set.threshold),
        SETTLE_WINDOW_SECS,
    )
    .await
    .map_err(fail("deploying the origin settler"))?
    .address();
    let destination = *DestinationSettler::deploy(provider)
        .await
        .map_err(fail("deploying the destination settler"))?
        .address();
    Ok(crate::abi::Settlers {
        origin,
        destination,
    })
}

/// The test tokens every devnet chain gets, with their decimals.
pub const TOKENS: [(&str, u8); 3] = [("USDC", 6), ("WETH", 18), ("DAI", 18)];

/// `whole` tokens of `symbol` in base units.
fn units(symbol: &str, whole: u64) -> U256 {
    let decimals = TOKENS
        .iter()
        .find(|(s, _)| *s == symbol)
        .map_or(18, |(_, d)| *d);
    U256::from(whole) * U256::from(10u64).pow(U256::from(decimals))
}

/// What [`deploy`] put on a chain.
struct Contracts {
    tokens: BTreeMap<String, Address>,
    pools: BTreeMap<String, Address>,
    origin_settler: Address,
    destination_settler: Address,
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

/// The devnet file `baton devnet up` writes and `serve`, tests and replay read: chain ids, RPC URLs,
/// contract and token addresses, and the dev accounts (private keys only for anvil's well-known dev
/// accounts).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevnetFile {
    /// The chains.
    pub chains: Vec<DevnetFileChain>,
    /// Role → dev account.
    pub accounts: BTreeMap<String, DevAccount>,
    /// The attesters serving this devnet (`baton devnet up` starts them; empty when none is
    /// running yet).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attesters: Vec<DevnetAttester>,
}

/// An attester serving a devnet.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevnetAttester {
    /// Its HTTP API.
    pub url: String,
    /// Its address (a member of the origin settlers' sets).
    pub address: Address,
    /// Its process, when started detached.
    pub pid: Option<u32>,
}

impl DevnetFileChain {
    /// The chain's settlers.
    pub fn settlers(&self) -> crate::abi::Settlers {
        crate::abi::Settlers {
            origin: self.origin_settler,
            destination: self.destination_settler,
        }
    }

    /// Every settler pair an attester of the devnet trusts on the chain: its settlers, then the
    /// others.
    pub fn trusted_settlers(&self) -> Vec<crate::abi::Settlers> {
        std::iter::once(self.settlers())
            .chain(self.other_settlers.iter().copied())
            .collect()
    }
}

/// One chain in a devnet file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevnetFileChain {
    /// Chain id.
    pub chain_id: u64,
    /// JSON-RPC URL on 127.0.0.1.
    pub rpc_url: String,
    /// The anvil process, when started detached.
    pub pid: Option<u32>,
    /// Tokens by symbol.
    pub tokens: BTreeMap<String, Address>,
    /// Pools by "A/B".
    pub pools: BTreeMap<String, Address>,
    /// ERC-7683 origin settler.
    pub origin_settler: Address,
    /// ERC-7683 destination settler.
    pub destination_settler: Address,
    /// Other settler pairs deployed on the chain (`baton devnet settlers`), with the same
    /// attester set: a settler upgrade's new pair. The devnet's attesters trust them too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_settlers: Vec<crate::abi::Settlers>,
}

/// A dev account in a devnet file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevAccount {
    /// Its index among anvil's dev accounts.
    pub index: usize,
    /// Its address.
    pub address: Address,
    /// Its private key: anvil's public test key, never a real secret.
    pub dev_private_key: String,
}

impl Devnet {
    /// The devnet file describing these chains.
    pub fn file(&self) -> DevnetFile {
        let accounts = [
            ("solver", SOLVER),
            ("user", USER),
            ("settler-owner", SETTLER_OWNER),
            ("attester-1", ATTESTERS[0]),
            ("attester-2", ATTESTERS[1]),
            ("attester-3", ATTESTERS[2]),
        ]
        .into_iter()
        .map(|(role, k)| {
            let account = DevAccount {
                index: k,
                address: dev_signer(k).address(),
                dev_private_key: DEV_KEYS[k].into(),
            };
            (role.to_string(), account)
        })
        .collect();
        let chains = self
            .chains
            .iter()
            .map(|c| DevnetFileChain {
                chain_id: c.chain_id,
                rpc_url: c.rpc_url.to_string(),
                pid: c.pid(),
                tokens: c.tokens.clone(),
                pools: c.pools.clone(),
                origin_settler: c.origin_settler,
                destination_settler: c.destination_settler,
                other_settlers: c.other_settlers.clone(),
            })
            .collect();
        DevnetFile {
            chains,
            accounts,
            attesters: Vec::new(),
        }
    }
}
