//! The request bodies held to the OpenAPI document: each operation's body schema, taken from
//! [`crate::ApiDoc`] itself and compiled once with the JSON Schema validator schemathesis uses,
//! checks every body before it is read, so the server refuses exactly what the contract refuses
//! (`400 invalid_request`, naming where) and a schema-valid body is never refused for its shape.

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::Value;
use utoipa::OpenApi;

use crate::error::{ApiError, Code};

type Bodies = HashMap<(String, String), Validator>;

/// Each operation's body validator, by lowercase method and route (as axum matched it).
fn bodies() -> &'static Bodies {
    static BODIES: OnceLock<Bodies> = OnceLock::new();
    BODIES.get_or_init(|| {
        let doc = serde_json::to_value(crate::ApiDoc::openapi()).unwrap_or_default();
        let components = doc.get("components").cloned().unwrap_or_default();
        let mut out = HashMap::new();
        let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
            return out;
        };
        for (path, item) in paths {
            for method in ["get", "post", "put", "delete", "patch"] {
                let body = &item[method]["requestBody"]["content"]["application/json"]["schema"];
                if body.is_null() {
                    continue;
                }
                // The body's schema with the document's components beside it, so that its
                // `#/components/schemas/…` references resolve.
                let schema = serde_json::json!({
                    "allOf": [body],
                    "components": components,
                });
                match jsonschema::draft202012::new(&schema) {
                    Ok(validator) => {
                        out.insert((method.to_owned(), path.clone()), validator);
                    }
                    Err(e) => {
                        tracing::error!(%path, method, error = %e, "a request schema does not compile");
                    }
                }
            }
        }
        out
    })
}

/// Checks `body`, sent to `method path` (the route as axum matched it), against the operation's
/// request schema. A route that reads a body the document does not describe is a bug: answered as
/// an internal error rather than let through unchecked.
pub(crate) fn check(method: &str, path: &str, body: &Value) -> Result<(), ApiError> {
    let key = (method.to_ascii_lowercase(), path.to_owned());
    let Some(validator) = bodies().get(&key) else {
        return Err(ApiError::internal(format!(
            "{method} {path} reads a body /openapi.json does not describe"
        )));
    };
    match validator.validate(body) {
        Ok(()) => Ok(()),
        Err(e) => {
            let at = e.instance_path().to_string();
            let at = if at.is_empty() {
                "the body".to_owned()
            } else {
                format!("at {at}")
            };
            Err(ApiError::new(
                Code::InvalidRequest,
                format!("the body does not have the shape /openapi.json states: {at}: {e}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_body_schema_compiles() {
        let expected = [
            ("post", "/v1/quotes"),
            ("post", "/v1/intents"),
            ("post", "/v1/webhooks"),
            ("post", "/v1/operator/pause"),
            ("post", "/v1/operator/chains/{chain}/pause"),
            ("post", "/v1/sagas/{id}/replay"),
        ];
        for (method, path) in expected {
            assert!(
                bodies().contains_key(&(method.to_owned(), path.to_owned())),
                "{method} {path}: {:?}",
                bodies().keys().collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn webhook_urls_have_the_schemas_shape() {
        let url = |u: &str| {
            let body = serde_json::json!({ "url": u, "events": ["intent.started"] });
            check("POST", "/v1/webhooks", &body)
        };
        for good in [
            "http://example.com/hook",
            "http://a.b-c.example/x?y=1&z=%20",
            "http://127.0.0.1:8080",
            "http://255.255.255.255:65535/",
            "http://localhost:1/",
            "http://x9.io",
        ] {
            assert!(url(good).is_ok(), "{good}");
        }
        for bad in [
            "https://example.com/",
            "HTTP://example.com/",
            "http://",
            "http://a_b.com/",
            "http://-a.com/",
            "http://a.1/",
            "http://256.1.1.1/",
            "http://01.1.1.1/",
            "http://[::1]/",
            "http://user@example.com/",
            "http://example.com:0/",
            "http://example.com:65536/",
            "http://example.com:08/",
            "http://example.com/a b",
            "http://example.com/#frag",
        ] {
            assert!(url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_body_is_held_to_its_schema() {
        let check = |body: Value| check("POST", "/v1/webhooks", &body);
        let ok =
            serde_json::json!({ "url": "http://example.com/hook", "events": ["intent.started"] });
        assert!(check(ok).is_ok());
        for bad in [
            serde_json::json!([]),
            serde_json::json!({ "url": "ftp://example.com/", "events": ["intent.started"] }),
            serde_json::json!({ "url": "http://example.com/", "events": [] }),
            serde_json::json!({ "url": "http://example.com/", "events": ["intent.nope"] }),
            serde_json::json!({ "url": "http://example.com/", "events": ["intent.started"], "x": 1 }),
        ] {
            let e = check(bad.clone()).expect_err("refused");
            assert_eq!(e.code, Code::InvalidRequest, "{bad}");
        }
    }
}
