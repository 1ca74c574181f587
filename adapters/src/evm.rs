//! The EVM adapter on alloy: local signing with a nonce manager that keeps several transactions in
//! flight (the next nonce is assigned locally, not read back per transaction), idempotent raw
//! broadcast, receipts and reorg detection.
//!
//! **Status:** first cut; see [`crate::port`] for what the port does not cover yet.

use std::sync::Mutex;

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::{BlockNumberOrTag, Encodable2718};
use alloy::network::{ReceiptResponse, TxSignerSync};
use alloy::primitives::{Address, TxKind};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::http::reqwest::Url;
use baton_planner::ChainId;

use crate::error::{AdapterError, Result};
use crate::port::{BlockRef, BoxFuture, CallRequest, ChainAdapter, Inclusion, SignedTx, TxStatus};

/// An EVM chain reached over JSON-RPC, acting as one account.
pub struct EvmAdapter {
    chain: ChainId,
    provider: DynProvider,
    signer: PrivateKeySigner,
    /// The next nonce to assign; `None` until read from the node.
    next_nonce: Mutex<Option<u64>>,
}

impl EvmAdapter {
    /// Connects to `rpc_url` (chain `chain`) acting as `signer`.
    pub fn new(chain: ChainId, rpc_url: Url, signer: PrivateKeySigner) -> Self {
        Self {
            chain,
            provider: ProviderBuilder::new().connect_http(rpc_url).erased(),
            signer,
            next_nonce: Mutex::new(None),
        }
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
            None => self
                .provider
                .get_transaction_count(self.address())
                .pending()
                .await
                .map_err(|e| AdapterError::chain("reading the nonce", e))?,
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

fn rpc_error(what: &str) -> impl Fn(alloy::transports::TransportError) -> AdapterError + '_ {
    move |e| AdapterError::chain(what, e)
}

impl ChainAdapter for EvmAdapter {
    fn chain_id(&self) -> ChainId {
        self.chain
    }

    fn head(&self) -> BoxFuture<'_, Result<BlockRef>> {
        Box::pin(async move {
            let block = self
                .provider
                .get_block_by_number(BlockNumberOrTag::Latest)
                .await
                .map_err(rpc_error("reading the head"))?
                .ok_or_else(|| AdapterError::chain("reading the head", "no latest block"))?;
            Ok(BlockRef {
                number: block.header.number,
                hash: block.header.hash,
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
                .provider
                .get_transaction_receipt(tx.hash)
                .await
                .map_err(rpc_error("reading a receipt"))?;
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
                .provider
                .get_transaction_by_hash(tx.hash)
                .await
                .map_err(rpc_error("reading a transaction"))?
                .is_some();
            Ok(match (pending, seen) {
                (_, Some(was)) => TxStatus::ReorgedOut { was: *was },
                (true, None) => TxStatus::Pending,
                (false, None) => TxStatus::Dropped,
            })
        })
    }
}
