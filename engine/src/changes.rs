//! Coordinated changes: what shapes execution (chains, settlers, tokens and pools, fees, knobs,
//! the attester set) as versioned, content-addressed bundles in the saga log's database, each with
//! a lifecycle, and the hash-chained record of every transition with who made it.
//!
//! A version's id is the keccak-256 of its body in canonical JSON ([`canonical`]: object keys
//! sorted, no spaces), so the same bundle proposed twice, by anyone on any instance, is one
//! version. Its states:
//!
//! ```text
//! proposed → validated → approved → scheduled → active → superseded | rolled_back
//!     └──────────┴───────────┴───────────┴──→ rejected
//! superseded | rolled_back → proposed   (the same bundle proposed again: how a rollback starts)
//! ```
//!
//! Only one version is active: activating one supersedes the one active before, or rolls it back
//! when the newly active one is older (a lower number). Every transition is idempotent — asking
//! for the state a version is already in changes and records nothing — and is recorded in the
//! same transaction as the state it sets, so instances racing on one transition record it once.
//!
//! This module keeps the versions and their record; what a bundle holds, how it is validated,
//! approved and activated are built on it.

use alloy::primitives::{Address, B256, Signature, keccak256};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{EngineError, Result};
use crate::log::db::Db;
use crate::with_pool;

/// Where a version is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Proposed; not checked yet.
    Proposed,
    /// Checked: it parses, its chains and contracts are what it says, its shadow run passed.
    Validated,
    /// Approved by a quorum of operators.
    Approved,
    /// Set to activate at a time.
    Scheduled,
    /// What new intents run under.
    Active,
    /// Was active; a newer version took over.
    Superseded,
    /// Was active; an older version was activated again in its place.
    RolledBack,
    /// Refused (by validation or an operator) before it was active.
    Rejected,
}

impl State {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proposed => "proposed",
            Self::Validated => "validated",
            Self::Approved => "approved",
            Self::Scheduled => "scheduled",
            Self::Active => "active",
            Self::Superseded => "superseded",
            Self::RolledBack => "rolled_back",
            Self::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        serde_json::from_value(Value::from(s))
            .map_err(|_| EngineError::Corrupt(format!("config version state {s:?}")))
    }

    /// Whether a version in this state may move to `to`.
    pub fn may_become(self, to: State) -> bool {
        use State::*;
        matches!(
            (self, to),
            (Proposed, Validated)
                | (Validated, Approved)
                | (Approved, Scheduled)
                | (Scheduled, Active)
                | (Proposed | Validated | Approved | Scheduled, Rejected)
                | (Active, Superseded | RolledBack)
                | (Superseded | RolledBack, Proposed)
        )
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// keccak-256 of `body`.
    pub id: B256,
    /// 1, 2, … in the order versions were first proposed.
    pub number: u64,
    /// The version it changes (none for the first).
    pub parent: Option<B256>,
    /// The bundle, canonical JSON.
    pub body: String,
    /// Where it is.
    pub state: State,
    /// Who first proposed it.
    pub proposed_by: String,
    /// First proposed at, unix milliseconds.
    pub created_ms: i64,
    /// Its state set at, unix milliseconds.
    pub updated_ms: i64,
    /// When scheduled at a time: active from then, unix milliseconds.
    pub activate_at_ms: Option<i64>,
    /// When scheduled at a block: active once this chain's head reaches this block.
    pub activate_at_block: Option<(u64, u64)>,
}

/// One recorded transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// Its place in the record: 1, 2, …
    pub seq: u64,
    /// The version.
    pub version: B256,
    /// The state it left (none: it was proposed).
    pub from: Option<State>,
    /// The state it entered.
    pub to: State,
    /// Who made it (an operator key's name, or an instance's).
    pub by: String,
    /// Why, or what with.
    pub detail: String,
    /// When, unix milliseconds.
    pub at_ms: i64,
    /// The previous record's hash (zero for the first).
    #[serde(skip)]
    pub prev: B256,
    /// This record's hash: keccak-256 of the previous one's and of this one's canonical JSON.
    #[serde(skip)]
    pub hash: B256,
}

impl Transition {
    /// The hash that follows `prev` for this record's content.
    fn chained(&self, prev: B256) -> B256 {
        let content = serde_json::to_value(self).unwrap_or(Value::Null);
        let mut pre = prev.to_vec();
        pre.extend_from_slice(canonical(&content).as_bytes());
        keccak256(pre)
    }
}

/// `value` as canonical JSON: object keys in byte order at every depth, no insignificant
/// whitespace; what a version's id is the hash of.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// A proposal's result: the version, and whether this call created it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposed {
    /// The version (new, or the one with the same bundle).
    pub version: Version,
    /// Whether it is new.
    pub new: bool,
}

