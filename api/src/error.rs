//! Every answer that is not a success: an HTTP status, a code from a closed set, and a sentence a
//! person can act on. Internal errors are logged with their detail and answered without it.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The machine-readable codes of every error the API answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// The body is not JSON.
    MalformedJson,
    /// The body is JSON of the wrong shape: a missing field, a wrong type, an unknown field.
    InvalidRequest,
    /// The body is larger than the server accepts.
    PayloadTooLarge,
    /// The request's content type is not `application/json`.
    UnsupportedMediaType,
    /// No API key, or an unknown one.
    Unauthorized,
    /// The API key's role may not use this endpoint.
    Forbidden,
    /// Too many requests for this API key; see `Retry-After`.
    RateLimited,
    /// No such resource (intent, saga, route).
    NotFound,
    /// The method is not allowed on this route.
    MethodNotAllowed,
    /// The same `Idempotency-Key` was used with another body.
    IdempotencyConflict,
    /// The signature does not recover to the order's user.
    BadSignature,
    /// The order's nonce was used on its origin chain.
    NonceUsed,
    /// A deadline is in the past.
    DeadlinePassed,
    /// A deadline leaves too little time for the plan.
    DeadlineTooSoon,
    /// A chain baton does not serve.
    UnknownChain,
    /// A token baton does not trade on that chain.
    UnknownToken,
    /// An amount is zero, too small to route, or beyond 2^128 − 1.
    AmountOutOfRange,
    /// The intent or an order is inconsistent (e.g. orders of different intents).
    InvalidIntent,
    /// No route delivers the outputs.
    NoRoute,
    /// The pools or the solver's unreserved inventory cannot deliver the minimum.
    InsufficientLiquidity,
    /// The user holds less of an input than the intent gives.
    InsufficientBalance,
    /// The user has not allowed the origin settler to pull an input.
    InsufficientAllowance,
    /// Fields each of the right shape that do not go together (e.g. `resume` without `with`).
    InvalidCombination,
    /// A configuration bundle that does not hold together (a chain twice, a quorum larger than
    /// its approvers, …).
    InvalidConfig,
    /// The request does not fit the saga's state (e.g. retrying a running saga).
    Conflict,
    /// Operators pulled the emergency brake: nothing is admitted until it is released.
    Paused,
    /// The chains' queues would make the intent miss its fill deadline; see `Retry-After`.
    Capacity,
    /// A chain could not be reached; try again.
    ChainUnavailable,
    /// A configuration version became active that this instance does not run yet; try again.
    Switching,
    /// Something failed inside baton; the detail is in its logs.
    Internal,
}

