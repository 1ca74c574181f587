//! The saga log's writer: one task, on a thread of its own, that takes every waiting append into
//! one transaction — events, saga heads, steps, nonces, admissions and releases as multi-row
//! statements — commits once, then answers every caller.
//!
//! Each batch: read what the batch needs to decide (the stored heads and fences of the sagas it
//! touches that the writer does not know, the highest saga number, the unexpired reservations of
//! the assets its admissions need), decide ([`decide`]: pure), write ([`statements`]), commit.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use baton_planner::Asset;
use tokio::sync::mpsc;

use super::{Append, Appended, MAX_BATCH, Notice, Stats, hex};
use crate::error::{EngineError, Result};
use crate::event::SagaId;
use crate::log::db::Db;
use crate::now_ms;
use crate::with_pool;

mod decide;
mod statements;

use decide::{Head, Read, StoredSaga, decide, needed_reservations};
use statements::{ROWS_PER_STATEMENT, statements};

/// The SQLite log's checkpointer copies the WAL's new pages into the database after a commit, at
/// most once per this interval.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(25);

/// The writer's own automatic checkpoint, in WAL pages (16 MiB). Under a steady load the side
/// checkpoints of [`checkpoints`] never find the WAL copied whole between two commits, so it would
/// only grow; the writer's checkpoint at this size finds almost everything copied already, ends at
/// once, and lets SQLite start the WAL over. At SQLite's default (1,000 pages, no side
/// checkpoints) the writer itself copied a thousand pages every twenty commits or so, and every
/// saga waiting on that commit waited for the copy.
const WRITER_AUTOCHECKPOINT: &str = "4000";

/// Copies the WAL's committed pages into the database on a connection of its own, after commits
/// (`committed`), while the writer goes on: a `PASSIVE` checkpoint never blocks the writer, and
/// copies only the pages the last one did not (see [`WRITER_AUTOCHECKPOINT`] for how the WAL starts
/// over). Idle when nothing is committed; runs until the writer's runtime ends.
async fn checkpoints(pool: sqlx::SqlitePool, committed: Arc<tokio::sync::Notify>) {
    loop {
        committed.notified().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::warn!(error = %e, "checkpointing the saga log");
        }
        tokio::time::sleep(CHECKPOINT_EVERY).await;
    }
}

/// Starts the writer on a thread of its own, with its own runtime and connection: on the engine's
/// runtime, every statement's round trip would wait behind the sagas' tasks, and a commit that
/// waits holds every saga in it.
pub(super) fn spawn_writer(
    db: &Db,
    rx: mpsc::Receiver<Append>,
    stats: Arc<Stats>,
    notices: tokio::sync::broadcast::Sender<Notice>,
) {
    let shared = db.clone();
    // Told of each commit: what wakes the checkpointer (SQLite only).
    let committed = Arc::new(tokio::sync::Notify::new());
    let spawned = std::thread::Builder::new()
        .name("baton-log-writer".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    // Every append then fails with `WriterGone`: the engine stops, nothing is lost.
                    tracing::error!(error = %e, "the saga log's writer could not start");
                    return;
                }
            };
            runtime.block_on(async move {
                // One connection, opened on the writer's runtime (a PostgreSQL socket belongs to
                // the runtime that opened it), with the shared pool's options; the writer's only
                // connection needs no test before each batch.
                let db = match shared {
                    Db::Sqlite(pool) => {
                        let options = (*pool.connect_options()).clone();
                        // Checkpoints run beside the writer, on a connection of their own.
                        tokio::spawn(checkpoints(
                            sqlx::sqlite::SqlitePoolOptions::new()
                                .max_connections(1)
                                .connect_lazy_with(options.clone()),
                            committed.clone(),
                        ));
                        Db::Sqlite(
                            sqlx::sqlite::SqlitePoolOptions::new()
                                .max_connections(1)
                                .test_before_acquire(false)
                                .connect_lazy_with(
                                    options.pragma("wal_autocheckpoint", WRITER_AUTOCHECKPOINT),
                                ),
                        )
                    }
                    Db::Postgres(pool) => Db::Postgres(
                        sqlx::postgres::PgPoolOptions::new()
                            .max_connections(1)
                            .test_before_acquire(false)
                            .connect_lazy_with((*pool.connect_options()).clone()),
                    ),
                };
                write_loop(db, rx, stats, notices, committed).await;
            });
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "the saga log's writer thread could not start");
    }
}

