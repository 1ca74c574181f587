//! The engine's error type.

/// An engine result.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// What went wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The database refused or failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL is neither `sqlite:` nor `postgres:`.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// A stored row does not decode (a bug, or a tampered database).
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The log writer has stopped (the engine is shutting down).
    #[error("the saga log writer has stopped")]
    WriterGone,
}
