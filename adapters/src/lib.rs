//! # baton-adapters
//!
//! Owns the port through which everything reaches a chain, and its implementations.
//!
//! ## Layout
//! - [`port`]: the `ChainAdapter` trait (object-safe, `Send + Sync`) and its types: heads and
//!   finality, network conditions, liquidity reads, ops signed but not sent, idempotent broadcast,
//!   transaction status through reorgs, outcome evidence.
//! - [`evm`]: the port on alloy for real nodes (pipelined nonces, fee replacement, retries of
//!   retryable failures, a rate limit per endpoint, revert reasons).
//! - [`follow`]: a follower per chain, reading each block once into a view (balances,
//!   allowances, reserves, the account's transactions) that answers reads without a call.
//! - [`sim`]: an in-memory chain with the fixture contracts' semantics and deterministic faults.
//! - [`conformance`]: the suite every adapter passes (sim and evm-on-anvil here; solvers run it
//!   against theirs).
//! - [`abi`]: ops as EVM calls and settler events as evidence, shared by `evm` and `sim`;
//!   [`nonce`]: the local nonce counter both use.
//! - [`attestation`]: what attesters sign (`Fill` with its deliveries, `Cancel`) and how a quorum
//!   of their signatures is put together for the origin settler.
//! - [`signers`]: a process-wide memo of ECDSA signer recovery (signatures made or checked in the
//!   process are not recovered again).
//! - [`contracts`]: alloy bindings to the fixture contracts (from the committed artifacts).
//! - [`devnet`]: starts anvil nodes on 127.0.0.1, deploys and seeds the contracts; stops them on drop.
//! - [`error`]: the adapters' error type, [`AdapterError`].
//!
//! Depends on the planner only (its domain types).
//!
//! ## Feature flags
//! None yet.

pub mod abi;
pub mod attestation;
pub mod conformance;
pub mod contracts;
pub mod devnet;
pub mod error;
pub mod evm;
pub mod follow;
pub mod nonce;
pub mod port;
pub mod signers;
pub mod sim;

pub use baton_planner as planner;
pub use error::{AdapterError, Refusal, Result};
