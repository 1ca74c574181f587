//! The API's request and response types (DTOs): what goes over the wire, with its OpenAPI schema,
//! converted from and to the domain's types at the boundary (`into_spec`, `From<engine type>`).
//! Handlers take and answer these; the engine's and the planner's types never reach the wire
//! directly, so they can change without changing the HTTP contract.

pub mod config;
pub mod intent;
pub mod operator;
pub mod quote;
pub mod saga;
pub mod webhook;

/// The patterns the request schemas state, and the strict parsers that hold the server to them: a
/// value the schema allows parses, one it does not is refused (no trimming, no optional prefix).
pub mod wire {
    use alloy::primitives::{Address, Bytes};

    use crate::error::{ApiError, Code};

    /// A 20-byte address: `0x` and 40 hex digits (any case).
    pub const ADDRESS: &str = "^0x[0-9a-fA-F]{40}$";
    /// Bytes: `0x` and an even number of hex digits.
    pub const HEX_BYTES: &str = "^0x([0-9a-fA-F]{2})*$";
    /// A 32-byte hash: `0x` and 64 hex digits.
    pub const HASH: &str = "^0x[0-9a-fA-F]{64}$";
    /// A quantity as JSON-RPC writes one: `0x` and 1 to 64 hex digits.
    pub const QUANTITY: &str = "^0x[0-9a-fA-F]{1,64}$";
    /// A 65-byte signature.
    pub const SIGNATURE: &str = "^0x[0-9a-fA-F]{130}$";
    /// An amount of base units: 1 to 39 decimal digits (values from 1 to 2^128 − 1 are served).
    pub const AMOUNT: &str = "^[0-9]{1,39}$";
    /// A uint256 in decimal: 1 to 78 digits.
    pub const DECIMAL_U256: &str = "^[0-9]{1,78}$";

    fn hex_digits(s: &str) -> Option<&str> {
        s.strip_prefix("0x")
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    /// `s` as an address, exactly as [`ADDRESS`] states.
    pub(crate) fn address(what: &str, s: &str) -> Result<Address, ApiError> {
        hex_digits(s)
            .filter(|h| h.len() == 40)
            .and_then(|_| s.parse().ok())
            .ok_or_else(|| {
                ApiError::new(
                    Code::InvalidRequest,
                    format!("{what} must be 0x and 40 hex digits; got {s:?}"),
                )
            })
    }

    /// `s` as bytes, exactly as [`HEX_BYTES`] states.
    pub(crate) fn bytes(what: &str, s: &str) -> Result<Bytes, ApiError> {
        hex_digits(s)
            .filter(|h| h.len() % 2 == 0)
            .and_then(|_| s.parse().ok())
            .ok_or_else(|| {
                ApiError::new(
                    Code::InvalidRequest,
                    format!("{what} must be 0x and an even number of hex digits"),
                )
            })
    }

    /// Whether `s` is 1 to `most` decimal digits.
    pub(crate) fn is_decimal(s: &str, most: usize) -> bool {
        (1..=most).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    }
}
