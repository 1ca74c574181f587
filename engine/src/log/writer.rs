//! The saga log's writer: one task that takes every waiting append into one transaction — events,
//! saga heads, steps, nonces, admissions and releases as multi-row statements — commits once, then
//! answers every caller.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use alloy::primitives::{Address, B256};
use baton_planner::Asset;
use tokio::sync::mpsc;

use super::{
    Append, Appended, MAX_BATCH, Stats, chain_i64, event_hash, hex, parse_hash, state_after,
};
use crate::db::Db;
use crate::error::{EngineError, Result};
use crate::event::{SagaEvent, SagaId};
use crate::now_ms;
use crate::reserve;
use crate::with_pool;

/// The writer: takes every waiting append into one transaction, commits, then answers them all.
pub(super) async fn write_loop(
    db: Db,
    mut rx: mpsc::Receiver<Append>,
    stats: Arc<Stats>,
    notices: tokio::sync::broadcast::Sender<super::Notice>,
    committed: Arc<tokio::sync::Notify>,
) {
    // The heads of the sagas this writer has touched; only updated after a commit.
    let mut heads: HashMap<SagaId, Head> = HashMap::new();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match write_batch(&db, &heads, &mut batch).await {
            Ok((done, moved)) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                committed.notify_one();
                heads.extend(moved);
                for (append, appended) in batch.drain(..).zip(done) {
                    if let Ok(a) = &appended {
                        stats.events.fetch_add(1, Ordering::Relaxed);
                        // No subscriber is not an error.
                        let _ = notices.send(super::Notice {
                            saga: append.saga,
                            seq: a.seq,
                            kind: append.event.kind(),
                        });
                    }
                    let _ = append.reply.send(appended);
                }
            }
            Err(e) => {
                // Nothing of the batch is stored; every caller learns it, and heads are re-read.
                let message = e.to_string();
                for append in batch.drain(..) {
                    heads.remove(&append.saga);
                    let _ = append.reply.send(Err(EngineError::Append(message.clone())));
                }
            }
        }
    }
}

/// A saga as the writer knows it: its number in the log (the key of its events and steps) and its
/// last event.
#[derive(Clone, Copy, Debug)]
struct Head {
    num: i64,
    seq: u64,
    hash: B256,
}

/// Rows per multi-row statement: at most 11 parameters each stays under SQLite's 32,766 and
/// PostgreSQL's 65,535 bound parameters.
const ROWS_PER_STATEMENT: usize = 1_000;

struct EventRow {
    saga_num: i64,
    seq: i64,
    kind: &'static str,
    payload: String,
    prev_hash: String,
    hash: String,
    at_ms: i64,
}

struct SagaRow {
    id: String,
    /// Its number: given when the batch creates the row, never changed after.
    num: i64,
    /// The state the batch moves the saga to, if it does.
    state: Option<&'static str>,
    outcome: Option<String>,
    last_seq: i64,
    last_hash: String,
    at_ms: i64,
    /// For a saga admitted in this batch: its first lease (owner, until), fence 1.
    lease: Option<(String, i64)>,
}

/// A batch's writes: on SQLite, every statement in one query (one round trip to the thread of its
/// connection); on PostgreSQL, one query per statement (its protocol binds one at a time).
struct Writes<DB: sqlx::Database> {
    together: bool,
    queries: Vec<sqlx::QueryBuilder<DB>>,
}

impl<DB: sqlx::Database> Writes<DB> {
    fn new(together: bool) -> Self {
        Self {
            together,
            queries: Vec::new(),
        }
    }

    /// Starts the next statement with `sql`.
    fn statement(&mut self, sql: &str) -> &mut sqlx::QueryBuilder<DB> {
        match self.queries.last_mut() {
            Some(query) if self.together => {
                query.push("; ").push(sql);
            }
            _ => self.queries.push(sqlx::QueryBuilder::new(sql)),
        }
        let last = self.queries.len() - 1;
        &mut self.queries[last]
    }
}

struct ReservationRow {
    saga: String,
    chain: i64,
    token: String,
    amount: String,
    expires_ms: i64,
}

