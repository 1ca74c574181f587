//! Settlement by a quorum of attesters, on the sim: the engine settles with one of three attesters
//! down; with two down it waits, saying why in the saga's status, and settles once one is back; a
//! lying attester (a member whose key signs fills that never happened) cannot settle alone or with
//! the solver, and the solver's key alone can neither settle nor cancel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use alloy::primitives::{Address, Bytes, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use baton_adapters::attestation::{Delivery, OriginSettlerAt};
use baton_adapters::devnet::{ATTESTERS, SOLVER, dev_signer};
use baton_adapters::port::{ChainAdapter, EscrowStatus, Fees, Op, TxRequest, TxStatus};
use baton_attester::client::{Attest, Unreachable};
use baton_attester::wire::{Answer, Attestation, CancelRequest, Claim, FillRequest};
use baton_engine::attester::{Attesters, Collected};
use baton_engine::simworld::{World, fast, units_of};
use baton_engine::view::Status;
use baton_engine::{Engine, Outcome, SagaId};
use futures_util::future::BoxFuture;

use crate::sqlite_file;

/// An attester that is down, or (while `up`) the attester it stands for.
struct Flaky {
    inner: Arc<dyn Attest>,
    up: AtomicBool,
}

impl Flaky {
    fn down(inner: Arc<dyn Attest>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            up: AtomicBool::new(false),
        })
    }

    fn unreachable(&self) -> Unreachable {
        Unreachable {
            name: self.name(),
            detail: "connection refused".into(),
        }
    }
}

impl Attest for Flaky {
    fn name(&self) -> String {
        format!("flaky {}", self.inner.name())
    }
    fn fill<'a>(&'a self, req: &'a FillRequest) -> BoxFuture<'a, Result<Answer, Unreachable>> {
        if self.up.load(Ordering::Relaxed) {
            self.inner.fill(req)
        } else {
            Box::pin(std::future::ready(Err(self.unreachable())))
        }
    }
    fn cancel<'a>(&'a self, req: &'a CancelRequest) -> BoxFuture<'a, Result<Answer, Unreachable>> {
        if self.up.load(Ordering::Relaxed) {
            self.inner.cancel(req)
        } else {
            Box::pin(std::future::ready(Err(self.unreachable())))
        }
    }
}

/// A member's key that signs whatever fill it is asked about, with deliveries it made up.
struct Liar(PrivateKeySigner);

impl Liar {
    fn made_up(req: &FillRequest) -> Vec<Delivery> {
        vec![Delivery {
            output_index: 0,
            chain: baton_engine::simworld::DEST,
            settler: Address::repeat_byte(0x11),
            token: Address::repeat_byte(0x22),
            amount: U256::from(1u8),
            recipient: req.filler,
        }]
    }
}

impl Attest for Liar {
    fn name(&self) -> String {
        "liar".into()
    }
    fn fill<'a>(&'a self, req: &'a FillRequest) -> BoxFuture<'a, Result<Answer, Unreachable>> {
        let order = baton_planner::Order::from_signed(req.order.clone()).unwrap();
        let at = OriginSettlerAt::of(&order);
        let deliveries = Self::made_up(req);
        let digest = at.fill_hash(order.id(), req.filler, &deliveries);
        let sig = self.0.sign_hash_sync(&digest).unwrap();
        Box::pin(std::future::ready(Ok(Answer::Signed(Attestation {
            order_id: order.id(),
            claim: Claim::Fill {
                filler: req.filler,
                deliveries,
            },
            signer: self.0.address(),
            signature: Bytes::from(sig.as_bytes().to_vec()),
        }))))
    }
    fn cancel<'a>(&'a self, _: &'a CancelRequest) -> BoxFuture<'a, Result<Answer, Unreachable>> {
        Box::pin(std::future::ready(Err(Unreachable {
            name: "liar".into(),
            detail: "only lies about fills".into(),
        })))
    }
}

fn attesters(members: Vec<Arc<dyn Attest>>) -> Attesters {
    Attesters::new(members, Duration::from_secs(2))
}

