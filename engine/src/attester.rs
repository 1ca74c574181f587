//! The attester: signs "order X was filled by F" (and cancels) for the origin settlers. On real
//! networks this role belongs to a bridge or an oracle; here it is a trait with a local-key
//! implementation.

use alloy::primitives::{Address, Bytes};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolStruct;
use baton_adapters::contracts::{Cancel, Fill};
use baton_planner::Order;

use crate::error::{EngineError, Result};

/// Signs attestations the origin settlers accept.
pub trait Attester: Send + Sync {
    /// `Fill(orderId, filler)` under `order`'s settler domain.
    fn fill(&self, order: &Order, filler: Address) -> Result<Bytes>;
    /// `Cancel(orderId)` under `order`'s settler domain.
    fn cancel(&self, order: &Order) -> Result<Bytes>;
}

/// An attester holding its key locally.
pub struct LocalAttester(pub PrivateKeySigner);

impl LocalAttester {
    fn sign(&self, order: &Order, what: &impl SolStruct) -> Result<Bytes> {
        let domain = baton_planner::order::domain(order.chain(), order.order().originSettler);
        let sig = baton_adapters::abi::sign_hash(&self.0, what.eip712_signing_hash(&domain))
            .map_err(|e| EngineError::Corrupt(format!("attesting: {e}")))?;
        Ok(Bytes::from(sig.as_bytes().to_vec()))
    }
}

impl Attester for LocalAttester {
    fn fill(&self, order: &Order, filler: Address) -> Result<Bytes> {
        self.sign(
            order,
            &Fill {
                orderId: order.id().0,
                filler,
            },
        )
    }

    fn cancel(&self, order: &Order) -> Result<Bytes> {
        self.sign(
            order,
            &Cancel {
                orderId: order.id().0,
            },
        )
    }
}
