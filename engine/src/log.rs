//! The saga log: an append-only, hash-chained event log per saga, written with group commit.
//!
//! [`SagaLog::append`] hands the event to one writer task and returns once the event is durable.
//! The writer takes every append waiting at that moment (up to [`MAX_BATCH`]) into one database
//! transaction, so many sagas share one commit (one fsync) instead of paying one each. Each event
//! stores the hash of the saga's previous event and its own: `keccak256(prev ‖ saga ‖ seq ‖ time ‖
//! payload)`; [`SagaLog::verify`] recomputes the chain and names the first broken link, including a
//! truncated tail (the saga row remembers the last hash).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, B256, U256, keccak256};
use baton_planner::Asset;
use sqlx::Row;
use tokio::sync::{mpsc, oneshot};

use crate::db::Db;
use crate::error::{EngineError, Result};
use crate::event::{SagaEvent, SagaId};
use crate::reserve;
use crate::with_pool;

/// The most appends one commit takes.
pub const MAX_BATCH: usize = 1024;

/// Where an appended event landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Its sequence number in the saga, from 1.
    pub seq: u64,
    /// Its hash.
    pub hash: B256,
}

/// An event as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// The saga.
    pub saga: SagaId,
    /// Sequence number, from 1.
    pub seq: u64,
    /// The event.
    pub event: SagaEvent,
    /// The previous event's hash (zero for the first).
    pub prev_hash: B256,
    /// This event's hash.
    pub hash: B256,
    /// When it was written, unix milliseconds.
    pub at_ms: i64,
}

/// The first broken link [`SagaLog::verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenLink {
    /// The saga.
    pub saga: SagaId,
    /// The first event that does not check (one past the last, for a truncated tail).
    pub seq: u64,
    /// What is wrong.
    pub reason: String,
}

/// What [`SagaLog::verify`] checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verification {
    /// Sagas checked.
    pub sagas: u64,
    /// Events checked.
    pub events: u64,
    /// The first broken link, if any.
    pub broken: Option<BrokenLink>,
}

fn event_hash(prev: B256, saga: SagaId, seq: u64, at_ms: i64, payload: &str) -> B256 {
    let mut pre = Vec::with_capacity(32 + 32 + 16 + payload.len());
    pre.extend_from_slice(prev.as_slice());
    pre.extend_from_slice(saga.0.as_slice());
    pre.extend_from_slice(&seq.to_be_bytes());
    pre.extend_from_slice(&at_ms.to_be_bytes());
    pre.extend_from_slice(payload.as_bytes());
    keccak256(pre)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn hex(h: B256) -> String {
    h.to_string()
}

fn chain_i64(asset: &Asset) -> Result<i64> {
    i64::try_from(asset.chain.0).map_err(|_| EngineError::Corrupt("chain id".into()))
}

fn parse_hash(s: &str) -> Result<B256> {
    s.parse()
        .map_err(|_| EngineError::Corrupt(format!("bad hash {s:?}")))
}

/// The saga's state column after `event`.
fn state_after(event: &SagaEvent) -> &'static str {
    match event {
        SagaEvent::Compensating { .. } => "compensating",
        SagaEvent::Decided { .. } => "decided",
        SagaEvent::Completed => "completed",
        _ => "running",
    }
}

struct Append {
    saga: SagaId,
    event: SagaEvent,
    admission: Option<Admission>,
    reply: oneshot::Sender<Result<Appended>>,
}

/// What admits a new saga, written in the same commit as its first event: the stored input, and
/// the inventory it reserves (checked in that transaction against every unexpired reservation).
#[derive(Clone, Debug)]
pub struct Admission {
    /// The saga's input, as JSON.
    pub body: String,
    /// Inventory the plan uses.
    pub needs: Vec<(Asset, U256)>,
    /// The solver's balance of each needed asset.
    pub available: BTreeMap<Asset, U256>,
    /// Now, unix milliseconds.
    pub now_ms: i64,
    /// When the reservation lapses, unix milliseconds.
    pub expires_ms: i64,
}

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

/// The saga log of one database. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct SagaLog {
    db: Db,
    writer: mpsc::Sender<Append>,
    stats: Arc<Stats>,
}

/// Counters of the writer.
#[derive(Debug, Default)]
pub struct Stats {
    /// Events appended.
    pub events: AtomicU64,
    /// Commits made (each durable; one per batch).
    pub commits: AtomicU64,
}

