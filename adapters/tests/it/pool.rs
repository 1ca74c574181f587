//! The Pool contract computes exactly the planner's constant-product output.

use alloy::primitives::U256;
use baton_adapters::contracts::{Pool, TestToken};
use baton_adapters::devnet::{Devnet, SOLVER, send};
use baton_planner::amm::amount_out;

use crate::reverted;

#[tokio::test]
async fn swaps_match_the_planners_amm_maths_and_revert_below_min_out() {
    let devnet = Devnet::start(1, None).await.unwrap();
    let chain = &devnet.chains[0];
    let pool = Pool::new(chain.pools["USDC/WETH"], chain.provider.clone());
    let usdc = TestToken::new(chain.tokens["USDC"], chain.provider.clone());
    let weth = TestToken::new(chain.tokens["WETH"], chain.provider.clone());
    send(
        usdc.approve(*pool.address(), U256::MAX).send().await,
        "approve",
    )
    .await
    .unwrap();
    let me = chain.account(SOLVER);

    for amount_in in [1u64, 999_999, 1_000_000_000, 123_456_789_012] {
        let (r0, r1) = (
            pool.reserve0().call().await.unwrap(),
            pool.reserve1().call().await.unwrap(),
        );
        let (rin, rout) = if pool.token0().call().await.unwrap() == *usdc.address() {
            (r0, r1)
        } else {
            (r1, r0)
        };
        let expected = amount_out(U256::from(amount_in), rin, rout, 30).unwrap();
        if expected.is_zero() {
            let why = reverted(
                pool.swap(*usdc.address(), U256::from(amount_in), U256::ZERO, me)
                    .call()
                    .await,
            );
            assert!(why.contains("zero output"), "{why}");
            continue;
        }
        let too_much = reverted(
            pool.swap(
                *usdc.address(),
                U256::from(amount_in),
                expected + U256::from(1u8),
                me,
            )
            .call()
            .await,
        );
        assert!(too_much.contains("output below minOut"), "{too_much}");
        let before = weth.balanceOf(me).call().await.unwrap();
        send(
            pool.swap(*usdc.address(), U256::from(amount_in), expected, me)
                .send()
                .await,
            "swap",
        )
        .await
        .unwrap();
        assert_eq!(
            weth.balanceOf(me).call().await.unwrap() - before,
            expected,
            "{amount_in} in"
        );
    }
}
