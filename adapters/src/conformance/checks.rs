//! The checks, one public async function each; [`crate::conformance_suite!`] runs them all.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use baton_planner::OrderId;

use super::support::*;
use super::{FEES, Harness, Role};
use crate::attestation::{Delivery, OriginSettlerAt};
use crate::error::AdapterError;
use crate::port::{BlockRef, ChainAdapter, EscrowStatus, Op, TxRequest, TxStatus};

/// Open on the origin (inputs into escrow), fill on the destination (recipient paid, evidence
/// recorded), settle on the origin with the attestation (solver repaid).
pub async fn open_fill_settle(h: &dyn Harness) {
    let [origin, destination] = h.chains();
    let solver = h.adapter(origin, Role::Solver).account();
    let user = h.user().address();
    let o = order(h, h.user(), fresh_nonce(), 250_000, 3_600).await;
    let settler = h.settlers(origin).origin;

    let user_before = balance(h, origin, user).await;
    open(h, &o).await;
    let origin_adapter = h.adapter(origin, Role::Solver);
    assert_eq!(
        origin_adapter.escrow(o.id).await.expect("escrow"),
        EscrowStatus::Opened
    );
    assert!(
        origin_adapter
            .nonce_used(user, o.order.nonce)
            .await
            .expect("nonce")
    );
    assert_eq!(balance(h, origin, user).await, user_before - o.amount);
    assert!(balance(h, origin, settler).await >= o.amount);

    let recipient_before = balance(h, destination, user).await;
    let dest = h.settlers(destination).destination;
    ok(h, destination, Role::Solver, approve(h, destination, dest)).await;
    let fill = ok(h, destination, Role::Solver, o.fill()).await;
    let dest_adapter = h.adapter(destination, Role::Solver);
    assert_eq!(
        balance(h, destination, user).await,
        recipient_before + o.amount,
        "the recipient got the output"
    );
    assert_eq!(
        dest_adapter.filled_by(o.id, 0).await.expect("filled_by"),
        Some(solver)
    );
    let evidence = dest_adapter.evidence(o.id).await.expect("evidence");
    assert_eq!(evidence.fills.len(), 1, "one Filled event: {evidence:?}");
    let f = evidence.fills[0];
    assert_eq!(
        (f.output_index, f.filler, f.token, f.amount, f.recipient),
        (0, solver, h.token(destination, "USDC"), o.amount, user)
    );
    assert_eq!(f.at.block, fill.block);

    // The Filled event carries the hash of the calls that ran (none), as the attesters compute it.
    assert_eq!(f.calls_hash, crate::abi::calls_hash(&[]));

    let solver_before = balance(h, origin, solver).await;
    let deliveries = vec![Delivery {
        output_index: 0,
        chain: destination,
        settler: dest,
        token: f.token,
        amount: f.amount,
        recipient: user,
    }];
    let at = origin_at(h);
    let attestation = quorum(h, at.fill_hash(o.id, solver, &deliveries));
    // An attestation for another filler does not pay this one.
    let forged = quorum(h, at.fill_hash(o.id, user, &deliveries));
    let settle = |attestations: Vec<Bytes>| Op::Settle {
        order_id: o.id,
        filler: solver,
        deliveries: deliveries.clone(),
        attestations,
    };
    reverts(h, origin, Role::Solver, settle(forged), "not an attester").await;
    let settled = ok(h, origin, Role::Solver, settle(attestation.clone())).await;
    assert_eq!(balance(h, origin, solver).await, solver_before + o.amount);
    assert_eq!(
        origin_adapter.escrow(o.id).await.expect("escrow"),
        EscrowStatus::Settled
    );
    let evidence = origin_adapter.evidence(o.id).await.expect("evidence");
    assert_eq!(
        evidence.settled.map(|(f, at)| (f, at.block)),
        Some((solver, settled.block))
    );
    assert_eq!(evidence.refunded, None);
    // Once only.
    reverts(h, origin, Role::Solver, settle(attestation), "not open").await;
    reverts(
        h,
        origin,
        Role::Solver,
        Op::Refund { order_id: o.id },
        "not open",
    )
    .await;
}

