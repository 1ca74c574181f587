//! Nonces shared through the database: several instances signing with one key on one chain never
//! hand out one nonce twice.
//!
//! `nonces` holds, per (chain, signer), the next nonce never handed out; `nonce_claims` the nonces
//! handed out whose transaction is not yet in a saga's log. Taking one is a transaction that locks
//! the `nonces` row. The writer deletes a claim in the commit that logs its transaction, so a
//! claim that outlives its expiry belongs to a holder that stopped in between (killed, or refused
//! unwritten): its nonce is handed out again, or [plugged](SharedNonces::abandoned) when nobody
//! takes one, because every later transaction of the account waits for it. A nonce given back (the
//! node refused its transaction) is a claim expired at once. Expired claims are reused only with
//! the chain's pending count in hand, so a nonce the chain has used meanwhile is dropped instead.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use alloy::primitives::Address;
use baton_adapters::nonce::{NonceSource, Taken};
use baton_adapters::port::BoxFuture;
use baton_planner::ChainId;

use super::SagaLog;
use super::db::Db;
use super::{db_int, to_adapter_error};
use crate::error::Result;
use crate::{now_ms, with_pool};

/// What a take does, decided from the stored rows (pure, so it is tested without a database).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// The chain's pending count is needed first.
    AskChain,
    /// Hand out `nonce` (an expired claim's when `reuse`), drop the expired claims `stale` (the
    /// chain used them), and store `next` as the next nonce never handed out.
    Take {
        nonce: i64,
        reuse: bool,
        stale: Vec<i64>,
        next: i64,
    },
}

/// The take: `next` as stored (`None` the first time), the claims `(nonce, until_ms)`, the chain's
/// `pending` count if read.
pub(crate) fn plan(
    next: Option<i64>,
    claims: &[(i64, i64)],
    pending: Option<i64>,
    now: i64,
) -> Plan {
    let mut expired: Vec<i64> = claims
        .iter()
        .filter(|(_, until)| *until < now)
        .map(|(n, _)| *n)
        .collect();
    expired.sort_unstable();
    let after_claims = claims.iter().map(|(n, _)| n + 1).max().unwrap_or(0);
    let floor = next.unwrap_or(0).max(after_claims);
    let Some(pending) = pending else {
        if next.is_none() || !expired.is_empty() {
            return Plan::AskChain;
        }
        return Plan::Take {
            nonce: floor,
            reuse: false,
            stale: Vec::new(),
            next: floor + 1,
        };
    };
    let (stale, reusable): (Vec<i64>, Vec<i64>) = expired.into_iter().partition(|n| *n < pending);
    match reusable.first() {
        Some(&nonce) => Plan::Take {
            nonce,
            reuse: true,
            stale,
            next: floor,
        },
        None => {
            let nonce = floor.max(pending);
            Plan::Take {
                nonce,
                reuse: false,
                stale,
                next: nonce + 1,
            }
        }
    }
}

/// A [`NonceSource`] in the saga log's database, for the instances that share it.
pub struct SharedNonces {
    db: Db,
    owner: String,
    ttl_ms: i64,
    /// The (chain, signer) pairs this process has asked the chain about: the first take of each
    /// reads the chain's count, in case the key signed elsewhere.
    asked: Mutex<HashSet<(u64, Address)>>,
}

impl std::fmt::Debug for SharedNonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedNonces")
            .field("owner", &self.owner)
            .field("ttl_ms", &self.ttl_ms)
            .finish_non_exhaustive()
    }
}

impl SharedNonces {
    /// Nonces in the database of `log` for instance `owner`, whose claims expire `ttl` after they
    /// are taken (far longer than signing and logging a transaction takes); `log`'s commits end
    /// the claims of the transactions they log.
    pub fn new(log: &SagaLog, owner: &str, ttl: Duration) -> Self {
        log.end_nonce_claims();
        Self {
            db: log.db().clone(),
            owner: owner.to_owned(),
            ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
            asked: Mutex::new(HashSet::new()),
        }
    }

