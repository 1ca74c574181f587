//! `sim`: an in-memory EVM-like chain for fast, deterministic tests, with fault injection.
//!
//! The sim takes the same signed EIP-1559 transactions as a node (same raw bytes, same hashes) and
//! executes their calldata against Rust models of the fixture contracts — `TestToken`, `Pool`,
//! `OriginSettler`, `DestinationSettler` — with the same checks, the same revert reasons and the same
//! events, so [`crate::conformance`] holds for it exactly as for anvil. Blocks are produced only when
//! [`SimChain::mine`] is called; time moves with blocks (`block_time_secs`) and
//! [`SimChain::advance_time`]. Nothing depends on the wall clock or on scheduling.
//!
//! Faults, all deterministic (the RPC failures are drawn from a generator seeded by
//! [`SimConfig::seed`]): [`SimChain::revert_next`] (the next transaction of an op kind reverts),
//! [`SimChain::drop_next`] (the next broadcast of a kind is accepted and lost) and
//! [`SimChain::drop_tx`], [`SimChain::stall`] (block production stops for N `mine` calls),
//! [`SimChain::reorg`] (the last N blocks are replaced; their transactions leave the chain),
//! [`SimChain::spike_base_fee`], and [`SimChain::fail_rpc_fraction`].
//!
//! Not modelled: native ether and gas payment (gas used is a fixed figure per op), EIP-1559 base fee
//! dynamics (the base fee is constant unless spiked), block gas limits, and contracts other than the
//! fixtures' (a call to any other address reverts with `sim: no contract at …`), token `permit`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use alloy::consensus::{Transaction, TxEnvelope};
use alloy::eips::Decodable2718;
use alloy::primitives::{Address, B256, Bytes, Log, LogData, Signature, U256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent, SolInterface, SolStruct, SolValue};
use baton_planner::order::{self, BatonOrderData};
use baton_planner::{ChainId, OrderId};

use crate::abi::{self, Settlers};
use crate::contracts::{
    Cancel, DestinationSettler, Fill, OriginSettler, Pool, TestToken, planner_order,
};
use crate::error::{AdapterError, Result};
use crate::port::{
    BlockRef, BoxFuture, ChainAdapter, Conditions, EscrowStatus, EventAt, Evidence, Inclusion,
    Reserves, SignedTx, TxRequest, TxStatus,
};

/// How many past blocks' states the sim keeps: the deepest reorg it can make.
pub const MAX_REORG: usize = 64;

/// A sim chain's parameters.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Chain id.
    pub chain: ChainId,
    /// Timestamp of the genesis block, unix seconds.
    pub genesis_time: u64,
    /// Seconds between blocks.
    pub block_time_secs: u64,
    /// Base fee of every block unless spiked, wei per gas.
    pub base_fee: u128,
    /// Blocks behind the head at which a block is final.
    pub finality_depth: u64,
    /// The attester whose signatures the origin settler accepts.
    pub attester: Address,
    /// Seed of the fault generator.
    pub seed: u64,
}

impl SimConfig {
    /// A chain with 1 s blocks, a 1 gwei base fee, finality at 2 blocks, genesis at `genesis_time`.
    pub fn new(chain: ChainId, attester: Address, genesis_time: u64) -> Self {
        Self {
            chain,
            genesis_time,
            block_time_secs: 1,
            base_fee: 1_000_000_000,
            finality_depth: 2,
            attester,
            seed: chain.0,
        }
    }
}

/// Fixed gas figures per op (the sim does not meter execution).
fn gas_of(kind: &str) -> u64 {
    match kind {
        "open" => 160_000,
        "fill" => 110_000,
        "settle" => 80_000,
        "refund" | "refund_with_cancel" => 70_000,
        "swap" => 90_000,
        "approve" => 46_000,
        "transfer" => 52_000,
        _ => 60_000,
    }
}

#[derive(Clone, Debug)]
struct PoolState {
    token0: Address,
    token1: Address,
    reserve0: U256,
    reserve1: U256,
    fee_bps: U256,
}

#[derive(Clone, Debug)]
struct Escrow {
    user: Address,
    fill_deadline: u32,
    status: EscrowStatus,
    inputs: Vec<(Address, U256)>,
}

