//! `sim`: an in-memory EVM-like chain for fast, deterministic tests, with fault injection.
//!
//! The sim takes the same signed EIP-1559 transactions as a node (same raw bytes, same hashes) and
//! executes their calldata against Rust models of the fixture contracts — `TestToken`, `Pool`,
//! `OriginSettler`, `DestinationSettler` — with the same checks, the same revert reasons and the same
//! events, so [`crate::conformance`] holds for it exactly as for anvil. Blocks are produced only when
//! [`SimChain::mine`] is called; time moves with blocks (`block_time_secs`) and
//! [`SimChain::advance_time`]. Nothing depends on the wall clock or on scheduling.
//!
//! Faults, all deterministic (the RPC failures are drawn from a generator seeded by
//! [`SimConfig::seed`]): [`SimChain::revert_next`] (the next transaction of an op kind reverts),
//! [`SimChain::drop_next`] (the next broadcast of a kind is accepted and lost) and
//! [`SimChain::drop_tx`], [`SimChain::stall`] (block production stops for N `mine` calls),
//! [`SimChain::reorg`] (the last N blocks are replaced; their transactions leave the chain),
//! [`SimChain::spike_base_fee`], and [`SimChain::fail_rpc_fraction`].
//!
//! Not modelled: native ether and gas payment (gas used is a fixed figure per op), EIP-1559 base fee
//! dynamics (the base fee is constant unless spiked), block gas limits, and contracts other than the
//! fixtures' (a call to any other address reverts with `sim: no contract at …`), token `permit`.

mod adapter;
mod exec;
mod world;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use baton_planner::ChainId;

use crate::abi::Settlers;
use crate::error::{AdapterError, Result};
use crate::port::BlockRef;

pub use adapter::SimAdapter;
use exec::{PoolState, State};
use world::{SimBlock, World};

/// How many past blocks' states the sim keeps: the deepest reorg it can make.
pub const MAX_REORG: usize = 64;

/// A sim chain's parameters.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Chain id.
    pub chain: ChainId,
    /// Timestamp of the genesis block, unix seconds.
    pub genesis_time: u64,
    /// Seconds between blocks.
    pub block_time_secs: u64,
    /// Base fee of every block unless spiked, wei per gas.
    pub base_fee: u128,
    /// Blocks behind the head at which a block is final.
    pub finality_depth: u64,
    /// The origin settler's attester set and threshold.
    pub attesters: crate::attestation::AttesterSet,
    /// Seconds after an order's fill deadline before its origin settler's `refund` opens.
    pub settle_window_secs: u64,
    /// Seed of the fault generator.
    pub seed: u64,
}

impl SimConfig {
    /// A chain with 1 s blocks, a 1 gwei base fee, finality at 2 blocks, genesis at `genesis_time`,
    /// whose origin settler accepts a quorum of `attesters` and opens `refund` the devnet's
    /// settlement window after a fill deadline.
    pub fn new(
        chain: ChainId,
        attesters: crate::attestation::AttesterSet,
        genesis_time: u64,
    ) -> Self {
        Self {
            chain,
            genesis_time,
            block_time_secs: 1,
            base_fee: 1_000_000_000,
            finality_depth: 2,
            attesters,
            settle_window_secs: u64::from(crate::devnet::SETTLE_WINDOW_SECS),
            seed: chain.0,
        }
    }
}

/// One simulated chain, shared by every account's [`SimAdapter`] on it. Cheap to clone.
#[derive(Clone)]
pub struct SimChain {
    world: Arc<Mutex<World>>,
    chain: ChainId,
    /// The head after every change (a block, a reorg): the sim's `newHeads` feed.
    heads: Arc<tokio::sync::watch::Sender<BlockRef>>,
}

fn derive_address(chain: ChainId, label: &str) -> Address {
    let mut pre = b"baton-sim".to_vec();
    pre.extend_from_slice(&chain.0.to_be_bytes());
    pre.extend_from_slice(label.as_bytes());
    Address::from_word(keccak256(pre))
}

