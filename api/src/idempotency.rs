//! `Idempotency-Key`: the extractor that reads and checks the header, and what a key holds in the
//! saga log. A key is scoped to its API key's name and stored with the hash of the request's
//! body: the same key and body answer the same intent; the same key with another body is a
//! conflict.

use std::sync::atomic::Ordering;

use alloy::primitives::keccak256;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use baton_engine::SagaId;
use baton_engine::log::KeyUse;
use serde::Serialize;

use crate::App;
use crate::error::{ApiError, Code};

/// The request's `Idempotency-Key` header, if it sent one: 1 to 200 printable ASCII characters,
/// no space at either end (anything else is refused as `invalid_request`).
pub(crate) struct IdempotencyKey(pub(crate) Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(Self(None));
        };
        let key = value
            .to_str()
            .ok()
            .filter(|k| {
                // As the header's schema states: printable ASCII, no space at either end.
                (1..=200).contains(&k.len())
                    && k.bytes().all(|b| (b' '..=b'~').contains(&b))
                    && !k.starts_with(' ')
                    && !k.ends_with(' ')
            })
            .ok_or_else(|| {
                ApiError::new(
                    Code::InvalidRequest,
                    "Idempotency-Key must be 1 to 200 printable ASCII characters, no space at either end",
                )
            })?;
        Ok(Self(Some(key.to_owned())))
    }
}

impl IdempotencyKey {
    /// The key as stored, scoped to the API key `caller` (two dApps may pick the same key), and
    /// the hash of `body`; `None` without a key.
    pub(crate) fn scoped(
        &self,
        caller: &str,
        body: &impl Serialize,
    ) -> Result<Option<(String, String)>, ApiError> {
        let Some(key) = &self.0 else { return Ok(None) };
        let body = serde_json::to_vec(body).map_err(ApiError::internal)?;
        Ok(Some((
            format!("{caller}:{key}"),
            keccak256(body).to_string(),
        )))
    }
}

/// The intent stored under an idempotency key; a conflict when its body differs.
pub(crate) async fn remembered(
    app: &App,
    key: &str,
    hash: &str,
) -> Result<Option<SagaId>, ApiError> {
    let since = key_horizon(app);
    key_use(app.engine.log().idempotency_key(key, hash, since).await?)
}

/// Keys stored before this time (unix milliseconds) have expired.
fn key_horizon(app: &App) -> i64 {
    let ttl = i64::try_from(app.settings.idempotency_ttl.as_millis()).unwrap_or(i64::MAX);
    baton_engine::now_ms().saturating_sub(ttl)
}

pub(crate) async fn remember(
    app: &App,
    key: &str,
    hash: &str,
    saga: SagaId,
) -> Result<(), ApiError> {
    // Two racing requests with one key: the first one stored wins; a different body loses.
    let now = baton_engine::now_ms();
    let since = key_horizon(app);
    let log = app.engine.log();
    let stored = log
        .remember_idempotency_key(key, hash, saga, now, since)
        .await?;
    // Expired keys are deleted at most once a minute, by whichever request comes then.
    let last = app.keys_expired_ms.load(Ordering::Relaxed);
    if now - last > 60_000
        && app
            .keys_expired_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        let expired = log.expire_idempotency_keys(since).await?;
        tracing::debug!(expired, "expired idempotency keys deleted");
    }
    key_use(stored).map(|_| ())
}

fn key_use(stored: KeyUse) -> Result<Option<SagaId>, ApiError> {
    match stored {
        KeyUse::Unused => Ok(None),
        KeyUse::Same(saga) => Ok(Some(saga)),
        KeyUse::OtherBody => Err(ApiError::new(
            Code::IdempotencyConflict,
            "this Idempotency-Key was used with another body; use a new key for a new intent",
        )),
    }
}
