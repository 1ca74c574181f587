//! The wallet's side of a quote: each order of a `POST /v1/quotes` answer signed from its typed
//! data, as `eth_signTypedData_v4` signs it (not from baton's own hashing), gives the body of
//! `POST /v1/intents`. The CLI's `submit --sign-with-dev-key`, the demo and `baton bench intake`
//! sign with it.

use alloy::dyn_abi::TypedData;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use serde_json::{Value, json};

/// Why a quote could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The quote has no `orders` array.
    #[error("the quote has no orders")]
    NoOrders,
    /// An order's `typed_data` is not EIP-712 typed data.
    #[error("the quote's typed data does not parse")]
    TypedData(#[source] serde_json::Error),
    /// An order's typed data does not hash (a type it names is missing, a value does not fit).
    #[error("hashing the quote's typed data")]
    Hash(#[source] alloy::dyn_abi::Error),
    /// The signer failed.
    #[error(transparent)]
    Sign(#[from] alloy::signers::Error),
}

/// Signs every order of `quote` (a `POST /v1/quotes` answer) as its user would with
/// `eth_signTypedData_v4`: from the quote's typed data. Returns the body of `POST /v1/intents`.
pub fn sign_quote(quote: &Value, signer: &PrivateKeySigner) -> Result<Value, SignError> {
    let orders = quote["orders"].as_array().ok_or(SignError::NoOrders)?;
    let mut signed = Vec::new();
    for order in orders {
        let typed: TypedData =
            serde_json::from_value(order["typed_data"].clone()).map_err(SignError::TypedData)?;
        let digest = typed.eip712_signing_hash().map_err(SignError::Hash)?;
        let signature = signer.sign_hash_sync(&digest)?;
        signed.push(json!({
            "order": order["order"],
            "signature": format!("0x{}", alloy::primitives::hex::encode(signature.as_bytes())),
        }));
    }
    Ok(json!({ "orders": signed }))
}
