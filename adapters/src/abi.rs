//! Ops as EVM calls, and settler events as [`Evidence`]: the encoding both the `evm` adapter and the
//! `sim` chain use, so the sim executes the very calldata a real node would.

use alloy::primitives::{Address, Bytes, Log, U256};
use alloy::sol_types::{SolCall, SolEvent, SolValue};
use baton_planner::OrderId;
use serde::{Deserialize, Serialize};

use crate::contracts::{DestinationSettler, OriginSettler, Pool, TestToken, gasless_order};
use crate::port::{EventAt, Evidence, FillEvidence, Op};

/// The settler contracts of one chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlers {
    /// ERC-7683 origin settler (escrow).
    pub origin: Address,
    /// ERC-7683 destination settler.
    pub destination: Address,
}

/// An op as a contract call: target, calldata, native value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvmCall {
    /// The contract.
    pub to: Address,
    /// Calldata.
    pub data: Bytes,
    /// Native value.
    pub value: U256,
}

/// `originData` of a fill: `abi.encode(uint32 outputIndex, Output output, Call[] calls, uint32
/// fillDeadline)`, as the origin settler's fill instructions carry it (the destination settler
/// refuses the fill after `fillDeadline`).
pub fn origin_data(
    output_index: u32,
    output: &baton_planner::order::Output,
    calls: &[baton_planner::order::Call],
    fill_deadline: u32,
) -> Bytes {
    (output_index, output.clone(), calls.to_vec(), fill_deadline)
        .abi_encode_params()
        .into()
}

/// `keccak256(abi.encode(calls))`: what the destination settler's `Filled` event carries of the
/// calls it ran, for an attester to compare with the order's.
pub fn calls_hash(calls: &[baton_planner::order::Call]) -> alloy::primitives::B256 {
    alloy::primitives::keccak256(calls.to_vec().abi_encode())
}

/// The destination settler's `fillKey(orderId, outputIndex)`: `keccak256(abi.encode(orderId,
/// outputIndex))`, the slot `filledBy` is keyed by.
pub fn fill_key(order: alloy::primitives::B256, output_index: u32) -> alloy::primitives::B256 {
    alloy::primitives::keccak256((order, output_index).abi_encode_params())
}

/// Encodes `op` as a call on a chain whose settlers are `settlers`.
pub fn encode(op: &Op, settlers: &Settlers) -> EvmCall {
    let call = |to: Address, data: Vec<u8>| EvmCall {
        to,
        data: data.into(),
        value: U256::ZERO,
    };
    match op {
        Op::Open { order, signature } => call(
            order.originSettler,
            OriginSettler::openForCall {
                order: gasless_order(order),
                signature: signature.clone(),
                _2: Bytes::new(),
            }
            .abi_encode(),
        ),
        Op::Fill {
            order_id,
            output_index,
            output,
            calls,
            fill_deadline,
        } => call(
            settlers.destination,
            DestinationSettler::fillCall {
                orderId: order_id.0,
                originData: origin_data(*output_index, output, calls, *fill_deadline),
                _2: Bytes::new(),
            }
            .abi_encode(),
        ),
        Op::Settle {
            order_id,
            filler,
            deliveries,
            attestations,
        } => call(
            settlers.origin,
            OriginSettler::settleCall {
                id: order_id.0,
                filler: *filler,
                deliveries: deliveries.iter().map(|d| d.abi()).collect(),
                signatures: attestations.clone(),
            }
            .abi_encode(),
        ),
        Op::Refund { order_id } => call(
            settlers.origin,
            OriginSettler::refundCall { id: order_id.0 }.abi_encode(),
        ),
        Op::RefundWithCancel {
            order_id,
            attestations,
        } => call(
            settlers.origin,
            OriginSettler::refundWithCancelCall {
                id: order_id.0,
                signatures: attestations.clone(),
            }
            .abi_encode(),
        ),
        Op::Approve {
            token,
            spender,
            amount,
        } => call(
            *token,
            TestToken::approveCall {
                spender: *spender,
                amount: *amount,
            }
            .abi_encode(),
        ),
        Op::Transfer { token, to, amount } => call(
            *token,
            TestToken::transferCall {
                to: *to,
                amount: *amount,
            }
            .abi_encode(),
        ),
        Op::Swap {
            pool,
            token_in,
            amount_in,
            min_out,
            to,
        } => call(
            *pool,
            Pool::swapCall {
                tokenIn: *token_in,
                amountIn: *amount_in,
                minOut: *min_out,
                to: *to,
            }
            .abi_encode(),
        ),
        Op::Call { to, data, value } => EvmCall {
            to: *to,
            data: data.clone(),
            value: *value,
        },
    }
}