impl SimChain {
    /// A chain with its genesis block, settlers and executor deployed, and no tokens.
    pub fn new(config: SimConfig) -> Self {
        let chain = config.chain;
        let genesis = SimBlock {
            number: 0,
            hash: keccak256([b"baton-sim genesis".as_slice(), &chain.0.to_be_bytes()].concat()),
            timestamp: config.genesis_time,
            base_fee: config.base_fee,
            txs: Vec::new(),
        };
        let world = World {
            settlers: Settlers {
                origin: derive_address(chain, "OriginSettler"),
                destination: derive_address(chain, "DestinationSettler"),
            },
            executor: derive_address(chain, "CallExecutor"),
            tokens: HashSet::new(),
            state: State::default(),
            blocks: vec![genesis],
            states: vec![State::default()],
            receipts: HashMap::new(),
            mempool: BTreeMap::new(),
            pending: HashMap::new(),
            events: HashMap::new(),
            time_jump: 0,
            fork: 0,
            stall: 0,
            spike: None,
            revert_next: Vec::new(),
            drop_next: Vec::new(),
            rpc_failure: 0.0,
            lag: None,
            rng: fastrand::Rng::with_seed(config.seed),
            rpc_calls: 0,
            rpc_errors: 0,
            config,
        };
        let head = world.head_ref();
        Self {
            world: Arc::new(Mutex::new(world)),
            chain,
            heads: Arc::new(tokio::sync::watch::Sender::new(head)),
        }
    }

    /// Announces `w`'s head on the feed when it changed.
    fn announce(&self, w: &World) {
        let head = w.head_ref();
        self.heads.send_if_modified(|h| {
            let changed = *h != head;
            *h = head;
            changed
        });
    }

    /// A feed of the chain's head, as a node's `newHeads` subscription.
    pub fn new_heads(&self) -> tokio::sync::watch::Receiver<BlockRef> {
        self.heads.subscribe()
    }

