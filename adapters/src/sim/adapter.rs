//! The sim's `ChainAdapter`: one account on a [`SimChain`].

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use baton_planner::{ChainId, OrderId};

use super::SimChain;
use super::world::World;
use crate::abi::{self, Settlers};
use crate::error::{AdapterError, Result};
use crate::nonce::NonceCounter;
use crate::port::{
    BlockRef, BoxFuture, ChainAdapter, ChainBlock, Conditions, EscrowStatus, Evidence, Inclusion,
    Reserves, RpcHealth, SignedTx, StateKey, StateValue, TxRequest, TxStatus,
};

/// An account on a [`SimChain`]: the `ChainAdapter` of the sim.
pub struct SimAdapter {
    pub(super) chain: SimChain,
    pub(super) signer: PrivateKeySigner,
    pub(super) nonces: NonceCounter,
}

impl SimAdapter {
    /// The chain this adapter is on.
    pub fn sim(&self) -> &SimChain {
        &self.chain
    }

    fn read<T>(&self, what: &str, f: impl FnOnce(&World) -> Result<T>) -> Result<T> {
        let mut w = self.chain.world();
        w.rpc(what)?;
        f(&w)
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl ChainAdapter for SimAdapter {
    fn chain_id(&self) -> ChainId {
        self.chain.chain
    }

    fn account(&self) -> Address {
        self.signer.address()
    }

    fn head(&self) -> BoxFuture<'_, Result<BlockRef>> {
        ready(self.read("reading the head", |w| Ok(w.head_ref())))
    }

    fn new_heads(&self) -> Option<tokio::sync::watch::Receiver<BlockRef>> {
        Some(self.chain.new_heads())
    }

    fn finalized(&self) -> BoxFuture<'_, Result<BlockRef>> {
        ready(self.read("reading the finalized block", |w| {
            let n = w.head().number.saturating_sub(w.config.finality_depth);
            let b = &w.blocks[usize::try_from(n).unwrap_or(0)];
            Ok(BlockRef {
                number: b.number,
                hash: b.hash,
            })
        }))
    }