impl SagaLog {
    /// Starts the log's writer on `db` (needs a tokio runtime).
    pub fn new(db: Db) -> Self {
        let (writer, rx) = mpsc::channel(MAX_BATCH * 4);
        let stats = Arc::new(Stats::default());
        tokio::spawn(write_loop(db.clone(), rx, stats.clone()));
        Self { db, writer, stats }
    }

    /// The writer's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Appends `event` to `saga`'s log; returns once it is durable.
    pub async fn append(&self, saga: SagaId, event: SagaEvent) -> Result<Appended> {
        self.write(saga, event, None).await
    }

    /// Admits a new saga: stores its input, reserves its inventory (or refuses with
    /// [`EngineError::Inventory`], writing nothing) and appends its first event, in one commit
    /// shared with other appends. A `Completed` event releases the saga's reservations in its
    /// commit the same way.
    pub async fn admit(
        &self,
        saga: SagaId,
        admission: Admission,
        first: SagaEvent,
    ) -> Result<Appended> {
        self.write(saga, first, Some(admission)).await
    }

    async fn write(
        &self,
        saga: SagaId,
        event: SagaEvent,
        admission: Option<Admission>,
    ) -> Result<Appended> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Append {
                saga,
                event,
                admission,
                reply,
            })
            .await
            .map_err(|_| EngineError::WriterGone)?;
        answer.await.map_err(|_| EngineError::WriterGone)?
    }

    /// The stored columns of `saga`'s events, in order: seq, payload, prev hash, hash, time.
    async fn rows(&self, saga: SagaId) -> Result<Vec<(i64, String, String, String, i64)>> {
        Ok(with_pool!(&self.db, pool => {
            sqlx::query(
                "SELECT seq, payload, prev_hash, hash, at_ms FROM saga_events \
                 WHERE saga_id = $1 ORDER BY seq",
            )
            .bind(hex(saga.0))
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>(0)?,
                    r.try_get::<String, _>(1)?,
                    r.try_get::<String, _>(2)?,
                    r.try_get::<String, _>(3)?,
                    r.try_get::<i64, _>(4)?,
                ))
            })
            .collect::<std::result::Result<Vec<_>, sqlx::Error>>()?
        }))
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

    /// Every saga in the log, oldest first.
    pub async fn sagas(&self) -> Result<Vec<SagaId>> {
        let ids: Vec<String> = with_pool!(&self.db, pool => {
            sqlx::query_scalar("SELECT id FROM sagas ORDER BY created_ms, id")
                .fetch_all(pool)
                .await?
        });
        ids.iter().map(|s| parse_hash(s).map(SagaId)).collect()
    }

    /// Sagas not completed yet, oldest first: what recovery resumes.
    pub async fn unfinished(&self) -> Result<Vec<SagaId>> {
        let ids: Vec<String> = with_pool!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT id FROM sagas WHERE state <> 'completed' ORDER BY created_ms, id",
            )
            .fetch_all(pool)
            .await?
        });
        ids.iter().map(|s| parse_hash(s).map(SagaId)).collect()
    }

    /// Every unfinished saga with its stored input and its events (seq, event), oldest first: what
    /// recovery needs, in two queries.
    pub async fn unfinished_with_inputs(&self) -> Result<Vec<Unfinished>> {
        type Inputs = Vec<(String, String, i64)>;
        type Events = Vec<(String, i64, String)>;
        let (inputs, events): (Inputs, Events) = with_pool!(&self.db, pool => {
            let inputs = sqlx::query_as(
                "SELECT s.id, i.body, s.created_ms FROM sagas s JOIN intents i ON i.id = s.id \
                 WHERE s.state <> 'completed' ORDER BY s.created_ms, s.id",
            )
            .fetch_all(pool)
            .await?;
            let events = sqlx::query_as(
                "SELECT e.saga_id, e.seq, e.payload FROM saga_events e \
                 JOIN sagas s ON s.id = e.saga_id WHERE s.state <> 'completed' \
                 ORDER BY e.saga_id, e.seq",
            )
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

    /// Checks the hash chain of `saga`, or of every saga, and reports the first broken link.
    pub async fn verify(&self, saga: Option<SagaId>) -> Result<Verification> {
        let sagas = match saga {
            Some(s) => vec![s],
            None => self.sagas().await?,
        };
        let mut out = Verification::default();
        for saga in sagas {
            out.sagas += 1;
            if let Some(broken) = self.verify_one(saga, &mut out.events).await? {
                out.broken = Some(broken);
                break;
            }
        }
        Ok(out)
    }

    async fn verify_one(&self, saga: SagaId, count: &mut u64) -> Result<Option<BrokenLink>> {
        let broken = |seq: u64, reason: String| Ok(Some(BrokenLink { saga, seq, reason }));
        let rows = self.rows(saga).await?;
        let mut prev = B256::ZERO;
        let mut expected = 1u64;
        for (seq, payload, stored_prev, stored_hash, at_ms) in rows {
            *count += 1;
            if u64::try_from(seq).ok() != Some(expected) {
                return broken(
                    expected,
                    format!("event {expected} is missing (found {seq})"),
                );
            }
            if stored_prev != hex(prev) {
                return broken(
                    expected,
                    "its previous hash is not the previous event's".into(),
                );
            }
            if serde_json::from_str::<SagaEvent>(&payload).is_err() {
                return broken(expected, "its payload is not an event".into());
            }
            let hash = event_hash(prev, saga, expected, at_ms, &payload);
            if stored_hash != hex(hash) {
                return broken(expected, "its hash does not match its content".into());
            }
            prev = hash;
            expected += 1;
        }
        let last: Option<String> = with_pool!(&self.db, pool => {
            sqlx::query_scalar("SELECT last_hash FROM sagas WHERE id = $1")
                .bind(hex(saga.0))
                .fetch_optional(pool)
                .await?
        });
        match last {
            Some(last) if last != hex(prev) => broken(
                expected,
                "events after the last stored one were removed (the saga's last hash differs)"
                    .into(),
            ),
            None if expected > 1 => broken(1, "events without a saga".into()),
            _ => Ok(None),
        }
    }
}

/// The writer: takes every waiting append into one transaction, commits, then answers them all.
async fn write_loop(db: Db, mut rx: mpsc::Receiver<Append>, stats: Arc<Stats>) {
    // The last (seq, hash) of sagas this writer has touched; only updated after a commit.
    let mut heads: HashMap<SagaId, (u64, B256)> = HashMap::new();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match write_batch(&db, &heads, &batch).await {
            Ok(done) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                for (append, appended) in batch.drain(..).zip(done) {
                    if let Ok(a) = &appended {
                        stats.events.fetch_add(1, Ordering::Relaxed);
                        heads.insert(append.saga, (a.seq, a.hash));
                    }
                    let _ = append.reply.send(appended);
                }
            }
            Err(e) => {
                // Nothing of the batch is stored; every caller learns it, and heads are re-read.
                let message = e.to_string();
                for append in batch.drain(..) {
                    heads.remove(&append.saga);
                    let _ = append.reply.send(Err(EngineError::Corrupt(format!(
                        "append failed: {message}"
                    ))));
                }
            }
        }
    }
}

