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
    /// A saga's input is not acceptable (does not plan, signatures do not match).
    #[error("invalid saga: {0}")]
    Invalid(String),
    /// A chain could not be reached or refused something.
    #[error(transparent)]
    Chain(#[from] baton_adapters::AdapterError),
    /// No adapter is configured for a chain the plan uses.
    #[error("no adapter for chain {0}")]
    NoAdapter(u64),
    /// Not enough unreserved solver inventory for a saga.
    #[error("not enough unreserved inventory: {0}")]
    Inventory(String),
    /// Another instance took the saga over (its lease expired here, or the fence moved on).
    #[error("another instance drives this saga now")]
    LeaseLost,
    /// Another instance holds the saga's lease.
    #[error("another instance holds this saga's lease")]
    LeaseHeld,
    /// The saga was admitted before (a repeated submission).
    #[error("the saga was already admitted")]
    AlreadyAdmitted,
    /// An event for a saga the log never admitted (its admission's commit failed): refused.
    #[error("the saga was never admitted")]
    NotAdmitted,
    /// The engine was told to stop after a number of events (crash tests).
    #[error("stopped after event {0} (crash injection)")]
    Stopped(u64),
    /// Operators pulled the emergency brake: no intent is admitted until it is released.
    #[error("baton is paused by an operator (emergency brake); no intent is admitted")]
    Paused,
    /// No such saga in the log.
    #[error("no saga {0}")]
    NotFound(crate::event::SagaId),
    /// The request does not fit the saga's state.
    #[error("{0}")]
    Conflict(String),
    /// An approval whose signature does not recover to one of the active version's approvers.
    #[error("{0}")]
    NotAnApprover(String),
    /// No configuration version has this id.
    #[error("no configuration version {0}")]
    UnknownVersion(alloy::primitives::B256),
    /// A batch of appends could not be committed; nothing of it is stored.
    #[error("appending to the saga log failed: {0}")]
    Append(String),
    /// The log writer has stopped (the engine is shutting down).
    #[error("the saga log writer has stopped")]
    WriterGone,
}

impl EngineError {
    /// Whether the saga's driver (or the operation) must stop on this error rather than try again
    /// at its next tick: the process is stopping or was told to (crash injection), the log cannot
    /// take its writes, or another instance drives the saga now.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::Stopped(_)
                | Self::Db(_)
                | Self::WriterGone
                | Self::NotAdmitted
                | Self::LeaseLost
                | Self::LeaseHeld
        )
    }

    /// Whether doing the same again later may succeed: a chain that could not be reached, or a
    /// batch of appends that failed to commit as a whole.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Chain(e) => e.is_retryable(),
            Self::Append(_) => true,
            _ => false,
        }
    }
}
