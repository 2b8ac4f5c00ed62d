//! The one money type (`rust_decimal::Decimal`, USD) and its rounding rules, each
//! named after what it is for. The host uses the same functions, so policy and host
//! agree to the cent.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::model::Rates;

/// Seconds in a minute, as a decimal.
const SECONDS_PER_MINUTE: Decimal = Decimal::from_parts(60, 0, 0, false, 0);

/// The cost of `seconds` at `rate` USD per minute: `seconds × rate / 60`, rounded
/// to 4 decimal places, midpoint away from zero (SPEC §4: 61 premium seconds cost
/// 0.1627). `None` on overflow.
pub fn usage_cost(seconds: i64, rate: Decimal) -> Option<Decimal> {
    let cost = Decimal::from(seconds)
        .checked_mul(rate)?
        .checked_div(SECONDS_PER_MINUTE)?;
    Some(cost.round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero))
}

/// Round up to whole cents: a refill never falls short of its target.
pub fn whole_cents_up(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, RoundingStrategy::ToPositiveInfinity)
}

/// Round to the nearest whole cent, midpoint away from zero: the price of a bundle
/// of minutes.
pub fn nearest_cent(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Whether the amount has no fraction of a cent.
pub fn is_whole_cents(amount: Decimal) -> bool {
    amount.round_dp_with_strategy(2, RoundingStrategy::ToZero) == amount
}

/// The price of `basic` and `premium` whole minutes at `rates`, in whole cents
/// (R7: 100 basic + 50 premium at 0.09 / 0.16 = 17.00). `None` on overflow.
pub fn allocation_price(
    basic_minutes: i64,
    premium_minutes: i64,
    rates: &Rates,
) -> Option<Decimal> {
    let basic = Decimal::from(basic_minutes).checked_mul(rates.basic)?;
    let premium = Decimal::from(premium_minutes).checked_mul(rates.premium)?;
    Some(nearest_cent(basic.checked_add(premium)?))
}

/// Whole minutes that `credit` buys at `rate` (0 for a non-positive rate).
pub fn minutes_bought(credit: Decimal, rate: Decimal) -> i64 {
    if rate <= Decimal::ZERO || credit <= Decimal::ZERO {
        return 0;
    }
    credit
        .checked_div(rate)
        .map(|minutes| minutes.floor())
        .and_then(|minutes| i64::try_from(minutes).ok())
        .unwrap_or(i64::MAX)
}

/// Split a decimal into the contract's `(mantissa, scale)`; `None` when the
/// mantissa does not fit 64 bits.
pub fn to_parts(value: Decimal) -> Option<(i64, u8)> {
    let mantissa = i64::try_from(value.mantissa()).ok()?;
    let scale = u8::try_from(value.scale()).ok()?;
    Some((mantissa, scale))
}

/// Build a decimal from the contract's `(mantissa, scale)`; `None` for a scale
/// over 28.
pub fn from_parts(mantissa: i64, scale: u8) -> Option<Decimal> {
    Decimal::try_from_i128_with_scale(i128::from(mantissa), u32::from(scale)).ok()
}

/// Format money for people and reports: at least two decimals, no trailing zeros
/// beyond them (`17.00`, `0.1627`, `-3.50`).
pub fn display(amount: Decimal) -> alloc::string::String {
    use alloc::string::{String, ToString};
    let mut value = amount.normalize();
    if value.scale() < 2 {
        value.rescale(2);
    }
    // Digits by hand when the mantissa fits 64 bits: `Decimal`'s own formatting
    // divides 96-bit numbers, which a wasm policy pays for in fuel.
    let Ok(mantissa) = i64::try_from(value.mantissa()) else {
        return value.to_string();
    };
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = mantissa.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let scale = value.scale() as usize;
    let mut text = String::with_capacity(24);
    if mantissa < 0 {
        text.push('-');
    }
    let digits = &digits[at..];
    let whole = digits.len().saturating_sub(scale);
    if whole == 0 {
        text.push('0');
    } else {
        text.extend(digits[..whole].iter().map(|digit| char::from(*digit)));
    }
    text.push('.');
    for _ in digits.len()..scale {
        text.push('0');
    }
    text.extend(digits[whole..].iter().map(|digit| char::from(*digit)));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn usage_cost_rounds_to_four_places_midpoint_away_from_zero() {
        assert_eq!(usage_cost(61, d("0.16")), Some(d("0.1627")));
        assert_eq!(usage_cost(60, d("0.09")), Some(d("0.09")));
        assert_eq!(usage_cost(1, d("0.09")), Some(d("0.0015")));
    }

    #[test]
    fn whole_cents_up_never_falls_short() {
        assert_eq!(whole_cents_up(d("12.3401")), d("12.35"));
        assert_eq!(whole_cents_up(d("12.34")), d("12.34"));
        assert_eq!(whole_cents_up(d("-0.005")), d("0.00"));
    }

    #[test]
    fn allocation_price_matches_the_spec_example() {
        let rates = Rates {
            basic: d("0.09"),
            premium: d("0.16"),
        };
        assert_eq!(display(allocation_price(100, 50, &rates).unwrap()), "17.00");
    }

    #[test]
    fn display_shows_at_least_cents_and_no_trailing_zeros_beyond() {
        for (value, shown) in [
            ("17", "17.00"),
            ("0.1627", "0.1627"),
            ("-3.5", "-3.50"),
            ("-0.0015", "-0.0015"),
            ("0", "0.00"),
            ("1000.10", "1000.10"),
            ("12.3400", "12.34"),
            (
                "79228162514264337593543950.335",
                "79228162514264337593543950.335",
            ),
        ] {
            assert_eq!(display(d(value)), shown, "{value}");
        }
    }

    #[test]
    fn whole_cents_detects_fractions() {
        assert!(is_whole_cents(d("10.10")));
        assert!(is_whole_cents(d("10")));
        assert!(!is_whole_cents(d("10.001")));
    }

    #[test]
    fn parts_round_trip() {
        let value = d("-123.4567");
        let (mantissa, scale) = to_parts(value).unwrap();
        assert_eq!(from_parts(mantissa, scale), Some(value));
        assert_eq!(from_parts(1, 29), None);
    }

    #[test]
    fn minutes_bought_floors() {
        assert_eq!(minutes_bought(d("1.00"), d("0.16")), 6);
        assert_eq!(minutes_bought(d("1.00"), d("0")), 0);
    }
}
