//! Rust models of the fixture contracts: the state a sim chain keeps and how a call changes it,
//! with the contracts' checks, revert reasons and events.

use std::collections::HashSet as StdHashSet;

use imbl::{HashMap, HashSet};

use alloy::primitives::{Address, B256, Bytes, Log, LogData, Signature, U256};
use alloy::sol_types::{SolEvent, SolInterface, SolStruct, SolValue};
use baton_planner::order::{self, BatonOrderData};
use baton_planner::{ChainId, OrderId};

use crate::abi::{self, Settlers};
use crate::attestation::{AttesterSet, Delivery, OriginSettlerAt};
use crate::contracts::{DestinationSettler, OriginSettler, Pool, TestToken, planner_order};
use crate::port::EscrowStatus;

/// Fixed gas figures per op (the sim does not meter execution).
pub(super) fn gas_of(kind: &str) -> u64 {
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
pub(super) struct PoolState {
    pub(super) token0: Address,
    pub(super) token1: Address,
    pub(super) reserve0: U256,
    pub(super) reserve1: U256,
    pub(super) fee_bps: U256,
}

#[derive(Clone, Debug)]
pub(super) struct Escrow {
    pub(super) user: Address,
    pub(super) fill_deadline: u32,
    pub(super) status: EscrowStatus,
    pub(super) opener: Address,
    pub(super) inputs: Vec<(Address, U256)>,
}

/// The contracts' storage. Persistent maps (`imbl`): a clone shares structure, so keeping the state
/// of every recent block (for reorgs) and of every transaction (for reverts) costs O(1) per copy.
#[derive(Clone, Debug, Default)]
pub(super) struct State {
    pub(super) balances: HashMap<(Address, Address), U256>,
    pub(super) allowances: HashMap<(Address, Address, Address), U256>,
    pub(super) nonces: HashMap<Address, u64>,
    pub(super) pools: HashMap<Address, PoolState>,
    pub(super) escrows: HashMap<B256, Escrow>,
    pub(super) nonce_used: HashSet<(Address, U256)>,
    pub(super) filled_by: HashMap<B256, Address>,
}

impl State {
    /// `owner`'s balance of `token`.
    pub(super) fn balance(&self, token: Address, owner: Address) -> U256 {
        self.balances
            .get(&(token, owner))
            .copied()
            .unwrap_or_default()
    }

    /// How much of `owner`'s `token` `spender` may move.
    pub(super) fn allowance(&self, token: Address, owner: Address, spender: Address) -> U256 {
        self.allowances
            .get(&(token, owner, spender))
            .copied()
            .unwrap_or_default()
    }

    /// A pool's tokens and reserves.
    pub(super) fn reserves(&self, pool: Address) -> crate::Result<crate::port::Reserves> {
        let p = self.pools.get(&pool).ok_or_else(|| {
            crate::AdapterError::rejected("reading reserves", format!("no pool at {pool}"))
        })?;
        Ok(crate::port::Reserves {
            token0: p.token0,
            token1: p.token1,
            reserve0: p.reserve0,
            reserve1: p.reserve1,
        })
    }

    /// `account`'s next transaction nonce.
    pub(super) fn nonce(&self, account: Address) -> u64 {
        self.nonces.get(&account).copied().unwrap_or_default()
    }
}

/// What one transaction's execution sees besides the state.
pub(super) struct Ctx<'a> {
    pub(super) chain: ChainId,
    pub(super) settlers: Settlers,
    pub(super) executor: Address,
    pub(super) attesters: &'a AttesterSet,
    pub(super) settle_window: u64,
    pub(super) tokens: &'a StdHashSet<Address>,
    pub(super) timestamp: u64,
    pub(super) logs: Vec<Log>,
}

pub(super) type Exec<T = ()> = std::result::Result<T, String>;

pub(super) fn require(ok: bool, reason: &str) -> Exec {
    if ok { Ok(()) } else { Err(reason.to_owned()) }
}

