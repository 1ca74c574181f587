//! The database: SQLite (a file, WAL, durable commits; the embedded default) or PostgreSQL (several
//! instances), behind one type. Queries are written once, with `$n` placeholders both accept, and run
//! on either pool through [`with_pool!`](crate::with_pool).

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::{EngineError, Result};

/// The numbered migrations, embedded in the binary (valid SQL for both databases).
const MIGRATIONS: [(i64, &str, &str); 12] = [
    (
        1,
        "saga log",
        include_str!("../../migrations/0001_saga_log.sql"),
    ),
    (
        2,
        "operators and api",
        include_str!("../../migrations/0002_operators_and_api.sql"),
    ),
    (
        3,
        "saga numbers",
        include_str!("../../migrations/0003_saga_numbers.sql"),
    ),
    (
        4,
        "intents by number",
        include_str!("../../migrations/0004_intents_by_number.sql"),
    ),
    (
        5,
        "submitters and key expiry",
        include_str!("../../migrations/0005_submitters_and_key_expiry.sql"),
    ),
    (
        6,
        "nonce claims",
        include_str!("../../migrations/0006_nonce_claims.sql"),
    ),
    (
        7,
        "settler events",
        include_str!("../../migrations/0007_settler_events.sql"),
    ),
    (
        8,
        "webhooks",
        include_str!("../../migrations/0008_webhooks.sql"),
    ),
    (
        9,
        "console",
        include_str!("../../migrations/0009_console.sql"),
    ),
    (
        10,
        "config versions",
        include_str!("../../migrations/0010_config_versions.sql"),
    ),
    (
        11,
        "config approvals and instances",
        include_str!("../../migrations/0011_config_approvals_and_instances.sql"),
    ),
    (
        12,
        "instance pull interval and shadow runs",
        include_str!("../../migrations/0012_instance_pull_and_shadow_runs.sql"),
    ),
];

#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = std::result::Result<Vec<Migration>, BoxDynError>>
                + Send,
        >,
    > {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        sqlx::SqlStr::from_static(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// A fresh SQLite saga log in the temporary directory, removed (with its WAL files) when dropped:
/// for trials, benchmarks and tests.
#[derive(Debug)]
pub struct ScratchSqlite {
    path: std::path::PathBuf,
}

impl ScratchSqlite {
    /// A new file name under the temporary directory, `baton-{name}-…`.
    pub fn new(name: &str) -> Self {
        Self {
            path: std::env::temp_dir().join(format!(
                "baton-{name}-{}-{}.db",
                std::process::id(),
                fastrand::u64(..)
            )),
        }
    }

    /// Its `sqlite://` URL.
    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }
}

impl Drop for ScratchSqlite {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
    }
}

/// A connection pool to the saga log's database.
#[derive(Clone, Debug)]
pub enum Db {
    /// SQLite: one file, WAL, `synchronous = FULL` (a commit survives a power cut).
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool `$db` holds: one query text, two drivers.
#[macro_export]
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::log::db::Db::Sqlite($pool) => $body,
            $crate::log::db::Db::Postgres($pool) => $body,
        }
    };
}

impl Db {
    /// Connects to `url` (`sqlite://PATH`, created if missing, or `postgres://…`) and migrates.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_in(url, None).await
    }

    /// Like [`Db::connect`], inside PostgreSQL schema `schema` (created if missing), so that tests
    /// or several deployments can share one database; ignored for SQLite.
    pub async fn connect_in(url: &str, schema: Option<&str>) -> Result<Self> {
        let db = Self::open_in(url, schema).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Like [`Db::connect_in`], without migrating: for tools and tests that migrate step by step
    /// ([`Db::migrate_to`]).
    pub async fn open_in(url: &str, schema: Option<&str>) -> Result<Self> {
        Ok(if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10));
            Db::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await?,
            )
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let mut options = PgConnectOptions::from_str(url)?;
            if let Some(schema) = schema {
                let admin = PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(options.clone())
                    .await?;
                let create = format!(
                    "CREATE SCHEMA IF NOT EXISTS \"{}\"",
                    schema.replace('"', "")
                );
                sqlx::raw_sql(sqlx::AssertSqlSafe(create))
                    .execute(&admin)
                    .await?;
                admin.close().await;
                options = options.options([("search_path", schema)]);
            }
            Db::Postgres(
                PgPoolOptions::new()
                    .max_connections(8)
                    .connect_with(options)
                    .await?,
            )
        } else {
            return Err(EngineError::UnsupportedUrl(url.to_owned()));
        })
    }

    /// Applies the embedded migrations not applied yet.
    pub async fn migrate(&self) -> Result<()> {
        let migrator = Migrator::new(Embedded).await?;
        with_pool!(self, pool => migrator.run(pool).await)?;
        Ok(())
    }

    /// Applies the embedded migrations not applied yet, up to `version`.
    pub async fn migrate_to(&self, version: i64) -> Result<()> {
        let migrator = Migrator::new(Embedded).await?;
        with_pool!(self, pool => migrator.run_to(version, pool).await)?;
        Ok(())
    }

    /// The statement that opens a transaction that will write: SQLite takes the write lock at once
    /// (`BEGIN IMMEDIATE`, so a read-then-write transaction waits for other writers instead of
    /// failing with "database is locked"); PostgreSQL begins normally.
    pub fn begin_write(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "BEGIN IMMEDIATE",
            Db::Postgres(_) => "BEGIN",
        }
    }

    /// Which database this is: `"sqlite"` or `"postgres"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }
}
