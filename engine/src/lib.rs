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
//! - [`error`]: the engine's error type, [`EngineError`].
//!
//! **Status:** the saga log is built (both databases, group commit, `audit verify`). The scheduler,
//! reservations, compensations, recovery and outcome evaluation are not built yet; their tables exist.
//!
//! Depends on the planner and the adapters.
//!
//! ## Feature flags
//! None.

pub mod attester;
pub mod db;
pub mod engine;
pub mod error;
pub mod event;
pub mod input;
pub mod log;
pub mod ops;
mod saga;
pub mod state;

pub use baton_adapters as adapters;
pub use db::Db;
pub use engine::{Engine, EngineConfig};
pub use error::{EngineError, Result};
pub use event::{Outcome, SagaEvent, SagaId};
pub use input::SagaInput;
pub use log::SagaLog;
