//! Reads of the saga log: a saga's events and input, the saga table, and what recovery loads.

use std::collections::HashMap;

use super::{SagaLog, StoredEvent, hex, parse_hash};
use crate::error::{EngineError, Result};
use crate::event::{Outcome, SagaEvent, SagaId};
use crate::with_pool;

/// An unfinished saga as recovery loads it.
#[derive(Clone, Debug)]
pub struct Unfinished {
    /// The saga.
    pub id: SagaId,
    /// Its stored input (JSON).
    pub body: String,
    /// When it was admitted, unix milliseconds.
    pub created_ms: i64,
    /// Its events (seq, event), in order.
    pub events: Vec<(u64, SagaEvent)>,
}

/// One row of the saga table.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SagaSummary {
    /// The saga.
    pub id: SagaId,
    /// Its stored state: `running`, `held`, `resumed`, `compensating`, `decided`,
    /// `retried` or `completed`.
    pub state: String,
    /// The latest outcome decided, if any.
    pub outcome: Option<Outcome>,
    /// Admitted at, unix milliseconds.
    pub created_ms: i64,
    /// Last change, unix milliseconds.
    pub updated_ms: i64,
}

impl SagaLog {
    /// The stored columns of `saga`'s events, in order: seq, payload, prev hash, hash, time.
    pub(super) async fn rows(
        &self,
        saga: SagaId,
    ) -> Result<Vec<(i64, String, String, String, i64)>> {
        Ok(with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT e.seq, e.payload, e.prev_hash, e.hash, e.at_ms FROM saga_events e \
                 JOIN sagas s ON s.num = e.saga_num WHERE s.id = $1 ORDER BY e.seq",
            )
            .bind(hex(saga.0))
            .fetch_all(pool)
            .await?
        }))
    }

    /// The saga ids `sql` selects (one column, `id`).
    async fn ids(&self, sql: &'static str) -> Result<Vec<SagaId>> {
        let ids: Vec<String> = with_pool!(&self.db, pool => {
            sqlx::query_scalar(sql).fetch_all(pool).await?
        });
        ids.iter().map(|s| parse_hash(s).map(SagaId)).collect()
    }

    /// Every event of `saga`, in order.
    pub async fn events(&self, saga: SagaId) -> Result<Vec<StoredEvent>> {
        let rows = self.rows(saga).await?;
        rows.into_iter()
            .map(|(seq, payload, prev, hash, at_ms)| {
                Ok(StoredEvent {
                    saga,
                    seq: u64::try_from(seq).map_err(|_| EngineError::Corrupt("seq".into()))?,
                    event: serde_json::from_str(&payload)
                        .map_err(|e| EngineError::Corrupt(format!("event {seq}: {e}")))?,
                    prev_hash: parse_hash(&prev)?,
                    hash: parse_hash(&hash)?,
                    at_ms,
                })
            })
            .collect()
    }

    /// The input (JSON) `saga` was admitted with, if it was. A saga an operator resumed runs the
    /// input of its `Resumed` event: [`crate::SagaInput::running`] picks it from the events.
    pub async fn input(&self, saga: SagaId) -> Result<Option<String>> {
        Ok(with_pool!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT i.body FROM intents i JOIN sagas s ON s.num = i.saga_num WHERE s.id = $1",
            )
            .bind(hex(saga.0))
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Sagas newest first, those in `state` only when given (`running`, `held`, `resumed`,
    /// `compensating`, `decided`, `retried`, `completed`), at most `limit`.
    pub async fn summaries(&self, state: Option<&str>, limit: i64) -> Result<Vec<SagaSummary>> {
        type Row = (String, String, Option<String>, i64, i64);
        let rows: Vec<Row> = with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, state, outcome, created_ms, updated_ms FROM sagas \
                 WHERE (CAST($1 AS TEXT) IS NULL OR state = $1) ORDER BY created_ms DESC, id LIMIT $2",
            )
            .bind(state)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(id, state, outcome, created_ms, updated_ms)| {
                Ok(SagaSummary {
                    id: SagaId(parse_hash(&id)?),
                    state,
                    outcome: outcome
                        .map(|o| serde_json::from_str(&o))
                        .transpose()
                        .map_err(|e| EngineError::Corrupt(format!("outcome of saga {id}: {e}")))?,
                    created_ms,
                    updated_ms,
                })
            })
            .collect()
    }

    /// Every saga in the log, oldest first.
    pub async fn sagas(&self) -> Result<Vec<SagaId>> {
        self.ids("SELECT id FROM sagas ORDER BY created_ms, id")
            .await
    }

    /// Sagas not completed yet, oldest first: what recovery resumes.
    pub async fn unfinished(&self) -> Result<Vec<SagaId>> {
        self.ids("SELECT id FROM sagas WHERE state <> 'completed' ORDER BY created_ms, id")
            .await
    }

    /// Every unfinished saga not leased by another instance (`owner` is this one), with its stored
    /// input and its events, oldest first: what recovery needs, in two queries.
    pub async fn unfinished_with_inputs(
        &self,
        owner: &str,
        now_ms: i64,
    ) -> Result<Vec<Unfinished>> {
        self.unfinished_where(
            "(s.lease_owner IS NULL OR s.lease_owner = $1 OR s.lease_until < $2)",
            owner,
            now_ms,
        )
        .await
    }

    /// Every unfinished saga whose lease another instance let lapse (or that nobody leased), with
    /// its stored input and its events, oldest first: what an instance claims while it runs.
    pub async fn lapsed_with_inputs(&self, owner: &str, now_ms: i64) -> Result<Vec<Unfinished>> {
        self.unfinished_where(
            "(s.lease_owner IS NULL OR (s.lease_owner <> $1 AND s.lease_until < $2))",
            owner,
            now_ms,
        )
        .await
    }

    /// The unfinished sagas whose lease columns pass `leased` (SQL over `s`, binding `$1` to
    /// `owner` and `$2` to `now_ms`), with their inputs and events, in two queries.
    async fn unfinished_where(
        &self,
        leased: &'static str,
        owner: &str,
        now_ms: i64,
    ) -> Result<Vec<Unfinished>> {
        type Inputs = Vec<(String, String, i64)>;
        type Events = Vec<(String, i64, String)>;
        let inputs_sql = format!(
            "SELECT s.id, i.body, s.created_ms FROM sagas s JOIN intents i ON i.saga_num = s.num \
             WHERE s.state <> 'completed' AND {leased} ORDER BY s.created_ms, s.id"
        );
        let events_sql = format!(
            "SELECT s.id, e.seq, e.payload FROM saga_events e \
             JOIN sagas s ON s.num = e.saga_num WHERE s.state <> 'completed' AND {leased} \
             ORDER BY e.saga_num, e.seq"
        );
        let (inputs, events): (Inputs, Events) = with_pool!(&self.db, pool => {
            // `leased` is one of this module's literals: nothing from outside is in the text.
            let inputs = sqlx::query_as(sqlx::AssertSqlSafe(inputs_sql.clone()))
                .bind(owner)
                .bind(now_ms)
                .fetch_all(pool)
                .await?;
            let events = sqlx::query_as(sqlx::AssertSqlSafe(events_sql.clone()))
                .bind(owner)
                .bind(now_ms)
                .fetch_all(pool)
                .await?;
            (inputs, events)
        });
        let mut by_saga: HashMap<String, Vec<(u64, SagaEvent)>> = HashMap::new();
        for (saga, seq, payload) in events {
            let event = serde_json::from_str(&payload)
                .map_err(|e| EngineError::Corrupt(format!("saga {saga} event {seq}: {e}")))?;
            let seq = u64::try_from(seq).map_err(|_| EngineError::Corrupt("seq".into()))?;
            by_saga.entry(saga).or_default().push((seq, event));
        }
        inputs
            .into_iter()
            .map(|(id, body, created_ms)| {
                let events = by_saga.remove(&id).unwrap_or_default();
                Ok(Unfinished {
                    id: SagaId(parse_hash(&id)?),
                    body,
                    created_ms,
                    events,
                })
            })
            .collect()
    }
}
