//! The ERC-7683 order a user signs, and its EIP-712 hashes.
//!
//! baton's orders are ERC-7683 `GaslessCrossChainOrder`s whose `orderData` is the ABI encoding of
//! [`BatonOrderData`] and whose `orderDataType` is that struct's EIP-712 type hash. The user signs the
//! order as EIP-712 typed data under the origin settler's domain
//! (`name: "BatonOriginSettler", version: "1", chainId: origin chain, verifyingContract: origin settler`);
//! the order id is that signing hash. The Solidity settlers compute the same bytes; the test vectors in
//! `tests/it/eip712.rs` were produced by an independent implementation (Python `eth_account`).
//!
//! An intent with inputs on several chains becomes one order per origin chain. Every order carries the
//! intent id (the EIP-712 struct hash of [`BatonIntent`]), its own chain's inputs, and all outputs; the
//! destination fills are made against the first order (the lead), and the attester vouches for the fill
//! of the whole intent to every order's settler.

use alloy::dyn_abi::TypedData;
use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::{Eip712Domain, SolStruct, SolValue, eip712_domain};

use crate::ids::{ChainId, OrderId};

#[allow(missing_docs, unreachable_pub)]
mod sol_types {
    use alloy::sol;
    use serde::{Deserialize, Serialize};

    sol! {
        /// ERC-7683's gasless order: what the user signs.
        #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
        struct GaslessCrossChainOrder {
            address originSettler;
            address user;
            uint256 nonce;
            uint256 originChainId;
            uint32 openDeadline;
            uint32 fillDeadline;
            bytes32 orderDataType;
            bytes orderData;
        }

        /// What the user gives: `amount` of `token` on `chainId`, pulled into the origin escrow.
        #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
        struct Input {
            address token;
            uint256 amount;
            uint256 chainId;
        }

        /// ERC-7683's `Output`: at least `amount` of `token` to `recipient` on `chainId`.
        #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
        struct Output {
            bytes32 token;
            uint256 amount;
            bytes32 recipient;
            uint256 chainId;
        }

        /// A call the destination settler makes after delivering output `outputIndex`
        /// (e.g. a deposit into a vault for the recipient).
        #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
        struct Call {
            uint32 outputIndex;
            address target;
            bytes data;
        }

        /// baton's `orderData`.
        #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
        struct BatonOrderData {
            bytes32 intentId;
            Input[] inputs;
            Output[] outputs;
            Call[] calls;
        }

        /// The whole intent, across every origin chain; its EIP-712 struct hash is the intent id.
        #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
        struct BatonIntent {
            address user;
            uint256 nonce;
            uint32 openDeadline;
            uint32 fillDeadline;
            Input[] inputs;
            Output[] outputs;
            Call[] calls;
        }
    }
}

pub use sol_types::{BatonIntent, BatonOrderData, Call, GaslessCrossChainOrder, Input, Output};

/// The EIP-712 domain name of baton's origin settler.
pub const DOMAIN_NAME: &str = "BatonOriginSettler";
/// The EIP-712 domain version of baton's origin settler.
pub const DOMAIN_VERSION: &str = "1";

/// The EIP-712 domain under which orders for `settler` on `chain` are signed.
pub fn domain(chain: ChainId, settler: Address) -> Eip712Domain {
    eip712_domain! {
        name: DOMAIN_NAME,
        version: DOMAIN_VERSION,
        chain_id: chain.0,
        verifying_contract: settler,
    }
}

/// `orderDataType`: the EIP-712 type hash of [`BatonOrderData`].
pub fn order_data_type() -> B256 {
    alloy::primitives::keccak256(BatonOrderData::eip712_encode_type().as_bytes())
}

/// One signed-to-be ERC-7683 order: the order, its origin chain and its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    order: GaslessCrossChainOrder,
    chain: ChainId,
    id: OrderId,
}

impl Order {
    /// Builds the order for `data` on `chain`, settled by `settler`.
    pub(crate) fn new(
        chain: ChainId,
        settler: Address,
        user: Address,
        nonce: U256,
        deadlines: (u32, u32),
        data: &BatonOrderData,
    ) -> Self {
        let order = GaslessCrossChainOrder {
            originSettler: settler,
            user,
            nonce,
            originChainId: U256::from(chain.0),
            openDeadline: deadlines.0,
            fillDeadline: deadlines.1,
            orderDataType: order_data_type(),
            orderData: data.abi_encode().into(),
        };
        let id = OrderId(order.eip712_signing_hash(&domain(chain, settler)));
        Self { order, chain, id }
    }

    /// An order as a user signed it, received from outside (an attester's request): its origin
    /// chain and id computed from its fields. `None` when its origin chain id does not fit a
    /// chain id.
    pub fn from_signed(order: GaslessCrossChainOrder) -> Option<Self> {
        let chain = ChainId(u64::try_from(order.originChainId).ok()?);
        let id = OrderId(order.eip712_signing_hash(&domain(chain, order.originSettler)));
        Some(Self { order, chain, id })
    }

    /// The ERC-7683 order itself.
    pub fn order(&self) -> &GaslessCrossChainOrder {
        &self.order
    }

    /// The origin chain.
    pub fn chain(&self) -> ChainId {
        self.chain
    }

    /// The order id: the EIP-712 signing hash, which is also the digest the user signs.
    pub fn id(&self) -> OrderId {
        self.id
    }

    /// The EIP-712 digest the user signs (equal to the order id).
    pub fn signing_hash(&self) -> B256 {
        self.id.0
    }

    /// The order as EIP-712 typed data, ready for `eth_signTypedData_v4` (viem's `signTypedData`,
    /// `cast wallet sign --data`) unchanged.
    pub fn typed_data(&self) -> TypedData {
        TypedData::from_struct(
            &self.order,
            Some(domain(self.chain, self.order.originSettler)),
        )
    }

    /// The decoded `orderData`.
    pub fn data(&self) -> Option<BatonOrderData> {
        BatonOrderData::abi_decode(&self.order.orderData).ok()
    }
}
