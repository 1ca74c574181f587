//! The sim's fault injection: every fault does what it says, and the same seed gives the same run.

use alloy::primitives::{Address, U256};
use baton_adapters::conformance::{FEES, Harness, Role, SimWorld};
use baton_adapters::port::{ChainAdapter, Fees, Op, SignedTx, TxRequest, TxStatus};
use baton_adapters::sim::{MAX_REORG, SimChain, SimConfig};
use baton_planner::ChainId;

const GENESIS: u64 = 1_900_000_000;

fn transfer(h: &SimWorld, chain: ChainId, amount: u64) -> Op {
    Op::Transfer {
        token: h.token(chain, "USDC"),
        to: Address::repeat_byte(0x11),
        amount: U256::from(amount),
    }
}

async fn send(adapter: &dyn ChainAdapter, op: Op, fees: Fees) -> SignedTx {
    let tx = adapter.prepare(TxRequest::new(op, fees)).await.unwrap();
    adapter.broadcast(&tx).await.unwrap();
    tx
}

#[tokio::test]
async fn revert_next_reverts_the_next_transaction_of_that_kind_only() {
    let h = SimWorld::new(GENESIS);
    let [chain, _] = h.chains();
    let a = h.adapter(chain, Role::Solver);
    h.chain(chain)
        .revert_next("transfer", "rpc node lost its mind");
    let approve = send(
        a.as_ref(),
        Op::Approve {
            token: h.token(chain, "USDC"),
            spender: Address::repeat_byte(1),
            amount: U256::from(1),
        },
        FEES,
    )
    .await;
    let first = send(a.as_ref(), transfer(&h, chain, 1), FEES).await;
    let second = send(a.as_ref(), transfer(&h, chain, 2), FEES).await;
    h.chain(chain).mine(1);
    let status = |tx| {
        let a = a.clone();
        async move {
            match a.status(&tx, None).await.unwrap() {
                TxStatus::Included(inc) => inc,
                other => panic!("{other:?}"),
            }
        }
    };
    assert!(status(approve).await.success, "other kinds are untouched");
    let reverted = status(first).await;
    assert!(!reverted.success);
    assert_eq!(
        reverted.revert_reason.as_deref(),
        Some("sim: injected revert: rpc node lost its mind")
    );
    assert!(status(second).await.success, "only the next one");
    assert_eq!(
        a.balance(h.token(chain, "USDC"), Address::repeat_byte(0x11))
            .await
            .unwrap(),
        U256::from(2)
    );
}

#[tokio::test]
async fn drop_next_loses_a_broadcast_and_a_rebroadcast_recovers_it() {
    let h = SimWorld::new(GENESIS);
    let [chain, _] = h.chains();
    let a = h.adapter(chain, Role::Solver);
    h.chain(chain).drop_next("transfer");
    let tx = send(a.as_ref(), transfer(&h, chain, 1), FEES).await;
    h.chain(chain).mine(1);
    assert_eq!(a.status(&tx, None).await.unwrap(), TxStatus::Dropped);
    a.broadcast(&tx).await.unwrap();
    h.chain(chain).mine(1);
    assert!(matches!(a.status(&tx, None).await.unwrap(), TxStatus::Included(i) if i.success));

    // An explicit eviction, as anvil_dropTransaction.
    let tx = send(a.as_ref(), transfer(&h, chain, 1), FEES).await;
    h.chain(chain).drop_tx(tx.hash);
    assert_eq!(a.status(&tx, None).await.unwrap(), TxStatus::Dropped);
}

