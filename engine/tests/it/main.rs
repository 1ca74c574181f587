//! The engine's integration tests (one binary). Database tests run on SQLite (a temporary file) and,
//! when `DATABASE_URL` names one, on PostgreSQL (a schema of their own).

#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};

use baton_engine::Db;

mod anvil;
mod changes;
mod crash;
mod deadline;
mod events;
mod health;
mod lag;
mod layers;
mod lease;
mod listing;
mod log;
mod nonces;
mod observe;
mod operator;
mod quorum;
mod replay;
mod reserve;
mod saga;
mod supervise;
mod webhooks;

/// A SQLite file that is removed when dropped.
pub struct TempFile(pub std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

static N: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_000
    )
}

/// A fresh SQLite database file.
pub fn sqlite_file() -> (String, TempFile) {
    let path = std::env::temp_dir().join(format!("{}.db", unique("baton")));
    (format!("sqlite://{}", path.display()), TempFile(path))
}

/// A fresh PostgreSQL database (a schema of its own) when `DATABASE_URL` is set.
pub async fn postgres() -> Option<Db> {
    let db = postgres_unmigrated().await?;
    db.migrate().await.unwrap();
    Some(db)
}

async fn postgres_unmigrated() -> Option<Db> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(
            Db::open_in(&url, Some(&unique("baton_test")))
                .await
                .unwrap(),
        ),
        _ => {
            eprintln!("DATABASE_URL is not set: PostgreSQL is skipped (CI sets it)");
            None
        }
    }
}

/// Fresh databases (as [`databases`]) holding the schema up to migration `version` only.
pub async fn databases_at(version: i64) -> Vec<(Db, Option<TempFile>)> {
    let (url, file) = sqlite_file();
    let mut out = vec![(Db::open_in(&url, None).await.unwrap(), Some(file))];
    if let Some(db) = postgres_unmigrated().await {
        out.push((db, None));
    }
    for (db, _) in &out {
        db.migrate_to(version).await.unwrap();
    }
    out
}

/// Fresh databases to run a test on: SQLite always, PostgreSQL when `DATABASE_URL` is set.
/// Keep the returned guard alive while the database is used.
pub async fn databases() -> Vec<(Db, Option<TempFile>)> {
    let (url, file) = sqlite_file();
    let mut out = vec![(Db::connect(&url).await.unwrap(), Some(file))];
    if let Some(db) = postgres().await {
        out.push((db, None));
    }
    out
}
