//! The attester's tests: its rules on sim chains (a test bed below), and its HTTP API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

mod api;
mod rules;

use std::sync::Arc;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolStruct, SolValue};
use baton_adapters::attestation::OriginSettlerAt;
use baton_adapters::devnet::{ATTESTERS, SOLVER, USER, dev_attester_set, dev_signer};
use baton_adapters::port::{ChainAdapter, Fees, Op, TxRequest, TxStatus};
use baton_adapters::sim::{SimAdapter, SimChain, SimConfig};
use baton_attester::wire::{CancelRequest, FillRequest};
use baton_attester::{Attester, AttesterChain};
use baton_planner::order::{self, BatonOrderData, Call, GaslessCrossChainOrder, Input, Output};
use baton_planner::{ChainId, OrderId};

const GENESIS: u64 = 1_900_000_000;
const FEES: Fees = Fees {
    gas_limit: 600_000,
    max_fee_per_gas: 50_000_000_000,
    max_priority_fee_per_gas: 1_000_000_000,
};
/// The attester's confirmation rule in the bed.
const CONFIRMATIONS: u64 = 3;

/// Two sim chains, a user with USDC on the origin, a solver with USDC on the destination, and an
/// attester (dev account 7) following both.
pub struct Bed {
    pub origin: SimChain,
    pub dest: SimChain,
    pub usdc_o: Address,
    pub usdc_d: Address,
    pub user: PrivateKeySigner,
    pub solver_o: SimAdapter,
    pub solver_d: SimAdapter,
    pub attester: Arc<Attester>,
}

/// An order as signed and opened.
pub struct Opened {
    pub order: GaslessCrossChainOrder,
    pub id: OrderId,
    pub output: Output,
    pub calls: Vec<Call>,
}

impl Bed {
    pub async fn new() -> Self {
        let origin = SimChain::new(SimConfig::new(ChainId(1001), dev_attester_set(), GENESIS));
        let dest = SimChain::new(SimConfig::new(ChainId(1002), dev_attester_set(), GENESIS));
        let usdc_o = origin.add_token("USDC");
        let usdc_d = dest.add_token("USDC");
        let user = dev_signer(USER);
        let solver = dev_signer(SOLVER);
        origin.mint(usdc_o, user.address(), U256::from(1_000_000_000u64));
        dest.mint(usdc_d, solver.address(), U256::from(1_000_000_000u64));
        let key = dev_signer(ATTESTERS[0]);
        let chains = [&origin, &dest]
            .map(|c| AttesterChain::new(Arc::new(c.adapter(key.clone())), CONFIRMATIONS))
            .to_vec();
        let bed = Self {
            solver_o: origin.adapter(solver.clone()),
            solver_d: dest.adapter(solver),
            attester: Arc::new(Attester::in_memory(key, chains).await.unwrap()),
            origin,
            dest,
            usdc_o,
            usdc_d,
            user,
        };
        let user_o = bed.origin.adapter(bed.user.clone());
        let approve = |token, spender| Op::Approve {
            token,
            spender,
            amount: U256::MAX,
        };
        bed.send(&user_o, approve(usdc_o, bed.origin.settlers().origin))
            .await;
        bed.send(
            &bed.solver_d,
            approve(usdc_d, bed.dest.settlers().destination),
        )
        .await;
        bed
    }

    /// Sends `op` as `from`, mines a block, and returns whether it succeeded (and why not).
    pub async fn run(&self, from: &SimAdapter, op: Op) -> Result<(), String> {
        let tx = from.prepare(TxRequest::new(op, FEES)).await.unwrap();
        from.broadcast(&tx).await.unwrap();
        let chain = if from.chain_id() == self.origin.chain_id() {
            &self.origin
        } else {
            &self.dest
        };
        chain.mine(1);
        match from.status(&tx, None).await.unwrap() {
            TxStatus::Included(i) if i.success => Ok(()),
            TxStatus::Included(i) => Err(i.revert_reason.unwrap_or_default()),
            other => Err(format!("{other:?}")),
        }
    }

    async fn send(&self, from: &SimAdapter, op: Op) {
        self.run(from, op)
            .await
            .expect("the setup's transactions succeed");
    }

    /// An order of 1,000 USDC for at least 990 USDC to `recipient` on the destination (with
    /// `calls`), fill deadline `fill_in` seconds ahead, signed by the user and opened by the
    /// solver.
    pub async fn open(&self, nonce: u64, fill_in: u64, calls: Vec<Call>) -> Opened {
        let now = self.origin.timestamp();
        let output = Output {
            token: self.usdc_d.into_word(),
            amount: U256::from(990u64),
            recipient: Address::repeat_byte(0xbe).into_word(),
            chainId: U256::from(self.dest.chain_id().0),
        };
        let data = BatonOrderData {
            intentId: B256::from(U256::from(nonce)),
            inputs: vec![Input {
                token: self.usdc_o,
                amount: U256::from(1_000u64),
                chainId: U256::from(self.origin.chain_id().0),
            }],
            outputs: vec![output.clone()],
            calls: calls.clone(),
        };
        let settler = self.origin.settlers().origin;
        let order = GaslessCrossChainOrder {
            originSettler: settler,
            user: self.user.address(),
            nonce: U256::from(nonce),
            originChainId: U256::from(self.origin.chain_id().0),
            openDeadline: (now + 3_600) as u32,
            fillDeadline: (now + fill_in) as u32,
            orderDataType: order::order_data_type(),
            orderData: data.abi_encode().into(),
        };
        let id = order.eip712_signing_hash(&order::domain(self.origin.chain_id(), settler));
        let signature = self.user.sign_hash_sync(&id).unwrap().as_bytes();
        self.send(
            &self.solver_o,
            Op::Open {
                order: order.clone(),
                signature: Bytes::from(signature.to_vec()),
            },
        )
        .await;
        Opened {
            order,
            id: OrderId(id),
            output,
            calls,
        }
    }

    /// Fills `o` as the solver, delivering `output` and running `calls` (the order's own, or
    /// tampered ones).
    pub async fn fill(&self, o: &Opened, output: Output, calls: Vec<Call>) -> Result<(), String> {
        let op = Op::Fill {
            order_id: o.id,
            output_index: 0,
            output,
            calls,
            fill_deadline: o.order.fillDeadline,
        };
        self.run(&self.solver_d, op).await
    }

    pub fn fill_request(&self, o: &Opened) -> FillRequest {
        FillRequest {
            order: o.order.clone(),
            filled_as: None,
            filler: self.solver_d.account(),
        }
    }

    pub fn cancel_request(&self, o: &Opened, early: Option<&PrivateKeySigner>) -> CancelRequest {
        CancelRequest {
            order: o.order.clone(),
            filled_as: None,
            early: early.map(|k| {
                let digest = self.at().cancel_request_hash(o.id);
                Bytes::from(k.sign_hash_sync(&digest).unwrap().as_bytes().to_vec())
            }),
        }
    }

    pub fn at(&self) -> OriginSettlerAt {
        OriginSettlerAt {
            chain: self.origin.chain_id(),
            settler: self.origin.settlers().origin,
        }
    }
}
