//! The whole path on two real anvil nodes (1 s blocks): liquidity read from the chains, a two-input
//! intent (inputs on both chains, the output on one) whose two opens run in parallel and which ends
//! Fulfilled; one whose pool is drained after planning, which ends Refunded; and one whose open a
//! reorg deeper than its confirmations takes out of the chain after it was final, which is sent
//! again and ends Fulfilled.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use baton_adapters::devnet::{Devnet, SOLVER, USER, dev_signer};
use baton_adapters::port::{ChainAdapter, Fees, Op, TxRequest, TxStatus};
use baton_attester::client::Attest;
use baton_engine::attester::Attesters;
use baton_engine::liquidity::{self, Venue};
use baton_engine::{Db, Engine, EngineConfig, Outcome, SagaEvent, SagaInput, SagaLog};
use baton_planner::ChainId;
use baton_planner::spec::IntentSpec;
use baton_planner::step::Action;
use serde_json::json;

use crate::sqlite_file;

const FEES: Fees = Fees {
    gas_limit: 300_000,
    max_fee_per_gas: 20_000_000_000,
    max_priority_fee_per_gas: 1_000_000_000,
};

/// Sends `ops` from `adapter` and waits until each is included and succeeded.
async fn send(adapter: &dyn ChainAdapter, ops: Vec<Op>) {
    let mut txs = Vec::new();
    for op in ops {
        let tx = adapter.prepare(TxRequest::new(op, FEES)).await.unwrap();
        adapter.broadcast(&tx).await.unwrap();
        txs.push(tx);
    }
    for tx in txs {
        loop {
            match adapter.status(&tx, None).await.unwrap() {
                TxStatus::Included(inc) => {
                    assert!(inc.success, "{:?}", inc.revert_reason);
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

fn approve(token: Address, spender: Address) -> Op {
    Op::Approve {
        token,
        spender,
        amount: U256::MAX,
    }
}

pub(crate) struct Setup {
    pub(crate) devnet: Devnet,
    pub(crate) solver: HashMap<ChainId, Arc<dyn ChainAdapter>>,
    pub(crate) user: HashMap<ChainId, Arc<dyn ChainAdapter>>,
    /// The devnet's three attesters, in this process.
    pub(crate) attesters: Attesters,
}

pub(crate) async fn setup() -> Setup {
    let devnet = Devnet::start(2, Some(1)).await.unwrap();
    let mut solver: HashMap<ChainId, Arc<dyn ChainAdapter>> = HashMap::new();
    let mut user: HashMap<ChainId, Arc<dyn ChainAdapter>> = HashMap::new();
    for chain in &devnet.chains {
        let id = ChainId(chain.chain_id);
        solver.insert(id, Arc::new(chain.adapter(SOLVER).unwrap()));
        user.insert(id, Arc::new(chain.adapter(USER).unwrap()));
    }
    // The user lets each origin settler pull its tokens; the solver lets the destination settler
    // and the pools pull its inventory.
    for chain in &devnet.chains {
        let id = ChainId(chain.chain_id);
        let tokens: Vec<Address> = chain.tokens.values().copied().collect();
        send(
            user[&id].as_ref(),
            tokens
                .iter()
                .map(|t| approve(*t, chain.origin_settler))
                .collect(),
        )
        .await;
        let mut ops = Vec::new();
        for t in &tokens {
            ops.push(approve(*t, chain.destination_settler));
            for p in chain.pools.values() {
                ops.push(approve(*t, *p));
            }
        }
        send(solver[&id].as_ref(), ops).await;
    }
    let attesters = baton_attester::devnet::in_process(&devnet.file().chains, 1)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a as Arc<dyn Attest>)
        .collect();
    Setup {
        devnet,
        solver,
        user,
        attesters: Attesters::new(attesters, Duration::from_secs(5)),
    }
}

impl Setup {
    pub(crate) async fn input(&self, nonce: u64) -> SagaInput {
        let venues: Vec<Venue> = self
            .devnet
            .file()
            .chains
            .iter()
            .map(liquidity::devnet_venue)
            .collect();
        let snapshot = liquidity::read(&self.solver, &venues, 5, 2).await.unwrap();
        let now = snapshot.timestamp;
        let intent: IntentSpec = serde_json::from_value(json!({
            "user": dev_signer(USER).address(),
            "nonce": nonce.to_string(),
            "open_deadline": { "at": now + 120 },
            "fill_deadline": { "at": now + 600 },
            "inputs": [
                { "chain": 1001, "token": "USDC", "amount": "600000000" },
                { "chain": 1002, "token": "DAI", "amount": "400000000000000000000" }
            ],
            "outputs": [{ "chain": 1002, "token": "WETH", "min_amount": "380000000000000000",
                          "recipient": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC" }]
        }))
        .unwrap();
        let mut input = SagaInput {
            intent,
            snapshot,
            config: Default::default(),
            signatures: Vec::new(),
            config_version: None,
        };
        input.sign_as(&dev_signer(USER)).unwrap();
        input
    }

    fn engine(&self, db: Db) -> Engine {
        Engine::new(
            SagaLog::new(db),
            self.solver.values().cloned().collect(),
            self.attesters.clone(),
            EngineConfig {
                poll: Duration::from_millis(100),
                ..EngineConfig::default()
            },
        )
    }

    async fn user_inputs(&self) -> (U256, U256) {
        let user = dev_signer(USER).address();
        let [a, b] = [&self.devnet.chains[0], &self.devnet.chains[1]];
        (
            self.user[&ChainId(a.chain_id)]
                .balance(a.tokens["USDC"], user)
                .await
                .unwrap(),
            self.user[&ChainId(b.chain_id)]
                .balance(b.tokens["DAI"], user)
                .await
                .unwrap(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_input_intent_opens_both_orders_in_parallel_and_is_fulfilled_on_anvil() {
    let s = setup().await;
    let (url, _file) = sqlite_file();
    let engine = s.engine(Db::connect(&url).await.unwrap());
    let input = s.input(1).await;
    let planned = input.plan().unwrap();
    let (usdc_before, dai_before) = s.user_inputs().await;
    let saga = engine.submit(input).await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(120), engine.wait(saga))
        .await
        .expect("fulfilled within two minutes")
        .unwrap();
    assert_eq!(outcome, Outcome::Fulfilled);

    let dest = &s.devnet.chains[1];
    let recipient: Address = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
        .parse()
        .unwrap();
    let weth = s.solver[&ChainId(dest.chain_id)]
        .balance(dest.tokens["WETH"], recipient)
        .await
        .unwrap();
    assert!(
        weth >= U256::from(380_000_000_000_000_000u64),
        "delivered {weth}"
    );
    let (usdc, dai) = s.user_inputs().await;
    assert_eq!(usdc_before - usdc, U256::from(600_000_000u64));
    assert_eq!(
        dai_before - dai,
        U256::from(400u64) * U256::from(10u64).pow(U256::from(18))
    );

    // Both opens were signed before either was done: they ran in parallel.
    let opens: Vec<_> = planned
        .plan
        .steps()
        .iter()
        .filter(|st| matches!(st.action, Action::Open { .. }))
        .map(|st| st.id)
        .collect();
    assert_eq!(opens.len(), 2);
    let events = engine.log().events(saga).await.unwrap();
    let position = |pred: &dyn Fn(&SagaEvent) -> bool| events.iter().position(|e| pred(&e.event));
    let last_open_signed = opens
        .iter()
        .map(|o| position(&|e| matches!(e, SagaEvent::TxSigned { step, .. } if step == o)).unwrap())
        .max()
        .unwrap();
    let first_open_done = opens
        .iter()
        .map(|o| {
            position(&|e| matches!(e, SagaEvent::StepFinal { step, .. } if step == o)).unwrap()
        })
        .min()
        .unwrap();
    assert!(last_open_signed < first_open_done, "{events:#?}");
    assert!(
        events.iter().any(|e| e.event == SagaEvent::Completed),
        "the solver was repaid"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_whose_pool_is_drained_after_planning_is_refunded_on_anvil() {
    let s = setup().await;
    let (url, _file) = sqlite_file();
    let engine = s.engine(Db::connect(&url).await.unwrap());
    let input = s.input(2).await;
    // Someone drains both WETH pools of the destination after the plan was made.
    let dest = &s.devnet.chains[1];
    let dest_user = s.user[&ChainId(dest.chain_id)].clone();
    let user = dest_user.account();
    let mut drains = Vec::new();
    for (pool, token) in [("USDC/WETH", "USDC"), ("DAI/WETH", "DAI")] {
        let pool = dest.pools[pool];
        drains.push(approve(dest.tokens[token], pool));
        drains.push(Op::Swap {
            pool,
            token_in: dest.tokens[token],
            amount_in: U256::from(5_000_000u64)
                * U256::from(10u64).pow(U256::from(if token == "USDC" { 6 } else { 18 })),
            min_out: U256::ZERO,
            to: user,
        });
    }
    send(dest_user.as_ref(), drains).await;
    let (usdc_before, dai_before) = s.user_inputs().await;

    let saga = engine.submit(input).await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(120), engine.wait(saga))
        .await
        .expect("refunded within two minutes")
        .unwrap();
    assert_eq!(outcome, Outcome::Refunded);
    assert_eq!(
        s.user_inputs().await,
        (usdc_before, dai_before),
        "both inputs are back"
    );
    let events = engine.log().events(saga).await.unwrap();
    assert!(
        events.iter().any(
            |e| matches!(&e.event, SagaEvent::Compensating { reason } if reason.contains("minOut"))
        ),
        "{events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_deeper_than_an_opens_confirmations_is_healed_and_the_intent_fulfilled_on_anvil() {
    let s = setup().await;
    let (url, _file) = sqlite_file();
    let engine = s.engine(Db::connect(&url).await.unwrap());
    let input = s.input(2).await;
    let planned = input.plan().unwrap();
    let origin = &s.devnet.chains[0];
    let open = planned
        .plan
        .steps()
        .iter()
        .find(|st| matches!(st.action, Action::Open { .. }) && st.chain.0 == origin.chain_id)
        .unwrap()
        .clone();
    let saga = engine.submit(input).await.unwrap();
    // Once the origin's open is final (at its confirmations), a reorg one block deeper than its
    // block takes it out of the chain.
    let block = loop {
        let events = engine.log().events(saga).await.unwrap();
        if let Some(block) = events.iter().find_map(|e| match &e.event {
            SagaEvent::StepFinal {
                step,
                block: Some(b),
                ..
            } if *step == open.id => Some(*b),
            _ => None,
        }) {
            break block;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let head = s.solver[&open.chain].head().await.unwrap().number;
    let depth = head + 2 - block.number;
    assert!(depth > u64::from(open.timing.confirmations));
    baton_adapters::conformance::anvil(origin, "anvil_reorg", json!([depth, []]))
        .await
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(120), engine.wait(saga))
        .await
        .expect("decided within two minutes")
        .unwrap();
    assert_eq!(outcome, Outcome::Fulfilled);
    // The open is back on the chain (sent again, the same bytes), and the solver was repaid.
    let started = std::time::Instant::now();
    loop {
        let events = engine.log().events(saga).await.unwrap();
        if events.iter().any(|e| e.event == SagaEvent::Completed) {
            assert!(
                !events
                    .iter()
                    .any(|e| matches!(e.event, SagaEvent::Alert { .. })),
                "{events:#?}"
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{events:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
