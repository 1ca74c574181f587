//! What operators control: pausing a chain or everything (the emergency brake), and the record of
//! every operator action with who did it. Pauses are rows in the database, so they survive a
//! restart; the engine keeps a copy in memory that the saga drivers read on every step.

use std::collections::BTreeSet;
use std::sync::RwLock;

use baton_planner::ChainId;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::log::db::Db;
use crate::with_pool;

/// What a pause covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One chain: no new transaction is started on it.
    Chain(ChainId),
    /// Everything: no new transaction is started anywhere and no intent is admitted.
    All,
}

impl Scope {
    fn key(self) -> String {
        match self {
            Scope::Chain(c) => format!("chain:{}", c.0),
            Scope::All => "all".to_owned(),
        }
    }

    fn parse(key: &str) -> Option<Self> {
        if key == "all" {
            return Some(Scope::All);
        }
        key.strip_prefix("chain:")?
            .parse()
            .ok()
            .map(|c| Scope::Chain(ChainId(c)))
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key())
    }
}

/// A pause in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// What it covers: `"all"` or `{"chain": 1001}`.
    pub scope: Scope,
    /// Who paused.
    pub by: String,
    /// Why.
    pub reason: String,
    /// When, unix milliseconds.
    pub at_ms: i64,
}

/// One recorded operator action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorAction {
    /// When, unix milliseconds.
    pub at_ms: i64,
    /// Who.
    pub by: String,
    /// What (`pause`, `resume`, `retry`, `resume-saga`).
    pub action: String,
    /// On what (`chain:1001`, `all`, a saga id).
    pub target: String,
    /// Anything else (the reason given).
    pub detail: String,
}

/// The pauses in force, as the drivers see them.
#[derive(Debug, Default)]
pub(crate) struct Controls {
    paused: RwLock<BTreeSet<Scope>>,
}

impl Controls {
    /// Whether new transactions on `chain` are held.
    pub(crate) fn holds(&self, chain: ChainId) -> bool {
        let paused = self.paused.read().unwrap_or_else(|p| p.into_inner());
        !paused.is_empty()
            && (paused.contains(&Scope::All) || paused.contains(&Scope::Chain(chain)))
    }

    /// Whether the emergency brake is on.
    pub(crate) fn braked(&self) -> bool {
        let paused = self.paused.read().unwrap_or_else(|p| p.into_inner());
        paused.contains(&Scope::All)
    }

    fn set(&self, scopes: impl IntoIterator<Item = Scope>) {
        let mut paused = self.paused.write().unwrap_or_else(|p| p.into_inner());
        *paused = scopes.into_iter().collect();
    }
}

/// Loads the pauses in force from `db` into `controls`; returns them.
pub(crate) async fn load(db: &Db, controls: &Controls) -> Result<Vec<Pause>> {
    let rows: Vec<(String, String, String, i64)> = with_pool!(db, pool => {
        sqlx::query_as("SELECT scope, actor, reason, at_ms FROM pauses ORDER BY at_ms, scope")
            .fetch_all(pool)
            .await?
    });
    let pauses: Vec<Pause> = rows
        .into_iter()
        .filter_map(|(scope, by, reason, at_ms)| {
            Some(Pause {
                scope: Scope::parse(&scope)?,
                by,
                reason,
                at_ms,
            })
        })
        .collect();
    controls.set(pauses.iter().map(|p| p.scope));
    Ok(pauses)
}

/// Pauses `scope` (or, with `pause` false, lifts it), records the action, and reloads `controls`;
/// returns the pauses in force after it.
pub(crate) async fn set(
    db: &Db,
    controls: &Controls,
    scope: Scope,
    pause: bool,
    by: &str,
    reason: &str,
    now_ms: i64,
) -> Result<Vec<Pause>> {
    let key = scope.key();
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        if pause {
            sqlx::query(
                "INSERT INTO pauses (scope, actor, reason, at_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (scope) DO UPDATE SET actor = excluded.actor, \
                 reason = excluded.reason, at_ms = excluded.at_ms",
            )
            .bind(&key)
            .bind(by)
            .bind(reason)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query("DELETE FROM pauses WHERE scope = $1")
                .bind(&key)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(RECORD)
            .bind(now_ms)
            .bind(by)
            .bind(if pause { "pause" } else { "resume" })
            .bind(&key)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    });
    load(db, controls).await
}

/// Records an operator action.
pub(crate) async fn record(
    db: &Db,
    by: &str,
    action: &str,
    target: &str,
    detail: &str,
    now_ms: i64,
) -> Result<()> {
    with_pool!(db, pool => {
        sqlx::query(RECORD)
            .bind(now_ms)
            .bind(by)
            .bind(action)
            .bind(target)
            .bind(detail)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Records one operator action (bind: time, actor, action, target, detail).
const RECORD: &str = "INSERT INTO operator_actions (at_ms, actor, action, target, detail) \
                      VALUES ($1, $2, $3, $4, $5)";

/// The latest `limit` operator actions, newest first.
pub(crate) async fn actions(db: &Db, limit: i64) -> Result<Vec<OperatorAction>> {
    let rows: Vec<(i64, String, String, String, String)> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT at_ms, actor, action, target, detail FROM operator_actions \
             ORDER BY at_ms DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|(at_ms, by, action, target, detail)| OperatorAction {
            at_ms,
            by,
            action,
            target,
            detail,
        })
        .collect())
}
