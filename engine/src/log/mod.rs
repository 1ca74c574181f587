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
use std::sync::atomic::AtomicU64;

use alloy::primitives::{B256, U256, keccak256};
use baton_planner::Asset;
use tokio::sync::{mpsc, oneshot};

use crate::db::Db;
use crate::error::{EngineError, Result};
use crate::event::{SagaEvent, SagaId};
use crate::with_pool;

mod writer;

use writer::write_loop;

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

/// The saga's state column after `event`: `None` when the event does not change it (a new saga
/// starts `running`; then `compensating`, `decided`, `completed`, never back).
fn state_after(event: &SagaEvent) -> Option<&'static str> {
    match event {
        SagaEvent::Compensating { .. } => Some("compensating"),
        SagaEvent::Decided { .. } => Some("decided"),
        SagaEvent::Completed => Some("completed"),
        SagaEvent::Retried { .. } => Some("retried"),
        SagaEvent::Held { .. } => Some("held"),
        SagaEvent::Resumed { .. } => Some("resumed"),
        _ => None,
    }
}

struct Append {
    saga: SagaId,
    event: SagaEvent,
    /// The event as stored (JSON), serialized by the caller, off the writer's critical path.
    payload: String,
    admission: Option<Admission>,
    /// The lease fence the writer must still find on the saga, if any.
    fence: Option<i64>,
    /// Told where the event lands as soon as the writer has decided to write it, before the
    /// commit (dropped when it refuses it, or its batch fails first); see [`SagaLog::admit_early`].
    decided: Option<oneshot::Sender<Appended>>,
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
    /// The admitting instance takes the saga's lease (fence 1) until this time, in the same commit.
    pub lease: Option<(String, i64)>,
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

/// One row of the saga table.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SagaSummary {
    /// The saga.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: SagaId,
    /// Its stored state: `running`, `held`, `resumed`, `compensating`, `decided`,
    /// `retried` or `completed`.
    pub state: String,
    /// The latest outcome decided, if any.
    pub outcome: Option<crate::event::Outcome>,
    /// Admitted at, unix milliseconds.
    pub created_ms: i64,
    /// Last change, unix milliseconds.
    pub updated_ms: i64,
}

/// A saga's log grew: its event `seq` (of `kind`) is durable. The writer sends one after each
/// commit to every [`SagaLog::subscribe`]r; a subscriber that lags re-reads the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notice {
    /// The saga.
    pub saga: SagaId,
    /// The event's sequence number.
    pub seq: u64,
    /// The event's kind (`started`, `tx_signed`, …, as [`SagaEvent::kind`]).
    pub kind: &'static str,
}

/// An append on its way to the writer: resolves once it is durable (or refused).
pub type Pending = oneshot::Receiver<Result<Appended>>;

/// The saga log of one database. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct SagaLog {
    db: Db,
    writer: mpsc::Sender<Append>,
    stats: Arc<Stats>,
    notices: tokio::sync::broadcast::Sender<Notice>,
}

