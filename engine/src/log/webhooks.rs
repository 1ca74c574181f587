//! The webhooks the API delivers: endpoints registered for an API key, and the outbox the writer
//! fills in the same commit as each event an endpoint subscribed to (see `writer::statements`).
//! Deliverers (`baton-api`'s, one per instance) claim due messages for a while, post them, and
//! record each attempt; a message leaves the outbox once its endpoint answered 2xx, so a crash
//! between the post and that record delivers it again (at least once). An endpoint's messages of
//! one saga go out in the saga's order: a message waits while an earlier one of its saga is in the
//! outbox.

use super::{SagaLog, parse_hash};
use crate::error::{EngineError, Result};
use crate::event::SagaId;
use crate::with_pool;

/// An endpoint as registered (its secret is never read back out of the store but to sign).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Its id (`wh_…`).
    pub id: String,
    /// The API key's name it belongs to: it reports the intents that key submitted.
    pub key_name: String,
    /// Where deliveries are posted.
    pub url: String,
    /// The topics it subscribed to.
    pub topics: Vec<String>,
    /// What its owner calls it.
    pub description: String,
    /// Since when it is failing (unix milliseconds): nothing is delivered until it is enabled.
    pub failing_ms: Option<i64>,
    /// Registered at, unix milliseconds.
    pub created_ms: i64,
    /// Messages waiting for it.
    pub pending: u64,
}

/// A new endpoint.
#[derive(Clone, Debug)]
pub struct NewEndpoint {
    /// Its id.
    pub id: String,
    /// Whose.
    pub key_name: String,
    /// Where.
    pub url: String,
    /// What it wants (known topics, each once).
    pub topics: Vec<String>,
    /// What its owner calls it.
    pub description: String,
    /// The signing secret (`whsec_…`).
    pub secret: String,
    /// Now, unix milliseconds.
    pub created_ms: i64,
}

/// A message claimed for delivery: the event, where it goes and how it is signed.
#[derive(Clone, Debug)]
pub struct Message {
    /// The endpoint.
    pub endpoint_id: String,
    /// Its URL.
    pub url: String,
    /// Its signing secret.
    pub secret: String,
    /// The saga the event belongs to.
    pub saga: SagaId,
    saga_num: i64,
    /// The event's sequence number.
    pub seq: u64,
    /// The topic.
    pub topic: String,
    /// Attempts made before this one.
    pub attempts: u64,
    /// When it was first due, unix milliseconds: its retries end a while after.
    pub first_ms: i64,
    /// The event as the saga log stores it (JSON).
    pub event: String,
    /// When the event was written, unix milliseconds.
    pub at_ms: i64,
}

impl Message {
    /// The message's id (`webhook-id`): the same for every attempt and every endpoint.
    pub fn id(&self) -> String {
        format!("msg_{:x}_{}", self.saga.0, self.seq)
    }
}

/// One delivery attempt as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The message (`webhook-id`).
    pub message_id: String,
    /// Its topic.
    pub topic: String,
    /// Which attempt, from 1.
    pub attempt: u64,
    /// When it started, unix milliseconds.
    pub at_ms: i64,
    /// The endpoint's HTTP status, when it answered.
    pub status: Option<u16>,
    /// What went wrong, when something did (no answer, or not 2xx).
    pub error: Option<String>,
    /// How long it took, milliseconds.
    pub duration_ms: u64,
}

/// What became of a delivery attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Delivered: the message leaves the outbox.
    Delivered,
    /// Try again at this time (unix milliseconds).
    RetryAt(i64),
    /// Retried long enough: the endpoint is marked failing (the message stays for when it is
    /// enabled again).
    GiveUp,
}

type EndpointRow = (
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
    i64,
    i64,
);

const ENDPOINT_COLUMNS: &str = "e.id, e.key_name, e.url, e.topics, e.description, e.failing_ms, \
     e.created_ms, (SELECT COUNT(*) FROM webhook_outbox o WHERE o.endpoint_id = e.id)";

fn endpoint(row: EndpointRow) -> Result<Endpoint> {
    let (id, key_name, url, topics, description, failing_ms, created_ms, pending) = row;
    Ok(Endpoint {
        topics: serde_json::from_str(&topics)
            .map_err(|e| EngineError::Corrupt(format!("webhook {id}'s topics: {e}")))?,
        id,
        key_name,
        url,
        description,
        failing_ms,
        created_ms,
        pending: u64::try_from(pending).unwrap_or(0),
    })
}

type MessageRow = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    i64,
    i64,
    String,
    i64,
);