impl Code {
    /// The HTTP status of this code.
    pub fn status(self) -> StatusCode {
        use Code::*;
        match self {
            // The request's shape: what `/openapi.json` states (a schema-valid request never
            // gets these).
            MalformedJson | InvalidRequest => StatusCode::BAD_REQUEST,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Unauthorized => StatusCode::UNAUTHORIZED,
            Forbidden => StatusCode::FORBIDDEN,
            RateLimited => StatusCode::TOO_MANY_REQUESTS,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            IdempotencyConflict | NonceUsed | Conflict => StatusCode::CONFLICT,
            // Well formed, refused for what it says.
            BadSignature
            | DeadlinePassed
            | DeadlineTooSoon
            | UnknownChain
            | UnknownToken
            | AmountOutOfRange
            | InvalidIntent
            | InvalidCombination
            | InvalidConfig
            | NoRoute
            | InsufficientLiquidity
            | InsufficientBalance
            | InsufficientAllowance => StatusCode::UNPROCESSABLE_ENTITY,
            Paused | Capacity | ChainUnavailable | Switching => StatusCode::SERVICE_UNAVAILABLE,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The body of every error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for programs.
    pub code: Code,
    /// What went wrong, for people: what to change.
    pub message: String,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// The code.
    pub code: Code,
    /// The sentence.
    pub message: String,
    /// Seconds to wait (rate limits).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// An internal error: logged with `detail`, answered without it.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            Code::Internal,
            "baton failed to handle this request; the operators have the details in its logs",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.code.status(),
            axum::Json(ErrorBody {
                code: self.code,
                message: self.message,
            }),
        )
            .into_response();
        if let Some(secs) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<baton_engine::EngineError> for ApiError {
    fn from(e: baton_engine::EngineError) -> Self {
        use baton_engine::EngineError as E;
        match e {
            E::Paused => ApiError::new(Code::Paused, e.to_string()),
            E::NotFound(_) | E::UnknownVersion(_) => ApiError::new(Code::NotFound, e.to_string()),
            E::Conflict(m) => ApiError::new(Code::Conflict, m),
            E::Inventory(m) => ApiError::new(
                Code::InsufficientLiquidity,
                format!("the solver cannot promise this intent's inventory now: {m}"),
            ),
            E::Invalid(m) => ApiError::new(Code::InvalidIntent, m),
            E::NotAnApprover(m) => ApiError::new(Code::BadSignature, m),
            E::Chain(c) => {
                tracing::warn!(error = %c, "chain unavailable");
                ApiError::new(
                    Code::ChainUnavailable,
                    "a chain could not be reached; try again shortly",
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<baton_engine::adapters::AdapterError> for ApiError {
    fn from(e: baton_engine::adapters::AdapterError) -> Self {
        baton_engine::EngineError::from(e).into()
    }
}

/// The code of a planner error, by variant (a new variant must be given its code here).
pub(crate) fn plan_code(e: &baton_planner::PlanError) -> Code {
    use baton_planner::PlanError as P;
    match e {
        P::InvalidIntent { .. } => Code::InvalidIntent,
        P::ZeroAmount { .. }
        | P::AmountOutOfRange { .. }
        | P::AmountTooSmall { .. }
        | P::Overflow { .. } => Code::AmountOutOfRange,
        P::UnknownChain { .. } => Code::UnknownChain,
        P::UnknownToken { .. } => Code::UnknownToken,
        P::DeadlinePassed { .. } => Code::DeadlinePassed,
        P::DeadlineTooSoon { .. } => Code::DeadlineTooSoon,
        P::NoRoute { .. } => Code::NoRoute,
        P::InsufficientInventory(_) | P::InsufficientLiquidity { .. } => {
            Code::InsufficientLiquidity
        }
        // A snapshot baton read or a plan it built that breaks its own rules: a bug, not the
        // client's.
        P::InvalidSnapshot { .. } | P::InvalidPlan { .. } => Code::Internal,
    }
}

/// A JSON body whose rejections are [`ApiError`]s.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let route = route(&req);
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(req, state)
            .await
            .map_err(json_rejection)?;
        crate::contract::check(&route.0, &route.1, &value)?;
        shaped(value).map(ApiJson)
    }
}

/// The request's method and route as axum matched it (`/v1/webhooks/{id}`).
fn route(req: &Request) -> (String, String) {
    let path = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    (req.method().as_str().to_owned(), path)
}

/// `value` as a `T`, its integral numbers written as decimals (`1.0`) read as the integers they
/// are (JSON Schema counts `1.0` an integer, and so does the API's schema); anything else of the
/// wrong shape is `invalid_request`.
fn shaped<T: serde::de::DeserializeOwned>(mut value: serde_json::Value) -> Result<T, ApiError> {
    integral(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        ApiError::new(
            Code::InvalidRequest,
            format!("the body does not have the expected shape: {e}"),
        )
    })
}

/// Rewrites every number of `value` that is a whole number written with a fraction (`3.0`) as an
/// integer, where one holds it.
fn integral(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
            {
                if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                    *value = Value::from(f as u64);
                } else if (-9_223_372_036_854_775_808.0..0.0).contains(&f) {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral),
        Value::Object(fields) => fields.values_mut().for_each(integral),
        _ => {}
    }
}

/// Like [`ApiJson`], for an optional body: an empty one is `T::default()`.
pub struct ApiJsonOrDefault<T>(pub T);

impl<S, T> FromRequest<S> for ApiJsonOrDefault<T>
where
    S: Send + Sync,
    T: Default + serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let route = route(&req);
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| body_rejection(e.status(), e.body_text()))?;
        if bytes.is_empty() {
            return Ok(Self(T::default()));
        }
        // `null` is no body too.
        match axum::Json::<serde_json::Value>::from_bytes(&bytes).map_err(json_rejection)? {
            axum::Json(serde_json::Value::Null) => Ok(Self(T::default())),
            axum::Json(value) => {
                crate::contract::check(&route.0, &route.1, &value)?;
                shaped(value).map(Self)
            }
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonSyntaxError(e) => ApiError::new(
            Code::MalformedJson,
            format!("the body is not valid JSON: {}", e.body_text()),
        ),
        JsonRejection::JsonDataError(e) => ApiError::new(
            Code::InvalidRequest,
            format!(
                "the body does not have the expected shape: {}",
                e.body_text()
            ),
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            Code::UnsupportedMediaType,
            "send the body as JSON with `Content-Type: application/json`",
        ),
        other => body_rejection(other.status(), other.body_text()),
    }
}

/// A body that could not be read (too large, or cut off) as an [`ApiError`].
fn body_rejection(status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            Code::PayloadTooLarge,
            "the body is larger than this server accepts",
        )
    } else {
        ApiError::new(Code::InvalidRequest, text)
    }
}

/// Query-string rejections as [`ApiError`]s.
pub(crate) fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::new(
        Code::InvalidRequest,
        format!("the query string is not valid: {}", rejection.body_text()),
    )
}

#[cfg(test)]
mod tests {
    use baton_planner::{Asset, ChainId, PlanError, StepId, TokenAddress};

    use super::*;

    #[test]
    fn whole_numbers_written_with_a_fraction_are_integers() {
        let n: u32 = shaped(serde_json::json!(3.0)).expect("3.0 is 3");
        assert_eq!(n, 3);
        let v: Vec<i64> = shaped(serde_json::json!([-2.0, 7])).expect("integers");
        assert_eq!(v, [-2, 7]);
        let e = shaped::<u32>(serde_json::json!(3.5)).expect_err("3.5 is not an integer");
        assert_eq!(e.code, Code::InvalidRequest);
    }

    /// A planner error's code on the wire is the code the planner names for it.
    #[test]
    fn planner_errors_answer_the_code_the_planner_names() {
        let asset = Asset::new(ChainId(1), TokenAddress(alloy::primitives::Address::ZERO));
        let errors = [
            PlanError::InvalidIntent { reason: "x".into() },
            PlanError::ZeroAmount { what: "x".into() },
            PlanError::UnknownChain { chain: ChainId(9) },
            PlanError::UnknownToken { asset },
            PlanError::DeadlinePassed {
                which: "open",
                deadline: 1,
                now: 2,
            },
            PlanError::DeadlineTooSoon {
                deadline: 1,
                now: 2,
                needed_secs: 3,
            },
            PlanError::NoRoute {
                from: asset,
                to: asset,
            },
            PlanError::Overflow { what: "x" },
            PlanError::InvalidPlan {
                step: StepId(0),
                rule: "x".into(),
            },
        ];
        for e in errors {
            let code = serde_json::to_value(plan_code(&e)).unwrap_or_default();
            assert_eq!(code, e.code(), "{e}");
        }
    }
}
