//! Token quantities: [`Amount`], a checked `U256` in a token's base units.

use std::fmt;
use std::str::FromStr;

use alloy::primitives::{U256, U512};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{PlanError, Result};

/// A quantity of one token in its base units (wei for an 18-decimal token).
///
/// Money is never a float. Every arithmetic operation is checked: an overflow is
/// a [`PlanError::Overflow`], never a silent wrap. Serialized as a decimal string so JSON
/// clients keep every digit; parsed from a decimal or `0x` hex string.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(U256);

impl Amount {
    /// Nothing.
    pub const ZERO: Self = Self(U256::ZERO);
    /// The largest amount an intent may name: 2^128 − 1 base units, far above any real token
    /// supply. Larger inputs are rejected as absurd rather than planned.
    pub const MAX_INTENT: Self = Self(U256::from_limbs([u64::MAX, u64::MAX, 0, 0]));

    /// Wraps a raw `U256`.
    pub const fn new(raw: U256) -> Self {
        Self(raw)
    }

    /// The raw `U256`.
    pub const fn raw(self) -> U256 {
        self.0
    }

    /// Whether this is zero.
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// `self + rhs`, or an overflow error naming `what`.
    pub fn checked_add(self, rhs: Self, what: &'static str) -> Result<Self> {
        self.0
            .checked_add(rhs.0)
            .map(Self)
            .ok_or(PlanError::Overflow { what })
    }

    /// `self − rhs`, or an overflow error naming `what` when `rhs > self`.
    pub fn checked_sub(self, rhs: Self, what: &'static str) -> Result<Self> {
        self.0
            .checked_sub(rhs.0)
            .map(Self)
            .ok_or(PlanError::Overflow { what })
    }

    /// `self − rhs`, or zero when `rhs > self`.
    pub fn saturating_sub(self, rhs: Self) -> Self {
        Self(self.0.saturating_sub(rhs.0))
    }

    /// `⌊self × num / den⌋`, exact (the product is taken in 512 bits), or an overflow error
    /// naming `what` when the result does not fit or `den` is zero.
    pub fn mul_div(self, num: U256, den: U256, what: &'static str) -> Result<Self> {
        mul_div(self.0, num, den)
            .map(Self)
            .ok_or(PlanError::Overflow { what })
    }

    /// `⌈self × num / den⌉`, like [`Amount::mul_div`] but rounding up.
    pub fn mul_div_ceil(self, num: U256, den: U256, what: &'static str) -> Result<Self> {
        mul_div_ceil(self.0, num, den)
            .map(Self)
            .ok_or(PlanError::Overflow { what })
    }

    /// Sums amounts, failing on overflow.
    pub fn sum<I: IntoIterator<Item = Self>>(items: I, what: &'static str) -> Result<Self> {
        items
            .into_iter()
            .try_fold(Self::ZERO, |acc, a| acc.checked_add(a, what))
    }
}

/// `⌊a × b / den⌋` in exact integer maths; `None` on overflow or a zero denominator.
pub(crate) fn mul_div(a: U256, b: U256, den: U256) -> Option<U256> {
    if den.is_zero() {
        return None;
    }
    if let Some(p) = a.checked_mul(b) {
        return Some(p / den);
    }
    let wide: U512 = a.widening_mul(b);
    U256::checked_from_limbs_slice(&(wide / U512::from(den)).into_limbs())
}

/// `⌈a × b / den⌉` in exact integer maths; `None` on overflow or a zero denominator.
pub(crate) fn mul_div_ceil(a: U256, b: U256, den: U256) -> Option<U256> {
    if den.is_zero() {
        return None;
    }
    let wide: U512 = a.widening_mul(b);
    let den = U512::from(den);
    let q = wide / den;
    let q = if (q * den) == wide {
        q
    } else {
        q + U512::from(1u8)
    };
    U256::checked_from_limbs_slice(&q.into_limbs())
}

impl From<u128> for Amount {
    fn from(v: u128) -> Self {
        Self(U256::from(v))
    }
}

impl From<U256> for Amount {
    fn from(v: U256) -> Self {
        Self(v)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Why a string is not an amount.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{input}` is not an amount: write a non-negative integer in base units, decimal or 0x-hex"
)]
pub struct ParseAmountError {
    input: String,
}

impl FromStr for Amount {
    type Err = ParseAmountError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let t = s.trim();
        let bad = || ParseAmountError {
            input: s.chars().take(80).collect(),
        };
        if t.is_empty() || t.starts_with('-') || t.starts_with('+') {
            return Err(bad());
        }
        let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(hex) => U256::from_str_radix(hex, 16),
            None => U256::from_str_radix(t, 10),
        };
        parsed.map(Self).map_err(|_| bad())
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Int(u64),
        }
        match Repr::deserialize(d)? {
            Repr::Text(s) => s.parse().map_err(serde::de::Error::custom),
            Repr::Int(n) => Ok(Self(U256::from(n))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_is_checked() {
        let max = Amount::new(U256::MAX);
        assert!(max.checked_add(Amount::from(1), "x").is_err());
        assert!(Amount::ZERO.checked_sub(Amount::from(1), "x").is_err());
        assert_eq!(
            Amount::from(7).checked_sub(Amount::from(3), "x").ok(),
            Some(Amount::from(4))
        );
    }

    #[test]
    fn mul_div_is_exact_beyond_256_bits() {
        // (2^255 × 6) / 3 = 2^256 overflows; (2^255 × 2) / 4 = 2^254 fits although the product does not.
        let big = U256::from(1u8) << 255;
        assert!(mul_div(big, U256::from(6u8), U256::from(3u8)).is_none());
        assert_eq!(
            mul_div(big, U256::from(2u8), U256::from(4u8)),
            Some(U256::from(1u8) << 254)
        );
        assert_eq!(
            mul_div_ceil(U256::from(10u8), U256::from(1u8), U256::from(3u8)),
            Some(U256::from(4u8))
        );
        assert_eq!(mul_div(U256::from(1u8), U256::from(1u8), U256::ZERO), None);
    }

    #[test]
    fn parses_decimal_and_hex_and_rejects_junk() {
        assert_eq!("1000".parse::<Amount>().ok(), Some(Amount::from(1000)));
        assert_eq!("0x10".parse::<Amount>().ok(), Some(Amount::from(16)));
        for junk in ["", "-1", "1.5", "abc", "1e18"] {
            assert!(junk.parse::<Amount>().is_err(), "{junk}");
        }
        let json = serde_json::to_string(&Amount::from(5)).unwrap_or_default();
        assert_eq!(json, "\"5\"");
    }
}
