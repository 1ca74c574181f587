//! The attester's decisions, in SQLite: at most one per order — a fill (for one filler) or a
//! cancel — recorded with its signature before the signature leaves the process. Whichever is
//! recorded first stands; the other is refused from then on.

use std::str::FromStr;

use alloy::primitives::Bytes;
use baton_planner::{ChainId, OrderId};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::wire::Claim;

/// A decision as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// What was signed.
    pub claim: Claim,
    /// The signature.
    pub signature: Bytes,
}

/// The decisions table.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

/// A store that failed (the disk, the file).
#[derive(Debug, thiserror::Error)]
#[error("the attester's store: {0}")]
pub struct StoreError(String);

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError(e.to_string())
    }
}

impl Store {
    /// Opens (creating if needed) the store at `url` (`sqlite://path` or `sqlite::memory:`).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        // One connection: decisions are few and each is one statement; an in-memory database
        // lives as long as its connection.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS decisions (
                origin_chain INTEGER NOT NULL,
                order_id BLOB NOT NULL,
                claim TEXT NOT NULL,
                signature BLOB NOT NULL,
                decided_at INTEGER NOT NULL,
                PRIMARY KEY (origin_chain, order_id)
            )",
        )
        .execute(&pool)
        .await?;
        Ok(Self { pool })
    }

    /// The decision on `order`, if there is one.
    pub async fn get(
        &self,
        chain: ChainId,
        order: OrderId,
    ) -> Result<Option<Decision>, StoreError> {
        let row = sqlx::query(
            "SELECT claim, signature FROM decisions WHERE origin_chain = ? AND order_id = ?",
        )
        .bind(chain.0 as i64)
        .bind(order.0.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| decode(&r)).transpose()
    }

    /// Records `decision` on `order` unless one is recorded already; returns the one that stands.
    pub async fn decide(
        &self,
        chain: ChainId,
        order: OrderId,
        decision: &Decision,
    ) -> Result<Decision, StoreError> {
        let claim = serde_json::to_string(&decision.claim)
            .map_err(|e| StoreError(format!("encoding a claim: {e}")))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let row = sqlx::query(
            "INSERT INTO decisions (origin_chain, order_id, claim, signature, decided_at)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (origin_chain, order_id) DO UPDATE SET origin_chain = origin_chain
             RETURNING claim, signature",
        )
        .bind(chain.0 as i64)
        .bind(order.0.as_slice())
        .bind(claim)
        .bind(decision.signature.as_ref())
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        decode(&row)
    }

    /// How many decisions are recorded.
    pub async fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM decisions")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }
}

fn decode(row: &sqlx::sqlite::SqliteRow) -> Result<Decision, StoreError> {
    let claim: String = row.try_get("claim")?;
    let signature: Vec<u8> = row.try_get("signature")?;
    Ok(Decision {
        claim: serde_json::from_str(&claim)
            .map_err(|e| StoreError(format!("a stored claim: {e}")))?,
        signature: Bytes::from(signature),
    })
}