/// The contracts' storage, cloned per block so a reorg can go back.
#[derive(Clone, Debug, Default)]
struct State {
    balances: HashMap<(Address, Address), U256>,
    allowances: HashMap<(Address, Address, Address), U256>,
    nonces: HashMap<Address, u64>,
    pools: HashMap<Address, PoolState>,
    escrows: HashMap<B256, Escrow>,
    nonce_used: HashSet<(Address, U256)>,
    filled_by: HashMap<B256, Address>,
}

/// What one transaction's execution sees besides the state.
struct Ctx<'a> {
    chain: ChainId,
    settlers: Settlers,
    executor: Address,
    attester: Address,
    tokens: &'a HashSet<Address>,
    timestamp: u64,
    logs: Vec<Log>,
}

type Exec<T = ()> = std::result::Result<T, String>;

fn require(ok: bool, reason: &str) -> Exec {
    if ok { Ok(()) } else { Err(reason.to_owned()) }
}

impl Ctx<'_> {
    fn emit(&mut self, address: Address, data: LogData) {
        self.logs.push(Log { address, data });
    }

    fn token(&self, token: Address) -> Exec {
        require(
            self.tokens.contains(&token),
            &format!("sim: no contract at {token}"),
        )
    }

    fn move_tokens(
        &mut self,
        s: &mut State,
        token: Address,
        from: Address,
        to: Address,
        amount: U256,
    ) -> Exec {
        self.token(token)?;
        let have = s.balances.get(&(token, from)).copied().unwrap_or_default();
        require(have >= amount, "TestToken: balance too low")?;
        s.balances.insert((token, from), have - amount);
        *s.balances.entry((token, to)).or_default() += amount;
        self.emit(
            token,
            TestToken::Transfer {
                from,
                to,
                value: amount,
            }
            .encode_log_data(),
        );
        Ok(())
    }

    fn transfer_from(
        &mut self,
        s: &mut State,
        token: Address,
        spender: Address,
        from: Address,
        to: Address,
        amount: U256,
    ) -> Exec {
        self.token(token)?;
        let allowed = s
            .allowances
            .get(&(token, from, spender))
            .copied()
            .unwrap_or_default();
        if allowed != U256::MAX {
            require(allowed >= amount, "TestToken: allowance too low")?;
            s.allowances
                .insert((token, from, spender), allowed - amount);
        }
        self.move_tokens(s, token, from, to, amount)
    }

    /// Runs a call from `from` to `to`; the state is the caller's to roll back on `Err`.
    fn call(&mut self, s: &mut State, from: Address, to: Address, data: &[u8]) -> Exec {
        if to == self.settlers.origin {
            let call = OriginSettler::OriginSettlerCalls::abi_decode(data)
                .map_err(|_| "OriginSettler: unknown call".to_owned())?;
            self.origin(s, call)
        } else if to == self.settlers.destination {
            let call = DestinationSettler::DestinationSettlerCalls::abi_decode(data)
                .map_err(|_| "DestinationSettler: unknown call".to_owned())?;
            match call {
                DestinationSettler::DestinationSettlerCalls::fill(c) => {
                    self.fill(s, from, c.orderId, &c.originData)
                }
                _ => Err("DestinationSettler: view called as a transaction".to_owned()),
            }
        } else if s.pools.contains_key(&to) {
            let call =
                Pool::PoolCalls::abi_decode(data).map_err(|_| "Pool: unknown call".to_owned())?;
            match call {
                Pool::PoolCalls::swap(c) => {
                    self.swap(s, from, to, c.tokenIn, c.amountIn, c.minOut, c.to)
                }
                _ => Err("sim: Pool supports swap only".to_owned()),
            }
        } else if self.tokens.contains(&to) {
            let call = TestToken::TestTokenCalls::abi_decode(data)
                .map_err(|_| "TestToken: unknown call".to_owned())?;
            match call {
                TestToken::TestTokenCalls::transfer(c) => {
                    self.move_tokens(s, to, from, c.to, c.amount)
                }
                TestToken::TestTokenCalls::transferFrom(c) => {
                    self.transfer_from(s, to, from, c.from, c.to, c.amount)
                }
                TestToken::TestTokenCalls::approve(c) => {
                    s.allowances.insert((to, from, c.spender), c.amount);
                    self.emit(
                        to,
                        TestToken::Approval {
                            owner: from,
                            spender: c.spender,
                            value: c.amount,
                        }
                        .encode_log_data(),
                    );
                    Ok(())
                }
                TestToken::TestTokenCalls::mint(_) => {
                    Err("TestToken: only the minter mints".to_owned())
                }
                _ => Err("sim: TestToken call not modelled".to_owned()),
            }
        } else {
            Err(format!("sim: no contract at {to}"))
        }
    }

    fn origin(&mut self, s: &mut State, call: OriginSettler::OriginSettlerCalls) -> Exec {
        use OriginSettler::OriginSettlerCalls as C;
        let settler = self.settlers.origin;
        match call {
            C::openFor(c) => self.open(s, c.order, &c.signature),
            C::settle(c) => {
                let e = self.opened(s, c.id)?;
                let digest = Fill {
                    orderId: c.id,
                    filler: c.filler,
                }
                .eip712_signing_hash(&order::domain(self.chain, settler));
                require(
                    recover(digest, &c.attestation)? == self.attester,
                    "OriginSettler: bad attestation",
                )?;
                self.pay(s, c.id, &e, c.filler, EscrowStatus::Settled)?;
                self.emit(
                    settler,
                    OriginSettler::Settled {
                        orderId: c.id,
                        filler: c.filler,
                    }
                    .encode_log_data(),
                );
                Ok(())
            }
            C::refund(c) => {
                let e = self.opened(s, c.id)?;
                require(
                    self.timestamp > u64::from(e.fill_deadline),
                    "OriginSettler: fill deadline not passed",
                )?;
                self.refund(s, c.id, &e)
            }
            C::refundWithCancel(c) => {
                let e = self.opened(s, c.id)?;
                let digest = Cancel { orderId: c.id }
                    .eip712_signing_hash(&order::domain(self.chain, settler));
                require(
                    recover(digest, &c.attestation)? == self.attester,
                    "OriginSettler: bad attestation",
                )?;
                self.refund(s, c.id, &e)
            }
            C::open(_) => {
                Err("OriginSettler: on-chain orders are not supported; use openFor".to_owned())
            }
            _ => Err("OriginSettler: view called as a transaction".to_owned()),
        }
    }

    fn opened(&self, s: &State, id: B256) -> Exec<Escrow> {
        match s.escrows.get(&id) {
            Some(e) if e.status == EscrowStatus::Opened => Ok(e.clone()),
            _ => Err("OriginSettler: not open".to_owned()),
        }
    }

    fn pay(&mut self, s: &mut State, id: B256, e: &Escrow, to: Address, st: EscrowStatus) -> Exec {
        if let Some(stored) = s.escrows.get_mut(&id) {
            stored.status = st;
        }
        for &(token, amount) in &e.inputs {
            self.move_tokens(s, token, self.settlers.origin, to, amount)?;
        }
        Ok(())
    }

    fn refund(&mut self, s: &mut State, id: B256, e: &Escrow) -> Exec {
        self.pay(s, id, e, e.user, EscrowStatus::Refunded)?;
        self.emit(
            self.settlers.origin,
            OriginSettler::Refunded {
                orderId: id,
                user: e.user,
            }
            .encode_log_data(),
        );
        Ok(())
    }

    fn open(
        &mut self,
        s: &mut State,
        o: OriginSettler::GaslessCrossChainOrder,
        signature: &[u8],
    ) -> Exec {
        let settler = self.settlers.origin;
        require(o.originSettler == settler, "OriginSettler: wrong settler")?;
        require(
            o.originChainId == U256::from(self.chain.0),
            "OriginSettler: wrong chain",
        )?;
        require(
            self.timestamp <= u64::from(o.openDeadline),
            "OriginSettler: open deadline passed",
        )?;
        require(
            o.orderDataType == order::order_data_type(),
            "OriginSettler: unknown order data type",
        )?;
        let planner_order = planner_order(&o);
        let id = planner_order.eip712_signing_hash(&order::domain(self.chain, settler));
        require(
            recover(id, signature)? == o.user,
            "OriginSettler: bad signature",
        )?;
        require(
            !s.nonce_used.contains(&(o.user, o.nonce)),
            "OriginSettler: nonce used",
        )?;
        s.nonce_used.insert((o.user, o.nonce));
        let data = BatonOrderData::abi_decode(&o.orderData)
            .map_err(|_| "OriginSettler: undecodable order data".to_owned())?;
        let mut inputs = Vec::new();
        for input in &data.inputs {
            require(
                input.chainId == U256::from(self.chain.0),
                "OriginSettler: input on another chain",
            )?;
            inputs.push((input.token, input.amount));
            self.transfer_from(s, input.token, settler, o.user, settler, input.amount)?;
        }
        s.escrows.insert(
            id,
            Escrow {
                user: o.user,
                fill_deadline: o.fillDeadline,
                status: EscrowStatus::Opened,
                inputs,
            },
        );
        let resolved = resolve(&o, id, &data);
        self.emit(
            settler,
            OriginSettler::Open {
                orderId: id,
                resolvedOrder: resolved,
            }
            .encode_log_data(),
        );
        Ok(())
    }

    fn fill(&mut self, s: &mut State, filler: Address, order_id: B256, origin_data: &[u8]) -> Exec {
        let (index, output, calls) =
            <(u32, order::Output, Vec<order::Call>)>::abi_decode_params(origin_data)
                .map_err(|_| "DestinationSettler: undecodable origin data".to_owned())?;
        require(
            output.chainId == U256::from(self.chain.0),
            "DestinationSettler: wrong chain",
        )?;
        let key = keccak256((order_id, index).abi_encode_params());
        require(
            !s.filled_by.contains_key(&key),
            "DestinationSettler: already filled",
        )?;
        s.filled_by.insert(key, filler);
        let token = Address::from_word(output.token);
        let recipient = Address::from_word(output.recipient);
        let settler = self.settlers.destination;
        self.transfer_from(s, token, settler, filler, recipient, output.amount)?;
        for call in &calls {
            require(
                call.outputIndex == index,
                "DestinationSettler: call for another output",
            )?;
            let executor = self.executor;
            self.call(s, executor, call.target, &call.data)?;
        }
        self.emit(
            settler,
            DestinationSettler::Filled {
                orderId: order_id,
                outputIndex: index,
                filler,
                token,
                amount: output.amount,
                recipient,
            }
            .encode_log_data(),
        );
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn swap(
        &mut self,
        s: &mut State,
        from: Address,
        pool: Address,
        token_in: Address,
        amount_in: U256,
        min_out: U256,
        to: Address,
    ) -> Exec {
        let p = s.pools.get(&pool).cloned().ok_or("Pool: unknown pool")?;
        let (r_in, r_out, token_out) = if token_in == p.token0 {
            (p.reserve0, p.reserve1, p.token1)
        } else {
            require(token_in == p.token1, "Pool: unknown token")?;
            (p.reserve1, p.reserve0, p.token0)
        };
        let overflow = || "sim: arithmetic overflow".to_owned();
        let in_with_fee = amount_in
            .checked_mul(U256::from(10_000) - p.fee_bps)
            .ok_or_else(overflow)?;
        let out = in_with_fee
            .checked_mul(r_out)
            .ok_or_else(overflow)?
            .checked_div(
                r_in.checked_mul(U256::from(10_000))
                    .and_then(|x| x.checked_add(in_with_fee))
                    .ok_or_else(overflow)?,
            )
            .ok_or_else(overflow)?;
        require(out >= min_out, "Pool: output below minOut")?;
        require(out > U256::ZERO, "Pool: zero output")?;
        self.transfer_from(s, token_in, pool, from, pool, amount_in)?;
        self.move_tokens(s, token_out, pool, to, out)?;
        let stored = s.pools.get_mut(&pool).ok_or("Pool: unknown pool")?;
        if token_in == stored.token0 {
            stored.reserve0 += amount_in;
            stored.reserve1 -= out;
        } else {
            stored.reserve1 += amount_in;
            stored.reserve0 -= out;
        }
        let (reserve0, reserve1) = (stored.reserve0, stored.reserve1);
        self.emit(
            pool,
            Pool::Swap {
                sender: from,
                tokenIn: token_in,
                amountIn: amount_in,
                amountOut: out,
                to,
            }
            .encode_log_data(),
        );
        self.emit(pool, Pool::Sync { reserve0, reserve1 }.encode_log_data());
        Ok(())
    }
}

