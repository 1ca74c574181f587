//! Refunds: after the fill deadline to anyone's call, or earlier with a quorum's cancel; once.

use alloy::primitives::{Bytes, U256};
use alloy::signers::{Signer, SignerSync};
use baton_adapters::attestation::OriginSettlerAt;
use baton_adapters::contracts::{OriginSettler, TestToken, gasless_order};
use baton_adapters::devnet::{ATTESTERS, Devnet, USER, dev_attester_set, dev_signer, send};
use baton_planner::{Amount, Asset, ChainId, Input, Intent, Order, Output, TokenAddress};
use serde_json::json;

use crate::{anvil, now, reverted};

fn order(chain: &baton_adapters::devnet::DevnetChain, nonce: u64) -> Order {
    let intent = Intent::new(
        chain.account(USER),
        U256::from(nonce),
        now() + 60,
        now() + 120,
        vec![Input {
            asset: Asset::new(ChainId(chain.chain_id), TokenAddress(chain.tokens["USDC"])),
            amount: Amount::from(5_000_000),
        }],
        vec![Output {
            asset: Asset::new(
                ChainId(chain.chain_id + 1),
                TokenAddress(chain.tokens["WETH"]),
            ),
            min_amount: Amount::from(1),
            recipient: chain.account(USER),
            call: None,
        }],
    )
    .unwrap();
    intent
        .orders(|_| Some(chain.origin_settler))
        .unwrap()
        .remove(0)
}

async fn open(chain: &baton_adapters::devnet::DevnetChain, order: &Order) {
    let settler = OriginSettler::new(chain.origin_settler, chain.provider.clone());
    let sig = chain
        .signer(USER)
        .sign_hash(&order.signing_hash())
        .await
        .unwrap();
    send(
        settler
            .openFor(
                gasless_order(order.order()),
                Bytes::from(sig.as_bytes().to_vec()),
                Bytes::new(),
            )
            .send()
            .await,
        "open",
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn refunds_wait_for_the_deadline_or_an_attested_cancel_and_happen_once() {
    let devnet = Devnet::start(1, None).await.unwrap();
    let chain = &devnet.chains[0];
    let user = chain.account(USER);
    let usdc = TestToken::new(chain.tokens["USDC"], chain.provider.clone());
    let usdc_as_user = TestToken::new(chain.tokens["USDC"], chain.provider_as(USER));
    send(
        usdc_as_user
            .approve(chain.origin_settler, U256::MAX)
            .send()
            .await,
        "approve",
    )
    .await
    .unwrap();
    let settler = OriginSettler::new(chain.origin_settler, chain.provider.clone());
    let start = usdc.balanceOf(user).call().await.unwrap();

    // With an attested cancel, at once.
    let first = order(chain, 1);
    open(chain, &first).await;
    assert_eq!(
        usdc.balanceOf(user).call().await.unwrap(),
        start - U256::from(5_000_000u64)
    );
    let early = reverted(settler.refund(first.id().0).call().await);
    assert!(early.contains("settlement window not passed"), "{early}");
    let digest = OriginSettlerAt {
        chain: ChainId(chain.chain_id),
        settler: chain.origin_settler,
    }
    .cancel_hash(first.id());
    let signatures = ATTESTERS.map(|k| {
        let sig = dev_signer(k).sign_hash_sync(&digest).unwrap();
        Bytes::from(sig.as_bytes().to_vec())
    });
    let cancel = dev_attester_set()
        .quorum(digest, signatures)
        .expect("a quorum");
    send(
        settler
            .refundWithCancel(first.id().0, cancel.clone())
            .send()
            .await,
        "cancel",
    )
    .await
    .unwrap();
    assert_eq!(usdc.balanceOf(user).call().await.unwrap(), start);
    let twice = reverted(settler.refundWithCancel(first.id().0, cancel).call().await);
    assert!(twice.contains("not open"), "{twice}");

    // After the fill deadline and the settlement window, to anyone's call.
    let second = order(chain, 2);
    open(chain, &second).await;
    anvil(chain, "evm_increaseTime", json!([260])).await;
    anvil(chain, "evm_mine", json!([])).await;
    send(settler.refund(second.id().0).send().await, "refund")
        .await
        .unwrap();
    assert_eq!(usdc.balanceOf(user).call().await.unwrap(), start);
    let twice = reverted(settler.refund(second.id().0).call().await);
    assert!(twice.contains("not open"), "{twice}");
}
