//! The settlers on two anvil chains: the order id the contract computes is the planner's, and an
//! order opens, fills once, and settles once against the attester's signature.

use alloy::primitives::{Bytes, U256};
use alloy::signers::Signer;
use alloy::sol_types::SolStruct;
use baton_adapters::contracts::{
    DestinationSettler, Fill, OriginSettler, TestToken, gasless_order,
};
use baton_adapters::devnet::{ATTESTER, Devnet, SOLVER, USER, send};
use baton_planner::order::{domain, order_data_type};
use baton_planner::{Amount, Asset, ChainId, Input, Intent, Output, TokenAddress};

use crate::{now, reverted};

const USDC: u64 = 1_000_000;

#[tokio::test]
async fn an_order_opens_fills_once_and_settles_once_with_the_planners_order_id() {
    let devnet = Devnet::start(2, None).await.unwrap();
    let (a, b) = (&devnet.chains[0], &devnet.chains[1]);
    let (user, solver, recipient) = (a.account(USER), a.account(SOLVER), b.account(5));
    let weth_out = U256::from(3u64) * U256::from(10u64).pow(U256::from(17u8));
    let intent = Intent::new(
        user,
        U256::from(1u8),
        now() + 600,
        now() + 1_200,
        vec![Input {
            asset: Asset::new(ChainId(a.chain_id), TokenAddress(a.tokens["USDC"])),
            amount: Amount::from(u128::from(1_000 * USDC)),
        }],
        vec![Output {
            asset: Asset::new(ChainId(b.chain_id), TokenAddress(b.tokens["WETH"])),
            min_amount: Amount::new(weth_out),
            recipient,
            call: None,
        }],
    )
    .unwrap();
    let order = intent.orders(|_| Some(a.origin_settler)).unwrap().remove(0);
    let settler = OriginSettler::new(a.origin_settler, a.provider.clone());
    let abi_order = gasless_order(order.order());

    // Solidity and Rust agree on the EIP-712 type hash and the order id, byte for byte.
    assert_eq!(
        settler.ORDER_DATA_TYPEHASH().call().await.unwrap(),
        order_data_type()
    );
    assert_eq!(
        settler.orderId(abi_order.clone()).call().await.unwrap(),
        order.id().0
    );

    // The user approves the escrow and signs the typed data; the solver opens.
    let usdc_as_user = TestToken::new(a.tokens["USDC"], a.provider_as(USER));
    send(
        usdc_as_user
            .approve(a.origin_settler, U256::MAX)
            .send()
            .await,
        "approve",
    )
    .await
    .unwrap();
    let signature = a
        .signer(USER)
        .sign_hash(&order.signing_hash())
        .await
        .unwrap();
    let sig = Bytes::from(signature.as_bytes().to_vec());

    // A signature by anyone else is refused.
    let forged = a.signer(7).sign_hash(&order.signing_hash()).await.unwrap();
    let err = settler
        .openFor(
            abi_order.clone(),
            Bytes::from(forged.as_bytes().to_vec()),
            Bytes::new(),
        )
        .call()
        .await;
    assert!(reverted(err).contains("bad signature"));

    send(
        settler
            .openFor(abi_order.clone(), sig.clone(), Bytes::new())
            .send()
            .await,
        "open",
    )
    .await
    .unwrap();
    let usdc_a = TestToken::new(a.tokens["USDC"], a.provider.clone());
    assert_eq!(
        usdc_a.balanceOf(a.origin_settler).call().await.unwrap(),
        U256::from(1_000 * USDC)
    );
    let again = settler
        .openFor(abi_order.clone(), sig, Bytes::new())
        .call()
        .await;
    assert!(reverted(again).contains("nonce used"));

    // The solver fills on chain B with the fill instruction the origin settler resolves.
    let resolved = settler
        .resolveFor(abi_order.clone(), Bytes::new())
        .call()
        .await
        .unwrap();
    assert_eq!(resolved.orderId, order.id().0);
    let origin_data = resolved.fillInstructions[0].originData.clone();
    let weth_b = TestToken::new(b.tokens["WETH"], b.provider.clone());
    send(
        weth_b
            .approve(b.destination_settler, U256::MAX)
            .send()
            .await,
        "approve",
    )
    .await
    .unwrap();
    let dest = DestinationSettler::new(b.destination_settler, b.provider.clone());
    send(
        dest.fill(order.id().0, origin_data.clone(), Bytes::new())
            .send()
            .await,
        "fill",
    )
    .await
    .unwrap();
    assert_eq!(weth_b.balanceOf(recipient).call().await.unwrap(), weth_out);
    let twice = dest
        .fill(order.id().0, origin_data, Bytes::new())
        .call()
        .await;
    assert!(reverted(twice).contains("already filled"));

    // The attester signs Fill(orderId, solver); a forged attestation is refused; settle pays once.
    let fill = Fill {
        orderId: order.id().0,
        filler: solver,
    };
    let digest = fill.eip712_signing_hash(&domain(ChainId(a.chain_id), a.origin_settler));
    let forged = a.signer(USER).sign_hash(&digest).await.unwrap();
    let err = settler
        .settle(
            order.id().0,
            solver,
            Bytes::from(forged.as_bytes().to_vec()),
        )
        .call()
        .await;
    assert!(reverted(err).contains("bad attestation"));
    let attestation = Bytes::from(
        a.signer(ATTESTER)
            .sign_hash(&digest)
            .await
            .unwrap()
            .as_bytes()
            .to_vec(),
    );
    let before = usdc_a.balanceOf(solver).call().await.unwrap();
    send(
        settler
            .settle(order.id().0, solver, attestation.clone())
            .send()
            .await,
        "settle",
    )
    .await
    .unwrap();
    assert_eq!(
        usdc_a.balanceOf(solver).call().await.unwrap() - before,
        U256::from(1_000 * USDC)
    );
    let twice = settler
        .settle(order.id().0, solver, attestation)
        .call()
        .await;
    assert!(reverted(twice).contains("not open"));
    // An early refund is refused: the fill deadline has not passed.
    let refund = settler.refund(order.id().0).call().await;
    assert!(reverted(refund).contains("not open"));
}

#[tokio::test]
async fn the_dev_keys_are_the_ones_anvil_reports() {
    let devnet = Devnet::start(1, None).await.unwrap();
    let reported = devnet.chains[0].reported_keys().unwrap();
    for (k, key) in reported
        .iter()
        .enumerate()
        .take(baton_adapters::devnet::DEV_KEYS.len())
    {
        assert_eq!(
            key.address(),
            devnet.chains[0].account(k),
            "dev account {k}"
        );
    }
}