/// One transition asked for: to which state, by whom, why, when (and, when scheduling, from when
/// the version is active).
#[derive(Clone, Copy)]
struct Move<'a> {
    to: State,
    by: &'a str,
    detail: &'a str,
    now_ms: i64,
    activate_at_ms: Option<i64>,
    activate_at_block: Option<(i64, i64)>,
}

/// The versions and their record, in `db`.
#[derive(Clone, Debug)]
pub struct Changes {
    db: Db,
}

type VersionRow = (
    String,
    i64,
    Option<String>,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);
type TransitionRow = (
    i64,
    String,
    Option<String>,
    String,
    String,
    String,
    i64,
    String,
    String,
);

/// `SELECT` of a version's columns, then `$rest`.
macro_rules! select_versions {
    ($rest:literal) => {
        concat!(
            "SELECT id, number, parent, body, state, proposed_by, created_ms, updated_ms, \
             activate_at_ms, activate_chain, activate_block FROM config_versions ",
            $rest
        )
    };
}

/// How often a transaction that lost a race (another instance wrote the same record's place) is
/// tried again.
const TRIES: usize = 5;

/// Inserts `record` (a [`Transition`]) in transaction `tx`.
macro_rules! insert_record {
    ($tx:expr, $record:expr) => {{
        let record: &Transition = $record;
        sqlx::query(
            "INSERT INTO config_transitions (seq, version, from_state, to_state, by_name, \
             detail, at_ms, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(db_number(record.seq)?)
        .bind(record.version.to_string())
        .bind(record.from.map(|s| s.as_str()))
        .bind(record.to.as_str())
        .bind(record.by.as_str())
        .bind(record.detail.as_str())
        .bind(record.at_ms)
        .bind(record.prev.to_string())
        .bind(record.hash.to_string())
        .execute(&mut *$tx)
        .await?;
    }};
}

impl Changes {
    /// The versions kept in `db` (migrated).
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Proposes `bundle` by `by`, changing `parent`. The same bundle proposed again is the same
    /// version: still in its lifecycle, it is answered as it stands; superseded or rolled back,
    /// it is proposed again (how a rollback starts).
    pub async fn propose(
        &self,
        bundle: &Value,
        parent: Option<B256>,
        by: &str,
        now_ms: i64,
    ) -> Result<Proposed> {
        if let Some(parent) = parent
            && self.version(parent).await?.is_none()
        {
            return Err(EngineError::Invalid(format!(
                "the parent version {parent} does not exist"
            )));
        }
        let body = canonical(bundle);
        let id = keccak256(body.as_bytes());
        let mut last = None;
        for _ in 0..TRIES {
            match self.try_propose(id, &body, parent, by, now_ms).await {
                Ok(Some(new)) => {
                    return Ok(Proposed {
                        version: new,
                        new: true,
                    });
                }
                Ok(None) => {
                    let version = self.version(id).await?.ok_or_else(|| {
                        EngineError::Corrupt(format!("config version {id} vanished"))
                    })?;
                    let version = if matches!(version.state, State::Superseded | State::RolledBack)
                    {
                        self.transition(id, State::Proposed, by, "proposed again", now_ms)
                            .await?
                    } else {
                        version
                    };
                    return Ok(Proposed {
                        version,
                        new: false,
                    });
                }
                Err(e) => {
                    last = Some(e);
                    lost_a_race().await;
                }
            }
        }
        Err(last.unwrap_or_else(|| EngineError::Conflict("proposal raced".into())))
    }

    /// Inserts version `id` with its first transition in one transaction; `None` when it exists.
    async fn try_propose(
        &self,
        id: B256,
        body: &str,
        parent: Option<B256>,
        by: &str,
        now_ms: i64,
    ) -> Result<Option<Version>> {
        let begin = self.db.begin_write();
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin_with(begin).await?;
            let inserted = sqlx::query(
                "INSERT INTO config_versions (id, number, parent, body, state, proposed_by, \
                 created_ms, updated_ms) SELECT $1, COALESCE(MAX(number), 0) + 1, $2, $3, $4, $5, \
                 $6, $6 FROM config_versions WHERE true ON CONFLICT (id) DO NOTHING",
            )
            .bind(id.to_string())
            .bind(parent.map(|p| p.to_string()))
            .bind(body)
            .bind(State::Proposed.as_str())
            .bind(by)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                return Ok(None);
            }
            let last: Option<(i64, String)> = sqlx::query_as(
                "SELECT seq, hash FROM config_transitions ORDER BY seq DESC LIMIT 1",
            )
            .fetch_optional(&mut *tx)
            .await?;
            let record = next_record(last, id, None, State::Proposed, by, "proposed", now_ms)?;
            insert_record!(tx, &record);
            let row: VersionRow = sqlx::query_as(select_versions!("WHERE id = $1"))
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(version_of(row)?))
        })
    }

    /// Moves version `id` to `to`, by `by`, for `detail`; answers the version as it then stands.
    /// Already in `to`: nothing changes and nothing is recorded. Activating a version supersedes
    /// the one active before (or rolls it back, when the new one is older), recorded in the same
    /// transaction. A move its state does not allow is [`EngineError::Conflict`]; an unknown
    /// version [`EngineError::UnknownVersion`].
    pub async fn transition(
        &self,
        id: B256,
        to: State,
        by: &str,
        detail: &str,
        now_ms: i64,
    ) -> Result<Version> {
        self.apply(
            id,
            &Move {
                to,
                by,
                detail,
                now_ms,
                activate_at_ms: None,
                activate_at_block: None,
            },
        )
        .await
    }

    /// [`Self::transition`] as `step` says.
    async fn apply(&self, id: B256, step: &Move<'_>) -> Result<Version> {
        let Move { to, .. } = *step;
        let mut last = None;
        for _ in 0..TRIES {
            let version = self
                .version(id)
                .await?
                .ok_or(EngineError::UnknownVersion(id))?;
            if version.state == to {
                return Ok(version);
            }
            if !version.state.may_become(to) {
                return Err(EngineError::Conflict(format!(
                    "config version {} is {}; it cannot become {to}",
                    version.number, version.state
                )));
            }
            match self.try_transition(&version, step, false).await {
                Ok(true) => {
                    return self
                        .version(id)
                        .await?
                        .ok_or(EngineError::UnknownVersion(id));
                }
                // Its state changed meanwhile: look again.
                Ok(false) => {}
                Err(e) => {
                    last = Some(e);
                    lost_a_race().await;
                }
            }
        }
        Err(last
            .unwrap_or_else(|| EngineError::Conflict(format!("config version {id} kept changing"))))
    }

    /// Sets `version`'s state to `to` if it is still what it was read as, with its record (and
    /// the previously active version's, on activation); false when another writer was first, or
    /// when `first` asks for an activation only while no version is active and one is.
    async fn try_transition(
        &self,
        version: &Version,
        step: &Move<'_>,
        first: bool,
    ) -> Result<bool> {
        let Move {
            to,
            by,
            detail,
            now_ms,
            activate_at_ms,
            activate_at_block,
        } = *step;
        let begin = self.db.begin_write();
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin_with(begin).await?;
            let mut last: Option<(i64, String)> = sqlx::query_as(
                "SELECT seq, hash FROM config_transitions ORDER BY seq DESC LIMIT 1",
            )
            .fetch_optional(&mut *tx)
            .await?;
            if to == State::Active {
                let active: Option<(String, i64)> = sqlx::query_as(
                    "SELECT id, number FROM config_versions WHERE state = 'active'",
                )
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((old, number)) = active {
                    if first {
                        return Ok(false);
                    }
                    let old_id = parse_id(&old)?;
                    let (ended, why) = if number > db_number(version.number)? {
                        (State::RolledBack, "rolled back to")
                    } else {
                        (State::Superseded, "superseded by")
                    };
                    sqlx::query(
                        "UPDATE config_versions SET state = $1, updated_ms = $2 WHERE id = $3",
                    )
                    .bind(ended.as_str())
                    .bind(now_ms)
                    .bind(&old)
                    .execute(&mut *tx)
                    .await?;
                    let detail = format!("{why} version {}", version.number);
                    let record = next_record(
                        last, old_id, Some(State::Active), ended, by, &detail, now_ms,
                    )?;
                    insert_record!(tx, &record);
                    last = Some((db_number(record.seq)?, record.hash.to_string()));
                }
            }
            let moved = sqlx::query(
                "UPDATE config_versions SET state = $1, updated_ms = $2, \
                 activate_at_ms = COALESCE($5, activate_at_ms), \
                 activate_chain = COALESCE($6, activate_chain), \
                 activate_block = COALESCE($7, activate_block) WHERE id = $3 AND state = $4",
            )
            .bind(to.as_str())
            .bind(now_ms)
            .bind(version.id.to_string())
            .bind(version.state.as_str())
            .bind(activate_at_ms)
            .bind(activate_at_block.map(|b| b.0))
            .bind(activate_at_block.map(|b| b.1))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved == 0 {
                return Ok(false);
            }
            let record =
                next_record(last, version.id, Some(version.state), to, by, detail, now_ms)?;
            insert_record!(tx, &record);
            tx.commit().await?;
            Ok(true)
        })
    }

    /// The configuration a deployment starts with: when no version is active yet (the first
    /// instance of a fresh deployment), `bundle` — its config file's — goes through the lifecycle
    /// by `by` and is activated. Answers the active version and whether it is `bundle`'s. An
    /// instance that finds a version active leaves it so, whatever its file says; instances
    /// starting at once on a fresh database with different files activate one version, and the
    /// others' are rejected.
    pub async fn bootstrap(
        &self,
        bundle: &Value,
        by: &str,
        now_ms: i64,
    ) -> Result<(Version, bool)> {
        let ours = keccak256(canonical(bundle).as_bytes());
        if let Some(active) = self.active().await? {
            return Ok((active.clone(), active.id == ours));
        }
        let detail = "the deployment's first configuration, from its config file";
        self.propose(bundle, None, by, now_ms).await?;
        let mut last = None;
        'again: for _ in 0..TRIES {
            if let Some(active) = self.active().await? {
                if active.id != ours {
                    let why = format!("version {} became active first", active.number);
                    let _ = self
                        .transition(ours, State::Rejected, by, &why, now_ms)
                        .await;
                }
                return Ok((active.clone(), active.id == ours));
            }
            // Another instance with the same file may be a step ahead: take the steps left.
            let mut version = self
                .version(ours)
                .await?
                .ok_or(EngineError::UnknownVersion(ours))?;
            let path = [
                State::Proposed,
                State::Validated,
                State::Approved,
                State::Scheduled,
            ];
            let Some(at) = path.iter().position(|s| *s == version.state) else {
                continue 'again;
            };
            for &to in &path[at + 1..] {
                match self.transition(ours, to, by, detail, now_ms).await {
                    Ok(moved) => version = moved,
                    Err(EngineError::Conflict(_)) => continue 'again,
                    Err(e) => return Err(e),
                }
            }
            let step = Move {
                to: State::Active,
                by,
                detail,
                now_ms,
                activate_at_ms: None,
                activate_at_block: None,
            };
            match self.try_transition(&version, &step, true).await {
                Ok(true) => {
                    let active = self
                        .version(ours)
                        .await?
                        .ok_or(EngineError::UnknownVersion(ours))?;
                    return Ok((active, true));
                }
                // Another instance activated a version first: look again.
                Ok(false) => {}
                // Most likely another instance took the record's next place first.
                Err(e) => {
                    last = Some(e);
                    lost_a_race().await;
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            EngineError::Conflict("the first configuration version kept changing".into())
        }))
    }

    /// Version `id`, if there is one.
    pub async fn version(&self, id: B256) -> Result<Option<Version>> {
        let row: Option<VersionRow> = with_pool!(&self.db, pool => {
            sqlx::query_as(select_versions!("WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(pool)
            .await?
        });
        row.map(version_of).transpose()
    }

    /// Every version, by number.
    pub async fn versions(&self) -> Result<Vec<Version>> {
        let rows: Vec<VersionRow> = with_pool!(&self.db, pool => {
            sqlx::query_as(select_versions!("ORDER BY number"))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(version_of).collect()
    }

    /// The active version's id, if any (without its bundle: what intake asks each time).
    pub async fn active_id(&self) -> Result<Option<B256>> {
        let row: Option<(String,)> = with_pool!(&self.db, pool => {
            sqlx::query_as("SELECT id FROM config_versions WHERE state = 'active'")
                .fetch_optional(pool)
                .await?
        });
        row.map(|(id,)| parse_id(&id)).transpose()
    }

    /// The active version, if any.
    pub async fn active(&self) -> Result<Option<Version>> {
        let row: Option<VersionRow> = with_pool!(&self.db, pool => {
            sqlx::query_as(select_versions!("WHERE state = 'active'"))
            .fetch_optional(pool)
            .await?
        });
        row.map(version_of).transpose()
    }

    /// The recorded transitions, in order: every one, or version `id`'s.
    pub async fn history(&self, id: Option<B256>) -> Result<Vec<Transition>> {
        let rows: Vec<TransitionRow> = with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT seq, version, from_state, to_state, by_name, detail, at_ms, prev_hash, hash \
                 FROM config_transitions WHERE (CAST($1 AS TEXT) IS NULL OR version = $1) \
                 ORDER BY seq",
            )
            .bind(id.map(|i| i.to_string()))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(transition_of).collect()
    }

    /// Checks the record's hash chain: the seq of the first record that does not follow from the
    /// one before (altered, or one missing before it), if any.
    pub async fn verify(&self) -> Result<Option<u64>> {
        let mut prev = B256::ZERO;
        for (expected, record) in (1u64..).zip(self.history(None).await?) {
            if record.seq != expected || record.prev != prev || record.chained(prev) != record.hash
            {
                return Ok(Some(expected));
            }
            prev = record.hash;
        }
        Ok(None)
    }
}

/// The text an approver signs (EIP-191 `personal_sign`) to approve version `id`: readable in a
/// wallet, and naming what it approves.
pub fn approval_message(id: B256) -> String {
    format!("baton: approve configuration version {id}")
}

/// One approval of a version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Approval {
    /// The approver key's address.
    pub approver: Address,
    /// Its signature over [`approval_message`], 0x-hex.
    pub signature: String,
    /// The API key that sent it.
    pub by: String,
    /// When, unix milliseconds.
    pub at_ms: i64,
}

/// What an instance declares: the bundle it runs and the version it has staged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// Its name (`engine.instance`).
    pub name: String,
    /// The id of the bundle it runs (a version's, or a bundle that is no version).
    pub running: B256,
    /// A version it has pulled and will switch to when it activates.
    pub staged: Option<B256>,
    /// When it started, unix milliseconds.
    pub started_ms: i64,
    /// When it last declared, unix milliseconds.
    pub seen_ms: i64,
    /// How often it pulls the versions and declares itself, milliseconds.
    pub pull_every_ms: i64,
}

