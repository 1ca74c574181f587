//! Attesters over EVM chains: one chain as an attester reads it, and the devnet's three attesters
//! in this process, for the benchmarks and tests that need a quorum without separate processes
//! (the end-to-end tests and the demo run `baton attester serve` processes instead).

use std::sync::Arc;

use alloy::signers::local::PrivateKeySigner;
use baton_adapters::abi::Settlers;
use baton_adapters::devnet::{ATTESTERS, DevnetFileChain, dev_signer};
use baton_adapters::evm::{EvmAdapter, EvmConfig};
use baton_adapters::port::ChainAdapter;
use baton_planner::ChainId;

use crate::{Attester, AttesterChain};

/// Chain `chain` at `rpc_url` as an attester with `key` reads it: through EVM adapters of its
/// own (it never sends a transaction), one per settler pair it trusts there (`settlers`, at
/// least one), final at `confirmations`.
pub fn evm_chain(
    chain: ChainId,
    rpc_url: &str,
    settlers: &[Settlers],
    key: &PrivateKeySigner,
    confirmations: u64,
) -> Result<AttesterChain, String> {
    let url: alloy::transports::http::reqwest::Url = rpc_url
        .parse()
        .map_err(|e| format!("chain {}: RPC URL {rpc_url:?}: {e}", chain.0))?;
    let mut adapters = settlers.iter().map(|s| {
        EvmAdapter::new(EvmConfig::new(chain, url.clone(), *s), key.clone())
            .map(|a| Arc::new(a) as Arc<dyn ChainAdapter>)
            .map_err(|e| e.to_string())
    });
    let first = adapters
        .next()
        .ok_or_else(|| format!("chain {}: no settlers to trust", chain.0))??;
    let mut followed = AttesterChain::new(first, confirmations);
    followed.also = adapters.collect::<Result<_, _>>()?;
    Ok(followed)
}

/// The devnet's three attesters (dev accounts 7, 8 and 9) over `chains` in this process, each
/// with in-memory state, final at `confirmations`.
pub async fn in_process(
    chains: &[DevnetFileChain],
    confirmations: u64,
) -> Result<Vec<Arc<Attester>>, String> {
    let mut out = Vec::new();
    for k in ATTESTERS {
        let key = dev_signer(k);
        let followed = chains
            .iter()
            .map(|c| {
                let id = ChainId(c.chain_id);
                evm_chain(id, &c.rpc_url, &c.trusted_settlers(), &key, confirmations)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let attester = Attester::in_memory(key, followed)
            .await
            .map_err(|e| e.to_string())?;
        out.push(Arc::new(attester));
    }
    Ok(out)
}
