//! The one money type (`rust_decimal::Decimal`, USD) and its rounding rules, each
//! named after what it is for. The host uses the same functions, so policy and host
//! agree to the cent.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cmp::Ordering;

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
    if amount.scale() <= 2 {
        return amount;
    }
    // In 64 bits when the mantissa fits: `Decimal` rounds by 96-bit division.
    let Some((mantissa, scale)) = to_parts(amount) else {
        return amount.round_dp_with_strategy(2, RoundingStrategy::ToPositiveInfinity);
    };
    let cents = match POWERS_OF_TEN.get(usize::from(scale - 2)) {
        Some(&unit) => mantissa / unit + i64::from(mantissa % unit > 0),
        // Less than a cent either way: up to one cent, or zero.
        None => i64::from(mantissa > 0),
    };
    with_scale(cents, 2)
}

/// Round to the nearest whole cent, midpoint away from zero: the price of a bundle
/// of minutes.
pub fn nearest_cent(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Whether the amount has no fraction of a cent.
pub fn is_whole_cents(amount: Decimal) -> bool {
    if amount.scale() <= 2 {
        return true;
    }
    match to_parts(amount) {
        Some((mantissa, scale)) => POWERS_OF_TEN
            .get(usize::from(scale - 2))
            .map_or(mantissa == 0, |unit| mantissa % unit == 0),
        None => amount.round_dp_with_strategy(2, RoundingStrategy::ToZero) == amount,
    }
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
///
/// Reads the decimal's 32-bit words, as does [`from_parts`] to build one: the
/// 128-bit integers of `Decimal::mantissa` are emulated in wasm, at a cost in
/// fuel on every amount a policy reads or writes.
#[inline(always)]
pub fn to_parts(value: Decimal) -> Option<(i64, u8)> {
    let bytes = value.serialize();
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if word(12) != 0 {
        return None;
    }
    let magnitude = u64::from(word(4)) | u64::from(word(8)) << 32;
    let mantissa = if value.is_sign_negative() {
        0i64.checked_sub_unsigned(magnitude)?
    } else {
        i64::try_from(magnitude).ok()?
    };
    let scale = u8::try_from(value.scale()).ok()?;
    Some((mantissa, scale))
}

/// `a` against `b`, as `Decimal::cmp` orders them: in 64-bit integers when both
/// fit at their common scale (a decimal comparison rescales 96-bit numbers).
#[inline(always)]
pub fn compare(a: Decimal, b: Decimal) -> Ordering {
    match at_common_scale(a, b) {
        Some((a, b)) => a.cmp(&b),
        None => a.cmp(&b),
    }
}

/// Two amounts as integers at the larger of their scales, when both fit 64 bits
/// there: `(2.5, 0.125)` is `(2500, 125)`.
#[inline(always)]
pub fn at_common_scale(a: Decimal, b: Decimal) -> Option<(i64, i64)> {
    let ((a, a_scale), (b, b_scale)) = (to_parts(a)?, to_parts(b)?);
    let scale = a_scale.max(b_scale);
    Some((widen(a, scale - a_scale)?, widen(b, scale - b_scale)?))
}

/// A mantissa at `scale` digits from `from` digits, when `scale` is the larger
/// and the result fits 64 bits.
#[inline(always)]
pub fn rescaled(mantissa: i64, from: u8, scale: u8) -> Option<i64> {
    widen(mantissa, scale.checked_sub(from)?)
}

/// `mantissa × 10^digits`, if it fits 64 bits. Checked by division rather than
/// `checked_mul`, which wasm32 lowers to a 128-bit multiplication.
#[inline(always)]
fn widen(mantissa: i64, digits: u8) -> Option<i64> {
    if digits == 0 {
        return Some(mantissa);
    }
    // 10^digits has the odd factor 5^digits, so no product is exactly
    // `i64::MIN`: the bound is the same on both sides of zero.
    let factor = *POWERS_OF_TEN.get(usize::from(digits))?;
    (mantissa.unsigned_abs() <= (i64::MAX / factor) as u64).then(|| mantissa * factor)
}

/// 10^0 to 10^18, every power of ten an `i64` holds.
const POWERS_OF_TEN: [i64; 19] = {
    let mut powers = [1; 19];
    let mut at = 1;
    while at < powers.len() {
        powers[at] = powers[at - 1] * 10;
        at += 1;
    }
    powers
};

/// Build a decimal from the contract's `(mantissa, scale)`; `None` for a scale
/// over 28.
#[inline(always)]
pub fn from_parts(mantissa: i64, scale: u8) -> Option<Decimal> {
    let scale = u32::from(scale);
    (scale <= Decimal::MAX_SCALE).then(|| with_scale(mantissa, scale))
}

/// `mantissa × 10^-scale`, for a scale of at most 28.
#[inline(always)]
fn with_scale(mantissa: i64, scale: u32) -> Decimal {
    let magnitude = mantissa.unsigned_abs();
    Decimal::from_parts(
        magnitude as u32,
        (magnitude >> 32) as u32,
        0,
        mantissa < 0,
        scale,
    )
}

/// Format money for people and reports: at least two decimals, no trailing zeros
/// beyond them (`17.00`, `0.1627`, `-3.50`).
pub fn display(amount: Decimal) -> String {
    let mut text = Vec::with_capacity(24);
    write_display(&mut text, amount);
    // Digits, a sign and a point: ASCII.
    String::from_utf8(text).unwrap_or_default()
}

/// [`display`] as ASCII bytes appended to `out`, for text put together as bytes
/// and checked as UTF-8 once (pushing to a `String` checks every character).
pub fn write_display(out: &mut Vec<u8>, amount: Decimal) {
    // Digits by hand when the mantissa fits 64 bits: `Decimal`'s normalising and
    // formatting divide 96-bit numbers, which a wasm policy pays for in fuel.
    if let Some((mantissa, scale)) = to_parts(amount).and_then(at_least_cents) {
        return write_digits(out, mantissa, scale);
    }
    let mut value = amount.normalize();
    if value.scale() < 2 {
        value.rescale(2);
    }
    match to_parts(value) {
        Some((mantissa, scale)) => write_digits(out, mantissa, scale),
        None => out.extend_from_slice(value.to_string().as_bytes()),
    }
}

/// The same number with no trailing zeros beyond two decimals, and at least two
/// decimals; `None` if padding overflows.
fn at_least_cents((mut mantissa, mut scale): (i64, u8)) -> Option<(i64, u8)> {
    while scale > 2 && mantissa % 10 == 0 {
        mantissa /= 10;
        scale -= 1;
    }
    if scale < 2 {
        mantissa = widen(mantissa, 2 - scale)?;
        scale = 2;
    }
    Some((mantissa, scale))
}

/// `mantissa × 10^-scale` written out in full.
fn write_digits(out: &mut Vec<u8>, mantissa: i64, scale: u8) {
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
    let scale = usize::from(scale);
    if mantissa < 0 {
        out.push(b'-');
    }
    let digits = &digits[at..];
    let whole = digits.len().saturating_sub(scale);
    if whole == 0 {
        out.push(b'0');
    } else {
        out.extend_from_slice(&digits[..whole]);
    }
    out.push(b'.');
    for _ in digits.len()..scale {
        out.push(b'0');
    }
    out.extend_from_slice(&digits[whole..]);
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

    /// Decimals of every kind: small money, any 64-bit or 96-bit mantissa, any scale.
    fn decimals() -> impl proptest::strategy::Strategy<Value = Decimal> {
        use proptest::prelude::*;
        let mantissa = prop_oneof![
            -100_000i128..100_000,
            any::<i64>().prop_map(i128::from),
            -(1i128 << 96) + 1..(1i128 << 96),
            Just(0i128),
        ];
        (mantissa, 0u32..=28)
            .prop_map(|(mantissa, scale)| Decimal::from_i128_with_scale(mantissa, scale))
    }

    /// The same value and the same scale.
    fn same(a: Option<Decimal>, b: Option<Decimal>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => a == b && a.scale() == b.scale(),
            (a, b) => a == b,
        }
    }

    proptest::proptest! {
        #[test]
        fn integer_paths_agree_with_decimal(a in decimals(), b in decimals()) {
            proptest::prop_assert_eq!(compare(a, b), a.cmp(&b));
            proptest::prop_assert!(same(Some(whole_cents_up(a)), Some(a.round_dp_with_strategy(2, RoundingStrategy::ToPositiveInfinity))), "{a}");
            proptest::prop_assert_eq!(is_whole_cents(a), a.round_dp_with_strategy(2, RoundingStrategy::ToZero) == a);
            let parts = to_parts(a);
            proptest::prop_assert_eq!(parts, i64::try_from(a.mantissa()).ok().map(|mantissa| (mantissa, a.scale() as u8)));
            if let Some((mantissa, scale)) = parts {
                proptest::prop_assert!(same(from_parts(mantissa, scale), Some(a)));
            }
            let mut shown = a.normalize();
            if shown.scale() < 2 {
                shown.rescale(2);
            }
            proptest::prop_assert_eq!(display(a), shown.to_string());
        }
    }

    #[test]
    fn integer_paths_keep_decimal_scales() {
        assert_eq!(at_common_scale(d("2.5"), d("0.125")), Some((2500, 125)));
        assert_eq!(at_common_scale(d("1"), d("0.0000000000000000001")), None);
        assert_eq!(rescaled(25, 1, 3), Some(2500));
        assert_eq!(rescaled(25, 3, 1), None);
        assert_eq!(
            compare(d("10.00"), d("9.9999")),
            core::cmp::Ordering::Greater
        );
    }

    #[test]
    fn minutes_bought_floors() {
        assert_eq!(minutes_bought(d("1.00"), d("0.16")), 6);
        assert_eq!(minutes_bought(d("1.00"), d("0")), 0);
    }
}
