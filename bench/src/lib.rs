//! # baton-bench
//!
//! Owns `baton bench`: the figures of BENCHMARKS.md, each from one command. Every command prints a
//! table (figure, value, target) and, with `--json`, one JSON object instead; progress goes to
//! standard error. The `baton` binary parses [`Bench`] as its `bench` subcommand and hands it to
//! [`run`].
//!
//! ## Layout
//! - `engine`: `baton bench engine`, sagas per second through the engine alone on the sim chains
//!   with a durable saga log ([`EngineArgs`]).
//! - `recovery`: `baton bench recovery`, an engine's start to many in-flight sagas resumed
//!   ([`RecoveryArgs`]).
//! - `sim`: what those two share: the sim world, a saga log for one run.
//! - `e2e`: `baton bench e2e`, real intents on anvil chains against their plans' critical-path
//!   bound, and against a sequential script ([`E2eArgs`]).
//! - `intake`: `baton bench intake`, signed intents through `POST /v1/intents` of a `baton serve`
//!   it starts as a second process ([`IntakeArgs`]).
//! - `report`: a bench's findings as a table or one JSON object, and the arithmetic of its figures
//!   (percentiles, milliseconds).
//! - `measure`: what a bench reads of a process while it runs (CPU time, bytes written) and its
//!   progress lines.
//!
//! Depends on the engine, the adapters and the planner, and on the API for signing quotes as a
//! wallet does.
//!
//! ## Feature flags
//! None.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Subcommand;

mod e2e;
mod engine;
mod intake;
mod measure;
mod recovery;
mod report;
mod sim;

pub use e2e::E2eArgs;
pub use engine::EngineArgs;
pub use intake::IntakeArgs;
pub use recovery::RecoveryArgs;

/// What to measure.
#[derive(Subcommand)]
pub enum Bench {
    /// Sagas per second through the engine on the sim chains, with a durable saga log.
    Engine(EngineArgs),
    /// Time from an engine's start to every one of many in-flight sagas resumed.
    Recovery(RecoveryArgs),
    /// Real intents on anvil chains: time to outcome against the plan's critical-path bound, and
    /// against a sequential script.
    E2e(E2eArgs),
    /// Accepted intents per second through `POST /v1/intents`, driven from this process against a
    /// `baton serve` it starts.
    Intake(IntakeArgs),
}

/// Runs `bench` on a runtime of its own and prints its report.
///
/// `intake` starts the running executable as `baton serve`: call this from the `baton` binary.
pub fn run(bench: Bench) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        match bench {
            Bench::Engine(args) => engine::engine(args).await,
            Bench::Recovery(args) => recovery::recovery(args).await,
            Bench::E2e(args) => e2e::run(args).await,
            Bench::Intake(args) => intake::run(args).await,
        }
    })?;
    // Sagas still running (recovered ones) stop with the runtime.
    runtime.shutdown_timeout(Duration::from_millis(200));
    report.print();
    Ok(ExitCode::SUCCESS)
}