impl SagaLog {
    /// Registers `new`, unless its key has `most` endpoints already (then `false`, writing
    /// nothing).
    pub async fn add_webhook(&self, new: &NewEndpoint, most: usize) -> Result<bool> {
        let topics = serde_json::to_string(&new.topics)
            .map_err(|e| EngineError::Corrupt(format!("webhook topics: {e}")))?;
        let most = i64::try_from(most).unwrap_or(i64::MAX);
        let begin = self.db().begin_write();
        with_pool!(self.db(), pool => {
            let mut tx = pool.begin_with(begin).await?;
            let held: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM webhook_endpoints WHERE key_name = $1")
                    .bind(&new.key_name)
                    .fetch_one(&mut *tx)
                    .await?;
            if held >= most {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO webhook_endpoints (id, key_name, url, topics, description, secret, \
                 failing_ms, created_ms) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)",
            )
            .bind(&new.id)
            .bind(&new.key_name)
            .bind(&new.url)
            .bind(&topics)
            .bind(&new.description)
            .bind(&new.secret)
            .bind(new.created_ms)
            .execute(&mut *tx)
            .await?;
            for topic in &new.topics {
                sqlx::query(
                    "INSERT INTO webhook_subscriptions (key_name, topic, endpoint_id) \
                     VALUES ($1, $2, $3)",
                )
                .bind(&new.key_name)
                .bind(topic)
                .bind(&new.id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(true)
    }

    /// The endpoints of API key `key_name`, or every endpoint (`None`), oldest first.
    pub async fn webhooks(&self, key_name: Option<&str>) -> Result<Vec<Endpoint>> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints e \
             WHERE $1 IS NULL OR e.key_name = $1 ORDER BY e.created_ms, e.id"
        );
        let rows: Vec<EndpointRow> = with_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(key_name)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(endpoint).collect()
    }

    /// Endpoint `id`, if registered.
    pub async fn webhook(&self, id: &str) -> Result<Option<Endpoint>> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints e WHERE e.id = $1");
        let row: Option<EndpointRow> = with_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(endpoint).transpose()
    }

