//! A sim chain's blocks, mempool and faults: which transactions go into the next block, and what a
//! node would say to a broadcast.

use std::collections::{BTreeMap, HashMap, HashSet};

use alloy::consensus::{Transaction, TxEnvelope};
use alloy::eips::Decodable2718;
use alloy::primitives::{Address, B256, Bytes, Log, keccak256};
use alloy::sol_types::SolCall;

use super::exec::{Ctx, State, gas_of};
use super::{MAX_REORG, SimConfig};
use crate::abi::Settlers;
use crate::contracts::{OriginSettler, Pool, TestToken};
use crate::error::{AdapterError, Refusal, Result};
use crate::port::{BlockRef, BlockTx, ChainBlock, EventAt, SignedTx};

#[derive(Clone, Debug)]
pub(super) struct PendingTx {
    pub(super) hash: B256,
    pub(super) from: Address,
    pub(super) to: Address,
    pub(super) data: Bytes,
    pub(super) max_fee: u128,
    pub(super) priority_fee: u128,
    pub(super) kind: &'static str,
}

#[derive(Clone, Debug)]
pub(super) struct Receipt {
    pub(super) block: BlockRef,
    pub(super) from: Address,
    pub(super) success: bool,
    pub(super) revert_reason: Option<String>,
    pub(super) gas_used: u64,
    pub(super) logs: Vec<Log>,
}

#[derive(Clone, Debug)]
pub(super) struct SimBlock {
    pub(super) number: u64,
    pub(super) hash: B256,
    pub(super) timestamp: u64,
    pub(super) base_fee: u128,
    pub(super) txs: Vec<B256>,
}

pub(super) struct World {
    pub(super) config: SimConfig,
    pub(super) settlers: Settlers,
    pub(super) executor: Address,
    pub(super) tokens: HashSet<Address>,
    pub(super) state: State,
    pub(super) blocks: Vec<SimBlock>,
    /// Post-states of the last `MAX_REORG + 1` blocks, oldest first.
    pub(super) states: Vec<State>,
    pub(super) receipts: HashMap<B256, Receipt>,
    pub(super) mempool: BTreeMap<(Address, u64), PendingTx>,
    /// Where each pending transaction sits in `mempool`, by hash.
    pub(super) pending: HashMap<B256, (Address, u64)>,
    /// Settler events by order id (their first topic), for `evidence`.
    pub(super) events: HashMap<B256, Vec<(Log, EventAt)>>,
    pub(super) time_jump: u64,
    pub(super) fork: u64,
    pub(super) stall: u64,
    pub(super) spike: Option<(u128, u64)>,
    pub(super) revert_next: Vec<(String, String)>,
    pub(super) drop_next: Vec<String>,
    pub(super) rpc_failure: f64,
    /// Every `.0`-th receipt read answers as a node `.1` blocks behind (see
    /// [`super::SimChain::lag_receipts`]); `.2` counts the reads.
    pub(super) lag: Option<(u64, u64, u64)>,
    pub(super) rng: fastrand::Rng,
    pub(super) rpc_calls: u64,
    pub(super) rpc_errors: u64,
}

impl World {
    /// Counts one RPC call and fails it when the injected failure rate says so.
    pub(super) fn rpc(&mut self, what: &str) -> Result<()> {
        self.rpc_calls += 1;
        if self.rpc_failure > 0.0 && self.rng.f64() < self.rpc_failure {
            self.rpc_errors += 1;
            return Err(AdapterError::chain(what, "sim: injected RPC failure"));
        }
        Ok(())
    }

    pub(super) fn head(&self) -> &SimBlock {
        // The genesis block always exists.
        &self.blocks[self.blocks.len() - 1]
    }

    /// Block `number` as a follower reads it, if the chain has it.
    pub(super) fn chain_block(&self, number: u64) -> Option<ChainBlock> {
        let b = self.blocks.get(usize::try_from(number).ok()?)?;
        let parent = match number.checked_sub(1) {
            Some(p) => self.blocks[usize::try_from(p).ok()?].hash,
            None => B256::ZERO,
        };
        let txs: Vec<BlockTx> = b
            .txs
            .iter()
            .filter_map(|hash| {
                let r = self.receipts.get(hash)?;
                Some(BlockTx {
                    hash: *hash,
                    from: r.from,
                    success: r.success,
                    gas_used: r.gas_used,
                    logs: r.logs.clone(),
                })
            })
            .collect();
        Some(ChainBlock {
            block: BlockRef {
                number: b.number,
                hash: b.hash,
            },
            parent,
            timestamp: b.timestamp,
            base_fee: b.base_fee,
            gas_limit: 0,
            logs: Vec::new(),
            txs: Some(txs),
        })
    }