/// The origin settler pays out only for a quorum: fewer signatures, a repeated or outside signer,
/// signers out of order, signatures over another order, another chain, other deliveries or a cancel
/// are refused; any two of the three attesters settle, once; a cancel then finds nothing to refund.
pub async fn settle_needs_a_quorum(h: &dyn Harness) {
    let [origin, destination] = h.chains();
    let solver = h.adapter(origin, Role::Solver).account();
    let o = order(h, h.user(), fresh_nonce(), 20_000, 3_600).await;
    let other = order(h, h.user(), fresh_nonce(), 20_000, 3_600).await;
    open(h, &o).await;
    let deliveries = vec![Delivery {
        output_index: 0,
        chain: destination,
        settler: h.settlers(destination).destination,
        token: h.token(destination, "USDC"),
        amount: o.amount,
        recipient: h.user().address(),
    }];
    let at = origin_at(h);
    let digest = at.fill_hash(o.id, solver, &deliveries);
    let settle = |deliveries: &[Delivery], attestations: Vec<Bytes>| Op::Settle {
        order_id: o.id,
        filler: solver,
        deliveries: deliveries.to_vec(),
        attestations,
    };
    let refused = [
        (signed(h, digest, &[1]), "too few attestations"),
        (signed(h, digest, &[1, 1]), "attesters not ascending"),
        (
            {
                let mut down = ascending(h, digest, &[0, 2]);
                down.reverse();
                down
            },
            "attesters not ascending",
        ),
        (
            {
                let by_user = h.user().sign_hash_sync(&digest).expect("signing");
                let mut sigs = signed(h, digest, &[0]);
                sigs.push(Bytes::from(by_user.as_bytes().to_vec()));
                sigs.sort_by_key(|sig| crate::attestation::signer_of(digest, sig));
                sigs
            },
            "not an attester",
        ),
        (
            quorum(h, at.fill_hash(other.id, solver, &deliveries)),
            "not an attester",
        ),
        (
            quorum(
                h,
                OriginSettlerAt {
                    chain: destination,
                    ..at
                }
                .fill_hash(o.id, solver, &deliveries),
            ),
            "not an attester",
        ),
        (quorum(h, at.cancel_hash(o.id)), "not an attester"),
    ];
    for (sigs, reason) in refused {
        reverts(h, origin, Role::Solver, settle(&deliveries, sigs), reason).await;
    }
    let mut short = deliveries.clone();
    short[0].amount -= U256::from(1u8);
    reverts(
        h,
        origin,
        Role::Solver,
        settle(&short, quorum(h, digest)),
        "not an attester",
    )
    .await;
    assert_eq!(
        h.adapter(origin, Role::Solver)
            .escrow(o.id)
            .await
            .expect("escrow"),
        EscrowStatus::Opened
    );

    // Any two: the second and third attesters settle.
    let two = ascending(h, digest, &[1, 2]);
    ok(h, origin, Role::Solver, settle(&deliveries, two.clone())).await;
    assert_eq!(
        h.adapter(origin, Role::Solver)
            .escrow(o.id)
            .await
            .expect("escrow"),
        EscrowStatus::Settled
    );
    // Replayed, it finds nothing to pay; a cancel quorum finds nothing to refund.
    reverts(
        h,
        origin,
        Role::Solver,
        settle(&deliveries, two),
        "not open",
    )
    .await;
    let cancel = Op::RefundWithCancel {
        order_id: o.id,
        attestations: quorum(h, at.cancel_hash(o.id)),
    };
    reverts(h, origin, Role::Solver, cancel, "not open").await;
}

/// A refund before the fill deadline, or after it inside the settlement window, reverts; after
/// the window, the user gets the inputs back, once.
pub async fn refund_after_deadline(h: &dyn Harness) {
    let [origin, _] = h.chains();
    let user = h.user().address();
    let o = order(h, h.user(), fresh_nonce(), 100_000, 60).await;
    let before = balance(h, origin, user).await;
    open(h, &o).await;
    let refund = Op::Refund { order_id: o.id };
    reverts(
        h,
        origin,
        Role::Solver,
        refund.clone(),
        "settlement window not passed",
    )
    .await;
    // Past the fill deadline, inside the settlement window: still only a quorum moves it.
    h.advance_time(origin, 90).await.expect("advancing time");
    reverts(
        h,
        origin,
        Role::Solver,
        refund.clone(),
        "settlement window not passed",
    )
    .await;
    h.advance_time(origin, 60).await.expect("advancing time");
    let inc = ok(h, origin, Role::Solver, refund.clone()).await;
    assert_eq!(
        balance(h, origin, user).await,
        before,
        "the user has the input back"
    );
    let adapter = h.adapter(origin, Role::Solver);
    assert_eq!(
        adapter.escrow(o.id).await.expect("escrow"),
        EscrowStatus::Refunded
    );
    let evidence = adapter.evidence(o.id).await.expect("evidence");
    assert_eq!(
        evidence.refunded.map(|(u, at)| (u, at.block)),
        Some((user, inc.block))
    );
    reverts(h, origin, Role::Solver, refund, "not open").await;
}

