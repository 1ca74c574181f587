//! What the API keeps beside the sagas: idempotency keys (a client's key for a submission, stored
//! with the hash of its body and the intent it submitted, so that the same request sent again
//! answers the same intent and a key reused with another body is refused; keys expire), and who
//! submitted each intent.

use super::{SagaLog, parse_hash};
use crate::error::Result;
use crate::event::SagaId;
use crate::with_pool;

/// What an idempotency key holds, for a request with a given body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUse {
    /// Nothing yet.
    Unused,
    /// This body's intent.
    Same(SagaId),
    /// Another body's intent: the key cannot be used again for this one.
    OtherBody,
}

impl SagaLog {
    /// What `key` holds for a request whose body hashes to `body_hash`; a key stored before
    /// `since_ms` has expired and holds nothing.
    pub async fn idempotency_key(
        &self,
        key: &str,
        body_hash: &str,
        since_ms: i64,
    ) -> Result<KeyUse> {
        let row: Option<(String, String)> = with_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT body_hash, intent_id FROM idempotency_keys WHERE key = $1 AND created_ms >= $2",
            )
            .bind(key)
            .bind(since_ms)
            .fetch_optional(pool)
            .await?
        });
        Ok(match row {
            None => KeyUse::Unused,
            Some((stored, _)) if stored != body_hash => KeyUse::OtherBody,
            Some((_, id)) => KeyUse::Same(SagaId(parse_hash(&id)?)),
        })
    }

    /// Stores `key` for the body hashing to `body_hash` and its intent `saga`, at `now_ms`, unless
    /// the key is stored already and has not expired (stored at `since_ms` or later: of two racing
    /// requests with one key, the first stored wins); returns what the key holds afterwards for
    /// this body.
    pub async fn remember_idempotency_key(
        &self,
        key: &str,
        body_hash: &str,
        saga: SagaId,
        now_ms: i64,
        since_ms: i64,
    ) -> Result<KeyUse> {
        with_pool!(self.db(), pool => {
            sqlx::query(
                "INSERT INTO idempotency_keys (key, body_hash, intent_id, created_ms) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO UPDATE SET \
                 body_hash = excluded.body_hash, intent_id = excluded.intent_id, \
                 created_ms = excluded.created_ms WHERE idempotency_keys.created_ms < $5",
            )
            .bind(key)
            .bind(body_hash)
            .bind(saga.to_string())
            .bind(now_ms)
            .bind(since_ms)
            .execute(pool)
            .await?;
        });
        self.idempotency_key(key, body_hash, since_ms).await
    }

    /// Deletes the idempotency keys stored before `since_ms`; returns how many.
    pub async fn expire_idempotency_keys(&self, since_ms: i64) -> Result<u64> {
        Ok(with_pool!(self.db(), pool => {
            sqlx::query("DELETE FROM idempotency_keys WHERE created_ms < $1")
                .bind(since_ms)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// Records `key_name` as the submitter of `saga` at `now_ms` unless one is recorded (the first
    /// submitter keeps it).
    pub async fn record_submitter(&self, saga: SagaId, key_name: &str, now_ms: i64) -> Result<()> {
        with_pool!(self.db(), pool => {
            sqlx::query(
                "INSERT INTO intent_submitters (intent_id, key_name, created_ms) \
                 VALUES ($1, $2, $3) ON CONFLICT (intent_id) DO NOTHING",
            )
            .bind(saga.to_string())
            .bind(key_name)
            .bind(now_ms)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The API key that submitted `saga`, if it came through the API.
    pub async fn submitter(&self, saga: SagaId) -> Result<Option<String>> {
        Ok(with_pool!(self.db(), pool => {
            sqlx::query_scalar("SELECT key_name FROM intent_submitters WHERE intent_id = $1")
                .bind(saga.to_string())
                .fetch_optional(pool)
                .await?
        }))
    }

    /// The inventory promised to unexpired reservations at `now_ms`, by (chain, token).
    pub async fn reserved(
        &self,
        now_ms: i64,
    ) -> Result<
        std::collections::BTreeMap<(u64, alloy::primitives::Address), alloy::primitives::U256>,
    > {
        super::reserve::reserved(self.db(), now_ms).await
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<()> {
        let _: i32 = with_pool!(self.db(), pool => {
            sqlx::query_scalar("SELECT 1").fetch_one(pool).await?
        });
        Ok(())
    }
}
