//! The attester's HTTP API.
//!
//! - `POST /v1/fills` with a [`FillRequest`]: 200 with the [`crate::wire::Attestation`] once the fill
//!   is final and matches the order; 202 with a [`Problem`] (`not_opened`, `not_filled`,
//!   `not_final`) while it is not yet; 4xx with a [`Problem`] when it never will be (`mismatch`,
//!   `conflict`, `closed`, `unknown_chain`, …).
//! - `POST /v1/cancels` with a [`CancelRequest`]: the same, for a cancel (`deadline_not_passed`
//!   while waiting; `conflict` when the order has a fill).
//! - `GET /v1/health`: the attester's address, the chains it follows, their heads and the settler
//!   pairs it trusts on each.
//! - `GET /metrics`: Prometheus metrics, when the process installed a recorder.
//!
//! A chain or the store failing answers 503 `unavailable`.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::service::{Attester, AttesterError};
use crate::wire::{Answer, CancelRequest, FillRequest, Problem};

/// Renders the process's metrics in Prometheus' text format.
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
struct Api {
    attester: Arc<Attester>,
    metrics: Option<RenderMetrics>,
}

/// The API's routes over `attester`.
pub fn router(attester: Arc<Attester>, metrics: Option<RenderMetrics>) -> Router {
    Router::new()
        .route("/v1/fills", post(fill))
        .route("/v1/cancels", post(cancel))
        .route("/v1/health", get(health))
        .route("/metrics", get(render_metrics))
        .with_state(Api { attester, metrics })
}

fn problem(status: StatusCode, code: &str, message: String) -> Response {
    let mut r = (
        status,
        Json(Problem {
            code: code.into(),
            message,
        }),
    )
        .into_response();
    if status == StatusCode::ACCEPTED || status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

fn answer(kind: &'static str, result: Result<Answer, AttesterError>) -> Response {
    let outcome = |o: &'static str| {
        metrics::counter!("baton_attester_requests_total", "kind" => kind, "outcome" => o)
            .increment(1);
    };
    match result {
        Ok(Answer::Signed(a)) => {
            outcome("signed");
            (StatusCode::OK, Json(a)).into_response()
        }
        Ok(Answer::Pending { reason, detail }) => {
            outcome("pending");
            problem(StatusCode::ACCEPTED, reason.code(), detail)
        }
        Ok(Answer::Refused { reason, detail }) => {
            outcome("refused");
            let status = StatusCode::from_u16(reason.status()).unwrap_or(StatusCode::BAD_REQUEST);
            problem(status, reason.code(), detail)
        }
        Err(e) => {
            outcome("unavailable");
            tracing::warn!("answering a {kind} request: {e}");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the attester cannot read a chain or its store now; ask again".into(),
            )
        }
    }
}

fn bad_body(e: JsonRejection) -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        "bad_request",
        format!(
            "the body is not a request this endpoint takes: {}",
            e.body_text()
        ),
    )
}

async fn fill(State(api): State<Api>, body: Result<Json<FillRequest>, JsonRejection>) -> Response {
    match body {
        Ok(Json(req)) => answer("fill", api.attester.fill(&req).await),
        Err(e) => bad_body(e),
    }
}

async fn cancel(
    State(api): State<Api>,
    body: Result<Json<CancelRequest>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(req)) => answer("cancel", api.attester.cancel(&req).await),
        Err(e) => bad_body(e),
    }
}

async fn health(State(api): State<Api>) -> Response {
    let mut chains = Vec::new();
    let mut ok = true;
    for (id, chain) in api.attester.chains() {
        let settlers = chain.trusted();
        match chain.adapter.head().await {
            Ok(head) => chains
                .push(json!({"id": id.0, "head": head.number, "ok": true, "settlers": settlers})),
            Err(e) => {
                ok = false;
                chains.push(json!({
                    "id": id.0, "ok": false, "error": e.to_string(), "settlers": settlers,
                }));
            }
        }
    }
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "address": api.attester.address(),
        "chains": chains,
    });
    (status, Json(body)).into_response()
}

async fn render_metrics(State(api): State<Api>) -> Response {
    match &api.metrics {
        Some(render) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            render(),
        )
            .into_response(),
        None => problem(
            StatusCode::NOT_FOUND,
            "no_metrics",
            "this process records no metrics".into(),
        ),
    }
}
