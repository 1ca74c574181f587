//! The original chains' blocks, and making them again on the forks: the same raw transactions in
//! the same order (the saga's and everyone else's — a transaction that drained a pool in between
//! is part of what happened), with the original timestamps.

use std::collections::{BTreeMap, HashMap};

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::B256;
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider};
use baton_planner::ChainId;

use crate::error::{ReplayError, Result};
use crate::fork::{Forks, Spans};
use crate::recorded::Recorded;

/// One original block to make again on a fork.
pub(crate) struct Block {
    pub(crate) chain: ChainId,
    pub(crate) number: u64,
    pub(crate) timestamp: u64,
    pub(crate) txs: Vec<B256>,
}

impl Block {
    /// Its place in the replay's order: by time, then chain, then number.
    pub(crate) fn key(&self) -> (u64, ChainId, u64) {
        (self.timestamp, self.chain, self.number)
    }
}

/// Blocks and transactions made again per chain.
pub(crate) type Stats = BTreeMap<ChainId, (u64, u64)>;

/// The timestamp of `provider`'s latest block.
pub(crate) async fn latest_timestamp(provider: &DynProvider) -> Result<u64> {
    let block = provider
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .map_err(|e| ReplayError::rpc("eth_getBlockByNumber", e))?;
    Ok(block.map_or(0, |b| b.header.timestamp))
}

/// Every original block after the start of each chain's span to its end, across chains in
/// timestamp order.
pub(crate) async fn original_blocks(
    origin: &HashMap<ChainId, DynProvider>,
    spans: &Spans,
) -> Result<Vec<Block>> {
    let mut blocks = Vec::new();
    for (chain, (first, last)) in spans {
        for number in first + 1..=*last {
            let Some(b) = origin[chain]
                .get_block_by_number(BlockNumberOrTag::Number(number))
                .await
                .map_err(|e| ReplayError::rpc("eth_getBlockByNumber", e))?
            else {
                break;
            };
            blocks.push(Block {
                chain: *chain,
                number,
                timestamp: b.header.timestamp,
                txs: b.transactions.hashes().collect(),
            });
        }
    }
    blocks.sort_by_key(Block::key);
    Ok(blocks)
}

/// Makes `blocks` again on the forks: each block's raw transactions in order (except `skip`),
/// then the `refused` saga transactions built against the block before, at the original
/// timestamp. Returns blocks and transactions replayed per chain.
pub(crate) async fn make_again(
    blocks: &[Block],
    origin: &HashMap<ChainId, DynProvider>,
    forks: &Forks,
    skip: &[B256],
    refused: &[&Recorded],
) -> Result<Stats> {
    let mut stats = Stats::new();
    for block in blocks {
        let fork = forks.provider(block.chain);
        let s = stats.entry(block.chain).or_default();
        for hash in block.txs.iter().filter(|h| !skip.contains(h)) {
            let raw = origin[&block.chain]
                .get_raw_transaction_by_hash(*hash)
                .await
                .map_err(|e| ReplayError::rpc("eth_getRawTransactionByHash", e))?;
            // A transaction the fork refuses shows in the comparison.
            if let Some(raw) = raw {
                let _ = fork.send_raw_transaction(&raw).await;
            }
            s.1 += 1;
        }
        for t in refused
            .iter()
            .filter(|t| t.chain == block.chain && t.built_on.is_some_and(|h| h + 1 == block.number))
        {
            let _ = fork.send_raw_transaction(&t.raw).await;
        }
        fork.anvil_set_next_block_timestamp(block.timestamp)
            .await
            .map_err(|e| ReplayError::rpc("evm_setNextBlockTimestamp", e))?;
        fork.evm_mine(None)
            .await
            .map_err(|e| ReplayError::rpc("evm_mine", e))?;
        s.0 += 1;
    }
    Ok(stats)
}