/// The writer: takes every waiting append into one transaction, commits, then answers them all.
pub(super) async fn write_loop(
    db: Db,
    mut rx: mpsc::Receiver<Append>,
    stats: Arc<Stats>,
    notices: tokio::sync::broadcast::Sender<Notice>,
    committed: Arc<tokio::sync::Notify>,
) {
    // The heads of the sagas this writer has touched; only updated after a commit.
    let mut heads: HashMap<SagaId, Head> = HashMap::new();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let claims = stats.nonce_claims.load(Ordering::Relaxed);
        match write_batch(&db, &heads, &mut batch, claims).await {
            Ok((done, moved)) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                committed.notify_one();
                heads.extend(moved);
                for (append, appended) in batch.drain(..).zip(done) {
                    if let Ok(a) = &appended {
                        stats.events.fetch_add(1, Ordering::Relaxed);
                        // No subscriber is not an error.
                        let _ = notices.send(Notice {
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

/// A saga's row as the writer reads it, or (id `None`) the highest number given so far.
type StoredRow = (
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

/// The stored heads and fences the batch needs, and the highest number, from a query's rows.
fn stored_sagas(rows: Vec<StoredRow>, read: &mut Read) -> Result<()> {
    for row in rows {
        match row {
            (Some(id), Some(num), Some(seq), Some(hash), Some(fence)) => {
                read.stored.insert(
                    id,
                    StoredSaga {
                        num,
                        seq,
                        hash,
                        fence,
                    },
                );
            }
            (None, num, ..) => read.last_num = num.unwrap_or(0),
            (Some(id), ..) => {
                return Err(EngineError::Corrupt(format!("saga {id} lacks its number")));
            }
        }
    }
    Ok(())
}

/// The queries that read what `batch` needs (see [`Read`]), as SQL and the values they bind: the
/// stored sagas in chunks (the first also selecting the highest number), then the reservations.
fn reads(batch: &[Append], heads: &HashMap<SagaId, Head>) -> (Vec<Vec<String>>, Reservations) {
    let mut wanted: Vec<String> = batch
        .iter()
        .filter(|a| a.fence.is_some() || !heads.contains_key(&a.saga))
        .map(|a| hex(a.saga.0))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let chunks = wanted
        .chunks(ROWS_PER_STATEMENT)
        .map(<[String]>::to_vec)
        .collect();
    (chunks, needed_reservations(batch))
}

/// What the batch's admissions are checked against: the oldest admission's time, the assets and
/// their tokens.
type Reservations = Option<(i64, BTreeSet<Asset>, Vec<String>)>;

/// Writes `batch` in one transaction; returns each append's result and the heads it moved.
/// Writes `batch` in one transaction; with `claims`, ends the nonce claims of the transactions it
/// logs (see [`crate::SharedNonces`]).
async fn write_batch(
    db: &Db,
    heads: &HashMap<SagaId, Head>,
    batch: &mut [Append],
    claims: bool,
) -> Result<(Vec<Result<Appended>>, HashMap<SagaId, Head>)> {
    let (saga_chunks, reservations) = reads(batch, heads);
    let together = matches!(db, Db::Sqlite(_));
    // Only a saga this writer does not know can be admitted or numbered (one it wrote is admitted
    // already): with one, one instance at a time sharing the database decides.
    let admits = batch.iter().any(|a| !heads.contains_key(&a.saga));
    let decided = with_pool!(db, pool => {
        let mut read = Read::default();
        let mut tx = pool.begin_with(db.begin_write()).await?;
        if matches!(db, Db::Postgres(_)) && admits {
            sqlx::query("SELECT pg_advisory_xact_lock(7683)").execute(&mut *tx).await?;
        }
        for (k, chunk) in saga_chunks.iter().enumerate() {
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
            stored_sagas(select.build_query_as().fetch_all(&mut *tx).await?, &mut read)?;
        }
        if let Some((oldest, needed, tokens)) = &reservations {
            for chunk in tokens.chunks(ROWS_PER_STATEMENT) {
                let mut select = sqlx::QueryBuilder::new(
                    "SELECT saga_id, chain, token, amount, expires_ms FROM reservations \
                     WHERE expires_ms > ",
                );
                select.push_bind(*oldest).push(" AND token IN (");
                let mut each = select.separated(", ");
                for token in chunk {
                    each.push_bind(token.clone());
                }
                each.push_unseparated(")");
                read.ledger.hold_rows(select.build_query_as().fetch_all(&mut *tx).await?, needed)?;
            }
        }
        let mut decision = decide(batch, heads, read, now_ms)?;
        if !claims {
            // Nobody takes nonces from this database: there is no claim to end.
            decision.rows.signed.clear();
        }
        // Decided: whoever waits for that learns it now, while the batch is written.
        for (append, result) in batch.iter_mut().zip(&decision.results) {
            if let (Some(decided), Ok(appended)) = (append.decided.take(), result) {
                let _ = decided.send(*appended);
            }
        }
        for mut query in statements(&decision.rows, together) {
            query.build().persistent(false).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        decision
    });
    Ok((decided.results, decided.heads))
}