async fn completed(engine: &Engine, saga: SagaId) {
    for _ in 0..600 {
        let view = engine.view(saga).await.unwrap().unwrap();
        if view.status == Status::Completed {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the saga did not complete within 30 s");
}

/// Submits an intent and waits until its outcome for the user is decided (not for the solver's
/// repayment: that is the attesters' part).
async fn fulfilled_saga(world: &World, engine: &Engine) -> (SagaId, baton_planner::OrderId) {
    let input = world.input(world.intent(1, "USDC", units_of(990, 6)));
    let order = input.plan().unwrap().plan.orders()[0].id();
    let saga = engine.submit(input).await.unwrap();
    for _ in 0..600 {
        let view = engine.view(saga).await.unwrap().unwrap();
        if let Some(outcome) = view.outcome {
            assert_eq!(outcome, Outcome::Fulfilled);
            return (saga, order);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no outcome within 30 s: {:#?}", engine.view(saga).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_attester_of_three_down_the_solver_is_still_repaid() {
    let world = World::new().await;
    let (url, _file) = sqlite_file();
    let db = baton_engine::Db::connect(&url).await.unwrap();
    let down = Flaky::down(world.attesters[2].clone());
    let members: Vec<Arc<dyn Attest>> =
        vec![world.attesters[0].clone(), world.attesters[1].clone(), down];
    let engine = world.engine_with(db, fast(), false, attesters(members));
    let (saga, order) = fulfilled_saga(&world, &engine).await;
    completed(&engine, saga).await;
    let origin = world.origin.adapter(world.solver.clone());
    assert_eq!(origin.escrow(order).await.unwrap(), EscrowStatus::Settled);
    let view = engine.view(saga).await.unwrap().unwrap();
    assert!(view.alerts.is_empty(), "{:?}", view.alerts);
    for (k, decided) in [(0, 1), (1, 1), (2, 0)] {
        assert_eq!(
            world.attesters[k].decisions().await.unwrap(),
            decided,
            "attester {k}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_down_the_settle_waits_saying_why_and_goes_on_when_one_is_back() {
    let world = World::new().await;
    let (url, _file) = sqlite_file();
    let db = baton_engine::Db::connect(&url).await.unwrap();
    let second = Flaky::down(world.attesters[1].clone());
    let third = Flaky::down(world.attesters[2].clone());
    let members: Vec<Arc<dyn Attest>> = vec![world.attesters[0].clone(), second.clone(), third];
    let engine = world.engine_with(db, fast(), false, attesters(members));
    let (saga, order) = fulfilled_saga(&world, &engine).await;

    // The user's outcome does not wait for the attesters; the solver's repayment does.
    let mut waiting = None;
    for _ in 0..400 {
        let view = engine.view(saga).await.unwrap().unwrap();
        assert_ne!(view.status, Status::Completed, "settled without a quorum");
        if let Some(step) = view
            .steps
            .iter()
            .find(|s| s.progress.reason_code.as_deref() == Some("awaiting_attestations"))
        {
            waiting = Some((step.action.clone(), step.progress.reason.clone().unwrap()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (action, reason) = waiting.expect("the settle says it awaits attestations");
    assert_eq!(action, "settle");
    assert!(reason.contains("1 of 2"), "{reason}");
    assert!(reason.contains("unreachable"), "{reason}");

    second.up.store(true, Ordering::Relaxed);
    completed(&engine, saga).await;
    let view = engine.view(saga).await.unwrap().unwrap();
    let settle = view.steps.iter().find(|s| s.action == "settle").unwrap();
    assert_eq!(settle.progress.reason_code, None, "no longer waiting");
    let origin = world.origin.adapter(world.solver.clone());
    assert_eq!(origin.escrow(order).await.unwrap(), EscrowStatus::Settled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_attester_cannot_settle_alone_or_with_the_solver() {
    let world = World::new().await;
    let solver = world.origin.adapter(world.solver.clone());
    // An order the solver opens and never fills.
    let input = world.input(world.intent(7, "USDC", units_of(990, 6)));
    let planned = input.plan().unwrap();
    let order = planned.plan.orders()[0].clone();
    let open = Op::Open {
        order: order.order().clone(),
        signature: planned.signatures[0].clone(),
    };
    let fees = Fees {
        gas_limit: 600_000,
        max_fee_per_gas: 50_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
    };
    let run = |op: Op| {
        let solver = &solver;
        async move {
            let tx = solver.prepare(TxRequest::new(op, fees)).await.unwrap();
            solver.broadcast(&tx).await.unwrap();
            loop {
                match solver.status(&tx, None).await.unwrap() {
                    TxStatus::Included(i) => return i,
                    _ => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        }
    };
    assert!(run(open).await.success);

    // The liar signs; the honest two say there is no fill: no quorum, ever.
    let liar = Arc::new(Liar(dev_signer(ATTESTERS[0])));
    let members: Vec<Arc<dyn Attest>> = vec![
        liar.clone(),
        world.attesters[1].clone(),
        world.attesters[2].clone(),
    ];
    let req = FillRequest {
        order: order.order().clone(),
        filled_as: None,
        filler: solver.account(),
    };
    let at = OriginSettlerAt::of(&order);
    let set = solver.attesters().await.unwrap();
    let collected = attesters(members).fill(&set, at, order.id(), &req).await;
    let Collected::Waiting(why) = collected else {
        panic!("a quorum from a liar: {collected:?}");
    };
    assert!(
        why.contains("1 of 2") && why.contains("not_filled"),
        "{why}"
    );

    // Straight to the settler: the liar alone, the liar with the solver, the solver alone.
    let deliveries = Liar::made_up(&req);
    let digest = at.fill_hash(order.id(), solver.account(), &deliveries);
    let sign =
        |k: &PrivateKeySigner| Bytes::from(k.sign_hash_sync(&digest).unwrap().as_bytes().to_vec());
    let (lie, by_solver) = (sign(&dev_signer(ATTESTERS[0])), sign(&dev_signer(SOLVER)));
    let mut both = vec![
        (dev_signer(ATTESTERS[0]).address(), lie.clone()),
        (dev_signer(SOLVER).address(), by_solver.clone()),
    ];
    both.sort();
    for (attestations, reason) in [
        (vec![lie], "too few attestations"),
        (
            both.into_iter().map(|(_, s)| s).collect(),
            "not an attester",
        ),
        (vec![by_solver], "too few attestations"),
    ] {
        let settle = Op::Settle {
            order_id: order.id(),
            filler: solver.account(),
            deliveries: deliveries.clone(),
            attestations,
        };
        let inc = run(settle).await;
        assert!(!inc.success);
        assert!(inc.revert_reason.unwrap().contains(reason));
    }
    // Nor can the solver's key cancel.
    let cancel_digest = at.cancel_hash(order.id());
    let by_solver = dev_signer(SOLVER).sign_hash_sync(&cancel_digest).unwrap();
    let cancel = Op::RefundWithCancel {
        order_id: order.id(),
        attestations: vec![Bytes::from(by_solver.as_bytes().to_vec())],
    };
    let inc = run(cancel).await;
    assert!(!inc.success);
    assert!(inc.revert_reason.unwrap().contains("too few attestations"));
    assert_eq!(
        solver.escrow(order.id()).await.unwrap(),
        EscrowStatus::Opened
    );
}