    fn world(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock leaves the world as it was before that call's mutation at
        // worst; tests keep going with it.
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the head state (setup only: minting, pools), in the latest kept state too.
    fn setup(&self, f: impl Fn(&mut State)) {
        let mut w = self.world();
        f(&mut w.state);
        if let Some(last) = w.states.last_mut() {
            f(last);
        }
    }

    /// The chain id.
    pub fn chain_id(&self) -> ChainId {
        self.chain
    }

    /// The settler contracts' addresses.
    pub fn settlers(&self) -> Settlers {
        self.world().settlers
    }

    /// The destination settler's call executor (a recipient for outputs with calls).
    pub fn executor(&self) -> Address {
        self.world().executor
    }

    /// Deploys a token; its address depends only on the chain and `symbol`.
    pub fn add_token(&self, symbol: &str) -> Address {
        let token = derive_address(self.chain, &format!("TestToken:{symbol}"));
        self.world().tokens.insert(token);
        token
    }

    /// Mints `amount` of `token` to `to`.
    pub fn mint(&self, token: Address, to: Address, amount: U256) {
        self.setup(|s| *s.balances.entry((token, to)).or_default() += amount);
    }

    /// `owner`'s balance of `token` at the head, read directly (no RPC, no injected failure): for
    /// tests that inspect the chain.
    pub fn balance(&self, token: Address, owner: Address) -> U256 {
        self.world().state.balance(token, owner)
    }

    /// The next nonce of `account` at the head (transactions it has had included), read directly.
    pub fn nonce(&self, account: Address) -> u64 {
        self.world().state.nonce(account)
    }

    /// Deploys a pool of `token0`/`token1` holding the given reserves, with a `fee_bps` fee.
    pub fn add_pool(
        &self,
        (token0, reserve0): (Address, U256),
        (token1, reserve1): (Address, U256),
        fee_bps: u16,
    ) -> Address {
        let pool = derive_address(self.chain, &format!("Pool:{token0}:{token1}"));
        self.setup(|s| {
            s.pools.insert(
                pool,
                PoolState {
                    token0,
                    token1,
                    reserve0,
                    reserve1,
                    fee_bps: U256::from(fee_bps),
                },
            );
            *s.balances.entry((token0, pool)).or_default() += reserve0;
            *s.balances.entry((token1, pool)).or_default() += reserve1;
        });
        pool
    }

    /// An adapter acting as `signer` on this chain.
    pub fn adapter(&self, signer: PrivateKeySigner) -> SimAdapter {
        SimAdapter {
            chain: self.clone(),
            signer,
            nonces: crate::nonce::NonceCounter::default(),
        }
    }

    /// Produces `blocks` blocks (fewer while stalled), including what the mempool allows.
    pub fn mine(&self, blocks: u64) {
        let mut w = self.world();
        for _ in 0..blocks {
            w.mine_one();
        }
        self.announce(&w);
    }

    /// Moves the next block's timestamp `secs` further ahead.
    pub fn advance_time(&self, secs: u64) {
        self.world().time_jump += secs;
    }

    /// The timestamp of the latest block.
    pub fn timestamp(&self) -> u64 {
        self.world().head().timestamp
    }

    /// The next transaction of op kind `kind` (see [`crate::port::Op::kind`]) to execute reverts
    /// with `sim: injected revert: {reason}`.
    pub fn revert_next(&self, kind: &str, reason: &str) {
        self.world()
            .revert_next
            .push((kind.to_owned(), reason.to_owned()));
    }

    /// The next broadcast of op kind `kind` is accepted and then lost (its status is `Dropped`).
    pub fn drop_next(&self, kind: &str) {
        self.world().drop_next.push(kind.to_owned());
    }

    /// Evicts a pending transaction from the mempool (as `anvil_dropTransaction`).
    pub fn drop_tx(&self, hash: B256) {
        let mut w = self.world();
        if let Some(key) = w.pending.remove(&hash) {
            w.mempool.remove(&key);
        }
    }

    /// The next `mine` calls produce no block, `blocks` of them.
    pub fn stall(&self, blocks: u64) {
        self.world().stall = blocks;
    }

    /// The next `blocks` blocks have base fee `fee`.
    pub fn spike_base_fee(&self, fee: u128, blocks: u64) {
        self.world().spike = Some((fee, blocks));
    }

    /// Every `every`-th receipt read or broadcast is answered as a node `blocks` behind the head
    /// would, as when several nodes of uneven heads serve one RPC URL: a transaction included in
    /// the last `blocks` blocks is not found (and sending it again is refused for its nonce).
    /// `every` 0 stops it.
    pub fn lag_receipts(&self, every: u64, blocks: u64) {
        self.world().lag = (every > 0).then_some((every, blocks, 0));
    }

    /// RPC calls made to this chain so far, by every adapter on it.
    pub fn rpc_calls(&self) -> u64 {
        self.world().rpc_calls
    }

    /// Each RPC call fails with this probability (drawn from the seeded generator).
    pub fn fail_rpc_fraction(&self, fraction: f64) {
        self.world().rpc_failure = fraction.clamp(0.0, 1.0);
    }

    /// Replaces the last `depth` blocks with as many new empty ones (new hashes); the transactions
    /// of the removed blocks leave the chain and the mempool, as with `anvil_reorg`.
    pub fn reorg(&self, depth: u64) -> Result<()> {
        let mut w = self.world();
        let depth_usize = usize::try_from(depth).unwrap_or(usize::MAX);
        if depth_usize > MAX_REORG || depth_usize >= w.blocks.len() {
            return Err(AdapterError::rejected(
                "reorg",
                format!("cannot reorg {depth} blocks (at most {MAX_REORG}, and not the genesis)"),
            ));
        }
        let keep = w.blocks.len() - depth_usize;
        let removed: Vec<SimBlock> = w.blocks.drain(keep..).collect();
        let states_keep = w.states.len() - depth_usize;
        w.states.truncate(states_keep);
        w.state = w.states.last().cloned().unwrap_or_default();
        for block in &removed {
            for tx in &block.txs {
                if let Some(receipt) = w.receipts.remove(tx) {
                    for log in &receipt.logs {
                        if let Some(order) = log.data.topics().get(1)
                            && let Some(list) = w.events.get_mut(order)
                        {
                            list.retain(|(_, at)| at.tx != *tx);
                        }
                    }
                }
            }
        }
        w.fork += 1;
        let stall = std::mem::take(&mut w.stall);
        for _ in 0..depth {
            w.mine_one();
        }
        w.stall = stall;
        self.announce(&w);
        Ok(())
    }
}
