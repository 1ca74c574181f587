//! The adapters' integration tests (one binary): the contracts on real anvil nodes.

#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

use std::time::{SystemTime, UNIX_EPOCH};

mod calls;
mod conformance;
mod evm;
mod logs;
mod pool;
mod refund;
mod settlers;
mod sim;

/// The revert reason of a call that must fail.
pub fn reverted<T>(result: Result<T, alloy::contract::Error>) -> String {
    match result {
        Ok(_) => panic!("the call succeeded; a revert was expected"),
        Err(e) => e.to_string(),
    }
}

/// Calls an anvil-only JSON-RPC method (time travel, mining, rollback, fee spikes) and requires success.
pub async fn anvil(
    chain: &baton_adapters::devnet::DevnetChain,
    method: &'static str,
    params: serde_json::Value,
) {
    baton_adapters::conformance::anvil(chain, method, params)
        .await
        .unwrap();
}

/// Wall-clock unix seconds (anvil's block time follows it).
pub fn now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}
