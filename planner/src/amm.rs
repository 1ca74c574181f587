//! Constant-product AMM maths (x·y = k with a fee), exact in integers.
//!
//! The same formula as Uniswap V2 and baton's `Pool` contract, with the fee in basis points:
//! `out = in·(10000−fee)·R_out / (R_in·10000 + in·(10000−fee))`, rounded down.

use alloy::primitives::U256;

use crate::amount::mul_div;

const BPS: u64 = 10_000;

/// The output of swapping `amount_in` into a pool holding `reserve_in` and `reserve_out`,
/// charging `fee_bps`. `None` when the maths overflows or the fee is 100 % or more.
pub fn amount_out(
    amount_in: U256,
    reserve_in: U256,
    reserve_out: U256,
    fee_bps: u32,
) -> Option<U256> {
    let keep = BPS.checked_sub(u64::from(fee_bps)).filter(|k| *k > 0)?;
    let in_with_fee = amount_in.checked_mul(U256::from(keep))?;
    let den = reserve_in
        .checked_mul(U256::from(BPS))?
        .checked_add(in_with_fee)?;
    if den.is_zero() {
        return Some(U256::ZERO);
    }
    mul_div(in_with_fee, reserve_out, den)
}

/// The least input that yields at least `amount_out`; `None` when the pool cannot give that much.
pub fn amount_in(
    amount_out: U256,
    reserve_in: U256,
    reserve_out: U256,
    fee_bps: u32,
) -> Option<U256> {
    let keep = BPS.checked_sub(u64::from(fee_bps)).filter(|k| *k > 0)?;
    if amount_out >= reserve_out {
        return None;
    }
    let num = reserve_in.checked_mul(amount_out)?;
    let den = (reserve_out - amount_out).checked_mul(U256::from(keep))?;
    // ⌊num·10000/den⌋ + 1, as Uniswap V2's getAmountIn: always enough, at most one unit more.
    mul_div(num, U256::from(BPS), den)?.checked_add(U256::from(1u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(v: u128) -> U256 {
        U256::from(v)
    }

    #[test]
    fn matches_hand_computed_values() {
        // 100 in, 1000/1000 reserves, 0.3 %: 100·9970·1000 / (1000·10000 + 100·9970)
        // = 997_000_000 / 10_997_000 = 90.66… → 90.
        assert_eq!(amount_out(u(100), u(1000), u(1000), 30), Some(u(90)));
        // No fee: 100·1000/(1000+100) = 90.90… → 90; 500 in: 500·2000/1500 = 666.6… → 666.
        assert_eq!(amount_out(u(100), u(1000), u(1000), 0), Some(u(90)));
        assert_eq!(amount_out(u(500), u(1000), u(2000), 0), Some(u(666)));
        // 1,000 USDC (6 decimals) into 1,000,000 USDC / 500 WETH:
        // 1e9·9970·5e20 / (1e12·10000 + 1e9·9970) = 498_003_490_519_951_608 wei (hand: 4.98e17).
        assert_eq!(
            amount_out(
                u(1_000_000_000),
                u(1_000_000_000_000),
                u(500_000_000_000_000_000_000),
                30
            ),
            Some(u(498_003_490_519_951_608))
        );
        assert_eq!(amount_out(u(0), u(1000), u(1000), 30), Some(u(0)));
        assert_eq!(amount_out(u(1), u(1000), u(1000), 10_000), None);
    }

    #[test]
    fn amount_in_is_the_least_sufficient_input() {
        for (out, rin, rout) in [
            (90u128, 1000u128, 1000u128),
            (1, 10, 10),
            (4_000, 1_000_000, 9_000),
        ] {
            let need = amount_in(u(out), u(rin), u(rout), 30).unwrap_or_default();
            assert!(amount_out(need, u(rin), u(rout), 30).unwrap_or_default() >= u(out));
            assert!(amount_out(need - u(2), u(rin), u(rout), 30).unwrap_or_default() < u(out));
        }
        assert_eq!(amount_in(u(1000), u(1000), u(1000), 30), None);
    }
}
