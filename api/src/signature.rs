//! Signed orders checked: each order parsed, its origin chain and settler known, its EIP-712
//! signature recovered to its user; then the intent the orders describe, rebuilt from them.
//! Nothing moves without a valid user signature.

use alloy::primitives::{Address, B256, Bytes, Signature};
use alloy::sol_types::{SolStruct, SolValue};
use baton_planner::order::{BatonOrderData, GaslessCrossChainOrder, domain, order_data_type};
use baton_planner::spec::{CallSpec, DeadlineSpec, InputSpec, IntentSpec, OutputSpec};
use baton_planner::{Amount, ChainId};

use crate::app::Runtime;
use crate::dto::intent::SubmitRequest;
use crate::error::{ApiError, Code};

fn bad_signature(i: usize, why: &str) -> ApiError {
    ApiError::new(
        Code::BadSignature,
        format!("orders[{i}].signature {why}; sign the order's typed data with the user's key"),
    )
}

pub(crate) fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(Code::InvalidIntent, msg)
}

/// A submitted order, its signature checked.
pub(crate) struct Verified {
    pub(crate) order: GaslessCrossChainOrder,
    pub(crate) signature: Bytes,
    /// The order id: the EIP-712 digest the user signed.
    pub(crate) id: B256,
}

/// The orders, parsed, their signatures checked against their users.
pub(crate) fn verify(req: &SubmitRequest) -> Result<Vec<Verified>, ApiError> {
    if req.orders.is_empty() || req.orders.len() > 8 {
        return Err(ApiError::new(
            Code::InvalidRequest,
            "send between 1 and 8 signed orders",
        ));
    }
    let mut out = Vec::new();
    for (i, signed) in req.orders.iter().enumerate() {
        let order: GaslessCrossChainOrder =
            serde_json::from_value(signed.order.clone()).map_err(|e| {
                ApiError::new(
                    Code::InvalidRequest,
                    format!("orders[{i}].order is not a GaslessCrossChainOrder: {e}"),
                )
            })?;
        let chain = u64::try_from(order.originChainId).map_err(|_| {
            ApiError::new(Code::UnknownChain, format!("orders[{i}]: no such chain"))
        })?;
        let bytes: Bytes = signed
            .signature
            .parse()
            .map_err(|_| bad_signature(i, "is not 0x-prefixed hex"))?;
        let signature = Signature::from_raw(&bytes)
            .map_err(|_| bad_signature(i, "is not a 65-byte signature"))?;
        let digest = order.eip712_signing_hash(&domain(ChainId(chain), order.originSettler));
        let signer = baton_adapters::signers::recover(digest, signature)
            .map_err(|_| bad_signature(i, "does not recover to any address"))?;
        if signer != order.user {
            return Err(bad_signature(
                i,
                &format!(
                    "recovers to {signer}, not to the order's user {}",
                    order.user
                ),
            ));
        }
        out.push(Verified {
            order,
            signature: bytes,
            id: digest,
        });
    }
    Ok(out)
}

/// Checks that each order names the origin settler `runtime` (the version a new intent is
/// admitted under) serves on its chain: after a settler upgrade, orders quoted before it name
/// the old settler and must be quoted again.
pub(crate) fn check_settlers(runtime: &Runtime, orders: &[Verified]) -> Result<(), ApiError> {
    for (i, o) in orders.iter().enumerate() {
        let chain = u64::try_from(o.order.originChainId).unwrap_or(u64::MAX);
        let venue = runtime
            .venues
            .iter()
            .find(|v| v.chain.0 == chain)
            .ok_or_else(|| {
                ApiError::new(
                    Code::UnknownChain,
                    format!("orders[{i}]: baton does not serve chain {chain}"),
                )
            })?;
        if o.order.originSettler != venue.settlers.origin {
            return Err(invalid(format!(
                "orders[{i}]: the origin settler on chain {chain} is {}, not {} (the settlers \
                 changed since the quote: quote again)",
                venue.settlers.origin, o.order.originSettler
            )));
        }
    }
    Ok(())
}

/// The intent the orders describe (every order carries the intent id, its own inputs and every
/// output), with tokens named by address.
pub(crate) fn intent_of(orders: &[Verified]) -> Result<(IntentSpec, B256), ApiError> {
    let lead = &orders[0].order;
    if lead.orderDataType != order_data_type() {
        return Err(invalid("orders[0]: orderDataType is not baton's"));
    }
    let lead_data = BatonOrderData::abi_decode(&lead.orderData)
        .map_err(|_| invalid("orders[0]: orderData does not decode as BatonOrderData"))?;
    let mut inputs = Vec::new();
    for (i, Verified { order, .. }) in orders.iter().enumerate() {
        let data = BatonOrderData::abi_decode(&order.orderData)
            .map_err(|_| invalid(format!("orders[{i}]: orderData does not decode")))?;
        if order.user != lead.user
            || order.nonce != lead.nonce
            || order.openDeadline != lead.openDeadline
            || order.fillDeadline != lead.fillDeadline
            || data.intentId != lead_data.intentId
            || order.orderDataType != lead.orderDataType
        {
            return Err(invalid(format!(
                "orders[{i}] belongs to another intent than orders[0]"
            )));
        }
        for input in &data.inputs {
            if input.chainId != order.originChainId {
                return Err(invalid(format!(
                    "orders[{i}] has an input on another chain than its own"
                )));
            }
            inputs.push(InputSpec {
                chain: ChainId(u64::try_from(input.chainId).unwrap_or(u64::MAX)),
                token: input.token.to_string(),
                amount: Amount::new(input.amount),
            });
        }
    }
    let outputs = lead_data
        .outputs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let call = lead_data
                .calls
                .iter()
                .find(|c| usize::try_from(c.outputIndex).ok() == Some(i))
                .map(|c| CallSpec {
                    target: c.target,
                    data: c.data.clone(),
                });
            OutputSpec {
                chain: ChainId(u64::try_from(o.chainId).unwrap_or(u64::MAX)),
                token: Address::from_word(o.token).to_string(),
                min_amount: Amount::new(o.amount),
                recipient: Address::from_word(o.recipient),
                call,
            }
        })
        .collect();
    Ok((
        IntentSpec {
            name: String::new(),
            description: String::new(),
            user: lead.user,
            nonce: lead.nonce,
            open_deadline: DeadlineSpec::At(lead.openDeadline),
            fill_deadline: DeadlineSpec::At(lead.fillDeadline),
            inputs,
            outputs,
            expect: None,
        },
        lead_data.intentId,
    ))
}