    /// Takes a nonce as [`plan`] says, in one transaction; `pending` as in [`NonceSource::take`].
    /// With `only_abandoned`, hands out an expired claim's nonce or nothing.
    async fn take_in_db(
        &self,
        chain: ChainId,
        signer: Address,
        pending: Option<u64>,
        only_abandoned: bool,
    ) -> Result<Option<Taken>> {
        let chain_i = db_int(chain.0);
        let signer_s = signer.to_string();
        let pending = pending.map(db_int);
        let now = now_ms();
        let lock = match &self.db {
            Db::Postgres(_) => " FOR UPDATE",
            Db::Sqlite(_) => "",
        };
        let taken = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            // Creates the row to lock (and, on SQLite, takes the write lock at once).
            sqlx::query(
                "INSERT INTO nonces (chain, signer, next_nonce) VALUES ($1, $2, -1) \
                 ON CONFLICT (chain, signer) DO NOTHING",
            )
            .bind(chain_i)
            .bind(&signer_s)
            .execute(&mut *tx)
            .await?;
            let stored: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT next_nonce FROM nonces WHERE chain = $1 AND signer = $2{lock}"
            )))
            .bind(chain_i)
            .bind(&signer_s)
            .fetch_one(&mut *tx)
            .await?;
            let claims: Vec<(i64, i64)> = sqlx::query_as(
                "SELECT nonce, until_ms FROM nonce_claims WHERE chain = $1 AND signer = $2",
            )
            .bind(chain_i)
            .bind(&signer_s)
            .fetch_all(&mut *tx)
            .await?;
            let next = (stored >= 0).then_some(stored);
            match plan(next, &claims, pending, now) {
                Plan::AskChain => Some(Taken::AskChain),
                Plan::Take { nonce, reuse, stale, next } => {
                    for n in stale {
                        sqlx::query(
                            "DELETE FROM nonce_claims WHERE chain = $1 AND signer = $2 AND nonce = $3",
                        )
                        .bind(chain_i)
                        .bind(&signer_s)
                        .bind(n)
                        .execute(&mut *tx)
                        .await?;
                    }
                    if only_abandoned && !reuse {
                        // Nothing abandoned: only the claims the chain used are dropped.
                        tx.commit().await?;
                        return Ok(None);
                    }
                    sqlx::query(
                        "INSERT INTO nonce_claims (chain, signer, nonce, owner, until_ms) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (chain, signer, nonce) \
                         DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms",
                    )
                    .bind(chain_i)
                    .bind(&signer_s)
                    .bind(nonce)
                    .bind(&self.owner)
                    .bind(now.saturating_add(self.ttl_ms))
                    .execute(&mut *tx)
                    .await?;
                    if !reuse || next > stored {
                        sqlx::query(
                            "UPDATE nonces SET next_nonce = $3 WHERE chain = $1 AND signer = $2",
                        )
                        .bind(chain_i)
                        .bind(&signer_s)
                        .bind(next.max(stored))
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Some(Taken::Nonce(u64::try_from(nonce).unwrap_or_default()))
                }
            }
        });
        Ok(taken)
    }

    /// Whether any claim of `signer` on `chain` has expired (its holder stopped, or gave it back).
    async fn any_expired(&self, chain: ChainId, signer: Address) -> Result<bool> {
        let expired: Option<i64> = with_pool!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT nonce FROM nonce_claims WHERE chain = $1 AND signer = $2 AND until_ms < $3 \
                 LIMIT 1",
            )
            .bind(db_int(chain.0))
            .bind(signer.to_string())
            .bind(now_ms())
            .fetch_optional(pool)
            .await?
        });
        Ok(expired.is_some())
    }

    async fn give_back(&self, chain: ChainId, signer: Address, nonce: u64) -> Result<()> {
        with_pool!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO nonce_claims (chain, signer, nonce, owner, until_ms) \
                 VALUES ($1, $2, $3, $4, 0) ON CONFLICT (chain, signer, nonce) \
                 DO UPDATE SET until_ms = 0",
            )
            .bind(db_int(chain.0))
            .bind(signer.to_string())
            .bind(db_int(nonce))
            .bind(&self.owner)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    fn first_take(&self, chain: ChainId, signer: Address) -> bool {
        self.asked
            .lock()
            .map(|mut asked| asked.insert((chain.0, signer)))
            .unwrap_or(true)
    }
}

