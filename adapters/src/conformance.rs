//! The conformance suite: what every [`ChainAdapter`] must do, as one set of checks run against the
//! `sim` chain and against `evm` on real anvil nodes — and by solvers against their own adapters.
//!
//! Each check is an async function taking a [`Harness`]: two chains (an origin and a destination),
//! the adapters of a user and a solver on each, and the few test-network controls the checks need
//! (mine, move time, reorg). A check panics with a message saying what the adapter got wrong.
//!
//! ## Running it against your adapter
//! 1. Deploy the fixture contracts (`fixtures/contracts/artifacts`) on two chains of yours, or give
//!    your chain the same semantics; fund the [`Harness::user`] with at least [`FUNDS`] of a token
//!    the harness names `"USDC"` on the origin chain, and the solver with as much on the
//!    destination.
//! 2. Implement [`Harness`] for that world: `adapter` hands out your adapter for either account.
//!    Chains must not produce blocks by themselves (disable automine; [`Harness::mine`] does it).
//! 3. Generate the tests: `baton_adapters::conformance_suite!(your_async_harness_constructor);`
//!    in an integration test (it needs `tokio` with `macros` and `rt-multi-thread`), then
//!    `cargo test`. See `adapters/tests/it/conformance.rs` for the two harnesses baton ships.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolStruct, SolValue};
use baton_planner::order::{self, BatonOrderData, GaslessCrossChainOrder, Input, Output};
use baton_planner::{ChainId, OrderId};
use serde_json::json;

use crate::abi::Settlers;
use crate::contracts::{Cancel, Fill};
use crate::devnet::{ATTESTER, Devnet, DevnetChain, SOLVER, USER, dev_signer};
use crate::error::{AdapterError, Result};
use crate::port::{
    BlockRef, BoxFuture, ChainAdapter, EscrowStatus, Fees, Inclusion, Op, SignedTx, TxRequest,
    TxStatus,
};
use crate::sim::{SimChain, SimConfig};

/// Base units of `"USDC"` the user must hold on the origin and the solver on the destination.
pub const FUNDS: u64 = 1_000_000_000;

/// Whose adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The account that signs orders and gives inputs.
    User,
    /// The filler: opens, fills, settles, refunds.
    Solver,
}

/// Two chains and the controls the suite needs.
pub trait Harness: Send + Sync {
    /// The origin chain and the destination chain.
    fn chains(&self) -> [ChainId; 2];
    /// `role`'s adapter on `chain`.
    fn adapter(&self, chain: ChainId, role: Role) -> Arc<dyn ChainAdapter>;
    /// The user's key (signs orders; the same account as [`Role::User`]'s adapter).
    fn user(&self) -> &PrivateKeySigner;
    /// The attester whose signatures the origin settlers accept.
    fn attester(&self) -> &PrivateKeySigner;
    /// A token on `chain` by symbol (the suite uses `"USDC"`).
    fn token(&self, chain: ChainId, symbol: &str) -> Address;
    /// The settlers on `chain`.
    fn settlers(&self, chain: ChainId) -> Settlers;
    /// Produces `blocks` blocks on `chain`.
    fn mine(&self, chain: ChainId, blocks: u64) -> BoxFuture<'_, Result<()>>;
    /// Moves `chain`'s clock `secs` ahead (seen from the next block).
    fn advance_time(&self, chain: ChainId, secs: u64) -> BoxFuture<'_, Result<()>>;
    /// Replaces the last `depth` blocks of `chain` with new ones, as a reorg does.
    fn reorg(&self, chain: ChainId, depth: u64) -> BoxFuture<'_, Result<()>>;
}

/// Generates one `#[tokio::test]` per conformance check, each on a fresh harness from `$make`
/// (an async expression yielding something that implements [`Harness`]).
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@tests $make;
            open_fill_settle, refund_after_deadline, refund_with_cancel, double_fill_rejected,
            bad_signature_rejected, nonce_reuse_rejected, rebroadcast_is_harmless,
            replacement_takes_the_nonce, status_through_reorg, reads_and_conditions);
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let harness = $make.await;
                $crate::conformance::$name(&harness).await;
            }
        )*
    };
}

/// Fees comfortably above any base fee the suite meets.
pub const FEES: Fees = Fees {
    gas_limit: 600_000,
    max_fee_per_gas: 50_000_000_000,
    max_priority_fee_per_gas: 1_000_000_000,
};

static NONCES: AtomicU64 = AtomicU64::new(1);

/// A fresh order nonce (unique within the process, and across runs on a long-lived chain).
fn fresh_nonce() -> U256 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    U256::from(t) << 32 | U256::from(NONCES.fetch_add(1, Ordering::Relaxed))
}

