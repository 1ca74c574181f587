//! End-to-end tests across crates, driving the `baton` binary as a user would.

#![allow(missing_docs, clippy::unwrap_used)]

mod api;
mod audit;
mod bench;
mod cli;
mod contracts;
mod devnet;
