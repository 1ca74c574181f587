//! The `ChainAdapter` port: how the engine reaches a chain. Solvers implement it for their own
//! chains; baton ships `evm` (alloy) and, later, `sim`.
//!
//! **Status:** this first cut covers heads, network conditions, signing a step without sending it
//! (write-ahead: the raw bytes, hash and nonce exist before any broadcast), idempotent broadcast and
//! transaction status with reorg detection. Liquidity reads, outcome evidence, fee replacement and
//! rate limits are still to come, with the conformance suite they need.

use std::future::Future;
use std::pin::Pin;

use alloy::primitives::{Address, B256, Bytes, Log, U256};
use baton_planner::ChainId;

use crate::error::Result;

/// A boxed future, so the trait stays object-safe (`Arc<dyn ChainAdapter>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A block by number and hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRef {
    /// Height.
    pub number: u64,
    /// Hash.
    pub hash: B256,
}

/// A chain's network conditions as the adapter sees them now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conditions {
    /// The latest block.
    pub head: BlockRef,
    /// The latest block's base fee, wei per gas.
    pub base_fee: u128,
    /// Mean time between the last (up to) ten blocks, milliseconds; 0 when there is no history.
    pub block_time_ms: u64,
    /// RPC calls this adapter has made, and how many failed.
    pub rpc_calls: u64,
    /// Failed RPC calls.
    pub rpc_errors: u64,
    /// Mean RPC latency, milliseconds.
    pub rpc_latency_ms: u64,
}

/// A contract call a step makes, with its gas and fee bounds, before it is signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRequest {
    /// The contract.
    pub to: Address,
    /// Calldata.
    pub data: Bytes,
    /// Native value sent.
    pub value: U256,
    /// Gas limit.
    pub gas_limit: u64,
    /// EIP-1559 max fee per gas, wei.
    pub max_fee_per_gas: u128,
    /// EIP-1559 priority fee per gas, wei.
    pub max_priority_fee_per_gas: u128,
}

/// A signed transaction: what the saga log stores before broadcasting it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTx {
    /// The chain.
    pub chain: ChainId,
    /// The sender.
    pub from: Address,
    /// The sender's nonce it uses.
    pub nonce: u64,
    /// The transaction hash.
    pub hash: B256,
    /// The EIP-2718 encoded signed transaction, as broadcast.
    pub raw: Bytes,
}

/// Where a transaction was included, and what it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inclusion {
    /// The block.
    pub block: BlockRef,
    /// Whether it succeeded (false: reverted).
    pub success: bool,
    /// Gas used.
    pub gas_used: u64,
    /// Its logs.
    pub logs: Vec<Log>,
}

/// What became of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// Known to the node, not yet in a block.
    Pending,
    /// In a canonical block.
    Included(Inclusion),
    /// Unknown to the node: never arrived, or evicted. Rebroadcasting the same bytes is safe.
    Dropped,
    /// Was included in `was`, which is no longer canonical; the transaction is not in a block now.
    ReorgedOut {
        /// The block it was in.
        was: BlockRef,
    },
}

/// The port through which everything reaches a chain. Object-safe, `Send + Sync`.
pub trait ChainAdapter: Send + Sync {
    /// The chain's id.
    fn chain_id(&self) -> ChainId;
    /// The latest block.
    fn head(&self) -> BoxFuture<'_, Result<BlockRef>>;
    /// Base fee, observed block time and RPC health.
    fn conditions(&self) -> BoxFuture<'_, Result<Conditions>>;
    /// Signs `call` as the adapter's account with its next nonce, without sending it.
    fn prepare(&self, call: CallRequest) -> BoxFuture<'_, Result<SignedTx>>;
    /// Sends signed bytes. Idempotent: a node that already has them (pending or included) is success.
    fn broadcast<'a>(&'a self, tx: &'a SignedTx) -> BoxFuture<'a, Result<()>>;
    /// What became of `tx`; `seen` is the inclusion observed earlier, if any, to detect a reorg.
    fn status<'a>(
        &'a self,
        tx: &'a SignedTx,
        seen: Option<&'a BlockRef>,
    ) -> BoxFuture<'a, Result<TxStatus>>;
}