    fn conditions(&self) -> BoxFuture<'_, Result<Conditions>> {
        ready(self.read("reading conditions", |w| {
            let head = w.head();
            let span = head.number.min(Conditions::BLOCK_TIME_WINDOW);
            let then = w.blocks[w.blocks.len() - 1 - span as usize].timestamp;
            let block_time_ms = Conditions::mean_block_time_ms(span, then, head.timestamp);
            Ok(Conditions {
                head: w.head_ref(),
                timestamp: head.timestamp,
                base_fee: head.base_fee,
                block_time_ms,
                rpc_calls: w.rpc_calls,
                rpc_errors: w.rpc_errors,
                rpc_latency_ms: 0,
            })
        }))
    }

    fn balance(&self, token: Address, owner: Address) -> BoxFuture<'_, Result<U256>> {
        ready(self.read("reading a balance", |w| Ok(w.state.balance(token, owner))))
    }

    fn allowance(
        &self,
        token: Address,
        owner: Address,
        spender: Address,
    ) -> BoxFuture<'_, Result<U256>> {
        ready(self.read("reading an allowance", |w| {
            Ok(w.state.allowance(token, owner, spender))
        }))
    }

    fn reserves(&self, pool: Address) -> BoxFuture<'_, Result<Reserves>> {
        ready(self.read("reading reserves", |w| w.state.reserves(pool)))
    }

    fn block(&self, number: u64) -> BoxFuture<'_, Result<ChainBlock>> {
        ready(self.read("reading a block", |w| {
            w.chain_block(number).ok_or_else(|| {
                AdapterError::chain("reading a block", format!("no block {number} yet"))
            })
        }))
    }

    fn read_at(&self, key: StateKey, number: u64) -> BoxFuture<'_, Result<StateValue>> {
        ready(self.read("reading state at a block", |w| {
            let state = w.state_at(number).ok_or_else(|| {
                AdapterError::chain(
                    "reading state at a block",
                    format!("the sim no longer keeps block {number}"),
                )
            })?;
            Ok(match key {
                StateKey::Balance { token, owner } => {
                    StateValue::Amount(state.balance(token, owner))
                }
                StateKey::Allowance {
                    token,
                    owner,
                    spender,
                } => StateValue::Amount(state.allowance(token, owner, spender)),
                StateKey::Reserves { pool } => StateValue::Reserves(state.reserves(pool)?),
                StateKey::NonceUsed { user, nonce } => {
                    StateValue::Flag(state.nonce_used.contains(&(user, nonce)))
                }
            })
        }))
    }

    fn rpc_health(&self) -> RpcHealth {
        let w = self.chain.world();
        RpcHealth {
            calls: w.rpc_calls,
            errors: w.rpc_errors,
            latency_ms: 0,
        }
    }

    fn escrow(&self, order: OrderId) -> BoxFuture<'_, Result<EscrowStatus>> {
        ready(self.read("reading an escrow", |w| {
            Ok(w.state
                .escrows
                .get(&order.0)
                .map_or(EscrowStatus::None, |e| e.status))
        }))
    }

    fn sign_digest(&self, digest: alloy::primitives::B256) -> Result<alloy::primitives::Signature> {
        abi::sign_hash(&self.signer, digest)
    }

    fn opener(&self, order: OrderId) -> BoxFuture<'_, Result<Option<Address>>> {
        ready(self.read("reading an opener", |w| {
            Ok(w.state.escrows.get(&order.0).map(|e| e.opener))
        }))
    }

    fn attesters(&self) -> BoxFuture<'_, Result<crate::attestation::AttesterSet>> {
        ready(self.read("reading the attester set", |w| {
            Ok(w.config.attesters.clone())
        }))
    }

    fn filled_by(
        &self,
        order: OrderId,
        output_index: u32,
    ) -> BoxFuture<'_, Result<Option<Address>>> {
        ready(self.read("reading a fill", |w| {
            let key = abi::fill_key(order.0, output_index);
            Ok(w.state.filled_by.get(&key).copied())
        }))
    }

    fn nonce_used(&self, user: Address, nonce: U256) -> BoxFuture<'_, Result<bool>> {
        ready(self.read("reading a nonce", |w| {
            Ok(w.state.nonce_used.contains(&(user, nonce)))
        }))
    }

    fn used_nonces(&self, user: Address, at: u64) -> BoxFuture<'_, Result<Vec<U256>>> {
        ready(self.read("reading events", |w| {
            let state = w.state_at(at).ok_or_else(|| {
                AdapterError::chain(
                    "reading events",
                    format!("the sim no longer keeps block {at}"),
                )
            })?;
            Ok(state
                .nonce_used
                .iter()
                .filter(|(u, _)| *u == user)
                .map(|(_, n)| *n)
                .collect())
        }))
    }

    fn evidence(&self, order: OrderId) -> BoxFuture<'_, Result<Evidence>> {
        ready(self.read("reading events", |w| {
            let logs = w
                .events
                .get(&order.0)
                .into_iter()
                .flat_map(|list| list.iter().map(|(l, at)| (l, *at)));
            Ok(abi::evidence(order, &w.settlers, logs))
        }))
    }

    fn settlers(&self) -> Option<Settlers> {
        Some(self.chain.settlers())
    }

    fn prepare(&self, tx: TxRequest) -> BoxFuture<'_, Result<SignedTx>> {
        ready((|| {
            let (settlers, pending_nonce) = {
                let mut w = self.chain.world();
                w.rpc("preparing")?;
                let me = self.signer.address();
                let next = w
                    .mempool
                    .range((me, 0)..=(me, u64::MAX))
                    .map(|((_, n), _)| n + 1)
                    .max()
                    .unwrap_or_default()
                    .max(w.state.nonce(me));
                (w.settlers, next)
            };
            let nonce = match tx.nonce {
                Some(n) => n,
                None => self.nonces.take_at(pending_nonce)?,
            };
            abi::sign(
                &self.signer,
                self.chain.chain,
                nonce,
                abi::encode(&tx.op, &settlers),
                &tx.fees,
            )
        })())
    }

    fn release(&self, tx: &SignedTx) {
        if tx.from == self.signer.address() {
            let _ = self.nonces.give_back(tx.nonce);
        }
    }

    fn broadcast<'a>(&'a self, tx: &'a SignedTx) -> BoxFuture<'a, Result<()>> {
        ready((|| {
            let mut w = self.chain.world();
            w.rpc("broadcasting")?;
            let behind = w.lagged_read();
            w.accept(tx, behind)
        })())
    }

    fn status<'a>(
        &'a self,
        tx: &'a SignedTx,
        seen: Option<&'a BlockRef>,
    ) -> BoxFuture<'a, Result<TxStatus>> {
        ready((|| {
            let mut w = self.chain.world();
            w.rpc("reading a receipt")?;
            let behind = w.lagged_read();
            if let Some(r) = w.receipt(&tx.hash, behind) {
                return Ok(TxStatus::Included(Inclusion {
                    block: r.block,
                    success: r.success,
                    revert_reason: r.revert_reason.clone(),
                    gas_used: r.gas_used,
                    logs: r.logs.clone(),
                }));
            }
            let pending = w.pending.contains_key(&tx.hash);
            Ok(match (pending, seen) {
                (_, Some(was)) => TxStatus::ReorgedOut { was: *was },
                (true, None) => TxStatus::Pending,
                (false, None) => TxStatus::Dropped,
            })
        })())
    }
}
