//! The EVM adapter on anvil, beyond the conformance suite: pipelined nonces, observed conditions,
//! retries of retryable failures only, and the rate limit per endpoint.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use baton_adapters::AdapterError;
use baton_adapters::conformance::FEES;
use baton_adapters::devnet::{Devnet, DevnetChain, SOLVER, USER};
use baton_adapters::evm::{EvmAdapter, EvmConfig};
use baton_adapters::port::{ChainAdapter, Op, TxRequest, TxStatus};
use baton_planner::ChainId;
use serde_json::json;

use crate::{Proxy, anvil, proxy};

fn transfer(token: Address, to: Address, amount: u64) -> TxRequest {
    TxRequest::new(
        Op::Transfer {
            token,
            to,
            amount: U256::from(amount),
        },
        FEES,
    )
}

#[tokio::test]
async fn prepared_transactions_take_consecutive_nonces_and_land_in_one_block() {
    let devnet = Devnet::start(1, None).await.unwrap();
    let chain = &devnet.chains[0];
    anvil(chain, "evm_setAutomine", json!([false])).await;
    let adapter: Arc<dyn ChainAdapter> = Arc::new(chain.adapter(SOLVER).unwrap());
    let usdc = chain.tokens["USDC"];
    let to = chain.account(4);

    // Prepared back to back: consecutive nonces, nothing sent in between, nothing known to the node.
    let mut txs = Vec::new();
    for k in 0..5 {
        txs.push(adapter.prepare(transfer(usdc, to, k + 1)).await.unwrap());
    }
    for pair in txs.windows(2) {
        assert_eq!(pair[1].nonce, pair[0].nonce + 1);
    }
    assert_eq!(
        adapter.status(&txs[0], None).await.unwrap(),
        TxStatus::Dropped
    );
    // Broadcast out of order: the node holds the gap until it fills.
    for tx in txs.iter().rev() {
        adapter.broadcast(tx).await.unwrap();
    }
    anvil(chain, "evm_mine", json!([])).await;
    let mut blocks = Vec::new();
    for tx in &txs {
        let TxStatus::Included(inc) = adapter.status(tx, None).await.unwrap() else {
            panic!("{} not included", tx.hash)
        };
        assert!(inc.success);
        assert_eq!(inc.logs.len(), 1, "one Transfer event");
        blocks.push(inc.block);
    }
    assert!(
        blocks.iter().all(|b| *b == blocks[0]),
        "all five in one block"
    );
    assert_eq!(adapter.balance(usdc, to).await.unwrap(), U256::from(15u8));
}

