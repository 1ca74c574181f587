//! What each command does, one module per command or family of commands; `main` dispatches
//! [`crate::cli::Command`] to them. `baton demo` is [`crate::demo`] and `baton bench` the
//! `baton-bench` crate.

pub(crate) mod attester;
pub(crate) mod audit;
pub(crate) mod config;
pub(crate) mod devnet;
pub(crate) mod intents;
pub(crate) mod plan;
pub(crate) mod replay;
pub(crate) mod serve;