/// An attested cancel refunds before the deadline; a cancel signed by anyone else does not.
pub async fn refund_with_cancel(h: &dyn Harness) {
    let [origin, _] = h.chains();
    let user = h.user().address();
    let o = order(h, h.user(), fresh_nonce(), 100_000, 3_600).await;
    let before = balance(h, origin, user).await;
    open(h, &o).await;
    let digest = origin_at(h).cancel_hash(o.id);
    let by_user = h.user().sign_hash_sync(&digest).expect("signing");
    let op = |attestations: Vec<Bytes>| Op::RefundWithCancel {
        order_id: o.id,
        attestations,
    };
    let mut with_user = quorum(h, digest);
    with_user[0] = Bytes::from(by_user.as_bytes().to_vec());
    reverts(h, origin, Role::Solver, op(with_user), "OriginSettler:").await;
    reverts(
        h,
        origin,
        Role::Solver,
        op(signed(h, digest, &[2])),
        "too few attestations",
    )
    .await;
    ok(h, origin, Role::Solver, op(quorum(h, digest))).await;
    assert_eq!(balance(h, origin, user).await, before);
}

/// Two fills of one output in one block: the first pays, the second reverts, the recipient is paid
/// once.
pub async fn double_fill_rejected(h: &dyn Harness) {
    let [_, destination] = h.chains();
    let user = h.user().address();
    let o = order(h, h.user(), fresh_nonce(), 50_000, 3_600).await;
    let dest = h.settlers(destination).destination;
    ok(h, destination, Role::Solver, approve(h, destination, dest)).await;
    let before = balance(h, destination, user).await;
    let results = run(h, destination, Role::Solver, vec![o.fill(), o.fill()]).await;
    assert!(results[0].1.success, "the first fill succeeds");
    assert!(!results[1].1.success, "the second fill must revert");
    let reason = results[1].1.revert_reason.clone().unwrap_or_default();
    assert!(reason.contains("already filled"), "reason: {reason:?}");
    assert_eq!(balance(h, destination, user).await, before + o.amount);
    let evidence = h
        .adapter(destination, Role::Solver)
        .evidence(o.id)
        .await
        .expect("evidence");
    assert_eq!(evidence.fills.len(), 1);
}

/// A fill after the order's fill deadline (when the origin may refund the user) reverts: the
/// recipient is not paid, the filler keeps its tokens; before the deadline it pays.
pub async fn late_fill_rejected(h: &dyn Harness) {
    let [_, destination] = h.chains();
    let user = h.user().address();
    let o = order(h, h.user(), fresh_nonce(), 50_000, 60).await;
    let dest = h.settlers(destination).destination;
    ok(h, destination, Role::Solver, approve(h, destination, dest)).await;
    let before = balance(h, destination, user).await;
    h.advance_time(destination, 120)
        .await
        .expect("advancing time");
    reverts(
        h,
        destination,
        Role::Solver,
        o.fill(),
        "fill deadline passed",
    )
    .await;
    assert_eq!(balance(h, destination, user).await, before, "nobody paid");
    let on_time = order(h, h.user(), fresh_nonce(), 50_000, 3_600).await;
    ok(h, destination, Role::Solver, on_time.fill()).await;
    assert_eq!(balance(h, destination, user).await, before + on_time.amount);
}

/// An order signed by someone other than its user, or altered after signing, does not open, and
/// uses up nothing.
pub async fn bad_signature_rejected(h: &dyn Harness) {
    let [origin, _] = h.chains();
    let user = h.user().address();
    let stranger = PrivateKeySigner::from_bytes(&B256::repeat_byte(0x42)).expect("key");
    let o = order(h, &stranger, fresh_nonce(), 10_000, 3_600).await;
    ok(
        h,
        origin,
        Role::User,
        approve(h, origin, h.settlers(origin).origin),
    )
    .await;
    let before = balance(h, origin, user).await;
    reverts(h, origin, Role::Solver, o.open(), "bad signature").await;

    let mut altered = order(h, h.user(), fresh_nonce(), 10_000, 3_600).await;
    altered.order.fillDeadline += 1;
    reverts(h, origin, Role::Solver, altered.open(), "bad signature").await;

    let adapter = h.adapter(origin, Role::Solver);
    assert_eq!(
        adapter.escrow(o.id).await.expect("escrow"),
        EscrowStatus::None
    );
    assert!(
        !adapter
            .nonce_used(user, o.order.nonce)
            .await
            .expect("nonce")
    );
    assert_eq!(balance(h, origin, user).await, before, "nothing moved");
}

