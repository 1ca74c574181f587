//! Saga leases: one instance drives a saga at a time, under a lease with a fencing token (the
//! writer refuses a fenced append whose fence moved on).

use super::{SagaLog, hex};
use crate::error::Result;
use crate::event::SagaId;
use crate::with_pool;

impl SagaLog {
    /// Takes the lease of `saga` for `owner` until `now_ms + ttl_ms`, if nobody else holds an
    /// unexpired one; returns the new fence (each acquisition increments it), or `None`.
    pub async fn acquire_lease(
        &self,
        saga: SagaId,
        owner: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Option<i64>> {
        let fence: Option<i64> = with_pool!(&self.db, pool => {
            sqlx::query_scalar(
                "UPDATE sagas SET lease_owner = $2, lease_until = $3, fence = fence + 1 \
                 WHERE id = $1 AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < $4) \
                 RETURNING fence",
            )
            .bind(hex(saga.0))
            .bind(owner)
            .bind(now_ms + ttl_ms)
            .bind(now_ms)
            .fetch_optional(pool)
            .await?
        });
        Ok(fence)
    }

    /// Extends `owner`'s lease of `saga` (with `fence`) to `now_ms + ttl_ms`; false when the lease
    /// is no longer theirs.
    pub async fn renew_lease(
        &self,
        saga: SagaId,
        owner: &str,
        fence: i64,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool> {
        let renewed = with_pool!(&self.db, pool => {
            sqlx::query(
                "UPDATE sagas SET lease_until = $4 WHERE id = $1 AND lease_owner = $2 AND fence = $3",
            )
            .bind(hex(saga.0))
            .bind(owner)
            .bind(fence)
            .bind(now_ms + ttl_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(renewed == 1)
    }
}
