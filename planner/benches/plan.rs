//! Planning time over large synthetic liquidity graphs.
//!
//! `cargo bench -p baton-planner --bench plan` runs criterion over 20 chains × 100 tokens with
//! 500 to 4,000 pools (growth as the graph doubles), then prints p50/p99 per intent at 2,000 pools
//! from 5,000 timed plans. The graph is built once per snapshot (as the engine does); planning an
//! intent is what is timed. Graph build time is printed separately.

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use baton_planner::{
    Amount, Asset, ChainConditions, ChainId, Input, Intent, LiquidityGraph, LiquiditySnapshot,
    Output, PlannerConfig, Pool, TokenAddress, TokenInfo, plan,
};
use criterion::{BenchmarkId, Criterion};

const CHAINS: u64 = 20;
const TOKENS: u64 = 100;
const HUBS: u64 = 5;
const NOW: u64 = 1_767_225_600;

/// A deterministic generator (SplitMix64): the benchmark's worlds are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn token(chain: u64, k: u64) -> Asset {
    let mut a = [0u8; 20];
    a[8..12].copy_from_slice(&(chain as u32).to_be_bytes());
    a[12..20].copy_from_slice(&(k + 1).to_be_bytes());
    Asset::new(ChainId(chain), TokenAddress(Address::from(a)))
}

/// 20 chains × 100 tokens (same symbols on every chain, so every token is fillable across chains),
/// `pools` pools spread evenly over the chains: each chain pairs its 5 hub tokens with each other,
/// then links tokens to a hub in turn, then adds random pairs. Reserves from 10^3 to 10^6 whole
/// tokens; ample inventory everywhere.
fn world(pools: u64) -> LiquiditySnapshot {
    let mut rng = Rng(42);
    let mut snap = LiquiditySnapshot {
        timestamp: NOW,
        default_route_latency_secs: 2,
        solver_fee_bps: 5,
        ..Default::default()
    };
    let e18 = U256::from(10u64).pow(U256::from(18u8));
    for c in 1..=CHAINS {
        snap.chains.insert(
            ChainId(c),
            ChainConditions {
                origin_settler: Address::with_last_byte(c as u8),
                destination_settler: Address::with_last_byte(100 + c as u8),
                gas_price: U256::from(1_000_000_000u64),
                block_time_ms: 1000 + 250 * (c % 4),
                finality_blocks: 2 + (c % 3) as u32,
                confirmation_tiers: Vec::new(),
            },
        );
        for k in 0..TOKENS {
            let info = TokenInfo {
                symbol: format!("T{k}"),
                decimals: 18,
                native_price: Some(Amount::new(e18)),
            };
            snap.tokens.insert(token(c, k), info);
            snap.inventory
                .insert(token(c, k), Amount::new(e18 * U256::from(1_000_000u64)));
        }
        let per_chain = pools / CHAINS;
        let hub_pairs: Vec<(u64, u64)> = (0..HUBS)
            .flat_map(|a| (a + 1..HUBS).map(move |b| (a, b)))
            .collect();
        for p in 0..per_chain {
            let linked = p.saturating_sub(hub_pairs.len() as u64);
            let (a, b) = if let Some(pair) = hub_pairs.get(p as usize) {
                *pair
            } else if linked < TOKENS - HUBS {
                (linked % HUBS, HUBS + linked)
            } else {
                let a = rng.below(TOKENS);
                let b = (a + 1 + rng.below(TOKENS - 1)) % TOKENS;
                (a, b)
            };
            let r = |rng: &mut Rng| Amount::new(e18 * U256::from(1_000 + rng.below(1_000_000)));
            snap.pools.push(Pool {
                chain: ChainId(c),
                address: Address::from_word(U256::from(c * 1_000_000 + p).into()),
                token0: token(c, a).token,
                token1: token(c, b).token,
                reserve0: r(&mut rng),
                reserve1: r(&mut rng),
                fee_bps: 30,
            });
        }
    }
    snap
}

/// The tokens every chain links to a hub at this pool count: any two are joined in 3 swaps.
fn routable(pools: u64) -> u64 {
    (HUBS + (pools / CHAINS).saturating_sub(HUBS * (HUBS - 1) / 2)).min(TOKENS)
}

/// 64 intents: a random token on a random chain to another token on another chain, among the
/// tokens linked to hubs.
fn intents(tokens: u64) -> Vec<Intent> {
    let mut rng = Rng(7);
    (0..64)
        .map(|n| {
            let from = 1 + rng.below(CHAINS);
            let to = 1 + (from + rng.below(CHAINS - 1)) % CHAINS;
            let t_in = rng.below(tokens);
            let t_out = (t_in + 1 + rng.below(tokens - 1)) % tokens;
            let amount = Amount::new(
                U256::from(1 + rng.below(500)) * U256::from(10u64).pow(U256::from(18u8)),
            );
            Intent::new(
                Address::with_last_byte(0xAA),
                U256::from(n),
                (NOW + 60) as u32,
                (NOW + 3_600) as u32,
                vec![Input {
                    asset: token(from, t_in),
                    amount,
                }],
                vec![Output {
                    asset: token(to, t_out),
                    min_amount: Amount::from(1),
                    recipient: Address::with_last_byte(0xBB),
                    call: None,
                }],
            )
            .unwrap()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let config = PlannerConfig::default();
    let mut group = c.benchmark_group("plan");
    for pools in [500u64, 1_000, 2_000, 4_000] {
        let graph = LiquidityGraph::new(world(pools)).unwrap();
        let intents = intents(routable(pools));
        let planned = intents
            .iter()
            .filter(|i| plan(&graph, i, &config).is_ok())
            .count();
        println!("{pools} pools: {planned} of {} intents plan", intents.len());
        group.bench_with_input(BenchmarkId::new("intent", pools), &graph, |b, graph| {
            let mut k = 0;
            b.iter(|| {
                k = (k + 1) % intents.len();
                black_box(plan(graph, &intents[k], &config).ok())
            });
        });
    }
    group.finish();
}

/// p50/p99 per intent at 2,000 pools, from individually timed plans.
fn percentiles() {
    let t = Instant::now();
    let graph = LiquidityGraph::new(world(2_000)).unwrap();
    let build = t.elapsed();
    let (nodes, edges) = graph.size();
    let intents = intents(routable(2_000));
    let config = PlannerConfig::default();
    let planned = intents
        .iter()
        .filter(|i| plan(&graph, i, &config).is_ok())
        .count();
    println!("{planned} of {} intents plan", intents.len());
    for i in &intents {
        black_box(plan(&graph, i, &config).ok());
    }
    let mut samples: Vec<Duration> = (0..5_000)
        .map(|k| {
            let t = Instant::now();
            black_box(plan(&graph, &intents[k % intents.len()], &config).ok());
            t.elapsed()
        })
        .collect();
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "planner, 20 chains × 100 tokens × 2,000 pools ({nodes} nodes, {edges} edges; graph built in {build:?}): \
         p50 {:?}, p90 {:?}, p99 {:?}, max {:?} per intent over {} plans",
        at(0.50),
        at(0.90),
        at(0.99),
        samples[samples.len() - 1],
        samples.len()
    );
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(3));
    bench(&mut c);
    c.final_summary();
    percentiles();
}
