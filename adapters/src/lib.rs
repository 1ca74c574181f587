//! # baton-adapters
//!
//! Owns the port through which everything reaches a chain, and its implementations.
//!
//! ## Layout
//! - [`contracts`]: alloy bindings to the fixture contracts (from the committed artifacts).
//! - [`devnet`]: starts anvil nodes on 127.0.0.1, deploys and seeds the contracts; stops them on drop.
//! - [`port`]: the `ChainAdapter` trait and its types; [`evm`]: its alloy implementation.
//! - [`error`]: the adapters' error type, [`AdapterError`].
//!
//! **Status:** the `ChainAdapter` trait (object-safe, `Send + Sync`: heads, conditions, liquidity
//! reads, signed-but-unsent steps, idempotent broadcast, status, outcome evidence), the `evm` adapter
//! on alloy, the `sim` chain and the conformance suite are not built yet; the devnet and the
//! contracts' behaviour on anvil are.
//!
//! Depends on the planner only (its domain types).
//!
//! ## Feature flags
//! None yet.

pub mod contracts;
pub mod devnet;
pub mod error;
pub mod evm;
pub mod port;

pub use baton_planner as planner;
pub use error::{AdapterError, Result};
