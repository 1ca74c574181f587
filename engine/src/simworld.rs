//! A ready-made two-chain sim world, for tests, benchmarks and demos: USDC on both chains, WETH and
//! a USDC/WETH pool on the destination, the user funded on the origin, the solver's inventory on the
//! destination with its approvals in place, blocks mined in the background, and a snapshot and
//! intents that match it, and three attesters (each with its own view of the chains and its own
//! store) of which any two settle or cancel. Uses anvil's well-known dev keys (user 1, solver 0,
//! attesters 7, 8 and 9).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::attester::Attesters;
use crate::liquidity::{Venue, VenuePool, VenueToken};
use crate::{Db, Engine, EngineConfig, SagaInput, SagaLog};
use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use baton_adapters::devnet::{ATTESTERS, SOLVER, USER, dev_attester_set, dev_signer};
use baton_adapters::follow::{FollowConfig, Followed};
use baton_adapters::port::{ChainAdapter, Fees, Op, TxRequest, TxStatus};
use baton_adapters::sim::{SimChain, SimConfig};
use baton_attester::client::Attest;
use baton_attester::{Attester, AttesterChain};
use baton_planner::spec::{IntentSpec, SnapshotSpec};
use baton_planner::{Amount, ChainId};
use serde_json::json;

/// The origin chain.
pub const ORIGIN: ChainId = ChainId(1001);
/// The destination chain.
pub const DEST: ChainId = ChainId(1002);
const GENESIS: u64 = 1_900_000_000;

/// The world: two sim chains and the accounts on them. Mining stops when it is dropped.
pub struct World {
    /// The origin chain.
    pub origin: SimChain,
    /// The destination chain.
    pub dest: SimChain,
    /// The user (gives USDC on the origin).
    pub user: PrivateKeySigner,
    /// The solver (holds the destination inventory).
    pub solver: PrivateKeySigner,
    /// Who receives outputs.
    pub recipient: Address,
    /// USDC on the origin.
    pub usdc_o: Address,
    /// USDC on the destination.
    pub usdc_d: Address,
    /// WETH on the destination.
    pub weth_d: Address,
    /// The destination's USDC/WETH pool.
    pub pool: Address,
    /// The attesters (dev accounts 7, 8, 9), in process; each reads the chains through adapters
    /// of its own and decides into an in-memory store of its own.
    pub attesters: Vec<Arc<Attester>>,
    /// Set to stop the miner thread.
    stop_mining: Arc<AtomicBool>,
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop_mining.store(true, Ordering::Relaxed);
    }
}

async fn run(adapter: &dyn ChainAdapter, chain: &SimChain, op: Op) {
    let fees = Fees {
        gas_limit: 300_000,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
    };
    let tx = adapter.prepare(TxRequest::new(op, fees)).await.unwrap();
    adapter.broadcast(&tx).await.unwrap();
    chain.mine(1);
    assert!(matches!(adapter.status(&tx, None).await.unwrap(), TxStatus::Included(i) if i.success));
}

