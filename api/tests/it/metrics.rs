//! `/metrics` needs no key, so a scrape must not cost the chains anything: it answers from the
//! figures the saga drivers already read.

use crate::Api;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_makes_no_rpc_call() {
    let api = Api::new().await;
    let user = api.world.user.clone();
    let id = api.submitted(1).await;
    api.view_until(&id, |v| v["status"] == "completed").await;

    let chain = api.world.origin.adapter(user);
    let calls = || async {
        baton_adapters::port::ChainAdapter::conditions(&chain)
            .await
            .unwrap()
            .rpc_calls
    };
    let before = calls().await;
    for _ in 0..10 {
        let scrape = api.call("GET", "/metrics", None, None).await;
        assert_eq!(scrape.status, 200);
    }
    let after = calls().await;
    assert_eq!(
        after - before,
        1,
        "only the test's own read: no call per scrape"
    );

    // What it shows was read by the drivers: the head and the RPC counters of both chains.
    let request = axum::http::Request::get("/metrics")
        .body(axum::body::Body::empty())
        .unwrap();
    let text = api.send_text(request).await;
    for chain in ["1001", "1002"] {
        assert!(
            text.contains(&format!("baton_chain_head{{chain=\"{chain}\"}}")),
            "{text}"
        );
    }
    assert!(text.contains("baton_rpc_calls_total"), "{text}");
}