/// Counters of the writer.
#[derive(Debug, Default)]
pub struct Stats {
    /// Events appended.
    pub events: AtomicU64,
    /// Commits made (each durable; one per batch).
    pub commits: AtomicU64,
}

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
fn spawn_writer(
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

impl SagaLog {
    /// Starts the log's writer on `db`.
    pub fn new(db: Db) -> Self {
        let (writer, rx) = mpsc::channel(MAX_BATCH * 4);
        let stats = Arc::new(Stats::default());
        let notices = tokio::sync::broadcast::channel(4096).0;
        spawn_writer(&db, rx, stats.clone(), notices.clone());
        Self {
            db,
            writer,
            stats,
            notices,
        }
    }

    /// Every durable event from now on, as a [`Notice`].
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// Hands `event` to the writer (fenced when `fence` is given) without waiting for its commit;
    /// the returned [`Pending`] resolves once it is durable. Appends are written in the order they
    /// are handed over, so awaiting a later append of the same saga means every earlier one was
    /// written too (or refused: each still reports its own result). For events that record what
    /// was observed rather than decide an effect; a decision is appended and awaited.
    pub async fn send(
        &self,
        saga: SagaId,
        event: SagaEvent,
        fence: Option<i64>,
    ) -> Result<Pending> {
        self.hand_over(saga, event, None, fence, None).await
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
        self.write(saga, event, None, None).await
    }

    /// Appends `event` only if the saga's lease fence is still `fence` (nobody took the saga over
    /// since this driver acquired it); otherwise [`EngineError::LeaseLost`], writing nothing.
    pub async fn append_fenced(
        &self,
        saga: SagaId,
        event: SagaEvent,
        fence: i64,
    ) -> Result<Appended> {
        self.write(saga, event, None, Some(fence)).await
    }

    /// Takes the lease of `saga` for `owner` until `now_ms + ttl_ms`, if nobody else holds an
    /// unexpired one; returns the new fence (each acquisition increments it), or `None`.
    pub async fn acquire_lease(
        &self,
        saga: SagaId,
        owner: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Option<i64>> {
        let fence: Option<i64> = with_pool!(&self.db, pool => {
            sqlx::query_scalar(
                "UPDATE sagas SET lease_owner = $2, lease_until = $3, fence = fence + 1 \
                 WHERE id = $1 AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < $4) \
                 RETURNING fence",
            )
            .bind(hex(saga.0))
            .bind(owner)
            .bind(now_ms + ttl_ms)
            .bind(now_ms)
            .fetch_optional(pool)
            .await?
        });
        Ok(fence)
    }

    /// Extends `owner`'s lease of `saga` (with `fence`) to `now_ms + ttl_ms`; false when the lease
    /// is no longer theirs.
    pub async fn renew_lease(
        &self,
        saga: SagaId,
        owner: &str,
        fence: i64,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool> {
        let renewed = with_pool!(&self.db, pool => {
            sqlx::query(
                "UPDATE sagas SET lease_until = $4 WHERE id = $1 AND lease_owner = $2 AND fence = $3",
            )
            .bind(hex(saga.0))
            .bind(owner)
            .bind(fence)
            .bind(now_ms + ttl_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(renewed == 1)
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
        self.write(saga, first, Some(admission), None).await
    }

    /// [`SagaLog::admit`] in two stages: the first receiver answers once the writer has decided to
    /// admit the saga (its inventory is reserved in the commit being made) and is dropped if it
    /// refuses; the [`Pending`] resolves once the admission is durable, or with why it is not.
    ///
    /// Between the two, a driver may sign the saga's first transaction: it cannot be broadcast
    /// before its own append is durable, and the writer refuses any later event of a saga whose
    /// admission did not commit ([`EngineError::NotAdmitted`]), so nothing acts on an admission that
    /// is not stored. What this saves is one commit's wait per saga: the first transaction's
    /// append joins the commit right after the admission's instead of the one after that.
    pub async fn admit_early(
        &self,
        saga: SagaId,
        admission: Admission,
        first: SagaEvent,
    ) -> Result<(oneshot::Receiver<Appended>, Pending)> {
        let (decided, answer) = oneshot::channel();
        let pending = self
            .hand_over(saga, first, Some(admission), None, Some(decided))
            .await?;
        Ok((answer, pending))
    }

    async fn write(
        &self,
        saga: SagaId,
        event: SagaEvent,
        admission: Option<Admission>,
        fence: Option<i64>,
    ) -> Result<Appended> {
        let pending = self.hand_over(saga, event, admission, fence, None).await?;
        pending.await.map_err(|_| EngineError::WriterGone)?
    }

    async fn hand_over(
        &self,
        saga: SagaId,
        event: SagaEvent,
        admission: Option<Admission>,
        fence: Option<i64>,
        decided: Option<oneshot::Sender<Appended>>,
    ) -> Result<Pending> {
        let (reply, answer) = oneshot::channel();
        let payload =
            serde_json::to_string(&event).map_err(|e| EngineError::Corrupt(e.to_string()))?;
        self.writer
            .send(Append {
                saga,
                event,
                payload,
                admission,
                fence,
                decided,
                reply,
            })
            .await
            .map_err(|_| EngineError::WriterGone)?;
        Ok(answer)
    }

    /// The stored columns of `saga`'s events, in order: seq, payload, prev hash, hash, time.
    async fn rows(&self, saga: SagaId) -> Result<Vec<(i64, String, String, String, i64)>> {
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
        type Inputs = Vec<(String, String, i64)>;
        type Events = Vec<(String, i64, String)>;
        let (inputs, events): (Inputs, Events) = with_pool!(&self.db, pool => {
            let inputs = sqlx::query_as(
                "SELECT s.id, i.body, s.created_ms FROM sagas s JOIN intents i ON i.saga_num = s.num \
                 WHERE s.state <> 'completed' \
                 AND (s.lease_owner IS NULL OR s.lease_owner = $1 OR s.lease_until < $2) \
                 ORDER BY s.created_ms, s.id",
            )
            .bind(owner)
            .bind(now_ms)
            .fetch_all(pool)
            .await?;
            let events = sqlx::query_as(
                "SELECT s.id, e.seq, e.payload FROM saga_events e \
                 JOIN sagas s ON s.num = e.saga_num WHERE s.state <> 'completed' \
                 AND (s.lease_owner IS NULL OR s.lease_owner = $1 OR s.lease_until < $2) \
                 ORDER BY e.saga_num, e.seq",
            )
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
            _ => Ok(None),
        }
    }
}