/// A signed order: `amount` of the origin's USDC for as much USDC on the destination.
struct Signed {
    order: GaslessCrossChainOrder,
    id: OrderId,
    signature: Bytes,
    amount: U256,
}

impl Signed {
    fn open(&self) -> Op {
        Op::Open {
            order: self.order.clone(),
            signature: self.signature.clone(),
        }
    }

    fn output(&self) -> Output {
        let data = BatonOrderData::abi_decode(&self.order.orderData).expect("own order data");
        data.outputs[0].clone()
    }

    fn fill(&self) -> Op {
        Op::Fill {
            order_id: self.id,
            output_index: 0,
            output: self.output(),
            calls: Vec::new(),
        }
    }
}

async fn now(h: &dyn Harness, chain: ChainId) -> u64 {
    h.adapter(chain, Role::Solver)
        .conditions()
        .await
        .expect("conditions")
        .timestamp
}

/// Builds and signs (as `signer`) an order of `amount`, fill deadline `fill_in` seconds ahead.
async fn order(
    h: &dyn Harness,
    signer: &PrivateKeySigner,
    nonce: U256,
    amount: u64,
    fill_in: u64,
) -> Signed {
    let [origin, destination] = h.chains();
    let now = now(h, origin).await;
    let amount = U256::from(amount);
    let user = h.user().address();
    let data = BatonOrderData {
        intentId: B256::from(nonce),
        inputs: vec![Input {
            token: h.token(origin, "USDC"),
            amount,
            chainId: U256::from(origin.0),
        }],
        outputs: vec![Output {
            token: h.token(destination, "USDC").into_word(),
            amount,
            recipient: user.into_word(),
            chainId: U256::from(destination.0),
        }],
        calls: Vec::new(),
    };
    let settler = h.settlers(origin).origin;
    let order = GaslessCrossChainOrder {
        originSettler: settler,
        user,
        nonce,
        originChainId: U256::from(origin.0),
        openDeadline: u32::try_from(now + 3_600).expect("time fits u32"),
        fillDeadline: u32::try_from(now + fill_in).expect("time fits u32"),
        orderDataType: order::order_data_type(),
        orderData: data.abi_encode().into(),
    };
    let id = order.eip712_signing_hash(&order::domain(origin, settler));
    let signature = signer.sign_hash_sync(&id).expect("signing").as_bytes();
    Signed {
        order,
        id: OrderId(id),
        signature: Bytes::from(signature.to_vec()),
        amount,
    }
}

/// Prepares and broadcasts `ops` as `role` on `chain`, mines one block, and returns the
/// transactions with their inclusions.
async fn run(
    h: &dyn Harness,
    chain: ChainId,
    role: Role,
    ops: Vec<Op>,
) -> Vec<(SignedTx, Inclusion)> {
    let adapter = h.adapter(chain, role);
    let mut sent = Vec::new();
    for op in ops {
        let kind = op.kind();
        let tx = adapter
            .prepare(TxRequest::new(op, FEES))
            .await
            .unwrap_or_else(|e| panic!("preparing {kind}: {e}"));
        adapter
            .broadcast(&tx)
            .await
            .unwrap_or_else(|e| panic!("broadcasting {kind}: {e}"));
        sent.push(tx);
    }
    h.mine(chain, 1).await.expect("mining");
    let mut out = Vec::new();
    for tx in sent {
        out.push((tx.clone(), included(adapter.as_ref(), &tx).await));
    }
    out
}

async fn included(adapter: &dyn ChainAdapter, tx: &SignedTx) -> Inclusion {
    match adapter.status(tx, None).await.expect("status") {
        TxStatus::Included(inc) => inc,
        other => panic!(
            "transaction {} not included after a block: {other:?}",
            tx.hash
        ),
    }
}

/// Runs one op and requires it to succeed.
async fn ok(h: &dyn Harness, chain: ChainId, role: Role, op: Op) -> Inclusion {
    let kind = op.kind();
    let (_, inc) = run(h, chain, role, vec![op]).await.remove(0);
    assert!(
        inc.success,
        "{kind} reverted: {}",
        inc.revert_reason.unwrap_or_default()
    );
    inc
}

/// Runs one op and requires it to revert with a reason containing `reason`.
async fn reverts(h: &dyn Harness, chain: ChainId, role: Role, op: Op, reason: &str) {
    let kind = op.kind();
    let (_, inc) = run(h, chain, role, vec![op]).await.remove(0);
    assert!(!inc.success, "{kind} succeeded; it must revert ({reason})");
    let got = inc.revert_reason.unwrap_or_default();
    assert!(
        got.contains(reason),
        "{kind} reverted with {got:?}, expected {reason:?}"
    );
}