/// A second order with a used nonce does not open; a second transaction with a used account nonce
/// is refused by the chain.
pub async fn nonce_reuse_rejected(h: &dyn Harness) {
    let [origin, _] = h.chains();
    let nonce = fresh_nonce();
    let first = order(h, h.user(), nonce, 10_000, 3_600).await;
    open(h, &first).await;
    let second = order(h, h.user(), nonce, 20_000, 3_600).await;
    assert_ne!(first.id, second.id);
    reverts(h, origin, Role::Solver, second.open(), "nonce used").await;

    // The used nonces are listed up to a block, and a follower learns them once per user, then
    // keeps them from the settler's `NonceUsed` events.
    let user = h.user().address();
    let adapter = h.adapter(origin, Role::Solver);
    let followed =
        crate::follow::Followed::new(adapter.clone(), crate::follow::FollowConfig::default());
    followed.sync().await.expect("following");
    let head = followed.at().expect("a block read").number;
    let used = adapter.used_nonces(user, head).await.expect("listing");
    assert!(used.contains(&nonce), "{used:?} lacks {nonce}");
    assert!(followed.nonce_used(user, nonce).await.expect("nonce"));
    let asked = followed.stats().from_node;
    let later = fresh_nonce();
    assert!(!followed.nonce_used(user, later).await.expect("nonce"));
    assert_eq!(
        followed.stats().from_node,
        asked,
        "a followed user's nonce cost a call"
    );
    open(h, &order(h, h.user(), later, 10_000, 3_600).await).await;
    followed.sync().await.expect("following");
    assert!(followed.nonce_used(user, later).await.expect("nonce"));
    assert_eq!(followed.stats().from_node, asked);

    // The account nonce of an included transaction cannot carry another one.
    let adapter = h.adapter(origin, Role::Solver);
    let (tx, _) = run(
        h,
        origin,
        Role::Solver,
        vec![Op::Transfer {
            token: h.token(origin, "USDC"),
            to: h.user().address(),
            amount: U256::from(1),
        }],
    )
    .await
    .remove(0);
    let reuse = adapter
        .prepare(TxRequest {
            op: Op::Transfer {
                token: h.token(origin, "USDC"),
                to: h.user().address(),
                amount: U256::from(2),
            },
            fees: FEES.bumped(),
            nonce: Some(tx.nonce),
        })
        .await
        .expect("preparing");
    match adapter.broadcast(&reuse).await {
        Err(AdapterError::Rejected { .. }) => {}
        other => panic!("a used account nonce must be refused, got {other:?}"),
    }
}

/// The same signed bytes sent again — before inclusion, after it — change nothing.
pub async fn rebroadcast_is_harmless(h: &dyn Harness) {
    let [origin, _] = h.chains();
    let adapter = h.adapter(origin, Role::Solver);
    let to = Address::repeat_byte(0x77);
    let before = balance(h, origin, to).await;
    let tx = adapter
        .prepare(TxRequest::new(
            Op::Transfer {
                token: h.token(origin, "USDC"),
                to,
                amount: U256::from(5),
            },
            FEES,
        ))
        .await
        .expect("preparing");
    assert_eq!(
        adapter.status(&tx, None).await.expect("status"),
        TxStatus::Dropped
    );
    adapter.broadcast(&tx).await.expect("broadcast");
    adapter
        .broadcast(&tx)
        .await
        .expect("rebroadcast while pending");
    assert_eq!(
        adapter.status(&tx, None).await.expect("status"),
        TxStatus::Pending
    );
    h.mine(origin, 1).await.expect("mining");
    let inc = included(adapter.as_ref(), &tx).await;
    assert!(inc.success);
    adapter
        .broadcast(&tx)
        .await
        .expect("rebroadcast after inclusion");
    h.mine(origin, 1).await.expect("mining");
    assert_eq!(included(adapter.as_ref(), &tx).await.block, inc.block);
    assert_eq!(
        balance(h, origin, to).await,
        before + U256::from(5),
        "paid once"
    );
}