impl Ctx<'_> {
    pub(super) fn emit(&mut self, address: Address, data: LogData) {
        self.logs.push(Log { address, data });
    }

    pub(super) fn token(&self, token: Address) -> Exec {
        require(
            self.tokens.contains(&token),
            &format!("sim: no contract at {token}"),
        )
    }

    pub(super) fn move_tokens(
        &mut self,
        s: &mut State,
        token: Address,
        from: Address,
        to: Address,
        amount: U256,
    ) -> Exec {
        self.token(token)?;
        let have = s.balance(token, from);
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

    pub(super) fn transfer_from(
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
    pub(super) fn call(&mut self, s: &mut State, from: Address, to: Address, data: &[u8]) -> Exec {
        if to == self.settlers.origin {
            let call = OriginSettler::OriginSettlerCalls::abi_decode(data)
                .map_err(|_| "OriginSettler: unknown call".to_owned())?;
            self.origin(s, from, call)
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

    pub(super) fn origin(
        &mut self,
        s: &mut State,
        from: Address,
        call: OriginSettler::OriginSettlerCalls,
    ) -> Exec {
        use OriginSettler::OriginSettlerCalls as C;
        let settler = self.settlers.origin;
        match call {
            C::openFor(c) => self.open(s, from, c.order, &c.signature),
            C::settle(c) => {
                let e = self.opened(s, c.id)?;
                let deliveries: Vec<Delivery> =
                    c.deliveries.iter().map(Delivery::from_abi).collect();
                let at = OriginSettlerAt {
                    chain: self.chain,
                    settler,
                };
                self.require_quorum(
                    at.fill_hash(OrderId(c.id), c.filler, &deliveries),
                    &c.signatures,
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
                    self.timestamp > u64::from(e.fill_deadline) + self.settle_window,
                    "OriginSettler: settlement window not passed",
                )?;
                self.refund(s, c.id, &e)
            }
            C::refundWithCancel(c) => {
                let e = self.opened(s, c.id)?;
                let at = OriginSettlerAt {
                    chain: self.chain,
                    settler,
                };
                self.require_quorum(at.cancel_hash(OrderId(c.id)), &c.signatures)?;
                self.refund(s, c.id, &e)
            }
            C::open(_) => {
                Err("OriginSettler: on-chain orders are not supported; use openFor".to_owned())
            }
            _ => Err("OriginSettler: view called as a transaction".to_owned()),
        }
    }

    /// The settler's `_requireQuorum`: at least the threshold of signatures over `digest` by
    /// members, signers strictly ascending.
    fn require_quorum(&self, digest: B256, signatures: &[Bytes]) -> Exec {
        require(
            signatures.len() >= self.attesters.threshold,
            "OriginSettler: too few attestations",
        )?;
        let mut last = Address::ZERO;
        for sig in signatures {
            let signer = recover(digest, sig)?;
            require(signer > last, "OriginSettler: attesters not ascending")?;
            require(
                self.attesters.members.contains(&signer),
                "OriginSettler: not an attester",
            )?;
            last = signer;
        }
        Ok(())
    }

    pub(super) fn opened(&self, s: &State, id: B256) -> Exec<Escrow> {
        match s.escrows.get(&id) {
            Some(e) if e.status == EscrowStatus::Opened => Ok(e.clone()),
            _ => Err("OriginSettler: not open".to_owned()),
        }
    }

    pub(super) fn pay(
        &mut self,
        s: &mut State,
        id: B256,
        e: &Escrow,
        to: Address,
        st: EscrowStatus,
    ) -> Exec {
        if let Some(stored) = s.escrows.get_mut(&id) {
            stored.status = st;
        }
        for &(token, amount) in &e.inputs {
            self.move_tokens(s, token, self.settlers.origin, to, amount)?;
        }
        Ok(())
    }

    pub(super) fn refund(&mut self, s: &mut State, id: B256, e: &Escrow) -> Exec {
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

    pub(super) fn open(
        &mut self,
        s: &mut State,
        sender: Address,
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
        self.emit(
            settler,
            OriginSettler::NonceUsed {
                user: o.user,
                nonce: o.nonce,
            }
            .encode_log_data(),
        );
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
                opener: sender,
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

    pub(super) fn fill(
        &mut self,
        s: &mut State,
        filler: Address,
        order_id: B256,
        origin_data: &[u8],
    ) -> Exec {
        let (index, output, calls, fill_deadline) =
            <(u32, order::Output, Vec<order::Call>, u32)>::abi_decode_params(origin_data)
                .map_err(|_| "DestinationSettler: undecodable origin data".to_owned())?;
        require(
            output.chainId == U256::from(self.chain.0),
            "DestinationSettler: wrong chain",
        )?;
        require(
            self.timestamp <= u64::from(fill_deadline),
            "DestinationSettler: fill deadline passed",
        )?;
        let key = abi::fill_key(order_id, index);
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
                callsHash: abi::calls_hash(&calls),
            }
            .encode_log_data(),
        );
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn swap(
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
pub(super) fn recover(digest: B256, signature: &[u8]) -> Exec<Address> {
    require(signature.len() == 65, "OriginSettler: bad signature length")?;
    let sig = Signature::from_raw(signature).map_err(|_| "OriginSettler: bad signature")?;
    require(
        sig.normalize_s().is_none(),
        "OriginSettler: malleable signature",
    )?;
    crate::signers::recover(digest, sig).map_err(|_| "OriginSettler: bad signature".to_owned())
}

/// The settler's `_resolve`: the order as ERC-7683 `ResolvedCrossChainOrder`.
pub(super) fn resolve(
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
                    originData: abi::origin_data(j, out, &calls, o.fillDeadline),
                }
            })
            .collect(),
    }
}