    /// Removes endpoint `id` with its subscriptions, messages and attempts; `false` when there is
    /// none.
    pub async fn remove_webhook(&self, id: &str) -> Result<bool> {
        let begin = self.db().begin_write();
        let removed = with_pool!(self.db(), pool => {
            let mut tx = pool.begin_with(begin).await?;
            for table in ["webhook_subscriptions", "webhook_outbox", "webhook_attempts"] {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE endpoint_id = $1"
                )))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            let removed = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            removed
        });
        Ok(removed > 0)
    }

    /// Makes endpoint `id` active again: its waiting messages are due at `now_ms`, with a new
    /// day of retries. `false` when there is none.
    pub async fn enable_webhook(&self, id: &str, now_ms: i64) -> Result<bool> {
        let begin = self.db().begin_write();
        let found = with_pool!(self.db(), pool => {
            let mut tx = pool.begin_with(begin).await?;
            let found = sqlx::query("UPDATE webhook_endpoints SET failing_ms = NULL WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(
                "UPDATE webhook_outbox SET due_ms = $2, first_ms = $2, claim_until = 0 \
                 WHERE endpoint_id = $1",
            )
            .bind(id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            found
        });
        Ok(found > 0)
    }

    /// Claims up to `limit` messages due at `now_ms` until `until_ms` (nobody else takes them
    /// meanwhile; after it, anyone may: the claimant is presumed gone). Only the first waiting
    /// message of each endpoint and saga is due, and none of a failing endpoint.
    pub async fn claim_webhooks(
        &self,
        now_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let begin = self.db().begin_write();
        // Read first, outside a write transaction: an idle outbox costs one read, not the
        // write lock the log's writer needs.
        let due: Vec<MessageRow> = with_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT o.endpoint_id, e.url, e.secret, s.id, o.saga_num, o.seq, o.topic, \
                 o.attempts, o.first_ms, ev.payload, ev.at_ms \
                 FROM webhook_outbox o \
                 JOIN webhook_endpoints e ON e.id = o.endpoint_id \
                 JOIN sagas s ON s.num = o.saga_num \
                 JOIN saga_events ev ON ev.saga_num = o.saga_num AND ev.seq = o.seq \
                 WHERE o.due_ms <= $1 AND o.claim_until < $1 AND e.failing_ms IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM webhook_outbox p WHERE \
                 p.endpoint_id = o.endpoint_id AND p.saga_num = o.saga_num AND p.seq < o.seq) \
                 ORDER BY o.due_ms, o.saga_num, o.seq LIMIT $2",
            )
            .bind(now_ms)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<MessageRow> = with_pool!(self.db(), pool => {
            let mut tx = pool.begin_with(begin).await?;
            let mut claimed = Vec::with_capacity(due.len());
            for row in due {
                // Another deliverer may have claimed it since it was read.
                let took = sqlx::query(
                    "UPDATE webhook_outbox SET claim_until = $4 WHERE endpoint_id = $1 \
                     AND saga_num = $2 AND seq = $3 AND claim_until < $5",
                )
                .bind(&row.0)
                .bind(row.4)
                .bind(row.5)
                .bind(until_ms)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if took == 1 {
                    claimed.push(row);
                }
            }
            tx.commit().await?;
            claimed
        });
        rows.into_iter()
            .map(|row| {
                let (endpoint_id, url, secret, saga, saga_num, seq, topic, attempts, first_ms) = (
                    row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8,
                );
                Ok(Message {
                    endpoint_id,
                    url,
                    secret,
                    saga: SagaId(parse_hash(&saga)?),
                    saga_num,
                    seq: u64::try_from(seq).map_err(|_| EngineError::Corrupt("seq".into()))?,
                    topic,
                    attempts: u64::try_from(attempts).unwrap_or(0),
                    first_ms,
                    event: row.9,
                    at_ms: row.10,
                })
            })
            .collect()
    }

    /// Records `attempt` of `message` and what follows from it (see [`Next`]).
    pub async fn webhook_attempted(
        &self,
        message: &Message,
        attempt: &Attempt,
        next: Next,
    ) -> Result<()> {
        let begin = self.db().begin_write();
        let seq = i64::try_from(message.seq).map_err(|_| EngineError::Corrupt("seq".into()))?;
        with_pool!(self.db(), pool => {
            let mut tx = pool.begin_with(begin).await?;
            sqlx::query(
                "INSERT INTO webhook_attempts (endpoint_id, message_id, topic, attempt, at_ms, \
                 status, error, duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&message.endpoint_id)
            .bind(&attempt.message_id)
            .bind(&attempt.topic)
            .bind(i64::try_from(attempt.attempt).unwrap_or(i64::MAX))
            .bind(attempt.at_ms)
            .bind(attempt.status.map(i64::from))
            .bind(attempt.error.as_deref())
            .bind(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
            let key = "endpoint_id = $1 AND saga_num = $2 AND seq = $3";
            let retry = "UPDATE webhook_outbox SET attempts = attempts + 1, claim_until = 0, \
                 due_ms = $4 WHERE";
            let (statement, due) = match next {
                Next::Delivered => (format!("DELETE FROM webhook_outbox WHERE {key}"), None),
                Next::RetryAt(due) => (format!("{retry} {key}"), Some(due)),
                // Due again as soon as the endpoint is enabled.
                Next::GiveUp => (format!("{retry} {key}"), Some(attempt.at_ms)),
            };
            let mut query = sqlx::query(sqlx::AssertSqlSafe(statement))
                .bind(&message.endpoint_id)
                .bind(message.saga_num)
                .bind(seq);
            if let Some(due) = due {
                query = query.bind(due);
            }
            query.execute(&mut *tx).await?;
            if next == Next::GiveUp {
                sqlx::query(
                    "UPDATE webhook_endpoints SET failing_ms = $2 \
                     WHERE id = $1 AND failing_ms IS NULL",
                )
                .bind(&message.endpoint_id)
                .bind(attempt.at_ms)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The latest `limit` attempts to deliver to endpoint `id`, newest first.
    pub async fn webhook_attempts(&self, id: &str, limit: usize) -> Result<Vec<Attempt>> {
        type Row = (String, String, i64, i64, Option<i64>, Option<String>, i64);
        let rows: Vec<Row> = with_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT message_id, topic, attempt, at_ms, status, error, duration_ms \
                 FROM webhook_attempts WHERE endpoint_id = $1 \
                 ORDER BY at_ms DESC, attempt DESC LIMIT $2",
            )
            .bind(id)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(message_id, topic, attempt, at_ms, status, error, duration_ms)| Attempt {
                    message_id,
                    topic,
                    attempt: u64::try_from(attempt).unwrap_or(0),
                    at_ms,
                    status: status.and_then(|s| u16::try_from(s).ok()),
                    error,
                    duration_ms: u64::try_from(duration_ms).unwrap_or(0),
                },
            )
            .collect())
    }

    /// Forgets the delivery attempts made before `before_ms`; returns how many.
    pub async fn prune_webhook_attempts(&self, before_ms: i64) -> Result<u64> {
        Ok(with_pool!(self.db(), pool => {
            sqlx::query("DELETE FROM webhook_attempts WHERE at_ms < $1")
                .bind(before_ms)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}
