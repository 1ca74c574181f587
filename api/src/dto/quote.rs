//! `POST /v1/quotes`: the request (an intent with tokens by symbol or address and amounts as
//! decimal strings) and the quote (the plan, its price and timing, and the orders to sign), with
//! their conversions from and to the planner's types.

use std::collections::BTreeMap;

use alloy::primitives::U256;
use baton_engine::liquidity::Venue;
use baton_planner::spec::{CallSpec, DeadlineSpec, InputSpec, IntentSpec, OutputSpec};
use baton_planner::{Amount, ChainId, LiquiditySnapshot, Plan};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::known_token;
use crate::dto::wire;
use crate::error::{ApiError, Code};

/// A deadline: unix seconds (`{"at": 1767225600}`) or seconds from now (`{"in": 300}`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Deadline {
    /// Unix seconds.
    At(u32),
    /// Seconds after now (the chains' clock).
    In(u32),
}

/// What the user gives.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InputRequest {
    /// The chain id.
    pub chain: u64,
    /// The token: its symbol (`USDC`) or address.
    #[schema(min_length = 1, max_length = 64)]
    pub token: String,
    /// Base units, as a decimal string (from 1 to 2^128 − 1).
    #[schema(pattern = "^[0-9]{1,39}$")]
    pub amount: String,
}

/// A call the destination settler makes after delivering an output.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallRequest {
    /// The contract called.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub target: String,
    /// Calldata, `0x` hex.
    #[schema(pattern = "^0x([0-9a-fA-F]{2})*$")]
    pub data: String,
}

/// What the user wants delivered.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputRequest {
    /// The chain id.
    pub chain: u64,
    /// The token: its symbol or address.
    #[schema(min_length = 1, max_length = 64)]
    pub token: String,
    /// The least the recipient must receive, base units, as a decimal string (from 1 to
    /// 2^128 − 1).
    #[schema(pattern = "^[0-9]{1,39}$")]
    pub min_amount: String,
    /// Who receives it.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub recipient: String,
    /// A call after delivery.
    #[serde(default)]
    pub call: Option<CallRequest>,
}

/// An intent to quote: the same shape as the files in `fixtures/intents/`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntentRequest {
    /// A label (not signed).
    #[serde(default)]
    pub name: String,
    /// A description (not signed).
    #[serde(default)]
    pub description: String,
    /// The user: who signs, and whose inputs are escrowed.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub user: String,
    /// The order nonce (a decimal uint256); without it the server picks a random one.
    #[serde(default)]
    #[schema(pattern = "^[0-9]{1,78}$")]
    pub nonce: Option<String>,
    /// By when the orders must be opened.
    pub open_deadline: Deadline,
    /// By when the outputs must be delivered.
    pub fill_deadline: Deadline,
    /// What the user gives.
    #[schema(min_items = 1, max_items = 8)]
    pub inputs: Vec<InputRequest>,
    /// What the user wants.
    #[schema(min_items = 1, max_items = 8)]
    pub outputs: Vec<OutputRequest>,
}

/// One order for the user to sign.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderToSign {
    /// Its origin chain.
    pub chain: u64,
    /// The order id: the EIP-712 digest the user signs.
    pub order_id: String,
    /// The order as EIP-712 typed data, for `eth_signTypedData_v4` (viem `signTypedData`,
    /// `cast wallet sign --data`) unchanged.
    #[schema(value_type = Object)]
    pub typed_data: serde_json::Value,
    /// The order itself (`typed_data.message`): what `POST /v1/intents` takes back with the
    /// signature.
    #[schema(value_type = Object)]
    pub order: serde_json::Value,
}

/// What the plan promises for one output.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct QuotedOutput {
    /// The chain.
    pub chain: u64,
    /// The token's symbol.
    pub token: String,
    /// Who receives it.
    pub recipient: String,
    /// The user's minimum.
    pub min_amount: String,
    /// What the routes deliver at current reserves, net of fees and gas.
    pub expected_amount: String,
    /// What the fill delivers at least (the slippage bound).
    pub guaranteed_amount: String,
}

/// What one input pays.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct InputFees {
    /// The chain.
    pub chain: u64,
    /// The token's symbol.
    pub token: String,
    /// The input amount.
    pub amount: String,
    /// The solver's fee, in the input token.
    pub solver_fee: String,
    /// Gas, in the input token.
    pub gas_fee: String,
}

