//! The EVM adapter on alloy: local signing with a nonce manager that keeps several transactions in
//! flight (the next nonce is assigned locally, not read back per transaction), idempotent raw
//! broadcast, receipts and reorg detection.
//!
//! **Status:** first cut; see [`crate::port`] for what the port does not cover yet.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::{BlockNumberOrTag, Encodable2718};
use alloy::network::{ReceiptResponse, TxSignerSync};
use alloy::primitives::{Address, TxKind};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::http::reqwest::Url;
use baton_planner::ChainId;

use crate::error::{AdapterError, Result};
use crate::port::{
    BlockRef, BoxFuture, CallRequest, ChainAdapter, Conditions, Inclusion, SignedTx, TxStatus,
};

/// An EVM chain reached over JSON-RPC, acting as one account.
pub struct EvmAdapter {
    chain: ChainId,
    provider: DynProvider,
    signer: PrivateKeySigner,
    /// The next nonce to assign; `None` until read from the node.
    next_nonce: Mutex<Option<u64>>,
    calls: AtomicU64,
    errors: AtomicU64,
    latency_us: AtomicU64,
}

impl EvmAdapter {
    /// Connects to `rpc_url` (chain `chain`) acting as `signer`.
    pub fn new(chain: ChainId, rpc_url: Url, signer: PrivateKeySigner) -> Self {
        Self {
            chain,
            provider: ProviderBuilder::new().connect_http(rpc_url).erased(),
            signer,
            next_nonce: Mutex::new(None),
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency_us: AtomicU64::new(0),
        }
    }

    /// Runs one RPC read, counting it, its failure and its latency for [`ChainAdapter::conditions`].
    /// (Broadcasts are not counted: a node refusing known bytes is not an RPC fault.)
    async fn rpc<T, E: std::fmt::Display>(
        &self,
        what: &str,
        call: impl std::future::IntoFuture<Output = std::result::Result<T, E>>,
    ) -> Result<T> {
        let start = Instant::now();
        let result = call.await;
        let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.latency_us.fetch_add(us, Ordering::Relaxed);
        result.map_err(|e| {
            self.errors.fetch_add(1, Ordering::Relaxed);
            AdapterError::chain(what, e)
        })
    }

    async fn block(&self, at: BlockNumberOrTag) -> Result<alloy::rpc::types::Block> {
        self.rpc("reading a block", self.provider.get_block_by_number(at))
            .await?
            .ok_or_else(|| AdapterError::chain("reading a block", format!("no block {at}")))
    }

    /// The account this adapter signs as.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    async fn take_nonce(&self) -> Result<u64> {
        let known = *self
            .next_nonce
            .lock()
            .map_err(|_| AdapterError::chain("nonce", "lock poisoned"))?;
        let base = match known {
            Some(n) => n,
            None => {
                let count = self
                    .provider
                    .get_transaction_count(self.address())
                    .pending();
                self.rpc("reading the nonce", count).await?
            }
        };
        let mut guard = self
            .next_nonce
            .lock()
            .map_err(|_| AdapterError::chain("nonce", "lock poisoned"))?;
        // Another prepare may have initialised the counter meanwhile: take the larger.
        let nonce = guard.map_or(base, |n| n.max(base));
        *guard = Some(nonce + 1);
        Ok(nonce)
    }
}

impl ChainAdapter for EvmAdapter {
    fn chain_id(&self) -> ChainId {
        self.chain
    }

    fn head(&self) -> BoxFuture<'_, Result<BlockRef>> {
        Box::pin(async move {
            let block = self.block(BlockNumberOrTag::Latest).await?;
            Ok(BlockRef {
                number: block.header.number,
                hash: block.header.hash,
            })
        })
    }

    fn conditions(&self) -> BoxFuture<'_, Result<Conditions>> {
        Box::pin(async move {
            let head = self.block(BlockNumberOrTag::Latest).await?;
            let span = head.header.number.min(10);
            let block_time_ms = if span == 0 {
                0
            } else {
                let earlier = self
                    .block(BlockNumberOrTag::Number(head.header.number - span))
                    .await?;
                head.header
                    .timestamp
                    .saturating_sub(earlier.header.timestamp)
                    * 1000
                    / span
            };
            let calls = self.calls.load(Ordering::Relaxed);
            Ok(Conditions {
                head: BlockRef {
                    number: head.header.number,
                    hash: head.header.hash,
                },
                base_fee: head.header.base_fee_per_gas.map_or(0, u128::from),
                block_time_ms,
                rpc_calls: calls,
                rpc_errors: self.errors.load(Ordering::Relaxed),
                rpc_latency_ms: self.latency_us.load(Ordering::Relaxed) / calls.max(1) / 1000,
            })
        })
    }

    fn prepare(&self, call: CallRequest) -> BoxFuture<'_, Result<SignedTx>> {
        Box::pin(async move {
            let nonce = self.take_nonce().await?;
            let mut tx = TxEip1559 {
                chain_id: self.chain.0,
                nonce,
                gas_limit: call.gas_limit,
                max_fee_per_gas: call.max_fee_per_gas,
                max_priority_fee_per_gas: call.max_priority_fee_per_gas,
                to: TxKind::Call(call.to),
                value: call.value,
                access_list: Default::default(),
                input: call.data,
            };
            let signature = self
                .signer
                .sign_transaction_sync(&mut tx)
                .map_err(|e| AdapterError::chain("signing", e))?;
            let envelope = TxEnvelope::from(tx.into_signed(signature));
            Ok(SignedTx {
                chain: self.chain,
                from: self.address(),
                nonce,
                hash: *envelope.tx_hash(),
                raw: envelope.encoded_2718().into(),
            })
        })
    }

    fn broadcast<'a>(&'a self, tx: &'a SignedTx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self.provider.send_raw_transaction(&tx.raw).await {
                Ok(_) => Ok(()),
                Err(e) => {
                    // Already pending, or already included: the same bytes cannot do anything twice.
                    let known = self
                        .provider
                        .get_transaction_by_hash(tx.hash)
                        .await
                        .ok()
                        .flatten()
                        .is_some();
                    if known {
                        Ok(())
                    } else {
                        Err(AdapterError::chain("broadcasting", e))
                    }
                }
            }
        })
    }

    fn status<'a>(
        &'a self,
        tx: &'a SignedTx,
        seen: Option<&'a BlockRef>,
    ) -> BoxFuture<'a, Result<TxStatus>> {
        Box::pin(async move {
            let receipt = self
                .rpc(
                    "reading a receipt",
                    self.provider.get_transaction_receipt(tx.hash),
                )
                .await?;
            if let Some(r) = receipt {
                let (Some(number), Some(hash)) = (r.block_number(), r.block_hash()) else {
                    return Ok(TxStatus::Pending);
                };
                let block = BlockRef { number, hash };
                // When `seen` differs, the transaction was re-included after a reorg: the new block
                // is the one that counts, and its confirmations start again.
                return Ok(TxStatus::Included(Inclusion {
                    block,
                    success: r.status(),
                    gas_used: r.gas_used(),
                    logs: r.inner.logs().iter().map(|l| l.inner.clone()).collect(),
                }));
            }
            let pending = self
                .rpc(
                    "reading a transaction",
                    self.provider.get_transaction_by_hash(tx.hash),
                )
                .await?
                .is_some();
            Ok(match (pending, seen) {
                (_, Some(was)) => TxStatus::ReorgedOut { was: *was },
                (true, None) => TxStatus::Pending,
                (false, None) => TxStatus::Dropped,
            })
        })
    }
}