/// `ecrecover` as the settler does it: 65 bytes, low `s`, a non-zero signer.
fn recover(digest: B256, signature: &[u8]) -> Exec<Address> {
    require(signature.len() == 65, "OriginSettler: bad signature length")?;
    let sig = Signature::from_raw(signature).map_err(|_| "OriginSettler: bad signature")?;
    require(
        sig.normalize_s().is_none(),
        "OriginSettler: malleable signature",
    )?;
    sig.recover_address_from_prehash(&digest)
        .map_err(|_| "OriginSettler: bad signature".to_owned())
}

/// The settler's `_resolve`: the order as ERC-7683 `ResolvedCrossChainOrder`.
fn resolve(
    o: &OriginSettler::GaslessCrossChainOrder,
    id: B256,
    data: &BatonOrderData,
) -> OriginSettler::ResolvedCrossChainOrder {
    let output = |x: &order::Output| OriginSettler::Output {
        token: x.token,
        amount: x.amount,
        recipient: x.recipient,
        chainId: x.chainId,
    };
    OriginSettler::ResolvedCrossChainOrder {
        user: o.user,
        originChainId: o.originChainId,
        openDeadline: o.openDeadline,
        fillDeadline: o.fillDeadline,
        orderId: id,
        maxSpent: data.outputs.iter().map(output).collect(),
        minReceived: data
            .inputs
            .iter()
            .map(|i| OriginSettler::Output {
                token: i.token.into_word(),
                amount: i.amount,
                recipient: B256::ZERO,
                chainId: i.chainId,
            })
            .collect(),
        fillInstructions: data
            .outputs
            .iter()
            .enumerate()
            .map(|(j, out)| {
                let j = j as u32;
                let calls: Vec<order::Call> = data
                    .calls
                    .iter()
                    .filter(|c| c.outputIndex == j)
                    .cloned()
                    .collect();
                OriginSettler::FillInstruction {
                    destinationChainId: out.chainId.saturating_to(),
                    destinationSettler: B256::ZERO,
                    originData: abi::origin_data(j, out, &calls),
                }
            })
            .collect(),
    }
}