async fn balance(h: &dyn Harness, chain: ChainId, who: Address) -> U256 {
    h.adapter(chain, Role::Solver)
        .balance(h.token(chain, "USDC"), who)
        .await
        .expect("balance")
}

fn approve(h: &dyn Harness, chain: ChainId, spender: Address) -> Op {
    Op::Approve {
        token: h.token(chain, "USDC"),
        spender,
        amount: U256::MAX,
    }
}

/// Opens `o` with the user's approval in place; requires success.
async fn open(h: &dyn Harness, o: &Signed) {
    let [origin, _] = h.chains();
    ok(
        h,
        origin,
        Role::User,
        approve(h, origin, h.settlers(origin).origin),
    )
    .await;
    ok(h, origin, Role::Solver, o.open()).await;
}

fn attest<T: SolStruct>(h: &dyn Harness, what: &T) -> Bytes {
    let [origin, _] = h.chains();
    let digest = what.eip712_signing_hash(&order::domain(origin, h.settlers(origin).origin));
    let sig = h.attester().sign_hash_sync(&digest).expect("attesting");
    Bytes::from(sig.as_bytes().to_vec())
}

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

    let solver_before = balance(h, origin, solver).await;
    let attestation = attest(
        h,
        &Fill {
            orderId: o.id.0,
            filler: solver,
        },
    );
    // An attestation for another filler does not pay this one.
    let forged = attest(
        h,
        &Fill {
            orderId: o.id.0,
            filler: user,
        },
    );
    let settle = |attestation: Bytes| Op::Settle {
        order_id: o.id,
        filler: solver,
        attestation,
    };
    reverts(h, origin, Role::Solver, settle(forged), "bad attestation").await;
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

/// A refund before the fill deadline reverts; after it, the user gets the inputs back, once.
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
        "fill deadline not passed",
    )
    .await;
    h.advance_time(origin, 120).await.expect("advancing time");
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
    let cancel = Cancel { orderId: o.id.0 };
    let digest = cancel.eip712_signing_hash(&order::domain(origin, h.settlers(origin).origin));
    let by_user = h.user().sign_hash_sync(&digest).expect("signing");
    let op = |attestation: Bytes| Op::RefundWithCancel {
        order_id: o.id,
        attestation,
    };
    reverts(
        h,
        origin,
        Role::Solver,
        op(Bytes::from(by_user.as_bytes().to_vec())),
        "bad attestation",
    )
    .await;
    ok(h, origin, Role::Solver, op(attest(h, &cancel))).await;
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

/// The adapters of a harness, by chain and role.
#[derive(Default)]
struct Accounts(Vec<(ChainId, Role, Arc<dyn ChainAdapter>)>);

impl Accounts {
    fn add(&mut self, chain: ChainId, role: Role, adapter: Arc<dyn ChainAdapter>) {
        self.0.push((chain, role, adapter));
    }

    fn get(&self, chain: ChainId, role: Role) -> Arc<dyn ChainAdapter> {
        self.0
            .iter()
            .find(|(c, r, _)| *c == chain && *r == role)
            .map(|(_, _, a)| a.clone())
            .unwrap_or_else(|| panic!("no adapter for {role:?} on chain {}", chain.0))
    }
}

/// Two sim chains (1001, 1002) with USDC, the user and solver funded on both: the sim harness.
pub struct SimWorld {
    chains: [SimChain; 2],
    adapters: Accounts,
    user: PrivateKeySigner,
    attester: PrivateKeySigner,
    tokens: Vec<(ChainId, Address)>,
}

impl SimWorld {
    /// Builds the two chains from genesis time `genesis_time`.
    pub fn new(genesis_time: u64) -> Self {
        let user = dev_signer(USER);
        let attester = dev_signer(ATTESTER);
        let solver = dev_signer(SOLVER);
        let chains = [1001, 1002].map(|id| {
            SimChain::new(SimConfig::new(
                ChainId(id),
                attester.address(),
                genesis_time,
            ))
        });
        let mut adapters = Accounts::default();
        let mut tokens = Vec::new();
        for chain in &chains {
            let usdc = chain.add_token("USDC");
            for who in [user.address(), solver.address()] {
                chain.mint(usdc, who, U256::from(FUNDS) * U256::from(10));
            }
            tokens.push((chain.chain_id(), usdc));
            adapters.add(
                chain.chain_id(),
                Role::User,
                Arc::new(chain.adapter(user.clone())),
            );
            adapters.add(
                chain.chain_id(),
                Role::Solver,
                Arc::new(chain.adapter(solver.clone())),
            );
        }
        Self {
            chains,
            adapters,
            user,
            attester,
            tokens,
        }
    }