/// One step of the plan.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PlannedStep {
    /// Its id.
    pub id: u32,
    /// The chain it acts on.
    pub chain: u64,
    /// What it does.
    pub action: String,
    /// The steps it waits for.
    pub depends_on: Vec<u32>,
    /// Whether it is the pivot (after it the saga only moves forward).
    pub pivot: bool,
    /// How it is undone before the pivot (`refund`, `swap-back`), if it can be.
    pub compensation: Option<String>,
}

/// A quote: the plan, its price and timing, and the orders to sign.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Quote {
    /// The intent id (and saga id, once submitted).
    pub intent_id: String,
    /// The user.
    pub user: String,
    /// The order nonce.
    pub nonce: String,
    /// Unix seconds.
    pub open_deadline: u32,
    /// Unix seconds.
    pub fill_deadline: u32,
    /// The orders to sign, one per origin chain.
    pub orders: Vec<OrderToSign>,
    /// What each output gets.
    pub outputs: Vec<QuotedOutput>,
    /// What each input pays.
    pub fees: Vec<InputFees>,
    /// Gas per chain, in wei.
    pub gas_wei: BTreeMap<u64, String>,
    /// The plan's steps.
    pub steps: Vec<PlannedStep>,
    /// The critical path: step ids, first to last.
    pub critical_path: Vec<u32>,
    /// Blocks on the critical path.
    pub critical_path_blocks: u64,
    /// Expected seconds from submission to delivery (the critical path).
    pub eta_secs: u64,
    /// The least time, in seconds from `quoted_at`, a fill deadline can leave with the chains
    /// idle: the critical path, or the fill's start plus a block for it to land and the solver's
    /// fill margin (`fill-margin-blocks`), whichever is later; less is refused with
    /// `deadline_too_soon`. Busy chains need more (`capacity` at submission says how much).
    pub min_fill_secs: u64,
    /// The chains' clock when the quote was made, unix seconds.
    pub quoted_at: u64,
}