/// Rows per multi-row statement: 7 parameters each stays under SQLite's 32,766 and PostgreSQL's
/// 65,535 bound parameters.
const ROWS_PER_STATEMENT: usize = 1_000;

struct EventRow {
    saga: String,
    seq: i64,
    kind: &'static str,
    payload: String,
    prev_hash: String,
    hash: String,
    at_ms: i64,
}

struct SagaRow {
    id: String,
    state: &'static str,
    outcome: Option<String>,
    last_seq: i64,
    last_hash: String,
    at_ms: i64,
}

struct StepRow {
    saga: String,
    step: u32,
    state: &'static str,
    tx_hash: Option<String>,
    at_ms: i64,
}

/// The `steps` row an event sets: step, state, transaction.
fn step_state(event: &SagaEvent) -> Option<(u32, &'static str, Option<B256>)> {
    Some(match event {
        SagaEvent::TxSigned { step, comp, tx, .. } => (
            step.0,
            if *comp {
                "compensation_signed"
            } else {
                "signed"
            },
            Some(tx.hash),
        ),
        SagaEvent::StepFinal { step, comp, tx, .. } => {
            (step.0, if *comp { "compensated" } else { "done" }, *tx)
        }
        SagaEvent::StepFailed { step, comp, .. } => (
            step.0,
            if *comp {
                "compensation_failed"
            } else {
                "failed"
            },
            None,
        ),
        _ => return None,
    })
}