#[tokio::test]
async fn one_gas_estimate_serves_calls_of_the_same_shape_and_its_margin_holds() {
    let devnet = Devnet::start(1, None).await.unwrap();
    let chain = &devnet.chains[0];
    let adapter = chain.adapter(SOLVER).unwrap();
    let usdc = chain.tokens["USDC"];
    let estimates = |a: &EvmAdapter| {
        a.rpc_calls_by_method()
            .into_iter()
            .find(|(m, _)| m == "eth_estimateGas")
            .map_or(0, |(_, n)| n)
    };
    // Estimated for a recipient that holds USDC already; then sent to recipients holding none,
    // whose first balance costs a fresh storage slot (about 17,000 gas more).
    let mut txs = vec![
        adapter
            .prepare(transfer(usdc, chain.account(4), 1))
            .await
            .unwrap(),
    ];
    for k in 1..6u8 {
        txs.push(
            adapter
                .prepare(transfer(usdc, Address::repeat_byte(0x40 + k), 1))
                .await
                .unwrap(),
        );
    }
    assert_eq!(estimates(&adapter), 1, "one estimate for six transfers");
    // Prepared at once, before any estimate is kept: the first one's serves the others.
    // (Another account: its own nonces.)
    let fresh = chain.adapter(USER).unwrap();
    let prepared = tokio::join!(
        fresh.prepare(transfer(usdc, Address::repeat_byte(0x50), 1)),
        fresh.prepare(transfer(usdc, Address::repeat_byte(0x51), 1)),
        fresh.prepare(transfer(usdc, Address::repeat_byte(0x52), 1)),
    );
    let mut theirs = Vec::new();
    for p in [prepared.0, prepared.1, prepared.2] {
        theirs.push(p.unwrap());
    }
    assert_eq!(estimates(&fresh), 1, "three prepared at once, one estimate");
    for tx in &txs {
        adapter.broadcast(tx).await.unwrap();
    }
    for tx in &theirs {
        fresh.broadcast(tx).await.unwrap();
    }
    for tx in txs.iter().chain(&theirs) {
        let TxStatus::Included(inc) = adapter.status(tx, None).await.unwrap() else {
            panic!("{} not included", tx.hash)
        };
        assert!(inc.success, "the kept estimate's margin was short: {inc:?}");
    }
    // Another function (another shape) is estimated; a raw call never reuses an estimate.
    let approve = TxRequest::new(
        Op::Approve {
            token: usdc,
            spender: chain.account(5),
            amount: U256::from(1u8),
        },
        FEES,
    );
    adapter.prepare(approve).await.unwrap();
    assert_eq!(estimates(&adapter), 2);
    let raw = |to| {
        TxRequest::new(
            Op::Call {
                to,
                data: alloy::primitives::Bytes::from(vec![0xa9, 0x05, 0x9c, 0xbb]),
                value: U256::ZERO,
            },
            FEES,
        )
    };
    adapter.prepare(raw(usdc)).await.unwrap();
    adapter.prepare(raw(usdc)).await.unwrap();
    assert_eq!(estimates(&adapter), 4);
}

#[tokio::test]
async fn conditions_report_base_fee_observed_block_time_and_rpc_health() {
    let devnet = Devnet::start(1, None).await.unwrap();
    let chain = &devnet.chains[0];
    let adapter = chain.adapter(SOLVER).unwrap();
    // Ten blocks two seconds apart: the observed block time is exactly 2 s.
    anvil(chain, "anvil_mine", json!([10, 2])).await;
    let c = adapter.conditions().await.unwrap();
    assert_eq!(c.block_time_ms, 2_000);
    assert!(c.base_fee > 0);
    assert_eq!(c.head, adapter.head().await.unwrap());
    assert!(c.rpc_calls >= 2 && c.rpc_errors == 0);

    let fee = U256::from(77_000_000_000u64);
    anvil(chain, "anvil_setNextBlockBaseFeePerGas", json!([fee])).await;
    anvil(chain, "evm_mine", json!([])).await;
    assert_eq!(adapter.conditions().await.unwrap().base_fee, 77_000_000_000);
}

/// A proxy in front of a node that answers the first requests with the given HTTP statuses (in
/// turn), then forwards; counts what it forwarded.
struct Flaky {
    proxy: Proxy,
    forwarded: Arc<AtomicUsize>,
}

async fn flaky(node: &DevnetChain, statuses: Vec<StatusCode>) -> Flaky {
    let seen = Arc::new(AtomicUsize::new(0));
    let forwarded = Arc::new(AtomicUsize::new(0));
    let fwd = forwarded.clone();
    let proxy = proxy(node, move |_body| {
        let (seen, fwd, statuses) = (seen.clone(), fwd.clone(), statuses.clone());
        async move {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            if let Some(status) = statuses.get(n) {
                return Some((*status, "try again later").into_response());
            }
            fwd.fetch_add(1, Ordering::SeqCst);
            None
        }
    })
    .await;
    Flaky { proxy, forwarded }
}

fn through(
    node: &DevnetChain,
    url: alloy::transports::http::reqwest::Url,
    retries: u32,
) -> EvmAdapter {
    let mut config = EvmConfig::new(ChainId(node.chain_id), url, node.settlers());
    config.max_retries = retries;
    config.backoff = Duration::from_millis(5);
    EvmAdapter::new(config, node.signer(SOLVER)).unwrap()
}