#[tokio::test]
async fn a_stall_holds_blocks_and_a_fee_spike_holds_underpriced_transactions() {
    let h = SimWorld::new(GENESIS);
    let [chain, _] = h.chains();
    let sim = h.chain(chain);
    let a = h.adapter(chain, Role::Solver);
    let head = a.head().await.unwrap();
    sim.stall(2);
    sim.mine(2);
    assert_eq!(a.head().await.unwrap(), head, "no block while stalled");
    sim.mine(1);
    assert_eq!(a.head().await.unwrap().number, head.number + 1);

    // Base fee 1 gwei; spiked to 100 gwei for 3 blocks. A 50 gwei transaction waits them out.
    sim.spike_base_fee(100_000_000_000, 3);
    let tx = send(a.as_ref(), transfer(&h, chain, 1), FEES).await;
    sim.mine(1);
    assert_eq!(a.conditions().await.unwrap().base_fee, 100_000_000_000);
    assert_eq!(a.status(&tx, None).await.unwrap(), TxStatus::Pending);
    // The replacement that outbids the spike goes in at once.
    let replacement = a
        .prepare(TxRequest {
            op: transfer(&h, chain, 1),
            fees: Fees {
                max_fee_per_gas: 200_000_000_000,
                ..FEES.bumped()
            },
            nonce: Some(tx.nonce),
        })
        .await
        .unwrap();
    a.broadcast(&replacement).await.unwrap();
    sim.mine(1);
    assert!(matches!(
        a.status(&replacement, None).await.unwrap(),
        TxStatus::Included(_)
    ));
    assert_eq!(a.status(&tx, None).await.unwrap(), TxStatus::Dropped);
    sim.mine(2);
    assert_eq!(
        a.conditions().await.unwrap().base_fee,
        1_000_000_000,
        "the spike ends"
    );
}

#[tokio::test]
async fn reorgs_replace_blocks_up_to_the_kept_depth() {
    let h = SimWorld::new(GENESIS);
    let [chain, _] = h.chains();
    let sim = h.chain(chain);
    let a = h.adapter(chain, Role::Solver);
    sim.mine(5);
    let before = a.head().await.unwrap();
    sim.reorg(3).unwrap();
    let after = a.head().await.unwrap();
    assert_eq!(after.number, before.number, "as many new blocks");
    assert_ne!(after.hash, before.hash);
    assert!(a.finalized().await.unwrap().number <= after.number);
    assert!(sim.reorg(before.number + 1).is_err(), "not past genesis");
    sim.mine(MAX_REORG as u64 + 5);
    assert!(
        sim.reorg(MAX_REORG as u64 + 1).is_err(),
        "not deeper than kept"
    );
    sim.reorg(MAX_REORG as u64).unwrap();
}

/// The outcome (ok or failed) of 200 head reads with 30 % injected failures.
async fn failures(seed: u64) -> Vec<bool> {
    let mut config = SimConfig::new(ChainId(7), Default::default(), GENESIS);
    config.seed = seed;
    let sim = SimChain::new(config);
    sim.fail_rpc_fraction(0.3);
    let a = sim.adapter(alloy::signers::local::PrivateKeySigner::random());
    let mut out = Vec::new();
    for _ in 0..200 {
        out.push(a.head().await.is_ok());
    }
    let c = loop {
        if let Ok(c) = a.conditions().await {
            break c;
        }
    };
    assert_eq!(
        c.rpc_errors as usize,
        out.iter().filter(|ok| !**ok).count() + (c.rpc_calls as usize - 201),
        "every failure is counted"
    );
    out
}

#[tokio::test]
async fn rpc_failures_follow_the_seed() {
    let a = failures(1).await;
    assert_eq!(a, failures(1).await, "same seed, same run");
    assert_ne!(a, failures(2).await, "another seed, another run");
    let failed = a.iter().filter(|ok| !**ok).count();
    assert!(
        (30..=90).contains(&failed),
        "about 30 % of 200 fail: {failed}"
    );
}

#[tokio::test]
async fn the_head_feed_announces_every_block_and_reorg() {
    let h = SimWorld::new(GENESIS);
    let [chain, _] = h.chains();
    let sim = h.chain(chain);
    let a = h.adapter(chain, Role::Solver);
    let mut feed = a.new_heads().expect("the sim has a head feed");
    assert_eq!(*feed.borrow_and_update(), a.head().await.unwrap());
    sim.mine(2);
    assert!(feed.has_changed().unwrap(), "a block is announced");
    assert_eq!(*feed.borrow_and_update(), a.head().await.unwrap());
    // A stalled chain makes no block: nothing is announced.
    sim.stall(1);
    sim.mine(1);
    assert!(!feed.has_changed().unwrap());
    // A reorg keeps the height and changes the hash: announced.
    let before = a.head().await.unwrap();
    sim.reorg(1).unwrap();
    assert!(feed.has_changed().unwrap());
    let after = *feed.borrow_and_update();
    assert_eq!(after, a.head().await.unwrap());
    assert_ne!(after.hash, before.hash);
}