async fn write_batch(
    db: &Db,
    heads: &HashMap<SagaId, (u64, B256)>,
    batch: &[Append],
) -> Result<Vec<Result<Appended>>> {
    let mut tentative: HashMap<SagaId, (u64, B256)> = HashMap::new();
    let mut out = Vec::with_capacity(batch.len());
    let mut rows: Vec<EventRow> = Vec::with_capacity(batch.len());
    // One row per saga: its state after the batch (the latest outcome decided in it kept).
    let mut saga_rows: HashMap<SagaId, SagaRow> = HashMap::new();
    // One row per step touched: its latest state.
    let mut step_rows: HashMap<(SagaId, u32), StepRow> = HashMap::new();
    // The next nonce per (chain, signer) after the batch's signed transactions.
    let mut nonce_rows: HashMap<(u64, Address), i64> = HashMap::new();
    with_pool!(db, pool => {
        let mut tx = pool.begin_with(db.begin_write()).await?;
        if matches!(db, Db::Postgres(_)) && batch.iter().any(|a| a.admission.is_some()) {
            // One admitter at a time across instances sharing the database.
            sqlx::query("SELECT pg_advisory_xact_lock(7683)").execute(&mut *tx).await?;
        }
        for append in batch {
            let saga = append.saga;
            let head = match tentative.get(&saga).or_else(|| heads.get(&saga)) {
                Some(h) => *h,
                None => {
                    let row: Option<(i64, String)> =
                        sqlx::query_as("SELECT last_seq, last_hash FROM sagas WHERE id = $1")
                            .bind(hex(saga.0))
                            .fetch_optional(&mut *tx)
                            .await?;
                    match row {
                        Some((seq, hash)) => (
                            u64::try_from(seq).map_err(|_| EngineError::Corrupt("seq".into()))?,
                            parse_hash(&hash)?,
                        ),
                        None => (0, B256::ZERO),
                    }
                }
            };
            if append.admission.is_some() && head.0 > 0 {
                out.push(Err(EngineError::AlreadyAdmitted));
                continue;
            }
            if let Some(admission) = &append.admission {
                let mut refused = None;
                for (asset, need) in &admission.needs {
                    let rows: Vec<(String, String)> = sqlx::query_as(
                        "SELECT saga_id, amount FROM reservations \
                         WHERE chain = $1 AND token = $2 AND expires_ms > $3",
                    )
                    .bind(chain_i64(asset)?)
                    .bind(asset.token.0.to_string())
                    .bind(admission.now_ms)
                    .fetch_all(&mut *tx)
                    .await?;
                    let have = admission.available.get(asset).copied().unwrap_or_default();
                    if let Err(e) = reserve::check(saga, *asset, *need, have, &rows) {
                        refused = Some(e);
                        break;
                    }
                }
                if let Some(e) = refused {
                    out.push(Err(e));
                    continue;
                }
                for (asset, need) in &admission.needs {
                    sqlx::query(
                        "INSERT INTO reservations (saga_id, chain, token, amount, expires_ms) \
                         VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (saga_id, chain, token) DO UPDATE SET amount = excluded.amount, \
                         expires_ms = excluded.expires_ms",
                    )
                    .bind(hex(saga.0))
                    .bind(chain_i64(asset)?)
                    .bind(asset.token.0.to_string())
                    .bind(need.to_string())
                    .bind(admission.expires_ms)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "INSERT INTO intents (id, body, created_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(hex(saga.0))
                .bind(&admission.body)
                .bind(admission.now_ms)
                .execute(&mut *tx)
                .await?;
            }
            if append.event == SagaEvent::Completed {
                sqlx::query("DELETE FROM reservations WHERE saga_id = $1")
                    .bind(hex(saga.0))
                    .execute(&mut *tx)
                    .await?;
            }
            let seq = head.0 + 1;
            let at_ms = now_ms();
            let payload = serde_json::to_string(&append.event)
                .map_err(|e| EngineError::Corrupt(e.to_string()))?;
            let hash = event_hash(head.1, saga, seq, at_ms, &payload);
            let seq_i = i64::try_from(seq).map_err(|_| EngineError::Corrupt("seq".into()))?;
            rows.push(EventRow {
                saga: hex(saga.0),
                seq: seq_i,
                kind: append.event.kind(),
                payload,
                prev_hash: hex(head.1),
                hash: hex(hash),
                at_ms,
            });
            let outcome = match &append.event {
                SagaEvent::Decided { outcome } => serde_json::to_string(outcome).ok(),
                _ => None,
            };
            let row = saga_rows.entry(saga).or_insert_with(|| SagaRow {
                id: hex(saga.0),
                state: "",
                outcome: None,
                last_seq: 0,
                last_hash: String::new(),
                at_ms,
            });
            row.state = state_after(&append.event);
            row.outcome = outcome.or(row.outcome.take());
            row.last_seq = seq_i;
            row.last_hash = hex(hash);
            row.at_ms = at_ms;
            if let Some((step, state, tx)) = step_state(&append.event) {
                step_rows.insert(
                    (saga, step),
                    StepRow {
                        saga: hex(saga.0),
                        step,
                        state,
                        tx_hash: tx.map(hex),
                        at_ms,
                    },
                );
            }
            if let SagaEvent::TxSigned { tx, .. } = &append.event {
                let next = i64::try_from(tx.nonce + 1).unwrap_or(i64::MAX);
                let key = (tx.chain.0, tx.from);
                let entry = nonce_rows.entry(key).or_insert(next);
                *entry = (*entry).max(next);
            }
            tentative.insert(saga, (seq, hash));
            out.push(Ok(Appended { seq, hash }));
        }
        // One statement per table for the whole batch (chunked under the parameter limits).
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO saga_events (saga_id, seq, kind, payload, prev_hash, hash, at_ms) ",
            );
            insert.push_values(chunk, |mut b, r| {
                b.push_bind(r.saga.clone())
                    .push_bind(r.seq)
                    .push_bind(r.kind)
                    .push_bind(r.payload.clone())
                    .push_bind(r.prev_hash.clone())
                    .push_bind(r.hash.clone())
                    .push_bind(r.at_ms);
            });
            insert.build().execute(&mut *tx).await?;
        }
        let steps: Vec<&StepRow> = step_rows.values().collect();
        for chunk in steps.chunks(ROWS_PER_STATEMENT) {
            let mut upsert = sqlx::QueryBuilder::new(
                "INSERT INTO steps (saga_id, step, state, tx_hash, updated_ms) ",
            );
            upsert.push_values(chunk, |mut b, r| {
                b.push_bind(r.saga.clone())
                    .push_bind(i64::from(r.step))
                    .push_bind(r.state)
                    .push_bind(r.tx_hash.clone())
                    .push_bind(r.at_ms);
            });
            upsert.push(
                " ON CONFLICT (saga_id, step) DO UPDATE SET state = excluded.state, \
                 tx_hash = COALESCE(excluded.tx_hash, steps.tx_hash), updated_ms = excluded.updated_ms",
            );
            upsert.build().execute(&mut *tx).await?;
        }
        let nonces: Vec<(u64, Address, i64)> =
            nonce_rows.iter().map(|((c, a), n)| (*c, *a, *n)).collect();
        for chunk in nonces.chunks(ROWS_PER_STATEMENT) {
            let mut upsert =
                sqlx::QueryBuilder::new("INSERT INTO nonces (chain, signer, next_nonce) ");
            upsert.push_values(chunk, |mut b, (chain, signer, next)| {
                b.push_bind(i64::try_from(*chain).unwrap_or(i64::MAX))
                    .push_bind(signer.to_string())
                    .push_bind(*next);
            });
            upsert.push(
                " ON CONFLICT (chain, signer) DO UPDATE SET next_nonce = \
                 CASE WHEN excluded.next_nonce > nonces.next_nonce THEN excluded.next_nonce \
                 ELSE nonces.next_nonce END",
            );
            upsert.build().execute(&mut *tx).await?;
        }
        let sagas: Vec<&SagaRow> = saga_rows.values().collect();
        for chunk in sagas.chunks(ROWS_PER_STATEMENT) {
            let mut upsert = sqlx::QueryBuilder::new(
                "INSERT INTO sagas (id, state, outcome, last_seq, last_hash, created_ms, updated_ms) ",
            );
            upsert.push_values(chunk, |mut b, r| {
                b.push_bind(r.id.clone())
                    .push_bind(r.state)
                    .push_bind(r.outcome.clone())
                    .push_bind(r.last_seq)
                    .push_bind(r.last_hash.clone())
                    .push_bind(r.at_ms)
                    .push_bind(r.at_ms);
            });
            upsert.push(
                " ON CONFLICT (id) DO UPDATE SET state = excluded.state, \
                 outcome = COALESCE(excluded.outcome, sagas.outcome), last_seq = excluded.last_seq, \
                 last_hash = excluded.last_hash, updated_ms = excluded.updated_ms",
            );
            upsert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(out)
}
