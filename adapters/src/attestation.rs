//! What attesters sign and how a quorum of their signatures is put together: the typed data the
//! origin settler checks in `settle` and `refundWithCancel`.
//!
//! A fill attestation is the EIP-712 struct `Fill(bytes32 orderId, address filler, Delivery[]
//! deliveries)` and a cancel `Cancel(bytes32 orderId)`, both under the order's origin settler domain
//! (its chain and address: a signature for one order, chain or settler is worth nothing for
//! another). A quorum is at least the settler's threshold of signatures over one digest by distinct
//! members of its attester set, ordered by signer address, ascending.

use alloy::primitives::{Address, B256, Bytes, Signature, U256};
use alloy::sol_types::SolStruct;
use baton_planner::{ChainId, OrderId};
use serde::{Deserialize, Serialize};

use crate::contracts::{self, Cancel, Fill};

/// What an attester vouches was delivered for one output of an order: `amount` of `token` to
/// `recipient` by the destination settler `settler` on `chain`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Delivery {
    /// Which output of the order.
    pub output_index: u32,
    /// The destination chain.
    pub chain: ChainId,
    /// The destination settler that made the delivery.
    pub settler: Address,
    /// The token delivered.
    pub token: Address,
    /// How much (at least the order's minimum).
    pub amount: U256,
    /// To whom.
    pub recipient: Address,
}

impl Delivery {
    fn sol(&self) -> contracts::Delivery {
        contracts::Delivery {
            outputIndex: self.output_index,
            chainId: U256::from(self.chain.0),
            settler: self.settler,
            token: self.token,
            amount: self.amount,
            recipient: self.recipient,
        }
    }

    /// From the origin settler's ABI type (`settle`'s calldata); a chain id beyond `u64` becomes
    /// the largest one, which no delivery is signed for.
    pub fn from_abi(d: &contracts::OriginSettler::Delivery) -> Self {
        Self {
            output_index: d.outputIndex,
            chain: ChainId(d.chainId.saturating_to()),
            settler: d.settler,
            token: d.token,
            amount: d.amount,
            recipient: d.recipient,
        }
    }

    /// As the origin settler's ABI type, for `settle`'s calldata.
    pub fn abi(&self) -> contracts::OriginSettler::Delivery {
        contracts::OriginSettler::Delivery {
            outputIndex: self.output_index,
            chainId: U256::from(self.chain.0),
            settler: self.settler,
            token: self.token,
            amount: self.amount,
            recipient: self.recipient,
        }
    }
}

/// An origin settler: the domain every attestation for its orders is signed under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OriginSettlerAt {
    /// Its chain.
    pub chain: ChainId,
    /// Its address.
    pub settler: Address,
}

impl OriginSettlerAt {
    /// The origin settler `order` names, on its origin chain.
    pub fn of(order: &baton_planner::Order) -> Self {
        Self {
            chain: order.chain(),
            settler: order.order().originSettler,
        }
    }

    /// The EIP-712 signing hash of `Fill(order, filler, deliveries)`.
    pub fn fill_hash(&self, order: OrderId, filler: Address, deliveries: &[Delivery]) -> B256 {
        Fill {
            orderId: order.0,
            filler,
            deliveries: deliveries.iter().map(Delivery::sol).collect(),
        }
        .eip712_signing_hash(&self.domain())
    }

    /// The EIP-712 signing hash of `Cancel(order)`.
    pub fn cancel_hash(&self, order: OrderId) -> B256 {
        Cancel { orderId: order.0 }.eip712_signing_hash(&self.domain())
    }

    /// The EIP-712 signing hash of `CancelRequest(order)`: what an order's opener signs to ask
    /// attesters for a cancel before the fill deadline.
    pub fn cancel_request_hash(&self, order: OrderId) -> B256 {
        contracts::CancelRequest { orderId: order.0 }.eip712_signing_hash(&self.domain())
    }

    fn domain(&self) -> alloy::sol_types::Eip712Domain {
        baton_planner::order::domain(self.chain, self.settler)
    }
}

/// An origin settler's attester set: who may sign, and how many must.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttesterSet {
    /// The members.
    pub members: Vec<Address>,
    /// How many distinct members' signatures settle or cancel an order.
    pub threshold: usize,
}

impl AttesterSet {
    /// The signatures among `signatures` that are by members and over `digest`, one per member,
    /// ordered as the settler wants them (signer ascending) — `None` while fewer than the
    /// threshold. Malformed signatures and outsiders are left out.
    pub fn quorum(
        &self,
        digest: B256,
        signatures: impl IntoIterator<Item = Bytes>,
    ) -> Option<Vec<Bytes>> {
        let mut by_signer = std::collections::BTreeMap::new();
        for sig in signatures {
            let Some(signer) = signer_of(digest, &sig) else {
                continue;
            };
            if self.members.contains(&signer) {
                by_signer.entry(signer).or_insert(sig);
            }
        }
        (self.threshold > 0 && by_signer.len() >= self.threshold)
            .then(|| by_signer.into_values().take(self.threshold).collect())
    }
}

/// Who signed `digest` with the 65-byte `signature`, if it is a well-formed low-s signature.
pub fn signer_of(digest: B256, signature: &[u8]) -> Option<Address> {
    if signature.len() != 65 {
        return None;
    }
    let sig = Signature::from_raw(signature).ok()?;
    if sig.normalize_s().is_some() {
        return None; // high s: the settler refuses malleable signatures
    }
    crate::signers::recover(digest, sig).ok()
}