#[derive(Clone, Debug)]
struct PendingTx {
    hash: B256,
    from: Address,
    to: Address,
    data: Bytes,
    max_fee: u128,
    priority_fee: u128,
    kind: &'static str,
}

#[derive(Clone, Debug)]
struct Receipt {
    block: BlockRef,
    success: bool,
    revert_reason: Option<String>,
    gas_used: u64,
    logs: Vec<Log>,
}

#[derive(Clone, Debug)]
struct SimBlock {
    number: u64,
    hash: B256,
    timestamp: u64,
    base_fee: u128,
    txs: Vec<B256>,
}

struct World {
    config: SimConfig,
    settlers: Settlers,
    executor: Address,
    tokens: HashSet<Address>,
    state: State,
    blocks: Vec<SimBlock>,
    /// Post-states of the last `MAX_REORG + 1` blocks, oldest first.
    states: Vec<State>,
    receipts: HashMap<B256, Receipt>,
    mempool: BTreeMap<(Address, u64), PendingTx>,
    time_jump: u64,
    fork: u64,
    stall: u64,
    spike: Option<(u128, u64)>,
    revert_next: Vec<(String, String)>,
    drop_next: Vec<String>,
    rpc_failure: f64,
    rng: fastrand::Rng,
    rpc_calls: u64,
    rpc_errors: u64,
}

