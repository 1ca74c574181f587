//! Inventory reservations: the solver inventory a saga's plan uses is promised to it, in the
//! database, from submission until its end (or the lock's expiry), so two intents never promise the
//! same inventory. Checked against the solver's live balance on each chain.

use std::collections::BTreeMap;

use alloy::primitives::U256;
use baton_planner::{Amount, Asset};

use crate::db::Db;
use crate::error::{EngineError, Result};
use crate::event::SagaId;
use crate::with_pool;

/// Reserves `needs` for `saga` until `expires_ms`, if `available` (the solver's balances) covers them
/// on top of every unexpired reservation of other sagas. Idempotent for the same saga.
pub async fn reserve(
    db: &Db,
    saga: SagaId,
    needs: &BTreeMap<Asset, Amount>,
    available: &BTreeMap<Asset, U256>,
    now_ms: i64,
    expires_ms: i64,
) -> Result<()> {
    with_pool!(db, pool => {
        let mut tx = pool.begin_with(db.begin_write()).await?;
        if matches!(db, Db::Postgres(_)) {
            // One reserver at a time across instances.
            sqlx::query("SELECT pg_advisory_xact_lock(7683)").execute(&mut *tx).await?;
        }
        for (asset, need) in needs {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT saga_id, amount FROM reservations \
                 WHERE chain = $1 AND token = $2 AND expires_ms > $3",
            )
            .bind(i64::try_from(asset.chain.0).map_err(|_| EngineError::Corrupt("chain".into()))?)
            .bind(asset.token.0.to_string())
            .bind(now_ms)
            .fetch_all(&mut *tx)
            .await?;
            let mut promised = U256::ZERO;
            for (other, amount) in rows {
                if other != saga.to_string() {
                    promised += amount
                        .parse::<U256>()
                        .map_err(|_| EngineError::Corrupt(format!("reservation amount {amount:?}")))?;
                }
            }
            let have = available.get(asset).copied().unwrap_or_default();
            if promised.saturating_add(need.raw()) > have {
                return Err(EngineError::Inventory(format!(
                    "{asset}: the plan needs {}, the solver holds {have} of which {promised} is promised",
                    need.raw()
                )));
            }
            sqlx::query(
                "INSERT INTO reservations (saga_id, chain, token, amount, expires_ms) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (saga_id, chain, token) DO UPDATE SET amount = excluded.amount, \
                 expires_ms = excluded.expires_ms",
            )
            .bind(saga.to_string())
            .bind(i64::try_from(asset.chain.0).map_err(|_| EngineError::Corrupt("chain".into()))?)
            .bind(asset.token.0.to_string())
            .bind(need.raw().to_string())
            .bind(expires_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Releases everything `saga` holds.
pub async fn release(db: &Db, saga: SagaId) -> Result<()> {
    with_pool!(db, pool => {
        sqlx::query("DELETE FROM reservations WHERE saga_id = $1")
            .bind(saga.to_string())
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Deletes reservations that expired, or whose saga is over; returns how many.
pub async fn reclaim(db: &Db, now_ms: i64) -> Result<u64> {
    let done = with_pool!(db, pool => {
        sqlx::query(
            "DELETE FROM reservations WHERE expires_ms <= $1 \
             OR saga_id IN (SELECT id FROM sagas WHERE state = 'completed')",
        )
        .bind(now_ms)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(done)
}
