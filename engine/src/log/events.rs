//! The settler events the EVM adapters keep ([`StoredEvents`]), in the saga log's database: a
//! restarted instance, or another one on the same database, does not read a long history again.

use alloy::primitives::{B256, Log};
use baton_adapters::evm::{EventStore, KeptEvent};
use baton_adapters::port::{BoxFuture, EventAt};

use super::db::Db;
use super::{db_int, hex, to_adapter_error};
use crate::error::{EngineError, Result};
use crate::with_pool;

/// An [`EventStore`] in the saga log's database.
#[derive(Clone, Debug)]
pub struct StoredEvents {
    db: Db,
}

impl StoredEvents {
    /// The settler events kept in `db`.
    pub fn new(db: &Db) -> Self {
        Self { db: db.clone() }
    }

    async fn cursor(&self, source: &str) -> Result<Option<u64>> {
        let read_to: Option<i64> = with_pool!(&self.db, pool => {
            sqlx::query_scalar("SELECT read_to FROM event_cursors WHERE source = $1")
                .bind(source)
                .fetch_optional(pool)
                .await?
        });
        Ok(read_to.and_then(|r| u64::try_from(r).ok()))
    }

    async fn keep(&self, source: &str, to: u64, events: Vec<KeptEvent>) -> Result<()> {
        let to = db_int(to);
        let mut rows = Vec::with_capacity(events.len());
        for (order, index, log, at) in events {
            let event = serde_json::to_string(&(log, at))
                .map_err(|e| EngineError::Corrupt(format!("a settler event: {e}")))?;
            let block = db_int(at.block.number);
            let index = db_int(index);
            rows.push((block, index, hex(order), event));
        }
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            for (block, index, order, event) in &rows {
                sqlx::query(
                    "INSERT INTO settler_events (source, block, log_index, order_id, event) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source, block, log_index) DO NOTHING",
                )
                .bind(source)
                .bind(block)
                .bind(index)
                .bind(order)
                .bind(event)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "INSERT INTO event_cursors (source, read_to) VALUES ($1, $2) \
                 ON CONFLICT (source) DO UPDATE SET read_to = \
                 CASE WHEN excluded.read_to > event_cursors.read_to THEN excluded.read_to \
                 ELSE event_cursors.read_to END",
            )
            .bind(source)
            .bind(to)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    async fn of_order(&self, source: &str, order: B256) -> Result<Vec<(Log, EventAt)>> {
        let rows: Vec<String> = with_pool!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT event FROM settler_events WHERE source = $1 AND order_id = $2 \
                 ORDER BY block, log_index",
            )
            .bind(source)
            .bind(hex(order))
            .fetch_all(pool)
            .await?
        });
        rows.iter()
            .map(|row| {
                serde_json::from_str(row)
                    .map_err(|e| EngineError::Corrupt(format!("a stored settler event: {e}")))
            })
            .collect()
    }
}

const ADAPTER_ERROR: &str = "the stored settler events";

impl EventStore for StoredEvents {
    fn read_to(&self, source: &str) -> BoxFuture<'_, baton_adapters::Result<Option<u64>>> {
        let source = source.to_owned();
        Box::pin(async move {
            self.cursor(&source)
                .await
                .map_err(to_adapter_error(ADAPTER_ERROR))
        })
    }

    fn store(
        &self,
        source: &str,
        to: u64,
        events: Vec<KeptEvent>,
    ) -> BoxFuture<'_, baton_adapters::Result<()>> {
        let source = source.to_owned();
        Box::pin(async move {
            self.keep(&source, to, events)
                .await
                .map_err(to_adapter_error(ADAPTER_ERROR))
        })
    }

    fn events(
        &self,
        source: &str,
        order: B256,
    ) -> BoxFuture<'_, baton_adapters::Result<Vec<(Log, EventAt)>>> {
        let source = source.to_owned();
        Box::pin(async move {
            self.of_order(&source, order)
                .await
                .map_err(to_adapter_error(ADAPTER_ERROR))
        })
    }
}
