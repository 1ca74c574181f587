//! What the operators' console stands on: its assets (served without a key, under a strict
//! policy, never writing data as HTML), the caller's key, the saga list's filters, the pivot and
//! compensations in a saga's steps, and the outcome series.

use axum::body::Body;
use axum::http::Request;
use serde_json::Value;

use crate::{ADMIN, Api, DAPP, OPS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_without_a_key_under_a_strict_policy() {
    let api = Api::new().await;
    for (path, kind) in [
        ("/console", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/app.css", "text/css"),
    ] {
        let answer = api.call("GET", path, None, None).await;
        assert_eq!(answer.status, 200, "{path}");
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        assert!(header("content-type").starts_with(kind), "{path}");
        let policy = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(policy.contains(directive), "{path}: {policy}");
        }
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
    }
    let text =
        |path: &str| api.send_text(Request::builder().uri(path).body(Body::empty()).unwrap());
    let page = text("/console").await;
    assert!(page.contains("/console/app.js") && page.contains("/console/app.css"));
    // What is shown comes from the API and may be hostile (revert strings, webhook URLs): the
    // script builds nodes and sets text, never parses data as HTML or code, and keeps the key
    // out of URLs (it is a header, in session storage).
    let script = text("/console/app.js").await;
    assert!(script.len() > 10_000, "the console's script is there");
    for banned in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "localStorage",
    ] {
        assert!(!script.contains(banned), "app.js uses {banned}");
    }
    assert!(script.contains("sessionStorage") && script.contains("Authorization"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_learns_its_name_and_role_and_nothing_more() {
    let api = Api::new().await;
    for (key, name, role) in [
        (DAPP, "dapp", "dapp"),
        (OPS, "ops", "operator"),
        (ADMIN, "admin", "admin"),
    ] {
        let me = api.call("GET", "/v1/me", Some(key), None).await;
        assert_eq!(me.status, 200);
        assert_eq!(me.body["role"], role, "{}", me.body);
        assert_eq!(me.body["name"], name, "{}", me.body);
        assert_eq!(me.body.as_object().unwrap().len(), 2, "{}", me.body);
        assert!(!me.body.to_string().contains(key));
    }
    assert_eq!(api.call("GET", "/v1/me", None, None).await.status, 401);
}

/// `GET path` as the operator.
async fn get(api: &Api, path: &str) -> crate::Answer {
    api.call("GET", path, Some(OPS), None).await
}

/// The ids of `GET /v1/operator/sagas?{query}`.
async fn listed(api: &Api, query: &str) -> Vec<String> {
    let answer = get(api, &format!("/v1/operator/sagas?{query}")).await;
    assert_eq!(answer.status, 200, "{query}: {}", answer.body);
    answer
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_filter_sagas_and_chart_their_outcomes() {
    let api = Api::new().await;
    let fulfilled = api.submitted(1).await;
    let done = api
        .view_until(&fulfilled, |v| v["status"] == "completed")
        .await;
    assert_eq!(done["outcome"]["outcome"], "fulfilled");
    // The pivot is marked, and what undoes each step before it is named.
    let steps = done["steps"].as_array().unwrap();
    let pivots: Vec<&str> = steps
        .iter()
        .filter(|s| s["pivot"] == true)
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(pivots, ["fill"], "{done}");
    let open = steps.iter().find(|s| s["action"] == "open").unwrap();
    assert_eq!(open["undo"], "refund", "{done}");
    let fill = steps.iter().find(|s| s["action"] == "fill").unwrap();
    assert_eq!(fill["undo"], Value::Null, "{done}");

    api.world.dest.revert_next("fill", "out of luck");
    let refunded = api.submitted(2).await;
    let undone = api
        .view_until(&refunded, |v| v["status"] == "completed")
        .await;
    assert_eq!(undone["outcome"]["outcome"], "refunded", "{undone}");
    let open = &undone["steps"][0];
    assert_eq!(open["compensation"]["state"], "final", "{undone}");

    let both = listed(&api, "").await;
    assert_eq!(both, [refunded.clone(), fulfilled.clone()], "newest first");
    let summary = get(&api, "/v1/operator/sagas").await;
    assert_eq!(summary.body[0]["route"], "1001>1002", "{}", summary.body);
    assert!(
        summary.body[0]["decided_ms"].as_i64().unwrap()
            >= summary.body[0]["created_ms"].as_i64().unwrap()
    );
    assert_eq!(listed(&api, "outcome=refunded").await, [refunded.as_str()]);
    assert_eq!(
        listed(&api, "outcome=fulfilled").await,
        [fulfilled.as_str()]
    );
    assert!(listed(&api, "outcome=failed").await.is_empty());
    assert_eq!(listed(&api, "chain=1002").await, both);
    assert_eq!(listed(&api, "chain=1001&route=1001%3E1002").await, both);
    // A chain id is matched whole: 100 and 1 are not 1001.
    assert!(listed(&api, "chain=100").await.is_empty());
    assert!(listed(&api, "chain=1").await.is_empty());
    assert!(listed(&api, "route=1002%3E1001").await.is_empty());
    assert_eq!(
        listed(&api, "max_age_secs=3600&state=completed").await,
        both
    );
    assert!(listed(&api, "min_age_secs=3600").await.is_empty());
    assert_eq!(listed(&api, "outcome=fulfilled&limit=1").await.len(), 1);
    let long = format!("route={}", "1".repeat(201));
    for (query, status) in [
        ("outcome=lost", 400),
        ("chain=-1", 400),
        ("chain=9223372036854775808", 400),
        ("max_age_secs=x", 400),
        ("min_age_secs=315360001", 400),
        (long.as_str(), 400),
    ] {
        let answer = get(&api, &format!("/v1/operator/sagas?{query}")).await;
        assert_eq!(answer.status, status, "{query}: {}", answer.body);
    }

    let chart = get(
        &api,
        "/v1/operator/outcomes?window_secs=3600&bucket_secs=60",
    )
    .await;
    assert_eq!(chart.status, 200, "{}", chart.body);
    let buckets = chart.body["buckets"].as_array().unwrap();
    assert!((60..=62).contains(&buckets.len()), "{}", buckets.len());
    let total = |kind: &str| -> u64 { buckets.iter().map(|b| b[kind].as_u64().unwrap()).sum() };
    assert_eq!(
        (total("fulfilled"), total("refunded"), total("failed")),
        (1, 1, 0)
    );
    let routes = chart.body["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 1, "{}", chart.body);
    assert_eq!(routes[0]["route"], "1001>1002");
    assert_eq!(
        (
            routes[0]["fulfilled"].as_u64(),
            routes[0]["refunded"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let (p50, p99) = (
        routes[0]["p50_secs"].as_f64().unwrap(),
        routes[0]["p99_secs"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99, "{}", chart.body);
    // Too many intervals, and a dApp's key, are refused.
    let many = get(
        &api,
        "/v1/operator/outcomes?window_secs=86400&bucket_secs=10",
    )
    .await;
    assert_eq!(
        (many.status, many.body["code"].as_str()),
        (422, Some("invalid_combination"))
    );
    let dapp = api
        .call("GET", "/v1/operator/outcomes", Some(DAPP), None)
        .await;
    assert_eq!(dapp.status, 403);
}