const ADAPTER_ERROR: &str = "the shared nonces";

impl NonceSource for SharedNonces {
    fn take(
        &self,
        chain: ChainId,
        signer: Address,
        pending: Option<u64>,
    ) -> BoxFuture<'_, baton_adapters::Result<Taken>> {
        Box::pin(async move {
            if pending.is_none() && self.first_take(chain, signer) {
                return Ok(Taken::AskChain);
            }
            let taken = self.take_in_db(chain, signer, pending, false).await;
            Ok(taken
                .map_err(to_adapter_error(ADAPTER_ERROR))?
                .unwrap_or(Taken::AskChain))
        })
    }

    fn release(
        &self,
        chain: ChainId,
        signer: Address,
        nonce: u64,
    ) -> BoxFuture<'_, baton_adapters::Result<()>> {
        Box::pin(async move {
            self.give_back(chain, signer, nonce)
                .await
                .map_err(to_adapter_error(ADAPTER_ERROR))
        })
    }

    fn has_abandoned(
        &self,
        chain: ChainId,
        signer: Address,
    ) -> BoxFuture<'_, baton_adapters::Result<bool>> {
        Box::pin(async move {
            self.any_expired(chain, signer)
                .await
                .map_err(to_adapter_error(ADAPTER_ERROR))
        })
    }

    fn abandoned(
        &self,
        chain: ChainId,
        signer: Address,
        pending: u64,
    ) -> BoxFuture<'_, baton_adapters::Result<Option<u64>>> {
        Box::pin(async move {
            let taken = self.take_in_db(chain, signer, Some(pending), true).await;
            Ok(match taken.map_err(to_adapter_error(ADAPTER_ERROR))? {
                Some(Taken::Nonce(n)) => Some(n),
                _ => None,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_take_and_an_expired_claim_ask_the_chain() {
        assert_eq!(plan(None, &[], None, 100), Plan::AskChain);
        assert_eq!(plan(Some(5), &[(3, 99)], None, 100), Plan::AskChain);
    }

    #[test]
    fn a_fresh_nonce_is_above_every_stored_and_claimed_one() {
        let take = |next, claims: &[(i64, i64)], pending| match plan(next, claims, pending, 100) {
            Plan::Take { nonce, next, .. } => (nonce, next),
            Plan::AskChain => panic!("asked the chain"),
        };
        assert_eq!(take(Some(5), &[], None), (5, 6));
        assert_eq!(
            take(Some(5), &[(7, 200)], None),
            (8, 9),
            "a live claim above"
        );
        assert_eq!(
            take(None, &[], Some(3)),
            (3, 4),
            "the chain's count at first"
        );
        assert_eq!(
            take(Some(5), &[], Some(9)),
            (9, 10),
            "the key signed elsewhere"
        );
    }

    #[test]
    fn an_expired_claim_is_reused_unless_the_chain_used_it() {
        assert_eq!(
            plan(Some(10), &[(4, 50), (6, 0), (8, 500)], Some(5), 100),
            Plan::Take {
                nonce: 6,
                reuse: true,
                stale: vec![4],
                next: 10,
            }
        );
        assert_eq!(
            plan(Some(10), &[(4, 50), (6, 0)], Some(10), 100),
            Plan::Take {
                nonce: 10,
                reuse: false,
                stale: vec![4, 6],
                next: 11,
            }
        );
    }
}