/// A replacement with higher fees takes the nonce; the original is dropped; an underpriced
/// replacement is refused.
pub async fn replacement_takes_the_nonce(h: &dyn Harness) {
    let [origin, _] = h.chains();
    let adapter = h.adapter(origin, Role::Solver);
    let to = Address::repeat_byte(0x78);
    let transfer = |amount: u64| Op::Transfer {
        token: h.token(origin, "USDC"),
        to,
        amount: U256::from(amount),
    };
    let before = balance(h, origin, to).await;
    let first = adapter
        .prepare(TxRequest::new(transfer(1), FEES))
        .await
        .expect("preparing");
    adapter.broadcast(&first).await.expect("broadcast");
    let same_fees = adapter
        .prepare(TxRequest {
            op: transfer(2),
            fees: FEES,
            nonce: Some(first.nonce),
        })
        .await
        .expect("preparing");
    match adapter.broadcast(&same_fees).await {
        Err(AdapterError::Rejected { .. }) => {}
        other => panic!("an underpriced replacement must be refused, got {other:?}"),
    }
    let replacement = adapter
        .prepare(TxRequest {
            op: transfer(3),
            fees: FEES.bumped(),
            nonce: Some(first.nonce),
        })
        .await
        .expect("preparing");
    assert_eq!(replacement.nonce, first.nonce);
    adapter.broadcast(&replacement).await.expect("replacement");
    h.mine(origin, 1).await.expect("mining");
    assert!(included(adapter.as_ref(), &replacement).await.success);
    assert_eq!(
        adapter.status(&first, None).await.expect("status"),
        TxStatus::Dropped
    );
    assert_eq!(balance(h, origin, to).await, before + U256::from(3));
}

/// Included, then reorged out (reported against the block it was seen in), then rebroadcast and
/// included again in a new block; the transfer happens once.
pub async fn status_through_reorg(h: &dyn Harness) {
    let [origin, _] = h.chains();
    let adapter = h.adapter(origin, Role::Solver);
    let to = Address::repeat_byte(0x79);
    let before = balance(h, origin, to).await;
    let (tx, inc) = run(
        h,
        origin,
        Role::Solver,
        vec![Op::Transfer {
            token: h.token(origin, "USDC"),
            to,
            amount: U256::from(7),
        }],
    )
    .await
    .remove(0);
    assert!(inc.success);
    let seen: BlockRef = inc.block;
    h.reorg(origin, 1).await.expect("reorg");
    let head = adapter.head().await.expect("head");
    assert!(head.number >= seen.number && head.hash != seen.hash || head.number > seen.number);
    match adapter.status(&tx, Some(&seen)).await.expect("status") {
        TxStatus::ReorgedOut { was } => assert_eq!(was, seen),
        TxStatus::Included(again) => {
            assert_ne!(again.block.hash, seen.hash, "re-included in a new block")
        }
        other => panic!("after a reorg: {other:?}"),
    }
    assert_eq!(
        balance(h, origin, to).await,
        before,
        "the transfer left the chain"
    );
    adapter.broadcast(&tx).await.expect("rebroadcast");
    h.mine(origin, 1).await.expect("mining");
    let again = included(adapter.as_ref(), &tx).await;
    assert_ne!(again.block.hash, seen.hash);
    assert_eq!(balance(h, origin, to).await, before + U256::from(7), "once");
}

/// Heads move with blocks, the finalized block trails the head, conditions and reads answer.
pub async fn reads_and_conditions(h: &dyn Harness) {
    let [origin, destination] = h.chains();
    let adapter = h.adapter(origin, Role::Solver);
    assert_eq!(adapter.chain_id(), origin);
    assert_eq!(h.adapter(destination, Role::User).chain_id(), destination);
    let head = adapter.head().await.expect("head");
    h.mine(origin, 3).await.expect("mining");
    let later = adapter.head().await.expect("head");
    assert_eq!(later.number, head.number + 3);
    let finalized = adapter.finalized().await.expect("finalized");
    assert!(finalized.number <= later.number);
    let c = adapter.conditions().await.expect("conditions");
    assert_eq!(c.head, later);
    assert!(c.base_fee > 0);
    assert!(c.rpc_calls > 0);
    assert!(c.timestamp > 0);
    let user = h.user().address();
    assert!(balance(h, origin, user).await > U256::ZERO);
    assert_eq!(
        adapter
            .allowance(h.token(origin, "USDC"), user, Address::repeat_byte(0x55))
            .await
            .expect("allowance"),
        U256::ZERO
    );
    let unknown = OrderId(B256::repeat_byte(0x99));
    assert_eq!(
        adapter.escrow(unknown).await.expect("escrow"),
        EscrowStatus::None
    );
    assert_eq!(
        adapter.filled_by(unknown, 0).await.expect("filled_by"),
        None
    );
    assert!(
        adapter
            .evidence(unknown)
            .await
            .expect("evidence")
            .fills
            .is_empty()
    );
}