impl World {
    /// Counts one RPC call and fails it when the injected failure rate says so.
    fn rpc(&mut self, what: &str) -> Result<()> {
        self.rpc_calls += 1;
        if self.rpc_failure > 0.0 && self.rng.f64() < self.rpc_failure {
            self.rpc_errors += 1;
            return Err(AdapterError::chain(what, "sim: injected RPC failure"));
        }
        Ok(())
    }

    fn head(&self) -> &SimBlock {
        // The genesis block always exists.
        &self.blocks[self.blocks.len() - 1]
    }

    fn head_ref(&self) -> BlockRef {
        let h = self.head();
        BlockRef {
            number: h.number,
            hash: h.hash,
        }
    }

    fn classify(&self, to: Address, data: &[u8]) -> &'static str {
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

    fn mine_one(&mut self) {
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
            let mut nonce = self.state.nonces.get(&sender).copied().unwrap_or_default();
            while let Some(tx) = self.mempool.get(&(sender, nonce)) {
                if tx.max_fee < base_fee {
                    break;
                }
                let tx = tx.clone();
                self.mempool.remove(&(sender, nonce));
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
                attester: self.config.attester,
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
                    Receipt {
                        block,
                        success: true,
                        revert_reason: None,
                        gas_used: gas_of(tx.kind),
                        logs: ctx.logs,
                    }
                }
                Err(reason) => Receipt {
                    block,
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

    fn accept(&mut self, tx: &SignedTx) -> Result<()> {
        let bad = |reason: &str| AdapterError::rejected("broadcasting", reason);
        if self.receipts.contains_key(&tx.hash) || self.mempool.values().any(|p| p.hash == tx.hash)
        {
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
        let from = signed
            .recover_signer()
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
        let expected = self.state.nonces.get(&from).copied().unwrap_or_default();
        if t.nonce < expected {
            return Err(bad("nonce too low"));
        }
        let to = t
            .to()
            .ok_or_else(|| bad("contract creation is not modelled"))?;
        if let Some(old) = self.mempool.get(&(from, t.nonce)) {
            let enough = |new: u128, old: u128| new >= old.saturating_add(old / 10);
            if !(enough(t.max_fee_per_gas, old.max_fee)
                && enough(t.max_priority_fee_per_gas, old.priority_fee))
            {
                return Err(bad("replacement transaction underpriced"));
            }
        }
        let kind = self.classify(to, t.input());
        if let Some(i) = self.drop_next.iter().position(|k| k == kind) {
            // Accepted, then lost before any block: the node forgets it.
            self.drop_next.remove(i);
            return Ok(());
        }
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

/// One simulated chain, shared by every account's [`SimAdapter`] on it. Cheap to clone.
#[derive(Clone)]
pub struct SimChain {
    world: Arc<Mutex<World>>,
    chain: ChainId,
}

fn derive_address(chain: ChainId, label: &str) -> Address {
    let mut pre = b"baton-sim".to_vec();
    pre.extend_from_slice(&chain.0.to_be_bytes());
    pre.extend_from_slice(label.as_bytes());
    Address::from_word(keccak256(pre))
}

impl SimChain {
    /// A chain with its genesis block, settlers and executor deployed, and no tokens.
    pub fn new(config: SimConfig) -> Self {
        let chain = config.chain;
        let genesis = SimBlock {
            number: 0,
            hash: keccak256([b"baton-sim genesis".as_slice(), &chain.0.to_be_bytes()].concat()),
            timestamp: config.genesis_time,
            base_fee: config.base_fee,
            txs: Vec::new(),
        };
        let world = World {
            settlers: Settlers {
                origin: derive_address(chain, "OriginSettler"),
                destination: derive_address(chain, "DestinationSettler"),
            },
            executor: derive_address(chain, "CallExecutor"),
            tokens: HashSet::new(),
            state: State::default(),
            blocks: vec![genesis],
            states: vec![State::default()],
            receipts: HashMap::new(),
            mempool: BTreeMap::new(),
            time_jump: 0,
            fork: 0,
            stall: 0,
            spike: None,
            revert_next: Vec::new(),
            drop_next: Vec::new(),
            rpc_failure: 0.0,
            rng: fastrand::Rng::with_seed(config.seed),
            rpc_calls: 0,
            rpc_errors: 0,
            config,
        };
        Self {
            world: Arc::new(Mutex::new(world)),
            chain,
        }
    }

    fn world(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock leaves the world as it was before that call's mutation at
        // worst; tests keep going with it.
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the head state (setup only: minting, pools), in the latest kept state too.
    fn setup(&self, f: impl Fn(&mut State)) {
        let mut w = self.world();
        f(&mut w.state);
        if let Some(last) = w.states.last_mut() {
            f(last);
        }
    }

    /// The chain id.
    pub fn chain_id(&self) -> ChainId {
        self.chain
    }

    /// The settler contracts' addresses.
    pub fn settlers(&self) -> Settlers {
        self.world().settlers
    }

    /// The destination settler's call executor (a recipient for outputs with calls).
    pub fn executor(&self) -> Address {
        self.world().executor
    }

    /// Deploys a token; its address depends only on the chain and `symbol`.
    pub fn add_token(&self, symbol: &str) -> Address {
        let token = derive_address(self.chain, &format!("TestToken:{symbol}"));
        self.world().tokens.insert(token);
        token
    }

    /// Mints `amount` of `token` to `to`.
    pub fn mint(&self, token: Address, to: Address, amount: U256) {
        self.setup(|s| *s.balances.entry((token, to)).or_default() += amount);
    }

    /// Deploys a pool of `token0`/`token1` holding the given reserves, with a `fee_bps` fee.
    pub fn add_pool(
        &self,
        (token0, reserve0): (Address, U256),
        (token1, reserve1): (Address, U256),
        fee_bps: u16,
    ) -> Address {
        let pool = derive_address(self.chain, &format!("Pool:{token0}:{token1}"));
        self.setup(|s| {
            s.pools.insert(
                pool,
                PoolState {
                    token0,
                    token1,
                    reserve0,
                    reserve1,
                    fee_bps: U256::from(fee_bps),
                },
            );
            *s.balances.entry((token0, pool)).or_default() += reserve0;
            *s.balances.entry((token1, pool)).or_default() += reserve1;
        });
        pool
    }

    /// An adapter acting as `signer` on this chain.
    pub fn adapter(&self, signer: PrivateKeySigner) -> SimAdapter {
        SimAdapter {
            chain: self.clone(),
            signer,
            next_nonce: Mutex::new(None),
        }
    }

    /// Produces `blocks` blocks (fewer while stalled), including what the mempool allows.
    pub fn mine(&self, blocks: u64) {
        let mut w = self.world();
        for _ in 0..blocks {
            w.mine_one();
        }
    }

    /// Moves the next block's timestamp `secs` further ahead.
    pub fn advance_time(&self, secs: u64) {
        self.world().time_jump += secs;
    }

    /// The timestamp of the latest block.
    pub fn timestamp(&self) -> u64 {
        self.world().head().timestamp
    }

    /// The next transaction of op kind `kind` (see [`crate::port::Op::kind`]) to execute reverts
    /// with `sim: injected revert: {reason}`.
    pub fn revert_next(&self, kind: &str, reason: &str) {
        self.world()
            .revert_next
            .push((kind.to_owned(), reason.to_owned()));
    }

    /// The next broadcast of op kind `kind` is accepted and then lost (its status is `Dropped`).
    pub fn drop_next(&self, kind: &str) {
        self.world().drop_next.push(kind.to_owned());
    }

    /// Evicts a pending transaction from the mempool (as `anvil_dropTransaction`).
    pub fn drop_tx(&self, hash: B256) {
        self.world().mempool.retain(|_, p| p.hash != hash);
    }

    /// The next `mine` calls produce no block, `blocks` of them.
    pub fn stall(&self, blocks: u64) {
        self.world().stall = blocks;
    }

    /// The next `blocks` blocks have base fee `fee`.
    pub fn spike_base_fee(&self, fee: u128, blocks: u64) {
        self.world().spike = Some((fee, blocks));
    }

    /// Each RPC call fails with this probability (drawn from the seeded generator).
    pub fn fail_rpc_fraction(&self, fraction: f64) {
        self.world().rpc_failure = fraction.clamp(0.0, 1.0);
    }

    /// Replaces the last `depth` blocks with as many new empty ones (new hashes); the transactions
    /// of the removed blocks leave the chain and the mempool, as with `anvil_reorg`.
    pub fn reorg(&self, depth: u64) -> Result<()> {
        let mut w = self.world();
        let depth_usize = usize::try_from(depth).unwrap_or(usize::MAX);
        if depth_usize > MAX_REORG || depth_usize >= w.blocks.len() {
            return Err(AdapterError::rejected(
                "reorg",
                format!("cannot reorg {depth} blocks (at most {MAX_REORG}, and not the genesis)"),
            ));
        }
        let keep = w.blocks.len() - depth_usize;
        let removed: Vec<SimBlock> = w.blocks.drain(keep..).collect();
        let states_keep = w.states.len() - depth_usize;
        w.states.truncate(states_keep);
        w.state = w.states.last().cloned().unwrap_or_default();
        for block in &removed {
            for tx in &block.txs {
                w.receipts.remove(tx);
            }
        }
        w.fork += 1;
        let stall = std::mem::take(&mut w.stall);
        for _ in 0..depth {
            w.mine_one();
        }
        w.stall = stall;
        Ok(())
    }
}

/// An account on a [`SimChain`]: the `ChainAdapter` of the sim.
pub struct SimAdapter {
    chain: SimChain,
    signer: PrivateKeySigner,
    next_nonce: Mutex<Option<u64>>,
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
            let span = head.number.min(10);
            let block_time_ms = if span == 0 {
                0
            } else {
                let earlier = &w.blocks[w.blocks.len() - 1 - span as usize];
                (head.timestamp - earlier.timestamp) * 1000 / span
            };
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
        ready(self.read("reading a balance", |w| {
            Ok(w.state
                .balances
                .get(&(token, owner))
                .copied()
                .unwrap_or_default())
        }))
    }

    fn allowance(
        &self,
        token: Address,
        owner: Address,
        spender: Address,
    ) -> BoxFuture<'_, Result<U256>> {
        ready(self.read("reading an allowance", |w| {
            Ok(w.state
                .allowances
                .get(&(token, owner, spender))
                .copied()
                .unwrap_or_default())
        }))
    }

    fn reserves(&self, pool: Address) -> BoxFuture<'_, Result<Reserves>> {
        ready(self.read("reading reserves", |w| {
            let p = w.state.pools.get(&pool).ok_or_else(|| {
                AdapterError::rejected("reading reserves", format!("no pool at {pool}"))
            })?;
            Ok(Reserves {
                token0: p.token0,
                token1: p.token1,
                reserve0: p.reserve0,
                reserve1: p.reserve1,
            })
        }))
    }

    fn escrow(&self, order: OrderId) -> BoxFuture<'_, Result<EscrowStatus>> {
        ready(self.read("reading an escrow", |w| {
            Ok(w.state
                .escrows
                .get(&order.0)
                .map_or(EscrowStatus::None, |e| e.status))
        }))
    }

    fn filled_by(
        &self,
        order: OrderId,
        output_index: u32,
    ) -> BoxFuture<'_, Result<Option<Address>>> {
        ready(self.read("reading a fill", |w| {
            let key = keccak256((order.0, output_index).abi_encode_params());
            Ok(w.state.filled_by.get(&key).copied())
        }))
    }

    fn nonce_used(&self, user: Address, nonce: U256) -> BoxFuture<'_, Result<bool>> {
        ready(self.read("reading a nonce", |w| {
            Ok(w.state.nonce_used.contains(&(user, nonce)))
        }))
    }

