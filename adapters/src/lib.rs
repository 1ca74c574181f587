//! # baton-adapters
//!
//! Owns the port through which everything reaches a chain, and its implementations:
//! - the `ChainAdapter` trait (object-safe, `Send + Sync`, held as `Arc<dyn ChainAdapter>`): head and
//!   finalized blocks, network conditions, liquidity reads into a
//!   [`baton_planner::LiquiditySnapshot`], preparing a step as a signed transaction, idempotent
//!   broadcast, transaction status and outcome evidence;
//! - `evm`, on alloy (signing, nonces, fees, receipts, confirmations, reorg detection);
//! - `sim`, an in-memory chain with deterministic fault injection, for fast tests;
//! - `devnet`, which starts anvil nodes and deploys the fixture contracts.
//!
//! Depends on the planner only (its domain types). **Status:** empty so far; the next issue (real
//! chains: settler contracts, the anvil devnet and the adapters) fills it.
//!
//! ## Feature flags
//! None yet.

pub use baton_planner as planner;