/// A version's shadow run (see migration 0012): who runs or ran it, what it found, and an
/// operator's override of its regressions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shadow {
    /// The instance that runs (or ran) it.
    pub by_instance: String,
    /// Started at, unix milliseconds.
    pub started_ms: i64,
    /// Finished at (none: running).
    pub finished_ms: Option<i64>,
    /// Sagas re-run.
    pub sagas: u64,
    /// Sagas that ended worse under the version than they did.
    pub regressions: u64,
    /// What it found, JSON.
    pub report: Option<String>,
    /// Who overrode the regressions, why, and when.
    pub overridden: Option<(String, String, i64)>,
}

impl Changes {
    /// Claims version `id`'s shadow run for `instance`: answers whether it is this instance's to
    /// run — no run was claimed since `since_ms` (the version's proposal), or the one claimed
    /// then was left unfinished since before `stale_ms`.
    pub async fn claim_shadow(
        &self,
        id: B256,
        instance: &str,
        since_ms: i64,
        stale_ms: i64,
        now_ms: i64,
    ) -> Result<bool> {
        let done = with_pool!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO config_shadows (version, by_instance, started_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (version) DO UPDATE SET by_instance = excluded.by_instance, \
                 started_ms = excluded.started_ms, finished_ms = NULL, sagas = 0, \
                 regressions = 0, report = NULL, override_by = NULL, override_reason = NULL, \
                 override_ms = NULL \
                 WHERE (config_shadows.started_ms < $4 AND config_shadows.finished_ms IS NOT NULL) \
                 OR (config_shadows.finished_ms IS NULL AND config_shadows.started_ms < $5)",
            )
            .bind(id.to_string())
            .bind(instance)
            .bind(now_ms)
            .bind(since_ms)
            .bind(stale_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Records what version `id`'s shadow run found.
    pub async fn finish_shadow(
        &self,
        id: B256,
        sagas: u64,
        regressions: u64,
        report: &str,
        now_ms: i64,
    ) -> Result<()> {
        with_pool!(&self.db, pool => {
            sqlx::query(
                "UPDATE config_shadows SET finished_ms = $1, sagas = $2, regressions = $3, \
                 report = $4 WHERE version = $5",
            )
            .bind(now_ms)
            .bind(i64::try_from(sagas).unwrap_or(i64::MAX))
            .bind(i64::try_from(regressions).unwrap_or(i64::MAX))
            .bind(report)
            .bind(id.to_string())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Version `id`'s shadow run, if one was claimed.
    pub async fn shadow(&self, id: B256) -> Result<Option<Shadow>> {
        type Row = (
            String,
            i64,
            Option<i64>,
            i64,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
        );
        let row: Option<Row> = with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT by_instance, started_ms, finished_ms, sagas, regressions, report, \
                 override_by, override_reason, override_ms FROM config_shadows WHERE version = $1",
            )
            .bind(id.to_string())
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(
            |(by_instance, started_ms, finished_ms, sagas, regressions, report, by, why, at)| {
                Shadow {
                    by_instance,
                    started_ms,
                    finished_ms,
                    sagas: u64::try_from(sagas).unwrap_or_default(),
                    regressions: u64::try_from(regressions).unwrap_or_default(),
                    report,
                    overridden: match (by, why, at) {
                        (Some(by), Some(why), Some(at)) => Some((by, why, at)),
                        _ => None,
                    },
                }
            },
        ))
    }

    /// Overrides the regressions version `id`'s shadow run found, on behalf of `by`, for `reason`:
    /// the version may then be approved.
    pub async fn override_shadow(
        &self,
        id: B256,
        by: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<Shadow> {
        let done = with_pool!(&self.db, pool => {
            sqlx::query(
                "UPDATE config_shadows SET override_by = $1, override_reason = $2, \
                 override_ms = $3 WHERE version = $4 AND finished_ms IS NOT NULL \
                 AND regressions > 0",
            )
            .bind(by)
            .bind(reason)
            .bind(now_ms)
            .bind(id.to_string())
            .execute(pool)
            .await?
            .rows_affected()
        });
        if done == 0 {
            return Err(EngineError::Conflict(
                "no shadow run of this version found a regression to override".into(),
            ));
        }
        self.shadow(id)
            .await?
            .ok_or(EngineError::UnknownVersion(id))
    }

    /// Why version `id` may not be approved yet for its shadow run (none: it may): the run found
    /// regressions no operator overrode.
    pub async fn shadow_blocks(&self, id: B256) -> Result<Option<String>> {
        Ok(self.shadow(id).await?.and_then(|s| {
            (s.regressions > 0 && s.overridden.is_none()).then(|| {
                format!(
                    "its shadow run found {} of {} sagas ending worse under it: override with a \
                     reason to approve it anyway",
                    s.regressions, s.sagas
                )
            })
        }))
    }

    /// Versions in `state`, by number.
    pub async fn in_state(&self, state: State) -> Result<Vec<Version>> {
        let rows: Vec<VersionRow> = with_pool!(&self.db, pool => {
            sqlx::query_as(select_versions!("WHERE state = $1 ORDER BY number"))
            .bind(state.as_str())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(version_of).collect()
    }

    /// Records `signature`'s approval of version `id` (validated, or approved already), sent by
    /// API key `by`; the version is approved once `quorum` of `approvers` (the set the active
    /// version names) have approved it. The signature must recover, over
    /// [`approval_message`], to one of `approvers` ([`EngineError::NotAnApprover`]); the same
    /// approver approving twice counts once. Answers the version and its approvals.
    pub async fn approve(
        &self,
        id: B256,
        signature: &Signature,
        approvers: &[Address],
        quorum: usize,
        by: &str,
        now_ms: i64,
    ) -> Result<(Version, Vec<Approval>)> {
        let version = self
            .version(id)
            .await?
            .ok_or(EngineError::UnknownVersion(id))?;
        if !matches!(version.state, State::Validated | State::Approved) {
            return Err(EngineError::Conflict(format!(
                "config version {} is {}; only a validated version is approved",
                version.number, version.state
            )));
        }
        let signer = signature
            .recover_address_from_msg(approval_message(id).as_bytes())
            .map_err(|_| EngineError::NotAnApprover("the signature does not recover".into()))?;
        if !approvers.contains(&signer) {
            return Err(EngineError::NotAnApprover(format!(
                "the signature recovers to {signer}, which is not one of the active version's \
                 approvers (a signature over \"{}\" by one of them is needed)",
                approval_message(id)
            )));
        }
        with_pool!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO config_approvals (version, approver, signature, by_name, at_ms) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (version, approver) DO NOTHING",
            )
            .bind(id.to_string())
            .bind(signer.to_checksum(None))
            .bind(signature.to_string())
            .bind(by)
            .bind(now_ms)
            .execute(pool)
            .await?;
        });
        let approvals = self.approvals(id).await?;
        let counted: Vec<String> = approvals
            .iter()
            .filter(|a| approvers.contains(&a.approver))
            .map(|a| a.approver.to_checksum(None))
            .collect();
        let version = if counted.len() >= quorum.max(1) && version.state == State::Validated {
            let detail = format!(
                "approved by {} of {} (quorum {quorum}): {}",
                counted.len(),
                approvers.len(),
                counted.join(", ")
            );
            self.transition(id, State::Approved, by, &detail, now_ms)
                .await?
        } else {
            version
        };
        Ok((version, approvals))
    }

    /// The approvals of version `id`, in the order they came.
    pub async fn approvals(&self, id: B256) -> Result<Vec<Approval>> {
        let rows: Vec<(String, String, String, i64)> = with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT approver, signature, by_name, at_ms FROM config_approvals \
                 WHERE version = $1 ORDER BY at_ms, approver",
            )
            .bind(id.to_string())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(approver, signature, by, at_ms)| {
                Ok(Approval {
                    approver: approver.parse().map_err(|_| {
                        EngineError::Corrupt(format!("approver address {approver:?}"))
                    })?,
                    signature,
                    by,
                    at_ms,
                })
            })
            .collect()
    }

    /// Schedules approved version `id` to activate at `at_ms` (now, when that has passed).
    pub async fn schedule(&self, id: B256, at_ms: i64, by: &str, now_ms: i64) -> Result<Version> {
        let at_ms = at_ms.max(now_ms);
        let detail = format!("activates at {at_ms} (unix ms)");
        self.scheduled(id, by, &detail, now_ms, (Some(at_ms), None))
            .await
    }

    /// Moves approved version `id` to scheduled, activating at `at` (a time, or a chain's block).
    async fn scheduled(
        &self,
        id: B256,
        by: &str,
        detail: &str,
        now_ms: i64,
        (activate_at_ms, activate_at_block): (Option<i64>, Option<(i64, i64)>),
    ) -> Result<Version> {
        let to = State::Scheduled;
        let step = Move {
            to,
            by,
            detail,
            now_ms,
            activate_at_ms,
            activate_at_block,
        };
        self.apply(id, &step).await
    }

    /// Schedules approved version `id` to activate once chain `chain`'s head reaches `block`.
    pub async fn schedule_at_block(
        &self,
        id: B256,
        (chain, block): (u64, u64),
        by: &str,
        now_ms: i64,
    ) -> Result<Version> {
        let detail = format!("activates at block {block} of chain {chain}");
        let at_block = (db_number(chain)?, db_number(block)?);
        self.scheduled(id, by, &detail, now_ms, (None, Some(at_block)))
            .await
    }

    /// Activates the scheduled versions whose time has come (or whose chain's head, in `heads` by
    /// chain id, reached their block), in the order of their times (the last one stays active),
    /// and answers them. Instances racing here activate each once (and
    /// each answers the versions it found due).
    pub async fn activate_due(
        &self,
        by: &str,
        now_ms: i64,
        heads: &std::collections::HashMap<u64, u64>,
    ) -> Result<Vec<Version>> {
        let rows: Vec<VersionRow> = with_pool!(&self.db, pool => {
            sqlx::query_as(select_versions!(
                "WHERE state = 'scheduled' AND (activate_at_ms <= $1 OR activate_block IS NOT NULL) \
                 ORDER BY activate_at_ms, number"
            ))
            .bind(now_ms)
            .fetch_all(pool)
            .await?
        });
        let mut activated = Vec::new();
        for row in rows {
            let due = version_of(row)?;
            if let Some((chain, block)) = due.activate_at_block
                && heads.get(&chain).is_none_or(|head| *head < block)
            {
                continue;
            }
            match self
                .transition(
                    due.id,
                    State::Active,
                    by,
                    "its activation time came",
                    now_ms,
                )
                .await
            {
                Ok(v) => activated.push(v),
                // An operator rejected it meanwhile, or a later one superseded it.
                Err(EngineError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(activated)
    }

    /// Proposes a rollback of the active version: `to` (a version active before), or the
    /// version the active one changed, recorded with `why` (when not empty). The rollback then
    /// takes the lifecycle like any change.
    pub async fn rollback(
        &self,
        to: Option<B256>,
        by: &str,
        why: &str,
        now_ms: i64,
    ) -> Result<Version> {
        let active = self
            .active()
            .await?
            .ok_or_else(|| EngineError::Conflict("no configuration version is active".into()))?;
        let target = to.or(active.parent).ok_or_else(|| {
            EngineError::Conflict(format!(
                "version {} changed no version: name the version to roll back to",
                active.number
            ))
        })?;
        let version = self
            .version(target)
            .await?
            .ok_or(EngineError::UnknownVersion(target))?;
        if !matches!(version.state, State::Superseded | State::RolledBack) {
            return Err(EngineError::Conflict(format!(
                "version {} is {}: only a version that was active is rolled back to",
                version.number, version.state
            )));
        }
        let mut detail = format!("rollback from version {}", active.number);
        if !why.is_empty() {
            detail = format!("{detail}: {why}");
        }
        self.transition(target, State::Proposed, by, &detail, now_ms)
            .await
    }

    /// Records what `instance` declares (replacing its previous declaration).
    pub async fn declare(&self, instance: &Instance) -> Result<()> {
        with_pool!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO config_instances (instance, running, staged, started_ms, seen_ms, \
                 pull_every_ms) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (instance) DO UPDATE \
                 SET running = excluded.running, staged = excluded.staged, \
                 started_ms = excluded.started_ms, seen_ms = excluded.seen_ms, \
                 pull_every_ms = excluded.pull_every_ms",
            )
            .bind(&instance.name)
            .bind(instance.running.to_string())
            .bind(instance.staged.map(|s| s.to_string()))
            .bind(instance.started_ms)
            .bind(instance.seen_ms)
            .bind(instance.pull_every_ms)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Every instance's last declaration, by name.
    pub async fn instances(&self) -> Result<Vec<Instance>> {
        type Row = (String, String, Option<String>, i64, i64, i64);
        let rows: Vec<Row> = with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT instance, running, staged, started_ms, seen_ms, pull_every_ms \
                 FROM config_instances ORDER BY instance",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(
                |(name, running, staged, started_ms, seen_ms, pull_every_ms)| {
                    Ok(Instance {
                        name,
                        running: parse_id(&running)?,
                        staged: staged.as_deref().map(parse_id).transpose()?,
                        started_ms,
                        seen_ms,
                        pull_every_ms,
                    })
                },
            )
            .collect()
    }
}

/// A short wait, different for each racer, before a transaction that failed (most likely because
/// another writer took the record's next place first) is tried again.
async fn lost_a_race() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    tokio::time::sleep(std::time::Duration::from_millis(5 + u64::from(nanos % 40))).await;
}

/// The record that follows `last` (seq, hash).
fn next_record(
    last: Option<(i64, String)>,
    version: B256,
    from: Option<State>,
    to: State,
    by: &str,
    detail: &str,
    at_ms: i64,
) -> Result<Transition> {
    let (seq, prev) = match last {
        Some((seq, hash)) => (u64::try_from(seq + 1).unwrap_or(0), parse_id(&hash)?),
        None => (1, B256::ZERO),
    };
    let mut record = Transition {
        seq,
        version,
        from,
        to,
        by: by.to_owned(),
        detail: detail.to_owned(),
        at_ms,
        prev,
        hash: B256::ZERO,
    };
    record.hash = record.chained(prev);
    Ok(record)
}

fn db_number(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| EngineError::Corrupt(format!("number {n}")))
}

fn parse_id(s: &str) -> Result<B256> {
    s.parse()
        .map_err(|_| EngineError::Corrupt(format!("config hash {s:?}")))
}

fn version_of(row: VersionRow) -> Result<Version> {
    let (
        id,
        number,
        parent,
        body,
        state,
        proposed_by,
        created_ms,
        updated_ms,
        activate_at_ms,
        chain,
        block,
    ) = row;
    let activate_at_block = match (chain, block) {
        (Some(c), Some(b)) => Some((
            u64::try_from(c).map_err(|_| EngineError::Corrupt(format!("chain {c}")))?,
            u64::try_from(b).map_err(|_| EngineError::Corrupt(format!("block {b}")))?,
        )),
        _ => None,
    };
    Ok(Version {
        id: parse_id(&id)?,
        number: u64::try_from(number)
            .map_err(|_| EngineError::Corrupt(format!("config version number {number}")))?,
        parent: parent.as_deref().map(parse_id).transpose()?,
        body,
        state: State::parse(&state)?,
        proposed_by,
        created_ms,
        updated_ms,
        activate_at_ms,
        activate_at_block,
    })
}

fn transition_of(row: TransitionRow) -> Result<Transition> {
    let (seq, version, from, to, by, detail, at_ms, prev, hash) = row;
    Ok(Transition {
        seq: u64::try_from(seq)
            .map_err(|_| EngineError::Corrupt(format!("config transition seq {seq}")))?,
        version: parse_id(&version)?,
        from: from.as_deref().map(State::parse).transpose()?,
        to: State::parse(&to)?,
        by,
        detail,
        at_ms,
        prev: parse_id(&prev)?,
        hash: parse_id(&hash)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_and_drops_whitespace() {
        let a: Value = serde_json::from_str(r#"{ "b": [ {"y": 1, "x": "é\""} ], "a": null }"#)
            .unwrap_or_default();
        assert_eq!(canonical(&a), r#"{"a":null,"b":[{"x":"é\"","y":1}]}"#);
        let b: Value =
            serde_json::from_str(r#"{"a":null,"b":[{"x":"é\"","y":1}]}"#).unwrap_or_default();
        assert_eq!(canonical(&a), canonical(&b));
    }

    #[test]
    fn the_lifecycle_moves_forward_rejects_before_activation_and_restarts_by_a_proposal() {
        use State::*;
        let all = [
            Proposed, Validated, Approved, Scheduled, Active, Superseded, RolledBack, Rejected,
        ];
        let allowed: Vec<(State, State)> = all
            .iter()
            .flat_map(|&a| all.iter().map(move |&b| (a, b)))
            .filter(|&(a, b)| a.may_become(b))
            .collect();
        assert_eq!(
            allowed,
            [
                (Proposed, Validated),
                (Proposed, Rejected),
                (Validated, Approved),
                (Validated, Rejected),
                (Approved, Scheduled),
                (Approved, Rejected),
                (Scheduled, Active),
                (Scheduled, Rejected),
                (Active, Superseded),
                (Active, RolledBack),
                (Superseded, Proposed),
                (RolledBack, Proposed),
            ]
        );
        for s in all {
            assert_eq!(State::parse(s.as_str()).ok(), Some(s));
        }
    }
}
