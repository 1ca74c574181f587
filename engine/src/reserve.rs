//! Inventory reservations: the solver inventory a saga's plan uses is promised to it, in the
//! database, from admission until its end (or the lock's expiry), so two intents never promise the
//! same inventory. The check runs inside the saga log's writer transaction that admits the saga
//! ([`crate::log::SagaLog::admit`]), against the solver's live balances; `Completed` releases.

use alloy::primitives::U256;
use baton_planner::Asset;

use crate::db::Db;
use crate::error::{EngineError, Result};
use crate::event::SagaId;
use crate::with_pool;

/// Whether `saga` may take `need` of `asset` when the solver holds `have` and `rows` (saga id,
/// amount) are the asset's unexpired reservations (the saga's own excepted).
pub fn check(
    saga: SagaId,
    asset: Asset,
    need: U256,
    have: U256,
    rows: &[(String, String)],
) -> Result<()> {
    let mut promised = U256::ZERO;
    for (other, amount) in rows {
        if *other != saga.to_string() {
            promised += amount
                .parse::<U256>()
                .map_err(|_| EngineError::Corrupt(format!("reservation amount {amount:?}")))?;
        }
    }
    if promised.saturating_add(need) > have {
        return Err(EngineError::Inventory(format!(
            "{asset}: the plan needs {need}, the solver holds {have} of which {promised} is promised"
        )));
    }
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

/// The solver inventory promised to running sagas now, per (chain, token): the sum of unexpired
/// reservations.
pub async fn reserved(
    db: &Db,
    now_ms: i64,
) -> Result<std::collections::BTreeMap<(u64, alloy::primitives::Address), U256>> {
    let rows: Vec<(i64, String, String)> = with_pool!(db, pool => {
        sqlx::query_as("SELECT chain, token, amount FROM reservations WHERE expires_ms > $1")
            .bind(now_ms)
            .fetch_all(pool)
            .await?
    });
    let mut out = std::collections::BTreeMap::new();
    for (chain, token, amount) in rows {
        let corrupt = || EngineError::Corrupt(format!("reservation {chain} {token} {amount}"));
        let key = (
            u64::try_from(chain).map_err(|_| corrupt())?,
            token.parse().map_err(|_| corrupt())?,
        );
        let amount: U256 = amount.parse().map_err(|_| corrupt())?;
        *out.entry(key).or_insert(U256::ZERO) += amount;
    }
    Ok(out)
}
