//! Roles (`dapp` < `operator` < `admin`), per-key rate limits, and the emergency brake as the API
//! shows it: operators pull it, nothing is admitted, only an admin releases it, and every action
//! is recorded with the key's name.

use serde_json::json;

use crate::{ADMIN, Api, DAPP, OPS, SLOW, expect_error, with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_reaches_only_its_endpoints() {
    let api = Api::new().await;
    expect_error(
        "dapp on operator",
        &api.call("GET", "/v1/operator/sagas", Some(DAPP), None)
            .await,
        403,
        "forbidden",
    );
    let listed = api
        .call("GET", "/v1/operator/sagas?state=running", Some(OPS), None)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    expect_error(
        "bad state",
        &api.call("GET", "/v1/operator/sagas?state=sleeping", Some(OPS), None)
            .await,
        400,
        "invalid_request",
    );
    expect_error(
        "bad query",
        &api.call("GET", "/v1/operator/sagas?limit=many", Some(OPS), None)
            .await,
        400,
        "invalid_request",
    );
    expect_error(
        "unknown chain",
        &api.call(
            "POST",
            "/v1/operator/chains/77/pause",
            Some(OPS),
            Some(json!({})),
        )
        .await,
        404,
        "not_found",
    );
    for path in ["/v1/chains", "/v1/inventory"] {
        let answer = api.call("GET", path, Some(DAPP), None).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        assert_eq!(
            answer.body.as_array().map(|a| a.is_empty()),
            Some(false),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_rate_is_told_when_to_come_back() {
    let api = Api::new().await;
    let mut limited = None;
    for _ in 0..5 {
        let answer = api.call("GET", "/v1/chains", Some(SLOW), None).await;
        if answer.status == 429 {
            limited = Some(answer);
            break;
        }
    }
    let answer = limited.expect("the 1/s key is limited");
    expect_error("rate", &answer, 429, "rate_limited");
    let retry_after: u64 = answer.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    // Another key is not limited by it.
    assert_eq!(
        api.call("GET", "/v1/chains", Some(DAPP), None).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_pull_the_brake_and_only_an_admin_releases_it() {
    let api = Api::new().await;
    let user = api.world.user.clone();
    let pulled = api
        .call(
            "POST",
            "/v1/operator/pause",
            Some(OPS),
            Some(json!({ "reason": "drill" })),
        )
        .await;
    assert_eq!(pulled.status, 200, "{}", pulled.body);
    assert_eq!(pulled.body[0]["scope"], "all", "{}", pulled.body);
    let braked = api
        .quote_and_sign(&with(&api.intent(1), &["nonce"], json!("79")), &user)
        .await;
    expect_error("brake", &api.submit(&braked, None).await, 503, "paused");
    expect_error(
        "operator release",
        &api.call("POST", "/v1/operator/resume", Some(OPS), None)
            .await,
        403,
        "forbidden",
    );
    let released = api
        .call("POST", "/v1/operator/resume", Some(ADMIN), None)
        .await;
    assert_eq!(released.status, 200, "{}", released.body);
    assert_eq!(released.body.as_array().map(Vec::len), Some(0));
    let paused = api
        .call(
            "POST",
            "/v1/operator/chains/1002/pause",
            Some(OPS),
            Some(json!({ "reason": "rpc" })),
        )
        .await;
    assert_eq!(
        paused.body[0]["scope"],
        json!({ "chain": 1002 }),
        "{}",
        paused.body
    );
    let actions = api
        .call("GET", "/v1/operator/actions", Some(OPS), None)
        .await;
    let actions = actions.body.as_array().unwrap().clone();
    for (by, action) in [("ops", "pause"), ("admin", "resume")] {
        assert!(
            actions
                .iter()
                .any(|a| a["by"] == by && a["action"] == action),
            "{by} {action}: {actions:?}"
        );
    }
}
