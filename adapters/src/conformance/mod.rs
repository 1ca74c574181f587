//! The conformance suite: what every [`ChainAdapter`] must do, as one set of checks run against the
//! `sim` chain and against `evm` on real anvil nodes — and by solvers against their own adapters.
//!
//! Each check is an async function taking a [`Harness`]: two chains (an origin and a destination),
//! the adapters of a user and a solver on each, and the few test-network controls the checks need
//! (mine, move time, reorg). A check panics with a message saying what the adapter got wrong.
//!
//! ## Running it against your adapter
//! 1. Deploy the fixture contracts (`fixtures/contracts/artifacts`) on two chains of yours, or give
//!    your chain the same semantics; fund the [`Harness::user`] with at least [`FUNDS`] of a token
//!    the harness names `"USDC"` on the origin chain, and the solver with as much on the
//!    destination.
//! 2. Implement [`Harness`] for that world: `adapter` hands out your adapter for either account.
//!    Chains must not produce blocks by themselves (disable automine; [`Harness::mine`] does it).
//! 3. Generate the tests: `baton_adapters::conformance_suite!(your_async_harness_constructor);`
//!    in an integration test (it needs `tokio` with `macros` and `rt-multi-thread`), then
//!    `cargo test`. See `adapters/tests/it/conformance.rs` for the two harnesses baton ships.

mod checks;
mod support;
mod worlds;

use std::sync::Arc;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use baton_planner::ChainId;

use crate::abi::Settlers;
use crate::error::Result;
use crate::port::{BoxFuture, ChainAdapter, Fees};

pub use checks::*;
pub use worlds::{DevnetWorld, SimWorld, anvil};

/// Base units of `"USDC"` the user must hold on the origin and the solver on the destination.
pub const FUNDS: u64 = 1_000_000_000;

/// Whose adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The account that signs orders and gives inputs.
    User,
    /// The filler: opens, fills, settles, refunds.
    Solver,
}

/// Two chains and the controls the suite needs.
pub trait Harness: Send + Sync {
    /// The origin chain and the destination chain.
    fn chains(&self) -> [ChainId; 2];
    /// `role`'s adapter on `chain`.
    fn adapter(&self, chain: ChainId, role: Role) -> Arc<dyn ChainAdapter>;
    /// The user's key (signs orders; the same account as [`Role::User`]'s adapter).
    fn user(&self) -> &PrivateKeySigner;
    /// The origin settlers' attesters (any two of them are a quorum; their addresses ascend in
    /// no particular order).
    fn attesters(&self) -> &[PrivateKeySigner];
    /// A token on `chain` by symbol (the suite uses `"USDC"`).
    fn token(&self, chain: ChainId, symbol: &str) -> Address;
    /// The settlers on `chain`.
    fn settlers(&self, chain: ChainId) -> Settlers;
    /// Produces `blocks` blocks on `chain`.
    fn mine(&self, chain: ChainId, blocks: u64) -> BoxFuture<'_, Result<()>>;
    /// Moves `chain`'s clock `secs` ahead (seen from the next block).
    fn advance_time(&self, chain: ChainId, secs: u64) -> BoxFuture<'_, Result<()>>;
    /// Replaces the last `depth` blocks of `chain` with new ones, as a reorg does.
    fn reorg(&self, chain: ChainId, depth: u64) -> BoxFuture<'_, Result<()>>;
}

/// Generates one `#[tokio::test]` per conformance check, each on a fresh harness from `$make`
/// (an async expression yielding something that implements [`Harness`]).
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@tests $make;
            open_fill_settle, settle_needs_a_quorum, refund_after_deadline, refund_with_cancel,
            double_fill_rejected,
            late_fill_rejected,
            bad_signature_rejected, nonce_reuse_rejected, rebroadcast_is_harmless,
            replacement_takes_the_nonce, status_through_reorg, reads_and_conditions);
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let harness = $make.await;
                $crate::conformance::$name(&harness).await;
            }
        )*
    };
}

/// Fees comfortably above any base fee the suite meets.
pub const FEES: Fees = Fees {
    gas_limit: 600_000,
    max_fee_per_gas: 50_000_000_000,
    max_priority_fee_per_gas: 1_000_000_000,
};
