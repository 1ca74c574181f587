//! Attesters over EVM chains: one chain as an attester reads it, and the devnet's three attesters
//! in this process, for the benchmarks and tests that need a quorum without separate processes
//! (the end-to-end tests and the demo run `baton attester serve` processes instead).

use std::sync::Arc;

use alloy::signers::local::PrivateKeySigner;
use baton_adapters::abi::Settlers;
use baton_adapters::devnet::{ATTESTERS, DevnetFileChain, dev_signer};
use baton_adapters::evm::{EvmAdapter, EvmConfig};
use baton_planner::ChainId;

use crate::{Attester, AttesterChain};

/// Chain `chain` at `rpc_url` as an attester with `key` reads it: through an EVM adapter of its
/// own (it never sends a transaction), trusting `settlers`, final at `confirmations`.
pub fn evm_chain(
    chain: ChainId,
    rpc_url: &str,
    settlers: Settlers,
    key: &PrivateKeySigner,
    confirmations: u64,
) -> Result<AttesterChain, String> {
    let url = rpc_url
        .parse()
        .map_err(|e| format!("chain {}: RPC URL {rpc_url:?}: {e}", chain.0))?;
    let adapter = EvmAdapter::new(EvmConfig::new(chain, url, settlers), key.clone())
        .map_err(|e| e.to_string())?;
    Ok(AttesterChain {
        adapter: Arc::new(adapter),
        confirmations,
    })
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
                evm_chain(id, &c.rpc_url, c.settlers(), &key, confirmations)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let attester = Attester::in_memory(key, followed)
            .await
            .map_err(|e| e.to_string())?;
        out.push(Arc::new(attester));
    }
    Ok(out)
}
