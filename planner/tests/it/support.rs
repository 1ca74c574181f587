//! A small builder for liquidity worlds and intents, so scenarios read like their story.

use alloy::primitives::{Address, U256, keccak256};
use baton_planner::{
    Amount, Asset, ChainConditions, ChainId, Input, Intent, LiquidityGraph, LiquiditySnapshot,
    Output, Plan, PlannerConfig, Pool, Result, TokenAddress, TokenInfo, plan,
};

pub const NOW: u64 = 1_767_225_600;
/// One USDC (6 decimals) and one WETH or DAI (18), in base units.
pub const USDC: u128 = 1_000_000;
pub const ETH: u128 = 1_000_000_000_000_000_000;

/// What `usdc` buys in [`two_chains`]'s USDC/WETH pool (1,000,000 USDC / 400 WETH, 0.3 %).
pub fn direct_pool_output(usdc: u128) -> U256 {
    baton_planner::amm::amount_out(
        U256::from(usdc),
        U256::from(1_000_000 * USDC),
        U256::from(400 * ETH),
        30,
    )
    .unwrap()
}

/// A deterministic address for a name.
pub fn addr(name: &str) -> Address {
    Address::from_slice(&keccak256(name.as_bytes())[12..])
}

pub fn amount(v: u128) -> Amount {
    Amount::from(v)
}

#[derive(Clone, Debug)]
pub struct World {
    pub snap: LiquiditySnapshot,
}

/// A world with no chains; add them with [`World::chain`].
pub fn world() -> World {
    World {
        snap: LiquiditySnapshot {
            timestamp: NOW,
            default_route_latency_secs: 2,
            ..LiquiditySnapshot::default()
        },
    }
}

impl World {
    /// A chain with 1 s blocks, 2 blocks to finality, free gas.
    pub fn chain(mut self, id: u64) -> Self {
        self.snap.chains.insert(
            ChainId(id),
            ChainConditions {
                origin_settler: addr(&format!("origin-{id}")),
                destination_settler: addr(&format!("destination-{id}")),
                gas_price: U256::ZERO,
                block_time_ms: 1000,
                finality_blocks: 2,
                confirmation_tiers: Vec::new(),
            },
        );
        self
    }

    pub fn token(mut self, chain: u64, symbol: &str, decimals: u8) -> Self {
        let info = TokenInfo {
            symbol: symbol.into(),
            decimals,
            native_price: None,
        };
        self.snap.tokens.insert(self.asset(chain, symbol), info);
        self
    }

    pub fn pool(mut self, chain: u64, a: &str, b: &str, ra: u128, rb: u128) -> Self {
        let n = self.snap.pools.len();
        self.snap.pools.push(Pool {
            chain: ChainId(chain),
            address: addr(&format!("pool-{chain}-{a}-{b}-{n}")),
            token0: self.asset(chain, a).token,
            token1: self.asset(chain, b).token,
            reserve0: amount(ra),
            reserve1: amount(rb),
            fee_bps: 30,
        });
        self
    }

    pub fn inventory(mut self, chain: u64, symbol: &str, v: u128) -> Self {
        self.snap
            .inventory
            .insert(self.asset(chain, symbol), amount(v));
        self
    }

    pub fn solver_fee(mut self, bps: u32) -> Self {
        self.snap.solver_fee_bps = bps;
        self
    }

    pub fn asset(&self, chain: u64, symbol: &str) -> Asset {
        Asset::new(
            ChainId(chain),
            TokenAddress(addr(&format!("token-{chain}-{symbol}"))),
        )
    }

    pub fn graph(&self) -> LiquidityGraph {
        LiquidityGraph::new(self.snap.clone()).unwrap()
    }

    pub fn intent(&self) -> IntentBuilder<'_> {
        IntentBuilder {
            world: self,
            inputs: vec![],
            outputs: vec![],
            fill_in: 600,
        }
    }
}

pub struct IntentBuilder<'w> {
    world: &'w World,
    inputs: Vec<Input>,
    outputs: Vec<Output>,
    fill_in: u64,
}

impl IntentBuilder<'_> {
    pub fn give(mut self, chain: u64, symbol: &str, v: u128) -> Self {
        self.inputs.push(Input {
            asset: self.world.asset(chain, symbol),
            amount: amount(v),
        });
        self
    }

    pub fn want(mut self, chain: u64, symbol: &str, min: u128) -> Self {
        self.outputs.push(Output {
            asset: self.world.asset(chain, symbol),
            min_amount: amount(min),
            recipient: addr("recipient"),
            call: None,
        });
        self
    }

    pub fn fill_within(mut self, secs: u64) -> Self {
        self.fill_in = secs;
        self
    }

    pub fn build_outputs(self) -> Vec<Output> {
        self.outputs
    }

    pub fn build(self) -> Intent {
        self.try_build().unwrap()
    }

    pub fn try_build(self) -> Result<Intent> {
        let fill = (NOW + self.fill_in) as u32;
        Intent::new(
            addr("user"),
            U256::from(1u8),
            fill.min((NOW + 60) as u32),
            fill,
            self.inputs,
            self.outputs,
        )
    }

    pub fn plan(self) -> Result<Plan> {
        let graph = self.world.graph();
        plan(&graph, &self.try_build()?, &PlannerConfig::default())
    }
}

/// The standard cross-chain swap on [`two_chains`]: 1,000 USDC on chain 1 for at least 0.39 WETH
/// on chain 2, planned.
pub fn usdc_for_weth() -> (World, baton_planner::Plan) {
    let w = two_chains();
    let p = w
        .intent()
        .give(1, "USDC", 1_000 * USDC)
        .want(2, "WETH", 39 * ETH / 100)
        .plan()
        .unwrap();
    (w, p)
}

/// Two chains (1 and 2), each with USDC (6 decimals), WETH and DAI (18), a USDC/WETH pool at
/// 2,500 USDC per WETH and ample solver inventory.
pub fn two_chains() -> World {
    let mut w = world().chain(1).chain(2);
    for c in [1, 2] {
        w = w
            .token(c, "USDC", 6)
            .token(c, "WETH", 18)
            .token(c, "DAI", 18)
            .pool(
                c,
                "USDC",
                "WETH",
                1_000_000 * 10u128.pow(6),
                400 * 10u128.pow(18),
            )
            .inventory(c, "USDC", 500_000 * 10u128.pow(6))
            .inventory(c, "WETH", 100 * 10u128.pow(18))
            .inventory(c, "DAI", 500_000 * 10u128.pow(18));
    }
    w
}
