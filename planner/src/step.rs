//! Steps: one action on one chain, its dependencies, its timing and its compensation.

use alloy::primitives::{Address, U256};

use crate::amount::Amount;
use crate::ids::{Asset, ChainId, OrderId, StepId};
use crate::intent::DestinationCall;

/// One action on one chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Its id: its index in the plan.
    pub id: StepId,
    /// The chain it acts on (for an attestation: the chain whose fill is attested).
    pub chain: ChainId,
    /// What it does.
    pub action: Action,
    /// Steps that must be done (at their confirmations) before this one starts.
    pub depends_on: Vec<StepId>,
    /// When it may run and how long it takes.
    pub timing: Timing,
    /// How to undo it if the saga fails before the pivot; `None` for steps without effect and for
    /// the pivot and what follows it.
    pub compensation: Option<Compensation>,
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `openFor` on the origin settler: the user's signed order pulls `inputs` into escrow.
    Open {
        /// The order opened.
        order: OrderId,
        /// What the escrow takes from the user.
        inputs: Vec<(Asset, Amount)>,
    },
    /// Wait until an earlier step is final on its chain. No effect of its own.
    WaitFinality {
        /// The step waited on.
        of: StepId,
    },
    /// Swap solver inventory through a pool on the destination.
    Swap {
        /// The pool contract.
        pool: Address,
        /// What goes in.
        token_in: Asset,
        /// What comes out.
        token_out: Asset,
        /// Expected input (the previous swap's or the inventory's amount).
        amount_in: Amount,
        /// Expected output at the snapshot's reserves.
        expected_out: Amount,
        /// The swap reverts below this.
        min_out: Amount,
    },
    /// `fill` on the destination settler: deliver `amount` to the recipient. The pivot.
    Fill {
        /// The order filled (the intent's lead order).
        order: OrderId,
        /// The output's index in the intent.
        output: usize,
        /// The token delivered.
        token: Asset,
        /// The amount delivered: at least the output's minimum.
        amount: Amount,
        /// Who receives it.
        recipient: Address,
        /// The call made after the transfer, if any.
        call: Option<DestinationCall>,
    },
    /// The attester signs that a fill is final (off-chain; on real networks a bridge or oracle).
    Attest {
        /// The fill step attested.
        fill: StepId,
    },
    /// `settle` on the origin settler: the escrow repays the solver.
    Settle {
        /// The order settled.
        order: OrderId,
    },
}

impl Action {
    /// Whether the step changes state anywhere (moves funds, changes a settler).
    pub fn has_effect(&self) -> bool {
        !matches!(self, Self::WaitFinality { .. } | Self::Attest { .. })
    }

    /// Whether the step is a pivot: once it succeeds, the saga only moves forward.
    pub fn is_pivot(&self) -> bool {
        matches!(self, Self::Fill { .. })
    }

    /// A short name for displays and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Open { .. } => "open",
            Self::WaitFinality { .. } => "wait-finality",
            Self::Swap { .. } => "swap",
            Self::Fill { .. } => "fill",
            Self::Attest { .. } => "attest",
            Self::Settle { .. } => "settle",
        }
    }
}

/// How to undo a step before the pivot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compensation {
    /// `refund` on the origin settler: the escrow returns the inputs to the user. Allowed from the
    /// fill deadline on, or at once with an attested cancel.
    Refund {
        /// The order refunded.
        order: OrderId,
        /// Unix seconds from which the refund needs no attested cancel (the fill deadline).
        not_before: u64,
    },
    /// Swap the output back into the input on the same pool.
    SwapBack {
        /// The pool contract.
        pool: Address,
        /// What goes in (the original swap's output).
        token_in: Asset,
        /// What comes back (the original swap's input).
        token_out: Asset,
        /// The reverse swap reverts below this: the original input less two pool fees and the
        /// slippage bound.
        min_out: Amount,
    },
}

impl Compensation {
    /// Its name: `refund` or `swap-back`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Refund { .. } => "refund",
            Self::SwapBack { .. } => "swap-back",
        }
    }
}

/// When a step may run and how long it takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Confirmations before dependents may start, the block it is in counting as the first (as
    /// wallets count them: 0 and 1 mean at inclusion, 2 one block later).
    pub confirmations: u32,
    /// The step waits while the chain's gas price is above this (wei per gas); zero for off-chain
    /// steps.
    pub fee_ceiling: U256,
    /// Unix seconds before which the step must not start, if any.
    pub earliest_start: Option<u64>,
    /// Blocks the step is expected to take on its chain, confirmations included.
    pub blocks: u64,
    /// Off-chain time it is expected to take, milliseconds (attestation latency).
    pub latency_ms: u64,
}
