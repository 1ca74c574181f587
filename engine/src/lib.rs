//! # baton-engine
//!
//! Owns execution: the saga log (sqlx; SQLite by default, PostgreSQL for several instances), the
//! DAG scheduler that runs a [`baton_planner::Plan`]'s steps as their dependencies become final and
//! conditions allow, compensations, recovery after a crash, outcome evaluation and replay.
//!
//! ## Layout
//! - [`db`]: the database (SQLite file with WAL, or PostgreSQL), embedded numbered migrations.
//! - [`event`]: what a saga's log records ([`SagaEvent`]), saga ids and outcomes.
//! - [`log`]: the append-only, hash-chained saga log with group commit, and its verification.
//! - [`engine`]: accepts sagas, drives each in a task, resumes unfinished ones after a restart;
//!   `saga` (private) is one saga's driver, [`state`] its state folded from the log, [`ops`] the
//!   chain ops of plan steps, [`attester`] who signs fills and cancels.
//! - [`liquidity`]: a planner snapshot read live from the chains through the adapters.
//! - [`observe`]: metric names and the operator-relevant events (outcomes, alerts).
//! - [`simworld`]: a ready-made two-chain sim world for tests, benchmarks and demos.
//! - [`input`]: what a saga runs (intent, snapshot, planner knobs, signatures), re-planned on
//!   recovery; [`reserve`]: inventory reservations.
//! - [`control`]: operators' pauses (a chain, or the emergency brake) and their recorded actions;
//!   [`view`]: a saga as the API shows it (status, steps, confirmations, reason codes).
//! - [`replay`]: re-running a saga on local anvil forks and comparing it with its log.
//! - [`error`]: the engine's error type, [`EngineError`].
//!
//! **Status:** the saga log, the driver (holds on fees and RPC health, write-ahead signing, fee
//! replacement, deadline budgeting, compensation, outcome from evidence, reorg healing),
//! reservations, recovery, leases for several instances, operators' pauses and retries are built and
//! tested on the sim and both databases; so are replay on anvil forks, trials of a change there, and
//! resuming a saga held for an operator with the change.
//!
//! Depends on the planner and the adapters.
//!
//! ## Feature flags
//! None.

pub mod attester;
pub mod control;
pub mod db;
pub mod engine;
pub mod error;
pub mod event;
pub mod input;
pub mod liquidity;
pub mod log;
pub mod observe;
pub mod ops;
pub mod replay;
pub mod reserve;
mod saga;
pub mod simworld;
pub mod state;
pub mod view;

pub use baton_adapters as adapters;
pub use db::Db;
pub use engine::{Engine, EngineConfig, Work};
pub use error::{EngineError, Result};
pub use event::{Outcome, SagaEvent, SagaId};
pub use input::SagaInput;
pub use log::Notice;
pub use log::SagaLog;

/// Wall-clock unix milliseconds: event times, leases, reservations.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
