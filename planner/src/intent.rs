//! The intent: what a user gives, what they must receive, and by when.

use std::collections::BTreeSet;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol_types::SolStruct;

use crate::amount::Amount;
use crate::error::{PlanError, Result};
use crate::ids::{Asset, ChainId, IntentId};
use crate::order::{self, BatonIntent, BatonOrderData, Order};

/// The most inputs, or outputs, one intent may name.
pub const MAX_LEGS: usize = 8;

/// Something the user gives: `amount` of `asset`, pulled into the origin escrow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// The token and its chain.
    pub asset: Asset,
    /// How much, in base units.
    pub amount: Amount,
}

/// Something the user must receive: at least `min_amount` of `asset` to `recipient`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// The token and its chain.
    pub asset: Asset,
    /// The least the recipient must get, in base units.
    pub min_amount: Amount,
    /// Who receives it.
    pub recipient: Address,
    /// A call the destination settler makes after the transfer, if any.
    pub call: Option<DestinationCall>,
}

/// A call made on the destination after an output is delivered (e.g. a vault deposit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestinationCall {
    /// The contract called.
    pub target: Address,
    /// The calldata.
    pub data: Bytes,
}

/// A checked intent. Construct it with [`Intent::new`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    user: Address,
    nonce: U256,
    open_deadline: u32,
    fill_deadline: u32,
    inputs: Vec<Input>,
    outputs: Vec<Output>,
    id: IntentId,
}

impl Intent {
    /// Checks and builds an intent.
    ///
    /// Rules: 1 to [`MAX_LEGS`] inputs and outputs; no zero amount and none above
    /// [`Amount::MAX_INTENT`]; no asset given twice, none both given and asked on the same chain;
    /// `open_deadline ≤ fill_deadline`; user and recipients are not the zero address.
    /// Whether chains and tokens exist, and whether deadlines are ahead, is checked against a
    /// liquidity snapshot when planning.
    pub fn new(
        user: Address,
        nonce: U256,
        open_deadline: u32,
        fill_deadline: u32,
        inputs: Vec<Input>,
        outputs: Vec<Output>,
    ) -> Result<Self> {
        let invalid = |reason: String| Err(PlanError::InvalidIntent { reason });
        if user.is_zero() {
            return invalid("the user is the zero address".into());
        }
        if inputs.is_empty() || inputs.len() > MAX_LEGS {
            return invalid(format!(
                "an intent names 1 to {MAX_LEGS} inputs, this one {}",
                inputs.len()
            ));
        }
        if outputs.is_empty() || outputs.len() > MAX_LEGS {
            return invalid(format!(
                "an intent names 1 to {MAX_LEGS} outputs, this one {}",
                outputs.len()
            ));
        }
        if open_deadline > fill_deadline {
            return invalid(format!(
                "the open deadline {open_deadline} is after the fill deadline {fill_deadline}"
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, input) in inputs.iter().enumerate() {
            check_amount(input.amount, || format!("input {i}"))?;
            if !seen.insert(input.asset) {
                return invalid(format!("input {i} names {} a second time", input.asset));
            }
        }
        for (j, output) in outputs.iter().enumerate() {
            check_amount(output.min_amount, || format!("output {j}"))?;
            if output.recipient.is_zero() {
                return invalid(format!("output {j} has the zero address as recipient"));
            }
            if seen.contains(&output.asset) {
                return invalid(format!(
                    "output {j} asks for {}, which is also given",
                    output.asset
                ));
            }
        }
        let mut intent = Self {
            user,
            nonce,
            open_deadline,
            fill_deadline,
            inputs,
            outputs,
            id: IntentId(B256::ZERO),
        };
        intent.id = IntentId(intent.sol().eip712_hash_struct());
        Ok(intent)
    }

    /// The intent id: the EIP-712 struct hash of [`BatonIntent`].
    pub fn id(&self) -> IntentId {
        self.id
    }
    /// Who gives the inputs and signs the orders.
    pub fn user(&self) -> Address {
        self.user
    }
    /// The user's nonce (the same on every origin settler of this intent).
    pub fn nonce(&self) -> U256 {
        self.nonce
    }
    /// Unix seconds by which every order must be opened.
    pub fn open_deadline(&self) -> u32 {
        self.open_deadline
    }
    /// Unix seconds by which every output must be filled.
    pub fn fill_deadline(&self) -> u32 {
        self.fill_deadline
    }
    /// What the user gives.
    pub fn inputs(&self) -> &[Input] {
        &self.inputs
    }
    /// What the user must receive.
    pub fn outputs(&self) -> &[Output] {
        &self.outputs
    }

    /// The origin chains, ascending: one order each.
    pub fn origin_chains(&self) -> Vec<ChainId> {
        let set: BTreeSet<ChainId> = self.inputs.iter().map(|i| i.asset.chain).collect();
        set.into_iter().collect()
    }

    /// The ERC-7683 orders of this intent, one per origin chain in ascending chain order (the first
    /// is the lead order the fills name). `settler` gives each origin chain's settler address.
    pub fn orders(&self, settler: impl Fn(ChainId) -> Option<Address>) -> Result<Vec<Order>> {
        let sol = self.sol();
        self.origin_chains()
            .into_iter()
            .map(|chain| {
                let settler = settler(chain).ok_or(PlanError::UnknownChain { chain })?;
                let data = BatonOrderData {
                    intentId: self.id.0,
                    inputs: self
                        .inputs
                        .iter()
                        .filter(|i| i.asset.chain == chain)
                        .map(sol_input)
                        .collect(),
                    outputs: sol.outputs.clone(),
                    calls: sol.calls.clone(),
                };
                Ok(Order::new(
                    chain,
                    settler,
                    self.user,
                    self.nonce,
                    (self.open_deadline, self.fill_deadline),
                    &data,
                ))
            })
            .collect()
    }

    fn sol(&self) -> BatonIntent {
        BatonIntent {
            user: self.user,
            nonce: self.nonce,
            openDeadline: self.open_deadline,
            fillDeadline: self.fill_deadline,
            inputs: self.inputs.iter().map(sol_input).collect(),
            outputs: self
                .outputs
                .iter()
                .map(|o| order::Output {
                    token: o.asset.token.0.into_word(),
                    amount: o.min_amount.raw(),
                    recipient: o.recipient.into_word(),
                    chainId: U256::from(o.asset.chain.0),
                })
                .collect(),
            calls: self
                .outputs
                .iter()
                .enumerate()
                .filter_map(|(j, o)| {
                    o.call.as_ref().map(|c| order::Call {
                        outputIndex: j as u32,
                        target: c.target,
                        data: c.data.clone(),
                    })
                })
                .collect(),
        }
    }
}

fn sol_input(i: &Input) -> order::Input {
    order::Input {
        token: i.asset.token.0,
        amount: i.amount.raw(),
        chainId: U256::from(i.asset.chain.0),
    }
}

fn check_amount(amount: Amount, what: impl Fn() -> String) -> Result<()> {
    if amount.is_zero() {
        return Err(PlanError::ZeroAmount { what: what() });
    }
    if amount > Amount::MAX_INTENT {
        return Err(PlanError::AmountOutOfRange {
            what: what(),
            amount,
            max: Amount::MAX_INTENT,
        });
    }
    Ok(())
}
