//! The planner's one error type.

use crate::amount::Amount;
use crate::ids::{Asset, ChainId, StepId};

/// A planner result.
pub type Result<T, E = PlanError> = std::result::Result<T, E>;

/// Why an intent cannot be planned, or why a set of steps is not a valid plan.
///
/// Each variant says what is wrong and, where it helps, what would work. [`PlanError::code`] gives the
/// machine-readable code the API answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The intent is malformed (no inputs, duplicate inputs, bad deadlines, …).
    #[error("invalid intent: {reason}")]
    InvalidIntent {
        /// What is wrong, in a sentence.
        reason: String,
    },
    /// An amount is zero where something must move.
    #[error("{what} is zero: name a positive amount in the token's base units")]
    ZeroAmount {
        /// Which amount.
        what: String,
    },
    /// An amount is absurdly large.
    #[error("{what} is {amount}, above the largest accepted amount {max}")]
    AmountOutOfRange {
        /// Which amount.
        what: String,
        /// The amount given.
        amount: Amount,
        /// The largest accepted.
        max: Amount,
    },
    /// A chain the snapshot does not know.
    #[error("unknown chain {}: baton has no settler or conditions for it", chain.0)]
    UnknownChain {
        /// The chain.
        chain: ChainId,
    },
    /// A token the snapshot does not know on that chain.
    #[error("unknown token {asset}")]
    UnknownToken {
        /// The token and its chain.
        asset: Asset,
    },
    /// The deadline is already behind the snapshot's time.
    #[error("the {which} deadline {deadline} has passed (now {now})")]
    DeadlinePassed {
        /// `open` or `fill`.
        which: &'static str,
        /// The deadline, unix seconds.
        deadline: u64,
        /// The snapshot's time, unix seconds.
        now: u64,
    },
    /// The fastest plan cannot finish before the deadline.
    #[error(
        "the fill deadline {deadline} is too soon: the fastest plan needs {needed_secs} s from {now}; \
         set the fill deadline to at least {}", now + needed_secs
    )]
    DeadlineTooSoon {
        /// The fill deadline, unix seconds.
        deadline: u64,
        /// The snapshot's time, unix seconds.
        now: u64,
        /// Seconds the critical path needs.
        needed_secs: u64,
    },
    /// No path in the liquidity graph joins an input to an output.
    #[error("no route from {from} to {to}: no pool path or solver inventory joins them")]
    NoRoute {
        /// The input's token.
        from: Asset,
        /// The output's token.
        to: Asset,
    },
    /// Solver inventory on the destination is too small.
    #[error(
        "not enough solver inventory of {}: the fill needs {}, {} is available; \
         the largest input that can be filled now is {}", .0.asset, .0.needed, .0.available, .0.max_input
    )]
    InsufficientInventory(Box<InventoryShortfall>),
    /// The best route delivers less than the output's minimum.
    #[error(
        "not enough liquidity for output {output}: at least {min} was asked, the best route delivers {best}"
    )]
    InsufficientLiquidity {
        /// The output's index in the intent.
        output: usize,
        /// The minimum asked.
        min: Amount,
        /// The most the best route (or split) delivers now, net of fees and gas.
        best: Amount,
    },
    /// An input is too small to pay for the gas of its leg.
    #[error("input {input} is too small: gas alone costs {gas} of it")]
    AmountTooSmall {
        /// The input's index in the intent.
        input: usize,
        /// The gas cost, in the input's token.
        gas: Amount,
    },
    /// An arithmetic overflow.
    #[error("arithmetic overflow computing {what}")]
    Overflow {
        /// What was being computed.
        what: &'static str,
    },
    /// The liquidity snapshot is inconsistent.
    #[error("invalid liquidity snapshot: {reason}")]
    InvalidSnapshot {
        /// What is wrong.
        reason: String,
    },
    /// A set of steps breaks one of the rules [`crate::Plan::new`] enforces.
    #[error("invalid plan: step {step}: {rule}")]
    InvalidPlan {
        /// The step at fault.
        step: StepId,
        /// The rule broken.
        rule: String,
    },
}

/// What [`PlanError::InsufficientInventory`] reports (boxed: it is the largest error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryShortfall {
    /// The inventory token.
    pub asset: Asset,
    /// What the fill needs.
    pub needed: Amount,
    /// What the solver holds (less what earlier legs of the intent promised).
    pub available: Amount,
    /// The largest input amount (of the intent's input) that fits.
    pub max_input: Amount,
}

impl PlanError {
    /// The machine-readable code of this error, stable across releases.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidIntent { .. } => "invalid_intent",
            Self::ZeroAmount { .. }
            | Self::AmountOutOfRange { .. }
            | Self::AmountTooSmall { .. } => "amount_out_of_range",
            Self::UnknownChain { .. } => "unknown_chain",
            Self::UnknownToken { .. } => "unknown_token",
            Self::DeadlinePassed { .. } => "deadline_passed",
            Self::DeadlineTooSoon { .. } => "deadline_too_soon",
            Self::NoRoute { .. } => "no_route",
            Self::InsufficientInventory(_) | Self::InsufficientLiquidity { .. } => {
                "insufficient_liquidity"
            }
            Self::Overflow { .. } => "amount_out_of_range",
            Self::InvalidSnapshot { .. } | Self::InvalidPlan { .. } => "internal",
        }
    }
}