impl IntentRequest {
    /// Checks the request against the venues and turns it into an intent spec (the domain's).
    pub(crate) fn into_spec(self, venues: &[Venue]) -> Result<IntentSpec, ApiError> {
        let counts = [self.inputs.len(), self.outputs.len()];
        if counts.iter().any(|n| !(1..=8).contains(n)) {
            return Err(ApiError::new(
                Code::InvalidRequest,
                "an intent has 1 to 8 inputs and 1 to 8 outputs",
            ));
        }
        let nonce = match &self.nonce {
            Some(n) if !wire::is_decimal(n, 78) => {
                return Err(ApiError::new(
                    Code::InvalidRequest,
                    format!("nonce must be 1 to 78 decimal digits; got {n:?}"),
                ));
            }
            Some(n) => n.parse::<U256>().map_err(|_| {
                ApiError::new(
                    Code::InvalidIntent,
                    format!("nonce must be a uint256 (below 2^256); got {n:?}"),
                )
            })?,
            None => (U256::from(fastrand::u64(..)) << 64) | U256::from(fastrand::u64(..)),
        };
        let inputs = self
            .inputs
            .iter()
            .enumerate()
            .map(|(i, input)| {
                let what = format!("inputs[{i}]");
                Ok(InputSpec {
                    chain: ChainId(input.chain),
                    token: known_token(venues, &what, input.chain, &input.token)?,
                    amount: parse_amount(&format!("{what}.amount"), &input.amount)?,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        let outputs = self
            .outputs
            .iter()
            .enumerate()
            .map(|(i, output)| {
                let what = format!("outputs[{i}]");
                let call = match &output.call {
                    Some(c) => Some(CallSpec {
                        target: wire::address(&format!("{what}.call.target"), &c.target)?,
                        data: wire::bytes(&format!("{what}.call.data"), &c.data)?,
                    }),
                    None => None,
                };
                Ok(OutputSpec {
                    chain: ChainId(output.chain),
                    token: known_token(venues, &what, output.chain, &output.token)?,
                    min_amount: parse_amount(&format!("{what}.min_amount"), &output.min_amount)?,
                    recipient: wire::address(&format!("{what}.recipient"), &output.recipient)?,
                    call,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        let deadline = |d: Deadline| match d {
            Deadline::At(t) => DeadlineSpec::At(t),
            Deadline::In(s) => DeadlineSpec::In(s),
        };
        Ok(IntentSpec {
            name: self.name,
            description: self.description,
            user: wire::address("user", &self.user)?,
            nonce,
            open_deadline: deadline(self.open_deadline),
            fill_deadline: deadline(self.fill_deadline),
            inputs,
            outputs,
            expect: None,
        })
    }
}

fn parse_amount(what: &str, s: &str) -> Result<Amount, ApiError> {
    let out_of_range = || {
        ApiError::new(
            Code::AmountOutOfRange,
            format!(
                "{what} must be a whole number of base units from 1 to 2^128 − 1, written as a decimal string; got {s:?}"
            ),
        )
    };
    if !wire::is_decimal(s, 39) {
        return Err(ApiError::new(
            Code::InvalidRequest,
            format!("{what} must be 1 to 39 decimal digits (base units); got {s:?}"),
        ));
    }
    let raw: U256 = s.parse().map_err(|_| out_of_range())?;
    if raw.is_zero() || raw > Amount::MAX_INTENT.raw() {
        return Err(out_of_range());
    }
    Ok(Amount::new(raw))
}

impl Quote {
    /// The quote of `plan`, its tokens named from `snapshot`.
    pub(crate) fn of(plan: &Plan, snapshot: &LiquiditySnapshot, min_fill_secs: u64) -> Self {
        let intent = plan.intent();
        let symbol = |asset: baton_planner::Asset| {
            snapshot
                .token(asset)
                .map_or_else(|_| asset.token.0.to_string(), |t| t.symbol.clone())
        };
        let fees = plan.fees();
        Quote {
            intent_id: intent.id().0.to_string(),
            user: intent.user().to_string(),
            nonce: intent.nonce().to_string(),
            open_deadline: intent.open_deadline(),
            fill_deadline: intent.fill_deadline(),
            orders: plan
                .orders()
                .iter()
                .map(|o| OrderToSign {
                    chain: o.chain().0,
                    order_id: o.id().0.to_string(),
                    typed_data: serde_json::to_value(o.typed_data()).unwrap_or_default(),
                    order: serde_json::to_value(o.order()).unwrap_or_default(),
                })
                .collect(),
            outputs: intent
                .outputs()
                .iter()
                .zip(plan.outputs())
                .map(|(o, q)| QuotedOutput {
                    chain: o.asset.chain.0,
                    token: symbol(o.asset),
                    recipient: o.recipient.to_string(),
                    min_amount: q.min.to_string(),
                    expected_amount: q.expected.to_string(),
                    guaranteed_amount: q.guaranteed.to_string(),
                })
                .collect(),
            fees: intent
                .inputs()
                .iter()
                .enumerate()
                .map(|(i, input)| InputFees {
                    chain: input.asset.chain.0,
                    token: symbol(input.asset),
                    amount: input.amount.to_string(),
                    solver_fee: fees.solver.get(i).copied().unwrap_or_default().to_string(),
                    gas_fee: fees.gas.get(i).copied().unwrap_or_default().to_string(),
                })
                .collect(),
            gas_wei: fees
                .gas_wei
                .iter()
                .map(|(c, w)| (c.0, w.to_string()))
                .collect(),
            steps: plan
                .steps()
                .iter()
                .map(|s| PlannedStep {
                    id: s.id.0,
                    chain: s.chain.0,
                    action: s.action.name().to_owned(),
                    depends_on: s.depends_on.iter().map(|d| d.0).collect(),
                    pivot: s.action.is_pivot(),
                    compensation: s.compensation.as_ref().map(|c| {
                        match c {
                            baton_planner::Compensation::Refund { .. } => "refund",
                            baton_planner::Compensation::SwapBack { .. } => "swap-back",
                        }
                        .to_owned()
                    }),
                })
                .collect(),
            critical_path: plan.critical_path().steps.iter().map(|s| s.0).collect(),
            critical_path_blocks: plan.critical_path().blocks,
            eta_secs: plan.critical_path().seconds(),
            min_fill_secs,
            quoted_at: snapshot.timestamp,
        }
    }
}