    fn evidence(&self, order: OrderId) -> BoxFuture<'_, Result<Evidence>> {
        ready(self.read("reading events", |w| {
            let logs = w.blocks.iter().flat_map(|b| {
                b.txs.iter().flat_map(move |tx| {
                    let at = EventAt {
                        block: BlockRef {
                            number: b.number,
                            hash: b.hash,
                        },
                        tx: *tx,
                    };
                    w.receipts
                        .get(tx)
                        .into_iter()
                        .flat_map(move |r| r.logs.iter().map(move |l| (l, at)))
                })
            });
            Ok(abi::evidence(order, &w.settlers, logs))
        }))
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
                    .max(w.state.nonces.get(&me).copied().unwrap_or_default());
                (w.settlers, next)
            };
            let nonce = match tx.nonce {
                Some(n) => n,
                None => {
                    let mut guard = self
                        .next_nonce
                        .lock()
                        .map_err(|_| AdapterError::chain("nonce", "lock poisoned"))?;
                    let n = guard.map_or(pending_nonce, |n| n.max(pending_nonce));
                    *guard = Some(n + 1);
                    n
                }
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

    fn broadcast<'a>(&'a self, tx: &'a SignedTx) -> BoxFuture<'a, Result<()>> {
        ready((|| {
            let mut w = self.chain.world();
            w.rpc("broadcasting")?;
            w.accept(tx)
        })())
    }

    fn status<'a>(
        &'a self,
        tx: &'a SignedTx,
        seen: Option<&'a BlockRef>,
    ) -> BoxFuture<'a, Result<TxStatus>> {
        ready(self.read("reading a receipt", |w| {
            if let Some(r) = w.receipts.get(&tx.hash) {
                return Ok(TxStatus::Included(Inclusion {
                    block: r.block,
                    success: r.success,
                    revert_reason: r.revert_reason.clone(),
                    gas_used: r.gas_used,
                    logs: r.logs.clone(),
                }));
            }
            let pending = w.mempool.values().any(|p| p.hash == tx.hash);
            Ok(match (pending, seen) {
                (_, Some(was)) => TxStatus::ReorgedOut { was: *was },
                (true, None) => TxStatus::Pending,
                (false, None) => TxStatus::Dropped,
            })
        }))
    }
}