/// Folds settler logs about `order` (in chain order) into [`Evidence`]; other logs are ignored.
pub fn evidence<'a>(
    order: OrderId,
    settlers: &Settlers,
    logs: impl IntoIterator<Item = (&'a Log, EventAt)>,
) -> Evidence {
    let mut out = Evidence::default();
    for (log, at) in logs {
        if log.address == settlers.destination {
            if let Ok(e) = DestinationSettler::Filled::decode_log(log)
                && e.orderId == order.0
            {
                out.fills.push(FillEvidence {
                    output_index: e.outputIndex,
                    filler: e.filler,
                    token: e.token,
                    amount: e.amount,
                    recipient: e.recipient,
                    calls_hash: e.callsHash,
                    at,
                });
            }
        } else if log.address == settlers.origin {
            if let Ok(e) = OriginSettler::Settled::decode_log(log)
                && e.orderId == order.0
            {
                out.settled = Some((e.filler, at));
            } else if let Ok(e) = OriginSettler::Refunded::decode_log(log)
                && e.orderId == order.0
            {
                out.refunded = Some((e.user, at));
            }
        }
    }
    out
}

/// Signs `hash` with `signer`'s key through libsecp256k1: the same deterministic (RFC 6979),
/// low-s signature k256 makes, in a third of the time.
pub fn sign_hash(
    signer: &alloy::signers::local::PrivateKeySigner,
    hash: alloy::primitives::B256,
) -> crate::Result<alloy::primitives::Signature> {
    let key: [u8; 32] = signer.credential().to_bytes().into();
    let key = secp256k1::SecretKey::from_byte_array(key)
        .map_err(|e| crate::AdapterError::chain("signing", e))?;
    let message = secp256k1::Message::from_digest(hash.0);
    let (id, compact) = secp256k1::SECP256K1
        .sign_ecdsa_recoverable(message, &key)
        .serialize_compact();
    let signature = alloy::primitives::Signature::new(
        alloy::primitives::U256::from_be_slice(&compact[..32]),
        alloy::primitives::U256::from_be_slice(&compact[32..]),
        i32::from(id) != 0,
    );
    // Whoever checks this signature in the process (a sim node, a settler) need not recover it.
    crate::signers::remember(hash, signature, signer.address());
    Ok(signature)
}

/// Signs `call` as an EIP-1559 transaction of `signer` on `chain` with `nonce` and `fees`.
pub fn sign(
    signer: &alloy::signers::local::PrivateKeySigner,
    chain: baton_planner::ChainId,
    nonce: u64,
    call: EvmCall,
    fees: &crate::port::Fees,
) -> crate::Result<crate::port::SignedTx> {
    use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
    use alloy::eips::Encodable2718;

    let tx = TxEip1559 {
        chain_id: chain.0,
        nonce,
        gas_limit: fees.gas_limit,
        max_fee_per_gas: fees.max_fee_per_gas,
        max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
        to: alloy::primitives::TxKind::Call(call.to),
        value: call.value,
        access_list: Default::default(),
        input: call.data,
    };
    let signature = sign_hash(signer, tx.signature_hash())?;
    let envelope = TxEnvelope::from(tx.into_signed(signature));
    Ok(crate::port::SignedTx {
        chain,
        from: signer.address(),
        nonce,
        hash: *envelope.tx_hash(),
        raw: envelope.encoded_2718().into(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use alloy::signers::SignerSync;

    #[test]
    fn libsecp256k1_signs_exactly_as_k256() {
        let signer = alloy::signers::local::PrivateKeySigner::random();
        for k in 0..32u8 {
            let hash = alloy::primitives::keccak256([k]);
            let fast = super::sign_hash(&signer, hash).unwrap();
            assert_eq!(fast, signer.sign_hash_sync(&hash).unwrap());
            assert_eq!(
                fast.recover_address_from_prehash(&hash).unwrap(),
                signer.address()
            );
        }
    }
}
