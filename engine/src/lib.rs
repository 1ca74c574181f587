//! # baton-engine
//!
//! Owns execution: the saga log (sqlx; SQLite by default, PostgreSQL for several instances), the
//! DAG scheduler that runs a [`baton_planner::Plan`]'s steps as their dependencies become final and
//! conditions allow, compensations, recovery after a crash and outcome evaluation. Replay on anvil
//! forks is `baton-replay`, a crate above this one.
//!
//! ## Layout
//! Three layers, each using only those below it (a test checks that no module of this crate
//! imports from one that imports from it):
//! - the saga log, [`log`]: the database ([`log::db`]: SQLite with WAL, or PostgreSQL; embedded
//!   numbered migrations), the append-only hash-chained log with its group-commit writer, reads,
//!   leases, verification, and inventory reservations ([`log::reserve`]);
//! - the saga driver, [`saga`]: one saga's driver, its state folded from the log
//!   ([`saga::state`]), what it runs ([`saga::input`]), the chain ops of plan steps
//!   ([`saga::ops`]), and what the drivers of one engine share;
//! - the engine, [`engine`]: admission, lifecycle and recovery, operators' commands, read queries.
//!
//! Beside them, used by the layers: [`event`], what a saga's log records ([`SagaEvent`]), saga ids
//! and outcomes; [`error`], [`EngineError`]; [`config`], the engine's knobs; `conditions`, the
//! chain-conditions cache the drivers share; [`control`], operators' pauses and their recorded
//! actions; [`changes`], configuration versions, their lifecycle and its hash-chained record;
//! [`attester`], who signs fills and cancels; [`observe`], metric names and the operator-relevant
//! events; [`view`], a saga as the API shows it; [`outcomes`], outcomes over time as the
//! operators' console charts them; [`liquidity`], a planner snapshot read live from the chains;
//! [`simworld`], a ready-made two-chain sim world for tests, benchmarks and demos.
//!
//! **Status:** the saga log, the driver (holds on fees and RPC health, write-ahead signing, fee
//! replacement, deadline budgeting, compensation, outcome from evidence, reorg healing),
//! reservations, recovery, leases for several instances, operators' pauses and retries are built and
//! tested on the sim and both databases; so is resuming a saga held for an operator with a change
//! ([`Engine::resume_with`]).
//!
//! Depends on the planner and the adapters.
//!
//! ## Feature flags
//! None.

pub mod attester;
pub mod changes;
mod conditions;
pub mod config;
pub mod control;
pub mod engine;
pub mod error;
pub mod event;
pub mod liquidity;
pub mod log;
pub mod observe;
pub mod outcomes;
pub mod saga;
pub mod simworld;
pub mod view;

pub use baton_adapters as adapters;
pub use config::{EngineConfig, Knobs};
pub use engine::{Engine, Work};
pub use error::{EngineError, Result};
pub use event::{Outcome, SagaEvent, SagaId, TOPICS};
pub use log::Notice;
pub use log::SagaLog;
pub use log::SharedNonces;
pub use log::StoredEvents;
pub use log::db::Db;
pub use saga::input::SagaInput;
pub use saga::shared::{Chains, VersionChains};

/// Wall-clock unix milliseconds: event times, leases, reservations.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
