//! API keys, their roles and their rate limits. A key is sent as `Authorization: Bearer KEY` (or
//! `X-Api-Key: KEY`); only a hash of each key is kept in memory, and keys are never logged.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use alloy::primitives::{B256, keccak256};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::App;
use crate::error::{ApiError, Code};

/// What a key may do. Each role may do what the roles before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Quote, submit intents, follow them, read chains and inventory.
    Dapp,
    /// Also: list sagas, retry one, pause and resume chains, pull the emergency brake.
    Operator,
    /// Also: release the emergency brake.
    Admin,
}

/// One API key as configured.
#[derive(Clone, Debug)]
pub struct ApiKey {
    /// Its name: who acts, in the saga log and the operator record.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The secret itself.
    pub secret: String,
    /// Requests per second it may make (bursts of as many).
    pub per_second: NonZeroU32,
}

struct Holder {
    name: String,
    role: Role,
    limiter: DefaultDirectRateLimiter,
}

/// The configured keys, by the hash of their secret.
pub struct Keys {
    by_hash: HashMap<B256, Holder>,
}

impl Keys {
    /// The keys; a secret shorter than 16 characters or used twice is an error.
    pub fn new(keys: Vec<ApiKey>) -> Result<Self, String> {
        let mut by_hash = HashMap::new();
        for key in keys {
            if key.secret.len() < 16 {
                return Err(format!(
                    "the secret of API key {:?} is shorter than 16 characters",
                    key.name
                ));
            }
            let holder = Holder {
                name: key.name.clone(),
                role: key.role,
                limiter: RateLimiter::direct(Quota::per_second(key.per_second)),
            };
            if by_hash
                .insert(keccak256(key.secret.as_bytes()), holder)
                .is_some()
            {
                return Err(format!(
                    "API key {:?} repeats another key's secret",
                    key.name
                ));
            }
        }
        Ok(Self { by_hash })
    }
}

/// The authenticated caller of a request: the key's name and role, within its rate limit.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The key's name.
    pub name: String,
    /// The key's role.
    pub role: Role,
}

impl Caller {
    /// `Ok` when the caller's role is at least `role`; otherwise 403.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::new(
                Code::Forbidden,
                format!(
                    "API key {:?} has the {:?} role; this endpoint needs {:?}",
                    self.name, self.role, role
                ),
            ))
        }
    }
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let headers = &parts.headers;
        let secret = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    Code::Unauthorized,
                    "send an API key as `Authorization: Bearer KEY` or `X-Api-Key: KEY`",
                )
            })?;
        let holder = app
            .keys
            .by_hash
            .get(&keccak256(secret.as_bytes()))
            .ok_or_else(|| ApiError::new(Code::Unauthorized, "this API key is not known"))?;
        if let Err(not_until) = holder.limiter.check() {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let mut e = ApiError::new(
                Code::RateLimited,
                format!(
                    "API key {:?} made too many requests; wait {} ms",
                    holder.name,
                    wait.as_millis()
                ),
            );
            e.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
            return Err(e);
        }
        Ok(Caller {
            name: holder.name.clone(),
            role: holder.role,
        })
    }
}
