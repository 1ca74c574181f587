//! Inventory reservations: the solver inventory a saga's plan uses is promised to it, in the
//! database, from admission until its end (or the lock's expiry), so two intents never promise the
//! same inventory. The check runs inside the saga log's writer transaction that admits the saga
//! ([`crate::log::SagaLog::admit`]), against the solver's live balances; `Completed` releases.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use alloy::primitives::U256;
use baton_planner::{Asset, ChainId, TokenAddress};

use crate::error::{EngineError, Result};
use crate::event::SagaId;
use crate::log::db::Db;
use crate::with_pool;

/// The unexpired reservations of some assets as one writer transaction sees them, and changes
/// them: the admissions and releases of a whole batch are checked here, in order, and written
/// with one statement each.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// Per asset: each saga's reservation (amount, expiry in unix milliseconds).
    held: HashMap<Asset, HashMap<SagaId, (U256, i64)>>,
}

impl Ledger {
    /// Records the stored reservations `rows` (saga, chain, token, amount, expiry) of the
    /// `needed` assets.
    pub(crate) fn hold_rows(
        &mut self,
        rows: Vec<(String, i64, String, String, i64)>,
        needed: &BTreeSet<Asset>,
    ) -> Result<()> {
        for (saga, chain, token, amount, expires_ms) in rows {
            let (asset, amount) = parse(chain, &token, &amount)?;
            let saga = saga
                .parse()
                .map_err(|_| EngineError::Corrupt(format!("reservation of saga {saga:?}")))?;
            if needed.contains(&asset) {
                self.hold(asset, SagaId(saga), amount, expires_ms);
            }
        }
        Ok(())
    }

    /// Records a reservation.
    pub(crate) fn hold(&mut self, asset: Asset, saga: SagaId, amount: U256, expires_ms: i64) {
        self.held
            .entry(asset)
            .or_default()
            .insert(saga, (amount, expires_ms));
    }

    /// Reserves every `need` of `saga` (replacing its own earlier reservations) if each fits in
    /// the solver's `available` balance beside the other sagas' reservations unexpired at
    /// `now_ms`; otherwise [`EngineError::Inventory`] and nothing changes.
    pub(crate) fn take(
        &mut self,
        saga: SagaId,
        needs: &[(Asset, U256)],
        available: &BTreeMap<Asset, U256>,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<()> {
        for (asset, need) in needs {
            let have = available.get(asset).copied().unwrap_or_default();
            let promised = self.held.get(asset).map_or(U256::ZERO, |held| {
                held.iter()
                    .filter(|(other, (_, expires))| **other != saga && *expires > now_ms)
                    .fold(U256::ZERO, |sum, (_, (amount, _))| {
                        sum.saturating_add(*amount)
                    })
            });
            if promised.saturating_add(*need) > have {
                return Err(EngineError::Inventory(format!(
                    "{asset}: the plan needs {need}, the solver holds {have} of which {promised} is promised"
                )));
            }
        }
        for (asset, need) in needs {
            self.hold(*asset, saga, *need, expires_ms);
        }
        Ok(())
    }

    /// Forgets `saga`'s reservations (its saga completed).
    pub(crate) fn release(&mut self, saga: SagaId) {
        for held in self.held.values_mut() {
            held.remove(&saga);
        }
    }
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
        let (asset, amount) = parse(chain, &token, &amount)?;
        *out.entry((asset.chain.0, asset.token.0))
            .or_insert(U256::ZERO) += amount;
    }
    Ok(out)
}

/// A stored reservation's chain, token and amount as the asset and amount it promises.
fn parse(chain: i64, token: &str, amount: &str) -> Result<(Asset, U256)> {
    let corrupt = || EngineError::Corrupt(format!("reservation {chain} {token} {amount}"));
    let asset = Asset {
        chain: ChainId(u64::try_from(chain).map_err(|_| corrupt())?),
        token: TokenAddress(token.parse().map_err(|_| corrupt())?),
    };
    Ok((asset, amount.parse().map_err(|_| corrupt())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, B256};

    fn asset() -> Asset {
        Asset {
            chain: ChainId(1),
            token: TokenAddress(Address::repeat_byte(7)),
        }
    }

    fn saga(n: u8) -> SagaId {
        SagaId(B256::repeat_byte(n))
    }

    /// Saga `n` takes `amount` of the asset, of which the solver holds 100, at `now_ms`, for a
    /// second.
    fn take(ledger: &mut Ledger, n: u8, amount: u64, now_ms: i64) -> Result<()> {
        let have = BTreeMap::from([(asset(), U256::from(100))]);
        ledger.take(
            saga(n),
            &[(asset(), U256::from(amount))],
            &have,
            now_ms,
            now_ms + 1_000,
        )
    }

    #[test]
    fn a_ledger_promises_inventory_once_and_frees_it_on_release_or_expiry() {
        let mut ledger = Ledger::default();
        ledger.hold(asset(), saga(1), U256::from(60), 1_000);
        // 60 promised to saga 1: 50 more does not fit, and the refusal reserves nothing.
        let refused = take(&mut ledger, 2, 50, 0);
        assert!(
            matches!(refused, Err(EngineError::Inventory(_))),
            "{refused:?}"
        );
        take(&mut ledger, 3, 40, 0).expect("fits");
        // A saga's own reservation does not count against it: taking again replaces it.
        take(&mut ledger, 3, 40, 0).expect("fits");
        assert!(take(&mut ledger, 2, 1, 0).is_err());
        // Released, saga 1's 60 are free again.
        ledger.release(saga(1));
        take(&mut ledger, 2, 60, 0).expect("fits");
        // At 1,000 ms every reservation has expired.
        take(&mut ledger, 4, 100, 1_000).expect("fits");
    }
}