#[tokio::test]
async fn retryable_failures_are_retried_and_others_are_not() {
    let devnet = Devnet::start(1, None).await.unwrap();
    let node = &devnet.chains[0];

    // 429, 503, 429, then the node: the read succeeds on the fourth attempt.
    let proxy = flaky(
        node,
        vec![
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::TOO_MANY_REQUESTS,
        ],
    )
    .await;
    let adapter = through(node, proxy.proxy.url.clone(), 4);
    let head = adapter.head().await.unwrap();
    assert_eq!(head, node.adapter(SOLVER).unwrap().head().await.unwrap());
    let c = adapter.conditions().await.unwrap();
    assert_eq!(c.rpc_errors, 3, "every failed attempt is counted");
    assert!(c.rpc_calls >= 4);

    // Too few retries: the failure comes back as a chain error, having tried 1 + 1 times.
    let proxy = flaky(node, vec![StatusCode::SERVICE_UNAVAILABLE; 3]).await;
    let adapter = through(node, proxy.proxy.url.clone(), 1);
    assert!(matches!(
        adapter.head().await,
        Err(AdapterError::Chain { .. })
    ));
    assert_eq!(proxy.forwarded.load(Ordering::SeqCst), 0);

    // A 400 is not retryable: one attempt, then the error.
    let proxy = flaky(node, vec![StatusCode::BAD_REQUEST]).await;
    let adapter = through(node, proxy.proxy.url.clone(), 4);
    assert!(adapter.head().await.is_err());
    assert_eq!(adapter.conditions().await.unwrap().rpc_errors, 1);
    assert_eq!(
        proxy.forwarded.load(Ordering::SeqCst),
        2,
        "only the conditions' reads went through"
    );
}