/// What the batch's admissions need to see of the stored reservations: those unexpired at the
/// earliest admission's time, of these assets (and their tokens, to select by); `None` without
/// admissions.
fn needed_reservations(batch: &[Append]) -> Option<(i64, BTreeSet<Asset>, Vec<String>)> {
    let admissions = batch.iter().filter_map(|a| a.admission.as_ref());
    let oldest = admissions.clone().map(|a| a.now_ms).min()?;
    let needed: BTreeSet<Asset> = admissions
        .flat_map(|a| a.needs.iter().map(|(asset, _)| *asset))
        .collect();
    let tokens: BTreeSet<String> = needed.iter().map(|a| a.token.0.to_string()).collect();
    Some((oldest, needed, tokens.into_iter().collect()))
}

struct StepRow {
    saga_num: i64,
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

/// Writes `batch` in one transaction; returns each append's result and the heads it moved.
async fn write_batch(
    db: &Db,
    heads: &HashMap<SagaId, Head>,
    batch: &mut [Append],
) -> Result<(Vec<Result<Appended>>, HashMap<SagaId, Head>)> {
    let mut tentative: HashMap<SagaId, Head> = HashMap::new();
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
        // Only a saga this writer does not know can be admitted or numbered (one it wrote is
        // admitted already): with one, one instance at a time sharing the database decides.
        if matches!(db, Db::Postgres(_)) && batch.iter().any(|a| !heads.contains_key(&a.saga)) {
            sqlx::query("SELECT pg_advisory_xact_lock(7683)").execute(&mut *tx).await?;
        }
        // The stored number, head and fence of every saga the batch touches that the writer does
        // not know (or must check), in one query per chunk; with the first, the highest number
        // given so far (a saga new to the log takes the next).
        let mut wanted: Vec<String> = batch
            .iter()
            .filter(|a| a.fence.is_some() || !heads.contains_key(&a.saga))
            .map(|a| hex(a.saga.0))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut stored: HashMap<String, StoredSaga> = HashMap::new();
        let mut last_num = 0;
        for (k, chunk) in wanted.chunks(ROWS_PER_STATEMENT).enumerate() {
            let mut select = sqlx::QueryBuilder::new(
                "SELECT id, num, last_seq, last_hash, fence FROM sagas WHERE id IN (",
            );
            let mut ids = select.separated(", ");
            for id in chunk {
                ids.push_bind(id.clone());
            }
            ids.push_unseparated(")");
            if k == 0 {
                select.push(" UNION ALL SELECT NULL, MAX(num), NULL, NULL, NULL FROM sagas");
            }
            let rows: Vec<StoredRow> = select.build_query_as().fetch_all(&mut *tx).await?;
            for row in rows {
                match row {
                    (Some(id), Some(num), Some(seq), Some(hash), Some(fence)) => {
                        stored.insert(id, StoredSaga { num, seq, hash, fence });
                    }
                    (None, num, ..) => last_num = num.unwrap_or(0),
                    (Some(id), ..) => {
                        return Err(EngineError::Corrupt(format!("saga {id} lacks its number")));
                    }
                }
            }
        }
        // The stored reservations the batch's admissions are checked against, in one query per
        // chunk of tokens; each admission is then checked in memory (see `reserve::Ledger`).
        let mut ledger = reserve::Ledger::default();
        if let Some((oldest, needed, tokens)) = needed_reservations(batch) {
            for chunk in tokens.chunks(ROWS_PER_STATEMENT) {
                let mut select = sqlx::QueryBuilder::new(
                    "SELECT saga_id, chain, token, amount, expires_ms FROM reservations \
                     WHERE expires_ms > ",
                );
                select.push_bind(oldest).push(" AND token IN (");
                let mut each = select.separated(", ");
                for token in chunk {
                    each.push_bind(token.clone());
                }
                each.push_unseparated(")");
                ledger.hold_rows(select.build_query_as().fetch_all(&mut *tx).await?, &needed)?;
            }
        }
        let mut reservation_rows: HashMap<(SagaId, Asset), ReservationRow> = HashMap::new();
        let mut intent_rows: Vec<(i64, String, String, i64)> = Vec::new();
        let mut released: Vec<String> = Vec::new();
        for append in batch.iter() {
            let saga = append.saga;
            let row = stored.get(&hex(saga.0));
            if let Some(fence) = append.fence
                && row.map(|r| r.fence) != Some(fence)
            {
                out.push(Err(EngineError::LeaseLost));
                continue;
            }
            let head = match tentative.get(&saga).or_else(|| heads.get(&saga)) {
                Some(h) => *h,
                None => match row {
                    Some(r) => Head {
                        num: r.num,
                        seq: u64::try_from(r.seq).map_err(|_| EngineError::Corrupt("seq".into()))?,
                        hash: parse_hash(&r.hash)?,
                    },
                    // Only a saga's first event starts its log: anything else for a saga the log
                    // does not have followed an admission that did not commit.
                    None if append.admission.is_none()
                        && !matches!(append.event, SagaEvent::Started { .. }) =>
                    {
                        out.push(Err(EngineError::NotAdmitted));
                        continue;
                    }
                    // New to the log: the next number (a refused admission leaves a gap).
                    None => {
                        last_num += 1;
                        Head {
                            num: last_num,
                            seq: 0,
                            hash: B256::ZERO,
                        }
                    }
                },
            };
            if append.admission.is_some() && head.seq > 0 {
                out.push(Err(EngineError::AlreadyAdmitted));
                continue;
            }
            if let Some(admission) = &append.admission {
                if let Err(e) = ledger.take(
                    saga,
                    &admission.needs,
                    &admission.available,
                    admission.now_ms,
                    admission.expires_ms,
                ) {
                    out.push(Err(e));
                    continue;
                }
                for (asset, need) in &admission.needs {
                    reservation_rows.insert(
                        (saga, *asset),
                        ReservationRow {
                            saga: hex(saga.0),
                            chain: chain_i64(asset)?,
                            token: asset.token.0.to_string(),
                            amount: need.to_string(),
                            expires_ms: admission.expires_ms,
                        },
                    );
                }
                intent_rows.push((head.num, hex(saga.0), admission.body.clone(), admission.now_ms));
            }
            if append.event == SagaEvent::Completed {
                // Released in this commit (after the batch's new reservations are written).
                ledger.release(saga);
                released.push(hex(saga.0));
            }
            let seq = head.seq + 1;
            let at_ms = now_ms();
            let hash = event_hash(head.hash, saga, seq, at_ms, &append.payload);
            let seq_i = i64::try_from(seq).map_err(|_| EngineError::Corrupt("seq".into()))?;
            rows.push(EventRow {
                saga_num: head.num,
                seq: seq_i,
                kind: append.event.kind(),
                payload: append.payload.clone(),
                prev_hash: hex(head.hash),
                hash: hex(hash),
                at_ms,
            });
            let outcome = match &append.event {
                SagaEvent::Decided { outcome } => serde_json::to_string(outcome).ok(),
                _ => None,
            };
            let row = saga_rows.entry(saga).or_insert_with(|| SagaRow {
                id: hex(saga.0),
                num: head.num,
                state: None,
                outcome: None,
                last_seq: 0,
                last_hash: String::new(),
                at_ms,
                lease: None,
            });
            if let Some(admission) = &append.admission {
                row.lease = admission.lease.clone();
            }
            row.state = state_after(&append.event).or(row.state);
            row.outcome = outcome.or(row.outcome.take());
            row.last_seq = seq_i;
            row.last_hash = hex(hash);
            row.at_ms = at_ms;
            if let Some((step, state, tx)) = step_state(&append.event) {
                step_rows.insert(
                    (saga, step),
                    StepRow {
                        saga_num: head.num,
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
            tentative.insert(
                saga,
                Head {
                    num: head.num,
                    seq,
                    hash,
                },
            );
            out.push(Ok(Appended { seq, hash }));
        }
        // Decided: whoever waits for that learns it now, while the batch is written.
        for (append, result) in batch.iter_mut().zip(&out) {
            if let (Some(decided), Ok(appended)) = (append.decided.take(), result) {
                let _ = decided.send(*appended);
            }
        }
        // One statement per table for the whole batch (chunked under the parameter limits).
        let mut writes = Writes::new(matches!(db, Db::Sqlite(_)));
        let reserved: Vec<&ReservationRow> = reservation_rows.values().collect();
        for chunk in reserved.chunks(ROWS_PER_STATEMENT) {
            let upsert = writes.statement(
                "INSERT INTO reservations (saga_id, chain, token, amount, expires_ms) ",
            );
            upsert.push_values(chunk, |mut b, r| {
                b.push_bind(r.saga.clone())
                    .push_bind(r.chain)
                    .push_bind(r.token.clone())
                    .push_bind(r.amount.clone())
                    .push_bind(r.expires_ms);
            });
            upsert.push(
                " ON CONFLICT (saga_id, chain, token) DO UPDATE SET amount = excluded.amount, \
                 expires_ms = excluded.expires_ms",
            );
        }
        for chunk in intent_rows.chunks(ROWS_PER_STATEMENT) {
            let insert =
                writes.statement("INSERT INTO intents (saga_num, id, body, created_ms) ");
            insert.push_values(chunk, |mut b, (num, id, body, at)| {
                b.push_bind(*num)
                    .push_bind(id.clone())
                    .push_bind(body.clone())
                    .push_bind(*at);
            });
            insert.push(" ON CONFLICT (saga_num) DO NOTHING");
        }
        for chunk in released.chunks(ROWS_PER_STATEMENT) {
            let delete = writes.statement("DELETE FROM reservations WHERE saga_id IN (");
            let mut ids = delete.separated(", ");
            for id in chunk {
                ids.push_bind(id.clone());
            }
            ids.push_unseparated(")");
        }
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let insert = writes.statement(
                "INSERT INTO saga_events (saga_num, seq, kind, payload, prev_hash, hash, at_ms) ",
            );
            insert.push_values(chunk, |mut b, r| {
                b.push_bind(r.saga_num)
                    .push_bind(r.seq)
                    .push_bind(r.kind)
                    .push_bind(r.payload.clone())
                    .push_bind(r.prev_hash.clone())
                    .push_bind(r.hash.clone())
                    .push_bind(r.at_ms);
            });
        }
        let steps: Vec<&StepRow> = step_rows.values().collect();
        for chunk in steps.chunks(ROWS_PER_STATEMENT) {
            let upsert = writes.statement(
                "INSERT INTO steps (saga_num, step, state, tx_hash, updated_ms) ",
            );
            upsert.push_values(chunk, |mut b, r| {
                b.push_bind(r.saga_num)
                    .push_bind(i64::from(r.step))
                    .push_bind(r.state)
                    .push_bind(r.tx_hash.clone())
                    .push_bind(r.at_ms);
            });
            upsert.push(
                " ON CONFLICT (saga_num, step) DO UPDATE SET state = excluded.state, \
                 tx_hash = COALESCE(excluded.tx_hash, steps.tx_hash), updated_ms = excluded.updated_ms",
            );
        }
        let nonces: Vec<(u64, Address, i64)> =
            nonce_rows.iter().map(|((c, a), n)| (*c, *a, *n)).collect();
        for chunk in nonces.chunks(ROWS_PER_STATEMENT) {
            let upsert = writes.statement("INSERT INTO nonces (chain, signer, next_nonce) ");
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
        }
        let sagas: Vec<&SagaRow> = saga_rows.values().collect();
        for chunk in sagas.chunks(ROWS_PER_STATEMENT) {
            let upsert = writes.statement(
                "INSERT INTO sagas (id, num, state, outcome, last_seq, last_hash, created_ms, \
                 updated_ms, lease_owner, lease_until, fence) ",
            );
            upsert.push_values(chunk, |mut b, r| {
                b.push_bind(r.id.clone())
                    .push_bind(r.num)
                    .push_bind(r.state.unwrap_or("running"))
                    .push_bind(r.outcome.clone())
                    .push_bind(r.last_seq)
                    .push_bind(r.last_hash.clone())
                    .push_bind(r.at_ms)
                    .push_bind(r.at_ms)
                    .push_bind(r.lease.as_ref().map(|l| l.0.clone()))
                    .push_bind(r.lease.as_ref().map(|l| l.1))
                    .push_bind(i64::from(r.lease.is_some()));
            });
            // The lease columns are only set when the row is created (an admission); an existing
            // saga's lease changes through acquire and renew only.
            // `running` is only a new saga's state: an existing saga keeps the state it reached.
            upsert.push(
                " ON CONFLICT (id) DO UPDATE SET \
                 state = CASE WHEN excluded.state = 'running' THEN sagas.state ELSE excluded.state END, \
                 outcome = COALESCE(excluded.outcome, sagas.outcome), last_seq = excluded.last_seq, \
                 last_hash = excluded.last_hash, updated_ms = excluded.updated_ms",
            );
        }
        for mut query in writes.queries {
            query.build().persistent(false).execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok((out, tentative))
}

/// A saga's row as the writer reads it, or (id `None`) the highest number given so far.
type StoredRow = (
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

/// A saga's stored number, head and lease fence.
struct StoredSaga {
    num: i64,
    seq: i64,
    hash: String,
    fence: i64,
}
