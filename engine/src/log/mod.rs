//! The saga log: an append-only, hash-chained event log per saga, written with group commit.
//!
//! [`SagaLog::append`] hands the event to one writer task and returns once the event is durable.
//! The writer takes every append waiting at that moment (up to [`MAX_BATCH`]) into one database
//! transaction, so many sagas share one commit (one fsync) instead of paying one each. Each event
//! stores the hash of the saga's previous event and its own: `keccak256(prev ‖ saga ‖ seq ‖ time ‖
//! payload)`; [`SagaLog::verify`] recomputes the chain and names the first broken link, including a
//! truncated tail (the saga row remembers the last hash).
//!
//! - this file: [`SagaLog`], appends and admissions handed to the writer;
//! - `writer`: the writer task, its per-batch decision and the statements it writes;
//! - `reads`: events, inputs and the saga table; `leases`: saga leases with fencing tokens;
//!   `verify`: the hash chains checked; `idempotency`: the API's idempotency keys; `nonces`: the
//!   solver's nonces shared by the instances on one database; `events`: the settler events the
//!   EVM adapters keep; `webhooks`: the endpoints dApps register and the outbox the writer fills
//!   in the commit of each event they subscribed to;
//! - [`db`]: the database and its migrations; [`reserve`]: inventory reservations.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use alloy::primitives::{B256, U256, keccak256};
use baton_planner::Asset;
use tokio::sync::{mpsc, oneshot};

use crate::error::{EngineError, Result};
use crate::event::{SagaEvent, SagaId};
use db::Db;

pub mod db;
mod events;
mod idempotency;
mod leases;
mod nonces;
mod reads;
pub mod reserve;
mod verify;
mod webhooks;
mod writer;

pub use events::StoredEvents;
pub use idempotency::KeyUse;
pub use nonces::SharedNonces;
pub use reads::{Decided, SagaFilter, SagaSummary, Unfinished};
pub use verify::{BrokenLink, Verification};
pub use webhooks::{Attempt, Endpoint, Message, NewEndpoint, Next};

use writer::spawn_writer;

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

/// `n` as the databases' BIGINT (saturating: chain ids, block numbers and nonces never reach it).
pub(crate) fn db_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// An engine error as an adapter's, for the stores the adapters reach through (nonces, events).
pub(crate) fn to_adapter_error(
    what: &'static str,
) -> impl Fn(EngineError) -> baton_adapters::AdapterError {
    move |e| baton_adapters::AdapterError::chain(what, e)
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
    /// Its route as the metrics name it (`31337>31338`; empty: unknown), kept to filter and
    /// chart sagas by.
    pub route: String,
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
    /// The API key's name that submitted it, recorded in the same commit (unless one is).
    pub submitter: Option<String>,
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
    /// Whether this process takes nonces from the database ([`SharedNonces`]): then each commit
    /// that logs a transaction ends its nonce claim.
    nonce_claims: std::sync::atomic::AtomicBool,
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

    /// Makes each commit that logs a transaction end its nonce claim (a [`SharedNonces`] on this
    /// log's database hands nonces out).
    pub(crate) fn end_nonce_claims(&self) {
        self.stats
            .nonce_claims
            .store(true, std::sync::atomic::Ordering::Relaxed);
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

    /// The database's kind: `sqlite` or `postgres`.
    pub fn database_kind(&self) -> &'static str {
        self.db.kind()
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
}