#[tokio::test]
async fn calls_to_one_endpoint_share_its_rate_limit() {
    let devnet = Devnet::start(1, None).await.unwrap();
    let node = &devnet.chains[0];
    // A proxy gives this test an endpoint URL of its own (limiters are per URL, process-wide).
    let proxy = flaky(node, Vec::new()).await;
    let mut config = EvmConfig::new(
        ChainId(node.chain_id),
        proxy.proxy.url.clone(),
        node.settlers(),
    );
    config.requests_per_second = NonZeroU32::new(10).unwrap();
    let a = EvmAdapter::new(config.clone(), node.signer(SOLVER)).unwrap();
    let b = EvmAdapter::new(config, node.signer(SOLVER)).unwrap();
    let start = Instant::now();
    for _ in 0..8 {
        a.head().await.unwrap();
        b.head().await.unwrap();
    }
    // 16 calls at 10/s with a burst of 10: at least 0.6 s, whoever made them.
    assert!(
        start.elapsed() >= Duration::from_millis(550),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn gas_comes_from_the_nodes_estimate_within_the_ops_bound() {
    use alloy::consensus::{Transaction, TxEnvelope};
    use alloy::eips::Decodable2718;

    let devnet = Devnet::start(1, None).await.unwrap();
    let chain = &devnet.chains[0];
    let adapter = chain.adapter(SOLVER).unwrap();
    let usdc = chain.tokens["USDC"];
    let gas = |tx: &baton_adapters::port::SignedTx| {
        TxEnvelope::decode_2718(&mut tx.raw.as_ref())
            .unwrap()
            .gas_limit()
    };

    // A transfer: the estimate and its margin, under the op's bound, and enough.
    let tx = adapter
        .prepare(transfer(usdc, chain.account(4), 7))
        .await
        .unwrap();
    let limit = gas(&tx);
    assert!(
        limit < FEES.gas_limit * 2 / 3,
        "{limit} of {}",
        FEES.gas_limit
    );
    adapter.broadcast(&tx).await.unwrap();
    let used = loop {
        if let TxStatus::Included(inc) = adapter.status(&tx, None).await.unwrap() {
            assert!(inc.success, "{:?}", inc.revert_reason);
            break inc.gas_used;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        used < limit && limit <= used + used / 2 + 20_000,
        "used {used} of {limit}"
    );

    // One the node cannot estimate (it would revert: more than the account holds): the bound.
    // (Another adapter: this one would reuse the estimate it keeps for transfers.)
    let adapter = chain.adapter(USER).unwrap();
    let too_much = TxRequest::new(
        Op::Transfer {
            token: usdc,
            to: chain.account(4),
            amount: U256::MAX,
        },
        FEES,
    );
    let tx = adapter.prepare(too_much).await.unwrap();
    assert_eq!(gas(&tx), FEES.gas_limit);
}

#[tokio::test]
async fn a_providers_retry_after_holds_every_call_for_as_long_as_it_asks() {
    let devnet = Devnet::start(1, None).await.unwrap();
    let node = &devnet.chains[0];
    // The first request is answered 429 with `Retry-After: 1`; the proxy notes when each arrives.
    let arrivals = Arc::new(std::sync::Mutex::new(Vec::<Instant>::new()));
    let seen = arrivals.clone();
    let proxy = proxy(node, move |_body| {
        let seen = seen.clone();
        async move {
            let mut seen = seen.lock().unwrap();
            seen.push(Instant::now());
            (seen.len() == 1).then(|| {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "1")],
                    "slow down",
                )
                    .into_response()
            })
        }
    })
    .await;
    let adapter = Arc::new(through(node, proxy.url.clone(), 4));
    // Two callers at once: the one refused, and one that starts while the hold lasts.
    let first = tokio::spawn({
        let adapter = adapter.clone();
        async move { adapter.head().await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    adapter.head().await.unwrap();
    first.await.unwrap().unwrap();
    let arrivals = arrivals.lock().unwrap();
    assert!(arrivals.len() >= 3, "{}", arrivals.len());
    for later in &arrivals[1..] {
        assert!(
            *later - arrivals[0] >= Duration::from_millis(950),
            "a call came {:?} after the 429 asked for a second",
            *later - arrivals[0]
        );
    }
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let devnet = Devnet::start(1, None).await.unwrap();
    let node = &devnet.chains[0];
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let proxy = proxy(node, move |_body| {
        let seen = seen.clone();
        async move {
            if seen.fetch_add(1, Ordering::SeqCst) < 2 {
                // The connection closes without an answer, as a provider's load balancer may.
                std::panic::resume_unwind(Box::new("dropped"));
            }
            None
        }
    })
    .await;
    let adapter = through(node, proxy.url.clone(), 4);
    assert_eq!(
        adapter.head().await.unwrap(),
        node.adapter(SOLVER).unwrap().head().await.unwrap()
    );
    assert!(calls.load(Ordering::SeqCst) >= 3);
}

#[tokio::test]
async fn requests_are_counted_by_method_retries_included() {
    let devnet = Devnet::start(1, None).await.unwrap();
    let node = &devnet.chains[0];
    // The first request is refused (503), then the node answers.
    let proxy = flaky(node, vec![StatusCode::SERVICE_UNAVAILABLE]).await;
    let adapter = through(node, proxy.proxy.url.clone(), 4);
    assert!(adapter.rpc_calls_by_method().is_empty());
    adapter.head().await.unwrap();
    let counts = adapter.rpc_calls_by_method();
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!(counts[0].1, 2, "the refused attempt counts: {counts:?}");

    let token = node.tokens["USDC"];
    let tx = adapter
        .prepare(transfer(token, Address::repeat_byte(7), 1))
        .await
        .unwrap();
    adapter.broadcast(&tx).await.unwrap();
    let counts: std::collections::HashMap<String, u64> =
        adapter.rpc_calls_by_method().into_iter().collect();
    assert_eq!(counts.get("eth_sendRawTransaction"), Some(&1), "{counts:?}");
    assert_eq!(
        counts.values().sum::<u64>(),
        proxy.forwarded.load(Ordering::SeqCst) as u64 + 1,
        "every request the proxy saw, and the one it refused: {counts:?}"
    );
}
