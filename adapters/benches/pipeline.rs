//! Transactions per second the EVM adapter gets included on one anvil chain, pipelined (prepare and
//! broadcast many, then wait) versus one at a time (broadcast, wait for the receipt, next).
//!
//! `cargo bench -p baton-adapters --bench pipeline` (needs `npm ci` for anvil). One anvil node with
//! 1-second blocks; arguments: `[pipelined count] [sequential count]`, default 500 and 5.

#![allow(missing_docs, clippy::unwrap_used)]

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use baton_adapters::devnet::{Devnet, SOLVER};
use baton_adapters::evm::{EvmAdapter, EvmConfig};
use baton_adapters::port::{ChainAdapter, Fees, Op, SignedTx, TxRequest, TxStatus};
use baton_planner::ChainId;

fn transfer(token: Address, to: Address) -> TxRequest {
    TxRequest::new(
        Op::Transfer {
            token,
            to,
            amount: U256::from(1u8),
        },
        Fees {
            gas_limit: 60_000,
            max_fee_per_gas: 50_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
        },
    )
}

async fn included(adapter: &EvmAdapter, tx: &SignedTx) {
    loop {
        if let TxStatus::Included(inc) = adapter.status(tx, None).await.unwrap() {
            assert!(inc.success);
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let pipelined = args.first().copied().unwrap_or(500);
    let sequential = args.get(1).copied().unwrap_or(5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let devnet = Devnet::start(1, Some(1)).await.unwrap();
        let chain = &devnet.chains[0];
        // A local node: no need for the default 200 calls/s limit.
        let mut config = EvmConfig::new(
            ChainId(chain.chain_id),
            chain.rpc_url().clone(),
            chain.settlers(),
        );
        config.requests_per_second = NonZeroU32::new(1_000_000).unwrap();
        let adapter = EvmAdapter::new(config, chain.signer(SOLVER)).unwrap();
        let (token, to) = (chain.tokens["USDC"], chain.account(4));

        let start = Instant::now();
        for _ in 0..sequential {
            let tx = adapter.prepare(transfer(token, to)).await.unwrap();
            adapter.broadcast(&tx).await.unwrap();
            included(&adapter, &tx).await;
        }
        let seq = sequential as f64 / start.elapsed().as_secs_f64();

        let start = Instant::now();
        let mut txs = Vec::with_capacity(pipelined);
        for _ in 0..pipelined {
            let tx = adapter.prepare(transfer(token, to)).await.unwrap();
            adapter.broadcast(&tx).await.unwrap();
            txs.push(tx);
        }
        for tx in &txs {
            included(&adapter, tx).await;
        }
        let pipe = pipelined as f64 / start.elapsed().as_secs_f64();
        println!(
            "evm adapter on anvil (1 s blocks): one at a time {seq:.2} tx/s ({sequential} txs); \
             pipelined {pipe:.1} tx/s ({pipelined} txs); {:.0}×",
            pipe / seq
        );
    });
}
