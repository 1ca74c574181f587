//! # baton-engine
//!
//! Owns execution: the saga log (sqlx; SQLite by default, PostgreSQL for several instances), the
//! DAG scheduler that runs a [`baton_planner::Plan`]'s steps as their dependencies become final and
//! conditions allow, compensations, recovery after a crash, outcome evaluation and replay.
//!
//! Depends on the planner and the adapters. **Status:** empty so far; the engine issue fills it.
//!
//! ## Feature flags
//! None yet.

pub use baton_adapters as adapters;
