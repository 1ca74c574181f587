//! Destination calls run through the settler's executor after the transfer: a vault deposit for the
//! user works; a call that tries to spend the filler's approval fails and takes the fill with it.

use alloy::primitives::{Bytes, U256};
use alloy::sol_types::{SolCall, SolValue};
use baton_adapters::contracts::{DestinationSettler, TestToken, Vault};
use baton_adapters::devnet::{Devnet, SOLVER, USER, send};
use baton_planner::order::{Call, Output};

use crate::reverted;

#[tokio::test]
async fn a_destination_call_deposits_for_the_user_and_cannot_spend_the_fillers_approval() {
    let devnet = Devnet::start(1, None).await.unwrap();
    let chain = &devnet.chains[0];
    let (user, solver, attacker) = (chain.account(USER), chain.account(SOLVER), chain.account(6));
    let weth = TestToken::new(chain.tokens["WETH"], chain.provider.clone());
    let dest = DestinationSettler::new(chain.destination_settler, chain.provider.clone());
    let executor = dest.executor().call().await.unwrap();
    let vault = *Vault::deploy(&chain.provider, *weth.address())
        .await
        .unwrap()
        .address();
    send(
        weth.approve(chain.destination_settler, U256::MAX)
            .send()
            .await,
        "approve",
    )
    .await
    .unwrap();
    let amount = U256::from(10u64).pow(U256::from(18u8));
    let output = |recipient| Output {
        token: weth.address().into_word(),
        amount,
        recipient,
        chainId: U256::from(chain.chain_id),
    };
    let call = |target, data: Vec<u8>| Call {
        outputIndex: 0,
        target,
        data: Bytes::from(data),
    };

    // Deliver to the executor, which approves the vault and deposits for the user.
    let deposit = (
        0u32,
        output(executor.into_word()),
        vec![
            call(
                *weth.address(),
                TestToken::approveCall {
                    spender: vault,
                    amount,
                }
                .abi_encode(),
            ),
            call(
                vault,
                Vault::depositCall {
                    amount,
                    owner: user,
                }
                .abi_encode(),
            ),
        ],
        // The fill deadline: far ahead.
        u32::MAX,
    )
        .abi_encode_params();
    send(
        dest.fill([1u8; 32].into(), Bytes::from(deposit), Bytes::new())
            .send()
            .await,
        "fill",
    )
    .await
    .unwrap();
    let vault = Vault::new(vault, chain.provider.clone());
    assert_eq!(vault.deposits(user).call().await.unwrap(), amount);
    assert_eq!(weth.balanceOf(executor).call().await.unwrap(), U256::ZERO);

    // A call that tries to pull from the filler through the settler's allowance reverts the fill.
    let steal = (
        0u32,
        output(user.into_word()),
        vec![call(
            *weth.address(),
            TestToken::transferFromCall {
                from: solver,
                to: attacker,
                amount,
            }
            .abi_encode(),
        )],
        u32::MAX,
    )
        .abi_encode_params();
    let why = reverted(
        dest.fill([2u8; 32].into(), Bytes::from(steal.clone()), Bytes::new())
            .call()
            .await,
    );
    assert!(why.contains("allowance too low"), "{why}");
    assert!(
        dest.fill([2u8; 32].into(), Bytes::from(steal), Bytes::new())
            .send()
            .await
            .is_err()
    );
    assert_eq!(weth.balanceOf(attacker).call().await.unwrap(), U256::ZERO);
    let key = dest.fillKey([2u8; 32].into(), 0).call().await.unwrap();
    assert!(
        dest.filledBy(key).call().await.unwrap().is_zero(),
        "a failed fill is not recorded"
    );
}