impl World {
    /// Builds the world; blocks are mined on both chains every `block_every`.
    pub async fn with_blocks_every(block_every: Duration) -> Self {
        let user = dev_signer(USER);
        let solver = dev_signer(SOLVER);
        let origin = SimChain::new(SimConfig::new(ORIGIN, dev_attester_set(), GENESIS));
        let dest = SimChain::new(SimConfig::new(DEST, dev_attester_set(), GENESIS));
        let usdc_o = origin.add_token("USDC");
        let usdc_d = dest.add_token("USDC");
        let weth_d = dest.add_token("WETH");
        origin.mint(usdc_o, user.address(), units_of(10_000, 6));
        dest.mint(usdc_d, solver.address(), units_of(200_000, 6));
        dest.mint(weth_d, solver.address(), units_of(50, 18));
        let pool = dest.add_pool(
            (usdc_d, units_of(1_000_000, 6)),
            (weth_d, units_of(400, 18)),
            30,
        );

        let user_o = origin.adapter(user.clone());
        run(
            &user_o,
            &origin,
            Op::Approve {
                token: usdc_o,
                spender: origin.settlers().origin,
                amount: U256::MAX,
            },
        )
        .await;
        let solver_d = dest.adapter(solver.clone());
        for token in [usdc_d, weth_d] {
            for spender in [dest.settlers().destination, pool] {
                run(
                    &solver_d,
                    &dest,
                    Op::Approve {
                        token,
                        spender,
                        amount: U256::MAX,
                    },
                )
                .await;
            }
        }
        let (o, d) = (origin.clone(), dest.clone());
        // The chains produce blocks on a thread of their own, as real nodes do elsewhere: on
        // the runtime, a loaded engine would delay its own chains' blocks.
        let stop_mining = Arc::new(AtomicBool::new(false));
        let stop = stop_mining.clone();
        std::thread::Builder::new()
            .name("sim-miner".into())
            .spawn(move || {
                let mut next = std::time::Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    o.mine(1);
                    d.mine(1);
                    next += block_every;
                    let now = std::time::Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    } else {
                        next = now;
                    }
                }
            })
            .expect("spawning the sim miner");
        let mut attesters = Vec::new();
        for k in ATTESTERS {
            let key = dev_signer(k);
            let chains = [&origin, &dest]
                .map(|c| AttesterChain::new(Arc::new(c.adapter(key.clone())), 2))
                .to_vec();
            let attester = Attester::in_memory(key, chains)
                .await
                .expect("an attester's store");
            attesters.push(Arc::new(attester));
        }
        Self {
            origin,
            dest,
            user,
            solver,
            recipient: Address::repeat_byte(0xbe),
            usdc_o,
            usdc_d,
            weth_d,
            pool,
            attesters,
            stop_mining,
        }
    }

    /// Builds the world, mining a block on each chain every 5 ms.
    pub async fn new() -> Self {
        Self::with_blocks_every(Duration::from_millis(5)).await
    }

    /// The solver's adapters on both chains (fresh ones, as a restarted engine would make).
    pub fn solver_adapters(&self) -> Vec<Arc<dyn ChainAdapter>> {
        vec![
            Arc::new(self.origin.adapter(self.solver.clone())),
            Arc::new(self.dest.adapter(self.solver.clone())),
        ]
    }

    /// A snapshot of the world as built (the solver's full inventory).
    pub fn snapshot(&self) -> SnapshotSpec {
        let chain = |c: &SimChain| {
            json!({ "id": c.chain_id().0, "origin_settler": c.settlers().origin,
                    "destination_settler": c.settlers().destination, "gas_price": "1000000000",
                    "block_time_ms": 1000, "finality_blocks": 2 })
        };
        serde_json::from_value(json!({
            "timestamp": self.origin.timestamp(),
            "solver_fee_bps": 5,
            "default_route_latency_secs": 2,
            "chains": [chain(&self.origin), chain(&self.dest)],
            "tokens": [
                { "chain": 1001, "address": self.usdc_o, "symbol": "USDC", "decimals": 6, "native_price": "2500000000" },
                { "chain": 1002, "address": self.usdc_d, "symbol": "USDC", "decimals": 6, "native_price": "2500000000" },
                { "chain": 1002, "address": self.weth_d, "symbol": "WETH", "decimals": 18, "native_price": "1000000000000000000" }
            ],
            "pools": [
                { "chain": 1002, "address": self.pool, "token0": "USDC", "token1": "WETH",
                  "reserve0": units_of(1_000_000, 6).to_string(), "reserve1": units_of(400, 18).to_string(), "fee_bps": 30 }
            ],
            "inventory": [
                { "chain": 1002, "token": "USDC", "amount": units_of(200_000, 6).to_string() },
                { "chain": 1002, "token": "WETH", "amount": units_of(50, 18).to_string() }
            ],
            "routes": [{ "from": 1001, "to": 1002, "latency_secs": 2 }]
        }))
        .unwrap()
    }

    /// What the solver uses on each chain, as a server over this world is configured: the
    /// settlers, the tokens (priced as in [`World::snapshot`]) and the pool.
    pub fn venues(&self) -> Vec<Venue> {
        let token = |symbol: &str, address, decimals, price: U256| VenueToken {
            symbol: symbol.into(),
            address,
            decimals,
            native_price: Some(Amount::new(price)),
        };
        let usdc_price = U256::from(2_500_000_000u64);
        vec![
            Venue {
                chain: ORIGIN,
                settlers: self.origin.settlers(),
                finality_blocks: 2,
                confirmation_tiers: Vec::new(),
                tokens: vec![token("USDC", self.usdc_o, 6, usdc_price)],
                pools: Vec::new(),
            },
            Venue {
                chain: DEST,
                settlers: self.dest.settlers(),
                finality_blocks: 2,
                confirmation_tiers: Vec::new(),
                tokens: vec![
                    token("USDC", self.usdc_d, 6, usdc_price),
                    token("WETH", self.weth_d, 18, units_of(1, 18)),
                ],
                pools: vec![VenuePool {
                    address: self.pool,
                    fee_bps: 30,
                }],
            },
        ]
    }

    /// 1,000 USDC on the origin for at least `min` of `token` ("USDC" or "WETH") on the destination.
    pub fn intent(&self, nonce: u64, token: &str, min: U256) -> IntentSpec {
        self.intent_within(nonce, token, min, 6_000)
    }

    /// Like [`World::intent`], with the fill deadline `fill_in` seconds of chain time ahead.
    pub fn intent_within(&self, nonce: u64, token: &str, min: U256, fill_in: u64) -> IntentSpec {
        let now = self.origin.timestamp();
        serde_json::from_value(json!({
            "user": self.user.address(),
            "nonce": nonce.to_string(),
            "open_deadline": { "at": now + fill_in / 2 },
            "fill_deadline": { "at": now + fill_in },
            "inputs": [{ "chain": 1001, "token": "USDC", "amount": units_of(1_000, 6).to_string() }],
            "outputs": [{ "chain": 1002, "token": token, "min_amount": min.to_string(), "recipient": self.recipient }]
        }))
        .unwrap()
    }

    /// The input for `intent`, with the user's signatures.
    pub fn input(&self, intent: IntentSpec) -> SagaInput {
        let mut input = SagaInput {
            intent,
            snapshot: self.snapshot(),
            config: Default::default(),
            signatures: Vec::new(),
            config_version: None,
        };
        input.sign_as(&self.user).unwrap();
        input
    }

    /// Balances of every account holding tokens: (user, solver, recipient, escrow, pool) per token.
    pub fn balances(&self) -> Vec<(Address, Address, U256)> {
        let holders = [
            self.user.address(),
            self.solver.address(),
            self.recipient,
            self.origin.settlers().origin,
            self.dest.settlers().destination,
            self.pool,
        ];
        let mut out = Vec::new();
        for (chain, token) in [
            (&self.origin, self.usdc_o),
            (&self.dest, self.usdc_d),
            (&self.dest, self.weth_d),
        ] {
            for h in holders {
                out.push((token, h, chain.balance(token, h)));
            }
        }
        out
    }

    /// Sum per token of [`World::balances`].
    pub fn totals(&self) -> Vec<(Address, U256)> {
        let mut totals: Vec<(Address, U256)> = Vec::new();
        for (token, _, amount) in self.balances() {
            match totals.iter_mut().find(|(t, _)| *t == token) {
                Some((_, sum)) => *sum += amount,
                None => totals.push((token, amount)),
            }
        }
        totals
    }

    /// The engine's view of the world's attesters: all three, asked in process.
    pub fn attesters(&self) -> Attesters {
        let members = self
            .attesters
            .iter()
            .map(|a| a.clone() as Arc<dyn Attest>)
            .collect();
        Attesters::new(members, Duration::from_secs(5))
    }

    /// An engine over `db` with the solver's adapters and the world's attesters.
    pub fn engine(&self, db: Db, config: EngineConfig) -> Engine {
        self.engine_followed(db, config, false)
    }

    /// [`World::engine`]; with `followed`, a follower in front of each of the solver's adapters,
    /// as `baton serve` runs them (each follows its chain while the engine holds it).
    pub fn engine_followed(&self, db: Db, config: EngineConfig, followed: bool) -> Engine {
        self.engine_with(db, config, followed, self.attesters())
    }

    /// [`World::engine_followed`], asking `attesters` (some of the world's, or doubles of
    /// attesters that are down or lie) instead of the world's three.
    pub fn engine_with(
        &self,
        db: Db,
        config: EngineConfig,
        followed: bool,
        attesters: Attesters,
    ) -> Engine {
        let follow = FollowConfig {
            poll: Duration::from_millis(2),
            ..FollowConfig::default()
        };
        let mut adapters = self.solver_adapters();
        if followed {
            adapters = adapters
                .into_iter()
                .map(|inner| {
                    let followed = Followed::new(inner, follow);
                    drop(followed.spawn());
                    followed as Arc<dyn ChainAdapter>
                })
                .collect();
        }
        Engine::new(SagaLog::new(db), adapters, attesters, config)
    }
}

/// The engine's knobs for the sim: quick polls.
pub fn fast() -> EngineConfig {
    EngineConfig {
        poll: Duration::from_millis(2),
        instance: "simworld".to_owned(),
        ..EngineConfig::default()
    }
}

/// `whole` tokens of `decimals` decimals, in base units.
pub fn units_of(whole: u64, decimals: u32) -> U256 {
    U256::from(whole) * U256::from(10u64).pow(U256::from(decimals))
}
