//! The anvil forks a replay runs on: one per chain the saga acted on, forked at the block its first
//! transaction there was built against, mining off, on 127.0.0.1. Dropping a [`Forks`] stops them.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use baton_planner::ChainId;

use crate::error::{ReplayError, Result};

/// Where each chain's replay starts and ends: (first block, last block).
pub(crate) type Spans = BTreeMap<ChainId, (u64, u64)>;

/// A running fork of one chain.
pub(crate) struct ForkNode {
    pub(crate) node: AnvilInstance,
    pub(crate) provider: DynProvider,
}

/// The forks of every chain in a span, stopped when dropped.
pub(crate) struct Forks(pub(crate) HashMap<ChainId, ForkNode>);

impl Forks {
    /// An anvil fork of each chain at the start of its span, mining off, on 127.0.0.1.
    pub(crate) fn start(
        spans: &Spans,
        rpcs: &HashMap<ChainId, String>,
        anvil: &Path,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<Self> {
        let mut forks = HashMap::new();
        for (chain, (first, _)) in spans {
            let url = rpcs.get(chain).ok_or(ReplayError::NoRpc(*chain))?;
            progress(&format!("forking chain {chain} at block {first} …"));
            let node = Anvil::at(anvil)
                .port(0u16)
                .fork(url.clone())
                .fork_block_number(*first)
                .arg("--host")
                .arg("127.0.0.1")
                .arg("--no-mining")
                .try_spawn()
                .map_err(|e| ReplayError::Fork {
                    chain: *chain,
                    block: *first,
                    detail: e.to_string(),
                })?;
            let provider = ProviderBuilder::new()
                .connect_http(node.endpoint_url())
                .erased();
            forks.insert(*chain, ForkNode { node, provider });
        }
        Ok(Self(forks))
    }

    /// The fork of `chain` (every chain of the spans has one).
    pub(crate) fn provider(&self, chain: ChainId) -> &DynProvider {
        &self.0[&chain].provider
    }
}

/// Read-only providers of the real chains the saga acted on.
pub(crate) fn connect(
    spans: &Spans,
    rpcs: &HashMap<ChainId, String>,
) -> Result<HashMap<ChainId, DynProvider>> {
    let mut origin = HashMap::new();
    for chain in spans.keys() {
        let url = rpcs.get(chain).ok_or(ReplayError::NoRpc(*chain))?;
        let parsed = url.parse().map_err(|e| ReplayError::BadRpcUrl {
            chain: *chain,
            url: url.clone(),
            detail: format!("{e}"),
        })?;
        origin.insert(*chain, ProviderBuilder::new().connect_http(parsed).erased());
    }
    Ok(origin)
}
