//! # baton-replay
//!
//! Owns replay: re-running one saga on local anvil forks of the chains it touched and comparing
//! every result with its log; trials of a change there; and the decision to resume a held saga
//! with that change. Nothing is ever sent to a real chain: the forks are local processes, stopped
//! when the replay ends.
//!
//! For each chain the saga acted on, an anvil node forks the chain's RPC at the block the saga's
//! first transaction there was built against (its `TxContext` head), with mining off. Then every
//! block the original chain made from there to the saga's last inclusion is made again on the
//! fork, across chains in timestamp order: the same raw transactions in the same order, with the
//! original timestamps. A saga transaction that never got into a block (the node refused it) is
//! sent after the block it was built against. Each saga transaction's result on the fork is
//! compared with its receipt in the log (status, logs); the first difference is the divergence.
//! Where a recorded revert reproduces, the report names the step, its revert reason and its call
//! trace, decoded with the fixture contracts' ABIs.
//!
//! Deadlines are not among a trial's changes: changing them changes the orders the user signed.
//!
//! ## Layout
//! - [`run`]: [`replay()`], one replay from start to end.
//! - `recorded` (private): the saga's transactions as its log records them.
//! - `fork` (private): the anvil forks' lifecycle; `blocks` (private): the original blocks,
//!   made again on the forks.
//! - `compare` (private): each transaction's result on its fork against the log; `trace`
//!   (private): call traces decoded with the fixtures' ABIs.
//! - [`trial`]: trying a change ([`Trial`]); [`resume`]: whether a held saga is resumed with it
//!   ([`resume_after_trial`]); [`measure()`]: what a saga's fills delivered and how fast, for a
//!   saga as it ran and for its trial alike.
//! - [`report`]: what a replay finds ([`Report`]); [`render()`]: the report as text.
//! - [`error`]: the error type, [`ReplayError`].
//!
//! Depends on the engine (the saga log, the engine a trial runs), the adapters and the planner;
//! the api and the CLI depend on it.
//!
//! ## Feature flags
//! None.

mod blocks;
mod compare;
pub mod error;
mod fork;
pub mod measure;
mod recorded;
pub mod render;
pub mod report;
pub mod resume;
pub mod run;
mod trace;
pub mod trial;

pub use error::{ReplayError, Result};
pub use measure::{Measured, measure};
pub use render::render;
pub use report::{Divergence, FailingStep, Fork, Report, StepReplay, TrialReport, TxResult};
pub use resume::{ResumeDecision, resume_after_trial};
pub use run::replay;
pub use trial::Trial;
