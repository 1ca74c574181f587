//! Settler events on a chain with a long history, read through a proxy that answers like a hosted
//! provider: `eth_getLogs` over more than 1,000 blocks is refused (`-32005 query exceeds max block
//! range`). The adapter reads in ranges within the cap from the settlers' deployment block, and
//! reads the old blocks only once, also across a restart over the same event store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use alloy::primitives::B256;
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use axum::response::Response;
use baton_adapters::conformance::{DevnetWorld, Harness, open_fill_settle};
use baton_adapters::contracts::DestinationSettler;
use baton_adapters::devnet::{DevnetChain, SOLVER};
use baton_adapters::evm::{EventStore, EvmAdapter, EvmConfig, MemoryEvents};
use baton_adapters::port::ChainAdapter;
use baton_planner::{ChainId, OrderId};
use serde_json::{Value, json};

use crate::{Proxy, proxy};

/// A proxy that refuses `eth_getLogs` spanning more than `cap` blocks, as hosted providers do,
/// and counts the others and the widest.
struct Capped {
    proxy: Proxy,
    get_logs: Arc<AtomicU64>,
    widest: Arc<AtomicU64>,
}

fn block_number(v: &Value, head: u64) -> u64 {
    match v.as_str() {
        Some(s) if s.starts_with("0x") => u64::from_str_radix(&s[2..], 16).unwrap(),
        Some("earliest") => 0,
        _ => head,
    }
}

async fn capped(node: &DevnetChain, cap: u64) -> Capped {
    let provider = node.provider.clone();
    let get_logs = Arc::new(AtomicU64::new(0));
    let widest = Arc::new(AtomicU64::new(0));
    let (calls, wide) = (get_logs.clone(), widest.clone());
    let proxy = proxy(node, move |body: String| {
        let (provider, calls, wide) = (provider.clone(), calls.clone(), wide.clone());
        async move {
            let request: Value = serde_json::from_str(&body).ok()?;
            if request["method"] != "eth_getLogs" {
                return None;
            }
            let filter = &request["params"][0];
            let head = provider.get_block_number().await.unwrap();
            let span = block_number(&filter["toBlock"], head)
                .saturating_sub(block_number(&filter["fromBlock"], head))
                + 1;
            if span <= cap {
                calls.fetch_add(1, Ordering::SeqCst);
                wide.fetch_max(span, Ordering::SeqCst);
                return None;
            }
            let refused = json!({ "jsonrpc": "2.0", "id": request["id"], "error": {
                "code": -32005, "message": format!("query exceeds max block range {cap}") } });
            Some(
                Response::builder()
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(refused.to_string()))
                    .unwrap(),
            )
        }
    })
    .await;
    Capped {
        proxy,
        get_logs,
        widest,
    }
}

/// The id of the order filled on `node`, from the node itself (no cap there).
async fn filled_order(node: &DevnetChain) -> OrderId {
    let filled = node
        .provider
        .get_logs(
            &Filter::new()
                .address(node.destination_settler)
                .event_signature(DestinationSettler::Filled::SIGNATURE_HASH)
                .from_block(0),
        )
        .await
        .unwrap();
    OrderId(B256::from(filled[0].inner.topics()[1]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settler_events_are_read_within_a_providers_range_cap_and_old_blocks_once() {
    let world = DevnetWorld::start().await.unwrap();
    let [_, destination] = world.chains();
    // A long history before the order: 5,000 blocks.
    world.mine(destination, 5_000).await.unwrap();
    open_fill_settle(&world).await;
    // The fill sinks below the depth at which the adapter keeps what it read.
    world.mine(destination, 100).await.unwrap();
    let node = world.node(destination);

    let order = filled_order(node).await;

    let proxy = capped(node, 1_000).await;
    let mut config = EvmConfig::new(
        ChainId(node.chain_id),
        proxy.proxy.url.clone(),
        node.settlers(),
    );
    config.max_retries = 0;
    let store: Arc<dyn EventStore> = Arc::new(MemoryEvents::default());
    let adapter = EvmAdapter::new(config.clone(), node.signer(SOLVER))
        .unwrap()
        .with_events(store.clone());
    let evidence = adapter.evidence(order).await.unwrap();
    assert_eq!(evidence.fills.len(), 1, "{evidence:?}");
    assert!(proxy.widest.load(Ordering::SeqCst) <= 1_000);
    let first = proxy.get_logs.load(Ordering::SeqCst);
    assert!(first >= 5, "5,100 blocks in ranges of 1,000: {first} reads");

    // Looking again reads only the recent blocks.
    let again = adapter.evidence(order).await.unwrap();
    assert_eq!(again, evidence);
    let more = proxy.get_logs.load(Ordering::SeqCst) - first;
    assert!(more <= 2, "{more} reads the second time");

    // Nor does a process started again over the same store (the engine keeps it in its database).
    let restarted = EvmAdapter::new(config, node.signer(SOLVER))
        .unwrap()
        .with_events(store);
    let before = proxy.get_logs.load(Ordering::SeqCst);
    assert_eq!(restarted.evidence(order).await.unwrap(), evidence);
    let after_restart = proxy.get_logs.load(Ordering::SeqCst) - before;
    assert!(after_restart <= 2, "{after_restart} reads after a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_narrower_than_configured_teaches_the_adapter_its_range() {
    let world = DevnetWorld::start().await.unwrap();
    let [_, destination] = world.chains();
    world.mine(destination, 1_500).await.unwrap();
    open_fill_settle(&world).await;
    world.mine(destination, 100).await.unwrap();
    let node = world.node(destination);
    // Configured for 1,000 blocks a read; the provider takes 300.
    let proxy = capped(node, 300).await;
    let config = EvmConfig::new(
        ChainId(node.chain_id),
        proxy.proxy.url.clone(),
        node.settlers(),
    );
    let adapter = EvmAdapter::new(config, node.signer(SOLVER)).unwrap();
    let order = filled_order(node).await;
    let evidence = adapter.evidence(order).await.unwrap();
    assert_eq!(evidence.fills.len(), 1, "{evidence:?}");
    assert!(proxy.widest.load(Ordering::SeqCst) <= 300);
}
