//! The settlers on two anvil chains: the order id the contract computes is the planner's, and an
//! order opens, fills once, and settles once against the attester's signature.

use alloy::primitives::{Bytes, U256};
use alloy::signers::{Signer, SignerSync};
use baton_adapters::attestation::{Delivery, OriginSettlerAt};
use baton_adapters::contracts::{DestinationSettler, OriginSettler, TestToken, gasless_order};
use baton_adapters::devnet::{
    ATTESTERS, Devnet, SETTLER_OWNER, SOLVER, USER, dev_attester_set, dev_signer, send,
};
use baton_adapters::port::ChainAdapter;
use baton_planner::order::order_data_type;
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

    // A quorum of attesters signs Fill(orderId, solver, deliveries); one that counts the user's
    // signature is refused; settle pays once.
    let deliveries = vec![Delivery {
        output_index: 0,
        chain: ChainId(b.chain_id),
        settler: b.destination_settler,
        token: b.tokens["WETH"],
        amount: weth_out,
        recipient,
    }];
    let at = OriginSettlerAt {
        chain: ChainId(a.chain_id),
        settler: a.origin_settler,
    };
    let digest = at.fill_hash(order.id(), solver, &deliveries);
    let sign = |k: usize| {
        let sig = dev_signer(k).sign_hash_sync(&digest).unwrap();
        Bytes::from(sig.as_bytes().to_vec())
    };
    let set = dev_attester_set();
    let mut forged = [(ATTESTERS[0], sign(ATTESTERS[0])), (USER, sign(USER))];
    forged.sort_by_key(|(k, _)| dev_signer(*k).address());
    let forged: Vec<Bytes> = forged.into_iter().map(|(_, sig)| sig).collect();
    let abi: Vec<_> = deliveries.iter().map(Delivery::abi).collect();
    let err = settler
        .settle(order.id().0, solver, abi.clone(), forged)
        .call()
        .await;
    assert!(reverted(err).contains("not an attester"));
    let attestation = set
        .quorum(digest, ATTESTERS.map(sign))
        .expect("three attesters are a quorum");
    let before = usdc_a.balanceOf(solver).call().await.unwrap();
    send(
        settler
            .settle(order.id().0, solver, abi.clone(), attestation.clone())
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
        .settle(order.id().0, solver, abi, attestation)
        .call()
        .await;
    assert!(reverted(twice).contains("not open"));
    // An early refund is refused: the fill deadline has not passed.
    let refund = settler.refund(order.id().0).call().await;
    assert!(reverted(refund).contains("not open"));
}

/// Only the owner changes the attester set, to a majority threshold, with an event; the adapter
/// reads the new set; a removed attester is no longer a member.
#[tokio::test]
async fn the_attester_set_is_the_owners_to_change() {
    let devnet = Devnet::start(1, None).await.unwrap();
    let a = &devnet.chains[0];
    let adapter = a.adapter(SOLVER).unwrap();
    assert_eq!(adapter.attesters().await.unwrap(), dev_attester_set());
    let owner = dev_signer(SETTLER_OWNER).address();
    let as_owner = OriginSettler::new(a.origin_settler, a.provider_as(SETTLER_OWNER));
    let as_solver = OriginSettler::new(a.origin_settler, a.provider_as(SOLVER));
    assert_eq!(as_solver.owner().call().await.unwrap(), owner);

    let (kept, gone, new) = (ATTESTERS[0], ATTESTERS[2], 5);
    let rotated: Vec<_> = [kept, ATTESTERS[1], new]
        .map(|k| dev_signer(k).address())
        .to_vec();
    let by_solver = as_solver
        .setAttesters(rotated.clone(), U256::from(2u8))
        .call()
        .await;
    assert!(reverted(by_solver).contains("not the owner"));
    for (set, threshold) in [(rotated.clone(), 1u8), (rotated.clone(), 4), (vec![], 0)] {
        let minority = as_owner
            .setAttesters(set, U256::from(threshold))
            .call()
            .await;
        assert!(reverted(minority).contains("threshold not a majority"));
    }
    let twice = vec![rotated[0], rotated[0], rotated[1]];
    let repeated = as_owner.setAttesters(twice, U256::from(2u8)).call().await;
    assert!(reverted(repeated).contains("repeated attester"));

    let receipt = as_owner
        .setAttesters(rotated.clone(), U256::from(2u8))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let event = receipt
        .decoded_log::<OriginSettler::AttestersSet>()
        .expect("AttestersSet");
    assert_eq!(
        (event.attesters.clone(), event.threshold),
        (rotated.clone(), U256::from(2u8))
    );
    let read = adapter.attesters().await.unwrap();
    assert_eq!((read.members, read.threshold), (rotated, 2));
    assert!(
        !as_solver
            .isAttester(dev_signer(gone).address())
            .call()
            .await
            .unwrap()
    );

    // The removed attester's signature no longer counts (the quorum check asks `isAttester`);
    // the new one's does.
    assert!(
        as_solver
            .isAttester(dev_signer(new).address())
            .call()
            .await
            .unwrap()
    );

    // Ownership moves only by the owner.
    let stolen = as_solver
        .transferOwnership(dev_signer(SOLVER).address())
        .call()
        .await;
    assert!(reverted(stolen).contains("not the owner"));
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
