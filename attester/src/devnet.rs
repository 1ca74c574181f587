//! Attesters over a devnet's chains: in this process, for the sim-free benchmarks and tests that
//! need a quorum without separate processes (the end-to-end tests and the demo run
//! `baton attester serve` processes instead).

use std::sync::Arc;

use alloy::signers::local::PrivateKeySigner;
use baton_adapters::devnet::{ATTESTERS, DevnetFileChain, dev_signer};
use baton_adapters::evm::{EvmAdapter, EvmConfig};
use baton_planner::ChainId;

use crate::store::Store;
use crate::{Attester, AttesterChain};

/// `chain` as an attester with `key` reads it: through an EVM adapter of its own (it never sends
/// a transaction), trusting the chain's settlers, final at `confirmations`.
pub fn evm_chain(
    chain: &DevnetFileChain,
    key: &PrivateKeySigner,
    confirmations: u64,
) -> Result<AttesterChain, String> {
    let url = chain
        .rpc_url
        .parse()
        .map_err(|e| format!("chain {}: RPC URL {:?}: {e}", chain.chain_id, chain.rpc_url))?;
    let adapter = EvmAdapter::new(
        EvmConfig::new(ChainId(chain.chain_id), url, chain.settlers()),
        key.clone(),
    )
    .map_err(|e| e.to_string())?;
    Ok(AttesterChain {
        adapter: Arc::new(adapter),
        settlers: chain.settlers(),
        confirmations,
    })
}

/// An attester signing with `key` over `chains` ([`evm_chain`] each, at `confirmations`), its
/// store at `database`.
pub async fn attester(
    key: PrivateKeySigner,
    chains: &[DevnetFileChain],
    confirmations: u64,
    database: &str,
) -> Result<Attester, String> {
    let followed = chains
        .iter()
        .map(|c| evm_chain(c, &key, confirmations))
        .collect::<Result<Vec<_>, _>>()?;
    let store = Store::open(database).await.map_err(|e| e.to_string())?;
    Ok(Attester::new(key, followed, store))
}

/// The devnet's three attesters (dev accounts 7, 8 and 9) in this process, each with in-memory
/// state.
pub async fn in_process(
    chains: &[DevnetFileChain],
    confirmations: u64,
) -> Result<Vec<Arc<Attester>>, String> {
    let mut out = Vec::new();
    for k in ATTESTERS {
        let a = attester(dev_signer(k), chains, confirmations, "sqlite::memory:").await?;
        out.push(Arc::new(a));
    }
    Ok(out)
}
