//! # baton-planner
//!
//! The pure heart of baton: it turns an intent into a routed, checked DAG of steps across chains.
//! It does no I/O, reads no clock (the liquidity snapshot's timestamp is its "now") and uses no
//! randomness: the same intent over the same snapshot gives the same plan, byte for byte.
//!
//! ## Layout
//! - [`amount`], [`ids`]: money and identifiers ([`Amount`] is a checked `U256`; never a float).
//! - [`intent`]: the user's [`Intent`] (inputs, outputs, deadlines) and its checks.
//! - [`order`]: the ERC-7683 `GaslessCrossChainOrder` the user signs, baton's `orderData`, and the
//!   EIP-712 hashes and typed data that the API, the contracts and clients share.
//! - [`snapshot`]: the [`LiquiditySnapshot`] read from the chains (pools, inventory, conditions).
//! - [`amm`]: exact constant-product maths.
//! - [`graph`]: the [`LiquidityGraph`] (petgraph) over (chain, token) nodes.
//! - [`route`]: route search, valuation and splitting.
//! - [`step`], [`mod@plan`]: steps with compensations and timing; the checked [`Plan`].
//! - [`planner`]: [`plan()`], which ties them together, and its knobs ([`PlannerConfig`]);
//!   [`patch`]: a change to those knobs ([`ConfigPatch`]), as operators try and resume with.
//! - [`describe`]: a plan as text (whole, or its steps as a list).
//! - [`spec`]: file formats for intents and snapshots, converted to domain types at the boundary.
//!
//! ## Feature flags
//! None.

pub mod amm;
pub mod amount;
pub mod describe;
pub mod error;
pub mod graph;
pub mod ids;
pub mod intent;
pub mod order;
pub mod patch;
pub mod plan;
pub mod planner;
pub mod route;
pub mod snapshot;
pub mod spec;
pub mod step;

pub use amount::Amount;
pub use error::{InventoryShortfall, PlanError, Result};
pub use graph::LiquidityGraph;
pub use ids::{Asset, ChainId, IntentId, OrderId, StepId, TokenAddress};
pub use intent::{DestinationCall, Input, Intent, Output};
pub use order::Order;
pub use patch::ConfigPatch;
pub use plan::{CriticalPath, OutputQuote, Plan, PlannedLeg};
pub use planner::{PlannerConfig, plan};
pub use snapshot::{ChainConditions, LiquiditySnapshot, Pool, TokenInfo};
pub use step::{Action, Compensation, Step, Timing};