    /// The sim chain with id `chain`.
    pub fn chain(&self, chain: ChainId) -> &SimChain {
        self.chains
            .iter()
            .find(|c| c.chain_id() == chain)
            .unwrap_or(&self.chains[0])
    }
}

fn done<'a>(r: Result<()>) -> BoxFuture<'a, Result<()>> {
    Box::pin(std::future::ready(r))
}

impl Harness for SimWorld {
    fn chains(&self) -> [ChainId; 2] {
        [self.chains[0].chain_id(), self.chains[1].chain_id()]
    }
    fn adapter(&self, chain: ChainId, role: Role) -> Arc<dyn ChainAdapter> {
        self.adapters.get(chain, role)
    }
    fn user(&self) -> &PrivateKeySigner {
        &self.user
    }
    fn attester(&self) -> &PrivateKeySigner {
        &self.attester
    }
    fn token(&self, chain: ChainId, _symbol: &str) -> Address {
        self.tokens
            .iter()
            .find(|(c, _)| *c == chain)
            .map(|(_, t)| *t)
            .unwrap_or_default()
    }
    fn settlers(&self, chain: ChainId) -> Settlers {
        self.chain(chain).settlers()
    }
    fn mine(&self, chain: ChainId, blocks: u64) -> BoxFuture<'_, Result<()>> {
        self.chain(chain).mine(blocks);
        done(Ok(()))
    }
    fn advance_time(&self, chain: ChainId, secs: u64) -> BoxFuture<'_, Result<()>> {
        self.chain(chain).advance_time(secs);
        done(Ok(()))
    }
    fn reorg(&self, chain: ChainId, depth: u64) -> BoxFuture<'_, Result<()>> {
        done(self.chain(chain).reorg(depth))
    }
}

/// Two anvil nodes started by [`Devnet::start`], automine off, with `evm` adapters: the evm
/// harness. The nodes stop when it is dropped.
pub struct DevnetWorld {
    devnet: Devnet,
    adapters: Accounts,
    user: PrivateKeySigner,
    attester: PrivateKeySigner,
}

impl DevnetWorld {
    /// Starts the two nodes, deploys, then turns automine off.
    pub async fn start() -> Result<Self> {
        let devnet = Devnet::start(2, None).await?;
        let mut adapters = Accounts::default();
        for chain in &devnet.chains {
            anvil(chain, "evm_setAutomine", json!([false])).await?;
            let id = ChainId(chain.chain_id);
            adapters.add(id, Role::User, Arc::new(chain.adapter(USER)?));
            adapters.add(id, Role::Solver, Arc::new(chain.adapter(SOLVER)?));
        }
        Ok(Self {
            devnet,
            adapters,
            user: dev_signer(USER),
            attester: dev_signer(ATTESTER),
        })
    }

    fn node(&self, chain: ChainId) -> &DevnetChain {
        self.devnet
            .chains
            .iter()
            .find(|c| c.chain_id == chain.0)
            .unwrap_or(&self.devnet.chains[0])
    }
}

/// Calls an anvil-only JSON-RPC method.
pub async fn anvil(
    chain: &DevnetChain,
    method: &'static str,
    params: serde_json::Value,
) -> Result<serde_json::Value> {
    use alloy::providers::Provider;
    chain
        .provider
        .raw_request(method.into(), params)
        .await
        .map_err(|e| AdapterError::chain(method, e))
}

impl Harness for DevnetWorld {
    fn chains(&self) -> [ChainId; 2] {
        [
            ChainId(self.devnet.chains[0].chain_id),
            ChainId(self.devnet.chains[1].chain_id),
        ]
    }
    fn adapter(&self, chain: ChainId, role: Role) -> Arc<dyn ChainAdapter> {
        self.adapters.get(chain, role)
    }
    fn user(&self) -> &PrivateKeySigner {
        &self.user
    }
    fn attester(&self) -> &PrivateKeySigner {
        &self.attester
    }
    fn token(&self, chain: ChainId, symbol: &str) -> Address {
        self.node(chain)
            .tokens
            .get(symbol)
            .copied()
            .unwrap_or_default()
    }
    fn settlers(&self, chain: ChainId) -> Settlers {
        self.node(chain).settlers()
    }
    fn mine(&self, chain: ChainId, blocks: u64) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            anvil(self.node(chain), "anvil_mine", json!([blocks])).await?;
            Ok(())
        })
    }
    fn advance_time(&self, chain: ChainId, secs: u64) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            anvil(self.node(chain), "evm_increaseTime", json!([secs])).await?;
            Ok(())
        })
    }
    fn reorg(&self, chain: ChainId, depth: u64) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            anvil(self.node(chain), "anvil_reorg", json!([depth, []])).await?;
            Ok(())
        })
    }
}
