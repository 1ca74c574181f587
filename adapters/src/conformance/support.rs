//! What the checks share: signed test orders, running ops and asserting on their outcome.

use std::sync::atomic::{AtomicU64, Ordering};

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolStruct, SolValue};
use baton_planner::order::{self, BatonOrderData, GaslessCrossChainOrder, Input, Output};
use baton_planner::{ChainId, OrderId};

use super::{FEES, Harness, Role};
use crate::attestation::{AttesterSet, OriginSettlerAt};
use crate::port::{ChainAdapter, Inclusion, Op, SignedTx, TxRequest, TxStatus};

pub(super) static NONCES: AtomicU64 = AtomicU64::new(1);

/// A fresh order nonce (unique within the process, and across runs on a long-lived chain).
pub(super) fn fresh_nonce() -> U256 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    U256::from(t) << 32 | U256::from(NONCES.fetch_add(1, Ordering::Relaxed))
}

/// A signed order: `amount` of the origin's USDC for as much USDC on the destination.
pub(super) struct Signed {
    pub(super) order: GaslessCrossChainOrder,
    pub(super) id: OrderId,
    pub(super) signature: Bytes,
    pub(super) amount: U256,
}

impl Signed {
    pub(super) fn open(&self) -> Op {
        Op::Open {
            order: self.order.clone(),
            signature: self.signature.clone(),
        }
    }

    fn output(&self) -> Output {
        let data = BatonOrderData::abi_decode(&self.order.orderData).expect("own order data");
        data.outputs[0].clone()
    }

    pub(super) fn fill(&self) -> Op {
        Op::Fill {
            order_id: self.id,
            output_index: 0,
            output: self.output(),
            calls: Vec::new(),
            fill_deadline: self.order.fillDeadline,
        }
    }
}

pub(super) async fn now(h: &dyn Harness, chain: ChainId) -> u64 {
    h.adapter(chain, Role::Solver)
        .conditions()
        .await
        .expect("conditions")
        .timestamp
}

/// Builds and signs (as `signer`) an order of `amount`, fill deadline `fill_in` seconds ahead.
pub(super) async fn order(
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
pub(super) async fn run(
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

pub(super) async fn included(adapter: &dyn ChainAdapter, tx: &SignedTx) -> Inclusion {
    match adapter.status(tx, None).await.expect("status") {
        TxStatus::Included(inc) => inc,
        other => panic!(
            "transaction {} not included after a block: {other:?}",
            tx.hash
        ),
    }
}

/// Runs one op and requires it to succeed.
pub(super) async fn ok(h: &dyn Harness, chain: ChainId, role: Role, op: Op) -> Inclusion {
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
pub(super) async fn reverts(h: &dyn Harness, chain: ChainId, role: Role, op: Op, reason: &str) {
    let kind = op.kind();
    let (_, inc) = run(h, chain, role, vec![op]).await.remove(0);
    assert!(!inc.success, "{kind} succeeded; it must revert ({reason})");
    let got = inc.revert_reason.unwrap_or_default();
    assert!(
        got.contains(reason),
        "{kind} reverted with {got:?}, expected {reason:?}"
    );
}

pub(super) async fn balance(h: &dyn Harness, chain: ChainId, who: Address) -> U256 {
    h.adapter(chain, Role::Solver)
        .balance(h.token(chain, "USDC"), who)
        .await
        .expect("balance")
}

pub(super) fn approve(h: &dyn Harness, chain: ChainId, spender: Address) -> Op {
    Op::Approve {
        token: h.token(chain, "USDC"),
        spender,
        amount: U256::MAX,
    }
}

/// Opens `o` with the user's approval in place; requires success.
pub(super) async fn open(h: &dyn Harness, o: &Signed) {
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

/// Where the origin chain's attestations are signed.
pub(super) fn origin_at(h: &dyn Harness) -> OriginSettlerAt {
    let [origin, _] = h.chains();
    OriginSettlerAt {
        chain: origin,
        settler: h.settlers(origin).origin,
    }
}

/// The signatures of `digest` by the harness's attesters `who` (indices), in that order.
pub(super) fn signed(h: &dyn Harness, digest: B256, who: &[usize]) -> Vec<Bytes> {
    who.iter()
        .map(|&k| {
            let sig = h.attesters()[k].sign_hash_sync(&digest).expect("attesting");
            Bytes::from(sig.as_bytes().to_vec())
        })
        .collect()
}

/// Signatures of `digest` by the (distinct) attesters `who`, ordered by signer (ascending) as the
/// settler wants a quorum.
pub(super) fn ascending(h: &dyn Harness, digest: B256, who: &[usize]) -> Vec<Bytes> {
    let all_of_them = AttesterSet {
        members: who.iter().map(|&k| h.attesters()[k].address()).collect(),
        threshold: who.len(),
    };
    all_of_them
        .quorum(digest, signed(h, digest, who))
        .expect("distinct attesters' signatures")
}

/// A quorum over `digest`: the first two attesters, ascending.
pub(super) fn quorum(h: &dyn Harness, digest: B256) -> Vec<Bytes> {
    ascending(h, digest, &[0, 1])
}
