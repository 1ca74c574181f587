//! The EIP-712 hashes and order bytes against vectors made by an independent implementation
//! (fixtures/vectors/make_eip712_vectors.py, Python eth_account / eth_abi).

use std::str::FromStr;

use alloy::primitives::{Address, B256, Bytes, Signature, U256};
use baton_planner::order::order_data_type;
use baton_planner::{Amount, Asset, ChainId, DestinationCall, Input, Intent, Output, TokenAddress};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vector {
    user: Address,
    recipient: Address,
    settler: Address,
    usdc_a: Address,
    weth_b: Address,
    vault_b: Address,
    nonce: u64,
    open_deadline: u32,
    fill_deadline: u32,
    intent_id: B256,
    order_data_type: B256,
    order_data: Bytes,
    order_id: B256,
    signature: String,
}

fn vector() -> Vector {
    serde_json::from_str(include_str!("../../../fixtures/vectors/eip712.json")).unwrap()
}

fn intent(v: &Vector) -> Intent {
    Intent::new(
        v.user,
        U256::from(v.nonce),
        v.open_deadline,
        v.fill_deadline,
        vec![Input {
            asset: Asset::new(ChainId(1001), TokenAddress(v.usdc_a)),
            amount: Amount::from(1_000_000_000),
        }],
        vec![Output {
            asset: Asset::new(ChainId(1002), TokenAddress(v.weth_b)),
            min_amount: Amount::from(390_000_000_000_000_000),
            recipient: v.recipient,
            call: Some(DestinationCall {
                target: v.vault_b,
                data: Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef]),
            }),
        }],
    )
    .unwrap()
}

#[test]
fn intent_id_order_data_and_order_id_match_the_independent_vectors() {
    let v = vector();
    let intent = intent(&v);
    assert_eq!(intent.id().0, v.intent_id);
    assert_eq!(order_data_type(), v.order_data_type);
    let orders = intent.orders(|_| Some(v.settler)).unwrap();
    assert_eq!(orders.len(), 1);
    let order = &orders[0];
    assert_eq!(order.order().orderData, v.order_data);
    assert_eq!(order.order().orderDataType, v.order_data_type);
    assert_eq!(order.id().0, v.order_id);
    assert_eq!(order.signing_hash(), v.order_id);
}

#[test]
fn typed_data_for_wallets_hashes_to_the_order_id() {
    let v = vector();
    let order = intent(&v).orders(|_| Some(v.settler)).unwrap().remove(0);
    let typed = order.typed_data();
    assert_eq!(typed.eip712_signing_hash().unwrap(), v.order_id);
    // What a dApp receives and hands to eth_signTypedData_v4 round-trips through JSON unchanged.
    let json = serde_json::to_value(&typed).unwrap();
    assert_eq!(json["primaryType"], "GaslessCrossChainOrder");
    assert_eq!(json["domain"]["name"], "BatonOriginSettler");
    let back: alloy::dyn_abi::TypedData = serde_json::from_value(json).unwrap();
    assert_eq!(back.eip712_signing_hash().unwrap(), v.order_id);
}

#[test]
fn a_wallet_signature_over_the_typed_data_recovers_to_the_user() {
    let v = vector();
    let order = intent(&v).orders(|_| Some(v.settler)).unwrap().remove(0);
    let signature = Signature::from_str(&v.signature).unwrap();
    let signer = signature
        .recover_address_from_prehash(&order.signing_hash())
        .unwrap();
    assert_eq!(signer, v.user);
    assert_eq!(order.data().unwrap().intentId, v.intent_id);
}

#[test]
fn orders_differ_per_origin_chain_and_share_the_intent_id() {
    let v = vector();
    let two_origins = Intent::new(
        v.user,
        U256::from(v.nonce),
        v.open_deadline,
        v.fill_deadline,
        vec![
            Input {
                asset: Asset::new(ChainId(1001), TokenAddress(v.usdc_a)),
                amount: Amount::from(5),
            },
            Input {
                asset: Asset::new(ChainId(1003), TokenAddress(v.usdc_a)),
                amount: Amount::from(7),
            },
        ],
        vec![Output {
            asset: Asset::new(ChainId(1002), TokenAddress(v.weth_b)),
            min_amount: Amount::from(1),
            recipient: v.recipient,
            call: None,
        }],
    )
    .unwrap();
    let orders = two_origins.orders(|_| Some(v.settler)).unwrap();
    assert_eq!(orders.len(), 2);
    assert_ne!(orders[0].id(), orders[1].id());
    for (o, (chain, amount)) in orders.iter().zip([(1001u64, 5u64), (1003, 7)]) {
        let data = o.data().unwrap();
        assert_eq!(data.intentId, two_origins.id().0);
        assert_eq!(data.inputs.len(), 1);
        assert_eq!(data.inputs[0].chainId, U256::from(chain));
        assert_eq!(data.inputs[0].amount, U256::from(amount));
        assert_eq!(data.outputs.len(), 1);
    }
}