    /// The state after block `number`, while the sim keeps it (the last `MAX_REORG + 1` blocks).
    pub(super) fn state_at(&self, number: u64) -> Option<&State> {
        let behind = self.head().number.checked_sub(number)?;
        let index = self
            .states
            .len()
            .checked_sub(1)?
            .checked_sub(usize::try_from(behind).ok()?)?;
        self.states.get(index)
    }

    pub(super) fn head_ref(&self) -> BlockRef {
        let h = self.head();
        BlockRef {
            number: h.number,
            hash: h.hash,
        }
    }

    pub(super) fn classify(&self, to: Address, data: &[u8]) -> &'static str {
        let selector: [u8; 4] = data
            .get(..4)
            .and_then(|s| s.try_into().ok())
            .unwrap_or_default();
        if to == self.settlers.origin {
            match selector {
                OriginSettler::openForCall::SELECTOR => "open",
                OriginSettler::settleCall::SELECTOR => "settle",
                OriginSettler::refundCall::SELECTOR => "refund",
                OriginSettler::refundWithCancelCall::SELECTOR => "refund_with_cancel",
                _ => "call",
            }
        } else if to == self.settlers.destination {
            "fill"
        } else if selector == Pool::swapCall::SELECTOR {
            "swap"
        } else if selector == TestToken::approveCall::SELECTOR {
            "approve"
        } else if selector == TestToken::transferCall::SELECTOR {
            "transfer"
        } else {
            "call"
        }
    }

    pub(super) fn mine_one(&mut self) {
        if self.stall > 0 {
            self.stall -= 1;
            return;
        }
        let parent = self.head().clone();
        let number = parent.number + 1;
        let timestamp = parent.timestamp + self.config.block_time_secs + self.time_jump;
        self.time_jump = 0;
        let base_fee = match &mut self.spike {
            Some((fee, left)) if *left > 0 => {
                *left -= 1;
                *fee
            }
            _ => self.config.base_fee,
        };
        // Each sender's transactions in nonce order, while their fee covers the base fee.
        let senders: Vec<Address> = self.mempool.keys().map(|(a, _)| *a).collect();
        let mut included = Vec::new();
        let mut seen = HashSet::new();
        for sender in senders {
            if !seen.insert(sender) {
                continue;
            }
            let mut nonce = self.state.nonce(sender);
            while let Some(tx) = self.mempool.get(&(sender, nonce)) {
                if tx.max_fee < base_fee {
                    break;
                }
                let tx = tx.clone();
                self.mempool.remove(&(sender, nonce));
                self.pending.remove(&tx.hash);
                included.push(tx);
                nonce += 1;
                self.state.nonces.insert(sender, nonce);
            }
        }
        let hash = {
            let mut pre = Vec::new();
            pre.extend_from_slice(&self.config.chain.0.to_be_bytes());
            pre.extend_from_slice(&number.to_be_bytes());
            pre.extend_from_slice(parent.hash.as_slice());
            pre.extend_from_slice(&timestamp.to_be_bytes());
            pre.extend_from_slice(&self.fork.to_be_bytes());
            for tx in &included {
                pre.extend_from_slice(tx.hash.as_slice());
            }
            keccak256(pre)
        };
        let block = BlockRef { number, hash };
        for tx in &included {
            let mut next = self.state.clone();
            let mut ctx = Ctx {
                chain: self.config.chain,
                settlers: self.settlers,
                executor: self.executor,
                attesters: &self.config.attesters,
                settle_window: self.config.settle_window_secs,
                tokens: &self.tokens,
                timestamp,
                logs: Vec::new(),
            };
            let injected = self.revert_next.iter().position(|(k, _)| k == tx.kind);
            let result = match injected {
                Some(i) => Err(format!(
                    "sim: injected revert: {}",
                    self.revert_next.remove(i).1
                )),
                None => ctx.call(&mut next, tx.from, tx.to, &tx.data),
            };
            let receipt = match result {
                Ok(()) => {
                    self.state = next;
                    let at = EventAt { block, tx: tx.hash };
                    for log in &ctx.logs {
                        let settler = log.address == self.settlers.origin
                            || log.address == self.settlers.destination;
                        if let (true, Some(order)) = (settler, log.data.topics().get(1)) {
                            self.events
                                .entry(*order)
                                .or_default()
                                .push((log.clone(), at));
                        }
                    }
                    Receipt {
                        block,
                        from: tx.from,
                        success: true,
                        revert_reason: None,
                        gas_used: gas_of(tx.kind),
                        logs: ctx.logs,
                    }
                }
                Err(reason) => Receipt {
                    block,
                    from: tx.from,
                    success: false,
                    revert_reason: Some(reason),
                    gas_used: 30_000,
                    logs: Vec::new(),
                },
            };
            self.receipts.insert(tx.hash, receipt);
        }
        self.blocks.push(SimBlock {
            number,
            hash,
            timestamp,
            base_fee,
            txs: included.iter().map(|t| t.hash).collect(),
        });
        self.states.push(self.state.clone());
        if self.states.len() > MAX_REORG + 1 {
            self.states.remove(0);
        }
    }

    /// Whether this read is answered by a lagging node (see [`super::SimChain::lag_receipts`]):
    /// how many blocks behind.
    pub(super) fn lagged_read(&mut self) -> Option<u64> {
        let (every, blocks, reads) = self.lag.as_mut()?;
        *reads += 1;
        (*reads % *every == 0).then_some(*blocks)
    }

    /// The receipt of `hash`, as a node `behind` blocks behind the head knows it.
    pub(super) fn receipt(&self, hash: &B256, behind: Option<u64>) -> Option<&Receipt> {
        let head = self.head().number;
        self.receipts
            .get(hash)
            .filter(|r| behind.is_none_or(|b| r.block.number + b <= head))
    }

    /// Takes `tx` into the mempool; `behind`: the node answering lags that many blocks (it does
    /// not know of a recent inclusion, and refuses the transaction for its used nonce).
    pub(super) fn accept(&mut self, tx: &SignedTx, behind: Option<u64>) -> Result<()> {
        let bad = |reason: &str| AdapterError::rejected("broadcasting", reason);
        let taken = |refusal, reason: &str| AdapterError::refused("broadcasting", refusal, reason);
        if self.receipt(&tx.hash, behind).is_some() || self.pending.contains_key(&tx.hash) {
            return Ok(());
        }
        let envelope = TxEnvelope::decode_2718(&mut tx.raw.as_ref())
            .map_err(|_| bad("undecodable transaction"))?;
        let TxEnvelope::Eip1559(signed) = &envelope else {
            return Err(bad("sim takes EIP-1559 transactions only"));
        };
        if *envelope.tx_hash() != tx.hash {
            return Err(bad("hash does not match the bytes"));
        }
        let from = crate::signers::recover(signed.signature_hash(), *signed.signature())
            .map_err(|_| bad("invalid signature"))?;
        let t = signed.tx();
        if t.chain_id != self.config.chain.0 {
            return Err(bad("invalid chain id"));
        }
        if t.gas_limit < 21_000 {
            return Err(bad("intrinsic gas too low"));
        }
        if t.max_priority_fee_per_gas > t.max_fee_per_gas {
            return Err(bad("max priority fee per gas higher than max fee per gas"));
        }
        let expected = self.state.nonce(from);
        if t.nonce < expected {
            return Err(taken(Refusal::NonceUsed, "nonce too low"));
        }
        let to = t
            .to()
            .ok_or_else(|| bad("contract creation is not modelled"))?;
        if let Some(old) = self.mempool.get(&(from, t.nonce)) {
            let enough = |new: u128, old: u128| new >= old.saturating_add(old / 10);
            if !(enough(t.max_fee_per_gas, old.max_fee)
                && enough(t.max_priority_fee_per_gas, old.priority_fee))
            {
                return Err(taken(
                    Refusal::Underpriced,
                    "replacement transaction underpriced",
                ));
            }
        }
        let kind = self.classify(to, t.input());
        if let Some(i) = self.drop_next.iter().position(|k| k == kind) {
            // Accepted, then lost before any block: the node forgets it.
            self.drop_next.remove(i);
            return Ok(());
        }
        if let Some(old) = self.mempool.get(&(from, t.nonce)) {
            self.pending.remove(&old.hash);
        }
        self.pending.insert(tx.hash, (from, t.nonce));
        self.mempool.insert(
            (from, t.nonce),
            PendingTx {
                hash: tx.hash,
                from,
                to,
                data: t.input().clone(),
                max_fee: t.max_fee_per_gas,
                priority_fee: t.max_priority_fee_per_gas,
                kind,
            },
        );
        Ok(())
    }
}
