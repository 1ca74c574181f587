//! Replay on anvil forks of a saga whose failure came from its RPC, not from the chain: the node
//! refused every fill (a wrapper adapter plays the flaky RPC), the saga was refunded; on the forks
//! the same fill succeeds, so the replay says it did not reproduce. Run on a SQLite log and, when
//! `DATABASE_URL` is set, on a PostgreSQL one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use baton_adapters::AdapterError;
use baton_adapters::devnet::find_anvil;
use baton_adapters::port::{
    BlockRef, BoxFuture, ChainAdapter, Conditions, EscrowStatus, Evidence, Op, Reserves, SignedTx,
    TxRequest, TxStatus,
};
use baton_engine::{Engine, EngineConfig, Outcome, SagaLog};
use baton_planner::step::Action;
use baton_planner::{ChainId, OrderId};
use baton_replay::{TxResult, replay};

use crate::anvil::setup;
use crate::databases;

/// An adapter whose node refuses every fill it is asked to broadcast.
struct RefusesFills {
    inner: Arc<dyn ChainAdapter>,
    fills: Mutex<Vec<B256>>,
}

type R<T> = baton_adapters::Result<T>;

impl ChainAdapter for RefusesFills {
    fn chain_id(&self) -> ChainId {
        self.inner.chain_id()
    }
    fn account(&self) -> Address {
        self.inner.account()
    }
    fn head(&self) -> BoxFuture<'_, R<BlockRef>> {
        self.inner.head()
    }
    fn finalized(&self) -> BoxFuture<'_, R<BlockRef>> {
        self.inner.finalized()
    }
    fn conditions(&self) -> BoxFuture<'_, R<Conditions>> {
        self.inner.conditions()
    }
    fn balance(&self, token: Address, owner: Address) -> BoxFuture<'_, R<U256>> {
        self.inner.balance(token, owner)
    }
    fn allowance(
        &self,
        token: Address,
        owner: Address,
        spender: Address,
    ) -> BoxFuture<'_, R<U256>> {
        self.inner.allowance(token, owner, spender)
    }
    fn reserves(&self, pool: Address) -> BoxFuture<'_, R<Reserves>> {
        self.inner.reserves(pool)
    }
    fn escrow(&self, order: OrderId) -> BoxFuture<'_, R<EscrowStatus>> {
        self.inner.escrow(order)
    }
    fn sign_digest(&self, digest: B256) -> R<alloy::primitives::Signature> {
        self.inner.sign_digest(digest)
    }
    fn opener(&self, order: OrderId) -> BoxFuture<'_, R<Option<Address>>> {
        self.inner.opener(order)
    }
    fn attesters(&self) -> BoxFuture<'_, R<baton_adapters::attestation::AttesterSet>> {
        self.inner.attesters()
    }
    fn filled_by(&self, order: OrderId, output_index: u32) -> BoxFuture<'_, R<Option<Address>>> {
        self.inner.filled_by(order, output_index)
    }
    fn nonce_used(&self, user: Address, nonce: U256) -> BoxFuture<'_, R<bool>> {
        self.inner.nonce_used(user, nonce)
    }
    fn evidence(&self, order: OrderId) -> BoxFuture<'_, R<Evidence>> {
        self.inner.evidence(order)
    }
    fn prepare(&self, tx: TxRequest) -> BoxFuture<'_, R<SignedTx>> {
        Box::pin(async move {
            let fill = matches!(tx.op, Op::Fill { .. });
            let signed = self.inner.prepare(tx).await?;
            if fill {
                self.fills.lock().unwrap().push(signed.hash);
            }
            Ok(signed)
        })
    }
    fn release(&self, tx: &SignedTx) {
        self.inner.release(tx)
    }
    fn broadcast<'a>(&'a self, tx: &'a SignedTx) -> BoxFuture<'a, R<()>> {
        if self.fills.lock().unwrap().contains(&tx.hash) {
            return Box::pin(async {
                Err(AdapterError::rejected(
                    "sending a transaction",
                    "upstream connect error (the RPC's load balancer)",
                ))
            });
        }
        self.inner.broadcast(tx)
    }
    fn status<'a>(
        &'a self,
        tx: &'a SignedTx,
        seen: Option<&'a BlockRef>,
    ) -> BoxFuture<'a, R<TxStatus>> {
        self.inner.status(tx, seen)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_failed_by_its_rpc_replays_cleanly_and_says_so_on_both_databases() {
    let s = setup().await;
    let anvil = find_anvil().unwrap();
    let rpcs: HashMap<ChainId, String> = s
        .devnet
        .chains
        .iter()
        .map(|c| (ChainId(c.chain_id), c.rpc_url().to_string()))
        .collect();
    for (k, (db, _file)) in databases().await.into_iter().enumerate() {
        let kind = db.kind();
        let chains: Vec<Arc<dyn ChainAdapter>> = s
            .solver
            .values()
            .map(|a| -> Arc<dyn ChainAdapter> {
                Arc::new(RefusesFills {
                    inner: a.clone(),
                    fills: Mutex::new(Vec::new()),
                })
            })
            .collect();
        let engine = Engine::new(
            SagaLog::new(db.clone()),
            chains,
            s.attesters.clone(),
            EngineConfig {
                poll: Duration::from_millis(100),
                max_attempts: 2,
                ..EngineConfig::default()
            },
        );
        let input = s.input(10 + k as u64).await;
        let planned = input.plan().unwrap();
        let saga = engine.submit(input).await.unwrap();
        let Ok(outcome) = tokio::time::timeout(Duration::from_secs(90), engine.wait(saga)).await
        else {
            let events = engine.log().events(saga).await.unwrap();
            panic!(
                "{kind}: no outcome in 90 s: {:#?}",
                events
                    .iter()
                    .map(|e| format!("{} {:?}", e.seq, e.event))
                    .map(|s| s.chars().take(300).collect::<String>())
                    .collect::<Vec<_>>()
            );
        };
        let outcome = outcome.unwrap();
        assert_eq!(outcome, Outcome::Refunded, "{kind}");

        let report = replay(engine.log(), saga, &rpcs, &anvil, None, &|_| {})
            .await
            .unwrap();
        let fill = planned
            .plan
            .steps()
            .iter()
            .find(|st| matches!(st.action, Action::Fill { .. }))
            .unwrap()
            .id;
        assert!(!report.reproduced, "{kind}: {report:#?}");
        let d = report.first_divergence.as_ref().unwrap();
        assert_eq!(d.step, fill.0, "{kind}: {report:#?}");
        assert!(matches!(d.expected, TxResult::NotIncluded { .. }));
        assert!(
            matches!(d.actual, TxResult::Succeeded { .. }),
            "{report:#?}"
        );
        assert!(report.summary.contains("RPC"), "{}", report.summary);
        assert!(report.failing_step.is_none());
        eprintln!(
            "{kind}: replay of a {}-step saga on {} chains took {} ms",
            planned.plan.steps().len(),
            report.forks.len(),
            report.took_ms
        );
    }
}
