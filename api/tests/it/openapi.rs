//! The OpenAPI document is the contract: it lists every endpoint, documents every error code, and
//! what the API answers matches the schemas it names.

use baton_api::Code;
use serde_json::Value;

use crate::{Api, DAPP, OPS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_every_endpoint_and_every_error_code() {
    let api = Api::new().await;
    let doc = api.call("GET", "/openapi.json", None, None).await.body;
    for path in [
        "/v1/quotes",
        "/v1/intents",
        "/v1/intents/{id}",
        "/v1/intents/{id}/events",
        "/v1/chains",
        "/v1/inventory",
        "/v1/operator/sagas",
        "/v1/operator/outcomes",
        "/v1/me",
        "/v1/operator/sagas/{id}/retry",
        "/v1/sagas/{id}/replay",
        "/v1/operator/pause",
        "/v1/operator/resume",
        "/v1/operator/pauses",
        "/v1/operator/actions",
        "/v1/operator/config/versions",
        "/v1/operator/config/versions/{id}",
        "/v1/operator/config/versions/{id}/approve",
        "/v1/operator/config/versions/{id}/schedule",
        "/v1/operator/config/versions/{id}/reject",
        "/v1/operator/config/rollback",
        "/v1/operator/instances",
        "/metrics",
        "/healthz",
        "/openapi.json",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} in the OpenAPI document"
        );
    }
    let codes: Vec<&str> = doc["components"]["schemas"]["Code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(codes.len() >= 25, "{codes:?}");
    for code in &codes {
        let parsed: Code = serde_json::from_value(Value::from(*code)).unwrap();
        let status = parsed.status().as_u16();
        assert!((400..600).contains(&status), "{code}: {status}");
    }
    // A retry answers what its schema says.
    let retry = &doc["paths"]["/v1/operator/sagas/{id}/retry"]["post"]["responses"]["202"];
    assert!(retry.to_string().contains("Retrying"), "{retry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intents_view_has_the_fields_its_schema_names() {
    let api = Api::new().await;
    let id = api.submitted(1).await;
    let view = api.view_until(&id, |v| v["status"] == "completed").await;
    let doc = api.call("GET", "/openapi.json", None, None).await.body;
    let schemas = &doc["components"]["schemas"];
    let fields = |schema: &str| -> Vec<String> {
        schemas[schema]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{schema} has properties"))
            .keys()
            .cloned()
            .collect()
    };
    for field in fields("SagaView") {
        assert!(view.get(&field).is_some(), "SagaView.{field} in {view}");
    }
    assert_eq!(view["id"], id.as_str());
    assert_eq!(view["outcome"]["outcome"], "fulfilled", "{view}");
    let step = &view["steps"][0];
    for field in fields("Progress") {
        assert!(step.get(&field).is_some(), "Progress.{field} in {step}");
    }
    let listed = api.call("GET", "/v1/operator/sagas", Some(OPS), None).await;
    for field in fields("SagaSummary") {
        assert!(
            listed.body[0].get(&field).is_some(),
            "SagaSummary.{field} in {}",
            listed.body
        );
    }
    let health = api.call("GET", "/healthz", Some(DAPP), None).await;
    assert_eq!(health.body["database"], "sqlite", "{}", health.body);
}
