//! The EVM adapter on anvil: pipelined nonces, write-ahead signing, idempotent broadcast, status
//! through inclusion, drop and reorg.

use std::sync::Arc;

use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::SolCall;
use baton_adapters::contracts::TestToken;
use baton_adapters::devnet::{Devnet, SOLVER, dev_signer};
use baton_adapters::evm::EvmAdapter;
use baton_adapters::port::{CallRequest, ChainAdapter, TxStatus};
use baton_planner::ChainId;
use serde_json::json;

use crate::anvil;

fn transfer(token: Address, to: Address, amount: u64) -> CallRequest {
    CallRequest {
        to: token,
        data: Bytes::from(
            TestToken::transferCall {
                to,
                amount: U256::from(amount),
            }
            .abi_encode(),
        ),
        value: U256::ZERO,
        gas_limit: 100_000,
        max_fee_per_gas: 20_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
    }
}

#[tokio::test]
async fn prepared_transactions_pipeline_broadcast_idempotently_and_report_their_fate() {
    let devnet = Devnet::start(1, None).await.unwrap();
    let chain = &devnet.chains[0];
    let adapter: Arc<dyn ChainAdapter> = Arc::new(EvmAdapter::new(
        ChainId(chain.chain_id),
        chain.rpc_url().clone(),
        dev_signer(SOLVER),
    ));
    let usdc = chain.tokens["USDC"];
    let to = chain.account(4);

    // Two prepared back to back take consecutive nonces without anything sent in between.
    let a = adapter.prepare(transfer(usdc, to, 1)).await.unwrap();
    let b = adapter.prepare(transfer(usdc, to, 2)).await.unwrap();
    assert_eq!(b.nonce, a.nonce + 1);
    assert_ne!(a.hash, b.hash);
    // Not broadcast yet: the node has never seen it.
    assert_eq!(adapter.status(&a, None).await.unwrap(), TxStatus::Dropped);

    adapter.broadcast(&a).await.unwrap();
    adapter.broadcast(&b).await.unwrap();
    adapter.broadcast(&a).await.unwrap(); // the same bytes again: harmless
    let TxStatus::Included(inc) = adapter.status(&a, None).await.unwrap() else {
        panic!("a not included")
    };
    assert!(inc.success);
    assert_eq!(inc.logs.len(), 1, "one Transfer event");
    let TxStatus::Included(inc_b) = adapter.status(&b, None).await.unwrap() else {
        panic!("b not included")
    };
    assert!(inc_b.block.number >= inc.block.number);
    let token = TestToken::new(usdc, chain.provider.clone());
    assert_eq!(
        token.balanceOf(to).call().await.unwrap(),
        U256::from(3u8),
        "each transfer happened once"
    );

    // Roll b's block back: the inclusion seen before is gone.
    anvil(chain, "anvil_rollback", json!([1])).await;
    let status = adapter.status(&b, Some(&inc_b.block)).await.unwrap();
    match status {
        TxStatus::ReorgedOut { was } => assert_eq!(was, inc_b.block),
        TxStatus::Included(again) => {
            assert_ne!(again.block.hash, inc_b.block.hash, "re-included elsewhere")
        }
        other => panic!("after a rollback: {other:?}"),
    }
    let head = adapter.head().await.unwrap();
    assert!(head.number < inc_b.block.number || head.hash != inc_b.block.hash);
}

#[tokio::test]
async fn conditions_report_base_fee_observed_block_time_and_rpc_health() {
    let devnet = Devnet::start(1, None).await.unwrap();
    let chain = &devnet.chains[0];
    let adapter = EvmAdapter::new(
        ChainId(chain.chain_id),
        chain.rpc_url().clone(),
        dev_signer(SOLVER),
    );
    // Ten blocks two seconds apart: the observed block time is exactly 2 s.
    anvil(chain, "anvil_mine", json!([10, 2])).await;
    let c = adapter.conditions().await.unwrap();
    assert_eq!(c.block_time_ms, 2_000);
    assert!(c.base_fee > 0);
    assert_eq!(c.head, adapter.head().await.unwrap());
    assert!(c.rpc_calls >= 2 && c.rpc_errors == 0);

    let fee = U256::from(77_000_000_000u64);
    anvil(chain, "anvil_setNextBlockBaseFeePerGas", json!([fee])).await;
    anvil(chain, "evm_mine", json!([])).await;
    assert_eq!(adapter.conditions().await.unwrap().base_fee, 77_000_000_000);
}
