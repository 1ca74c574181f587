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
    /// Its route (`31337>31338`), unless it was admitted before routes were kept.
    pub route: Option<String>,
    /// Admitted at, unix milliseconds.
    pub created_ms: i64,
    /// Last change, unix milliseconds.
    pub updated_ms: i64,
    /// When its latest outcome was decided, unix milliseconds.
    pub decided_ms: Option<i64>,
}

/// Which sagas a list shows: every condition given must hold.
#[derive(Clone, Debug)]
pub struct SagaFilter {
    /// In this stored state (`running`, `held`, …, `completed`).
    pub state: Option<String>,
    /// Whose latest outcome is of this kind (`fulfilled`, `refunded`, `failed`).
    pub outcome: Option<String>,
    /// On this route, exactly (`31337>31338`).
    pub route: Option<String>,
    /// Whose route starts or ends on this chain.
    pub chain: Option<u64>,
    /// Admitted at or after this time, unix milliseconds.
    pub admitted_from_ms: Option<i64>,
    /// Admitted at or before this time, unix milliseconds.
    pub admitted_until_ms: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

impl Default for SagaFilter {
    fn default() -> Self {
        Self {
            state: None,
            outcome: None,
            route: None,
            chain: None,
            admitted_from_ms: None,
            admitted_until_ms: None,
            limit: 100,
        }
    }
}

/// A saga whose outcome was decided, as the outcome series counts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decided {
    /// Its route, when known.
    pub route: Option<String>,
    /// The kind of its latest outcome: `fulfilled`, `refunded` or `failed`.
    pub outcome: String,
    /// Admitted at, unix milliseconds.
    pub created_ms: i64,
    /// Decided at, unix milliseconds.
    pub decided_ms: i64,
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

    /// The sagas `filter` selects, newest first.
    pub async fn summaries(&self, filter: &SagaFilter) -> Result<Vec<SagaSummary>> {
        type Row = (
            String,
            String,
            Option<String>,
            Option<String>,
            i64,
            i64,
            Option<i64>,
        );
        // The chain filter matches a whole chain id in the route (`31337>31338` is read as
        // `+31337+31338+`).
        let rows: Vec<Row> = with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT s.id, s.state, s.outcome, i.route, s.created_ms, s.updated_ms, s.decided_ms \
                 FROM sagas s LEFT JOIN intents i ON i.saga_num = s.num \
                 WHERE (CAST($1 AS TEXT) IS NULL OR s.state = $1) \
                 AND (CAST($2 AS TEXT) IS NULL OR s.outcome_kind = $2) \
                 AND (CAST($3 AS TEXT) IS NULL OR i.route = $3) \
                 AND (CAST($4 AS TEXT) IS NULL OR \
                      ('+' || REPLACE(i.route, '>', '+') || '+') LIKE ('%+' || $4 || '+%')) \
                 AND (CAST($5 AS BIGINT) IS NULL OR s.created_ms >= $5) \
                 AND (CAST($6 AS BIGINT) IS NULL OR s.created_ms <= $6) \
                 ORDER BY s.created_ms DESC, s.id LIMIT $7",
            )
            .bind(filter.state.as_deref())
            .bind(filter.outcome.as_deref())
            .bind(filter.route.as_deref())
            .bind(filter.chain.map(|c| c.to_string()))
            .bind(filter.admitted_from_ms)
            .bind(filter.admitted_until_ms)
            .bind(filter.limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(
                |(id, state, outcome, route, created_ms, updated_ms, decided_ms)| {
                    Ok(SagaSummary {
                        id: SagaId(parse_hash(&id)?),
                        state,
                        outcome: outcome
                            .map(|o| serde_json::from_str(&o))
                            .transpose()
                            .map_err(|e| {
                                EngineError::Corrupt(format!("outcome of saga {id}: {e}"))
                            })?,
                        route,
                        created_ms,
                        updated_ms,
                        decided_ms,
                    })
                },
            )
            .collect()
    }

    /// How many of the sagas admitted from `since_ms` on have each outcome kind (`failed`,
    /// `fulfilled`, `refunded`, in that order; kinds none has are left out): what a configuration
    /// version's guards count, in one statement on the admission index.
    pub async fn outcomes_admitted_since(&self, since_ms: i64) -> Result<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> = with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT outcome_kind, COUNT(*) FROM sagas \
                 WHERE created_ms >= $1 AND outcome_kind IS NOT NULL \
                 GROUP BY outcome_kind ORDER BY outcome_kind",
            )
            .bind(since_ms)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(kind, n)| (kind, u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    /// The sagas whose latest outcome was decided from `since_ms` on, oldest decision first, at
    /// most `limit`: what the outcome series is counted from.
    pub async fn decided_since(&self, since_ms: i64, limit: i64) -> Result<Vec<Decided>> {
        type Row = (Option<String>, String, i64, i64);
        let rows: Vec<Row> = with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT i.route, s.outcome_kind, s.created_ms, s.decided_ms \
                 FROM sagas s LEFT JOIN intents i ON i.saga_num = s.num \
                 WHERE s.decided_ms >= $1 AND s.outcome_kind IS NOT NULL \
                 ORDER BY s.decided_ms, s.num LIMIT $2",
            )
            .bind(since_ms)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(route, outcome, created_ms, decided_ms)| Decided {
                route,
                outcome,
                created_ms,
                decided_ms,
            })
            .collect())
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
