//! What the host accepts from its callers, checked before any policy sees it:
//! money in range and within the contract's precision, strict decimal syntax,
//! ids short enough for the keys derived from them, calls of a sane length,
//! times within 1970–9999. Scripts, the HTTP service and the platform itself use
//! these same rules.

use std::str::FromStr;

use recharge_policy_sdk::model::Timestamp;
use rust_decimal::Decimal;
use thiserror::Error;

/// The largest amount of money accepted anywhere, USD (one trillion).
pub const MAX_MONEY: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0);
/// The most decimal places an amount may have.
pub const MAX_MONEY_SCALE: u32 = 8;
/// The longest id (account, card, call) accepted, bytes.
pub const MAX_ID_BYTES: usize = 64;
/// The longest call accepted, seconds (seven days).
pub const MAX_CALL_SECONDS: i64 = 7 * 86_400;
/// The most minutes accepted in one command (included or allocated).
pub const MAX_MINUTES: i64 = 100_000_000;
/// The earliest time accepted: 1970-01-01T00:00:00Z.
pub const MIN_TIME: Timestamp = 0;
/// The latest time accepted: 9999-12-31T23:59:59.999Z.
pub const MAX_TIME: Timestamp = 253_402_300_799_999;

/// What is wrong with one input value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BadInput {
    /// Not a decimal number in plain notation.
    #[error("`{field}`: {text:?} is not a decimal number (digits, an optional minus and fraction)")]
    NotDecimal {
        /// The field.
        field: &'static str,
        /// What was given.
        text: String,
    },
    /// More than a trillion in magnitude.
    #[error("`{field}`: {value} is out of range (at most 1000000000000 in magnitude)")]
    MoneyOutOfRange {
        /// The field.
        field: &'static str,
        /// What was given.
        value: String,
    },
    /// More decimal places than money carries.
    #[error("`{field}`: {value} has more than 8 decimal places")]
    TooPrecise {
        /// The field.
        field: &'static str,
        /// What was given.
        value: String,
    },
    /// Negative where it may not be.
    #[error("`{field}` must not be negative")]
    Negative {
        /// The field.
        field: &'static str,
    },
    /// An empty id.
    #[error("`{field}` must not be empty")]
    EmptyId {
        /// The field.
        field: &'static str,
    },
    /// An id too long for the keys derived from it.
    #[error("`{field}` is {len} bytes long (at most 64)")]
    IdTooLong {
        /// The field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// An id with control characters.
    #[error("`{field}` must not contain control characters")]
    IdControl {
        /// The field.
        field: &'static str,
    },
    /// A call of no or too many seconds.
    #[error("`seconds`: {0} is out of range (1 to 604800, seven days)")]
    Seconds(i64),
    /// Too many minutes.
    #[error("`{field}`: {value} is out of range (0 to 100000000)")]
    Minutes {
        /// The field.
        field: &'static str,
        /// What was given.
        value: i64,
    },
    /// A time before 1970 or after 9999.
    #[error("`{field}`: {value} ms since the epoch is outside 1970-01-01 to 9999-12-31")]
    Time {
        /// The field.
        field: &'static str,
        /// What was given.
        value: Timestamp,
    },
}

/// Parse money in strict plain notation: an optional minus, digits, and an
/// optional `.` followed by digits. No plus sign, spaces, exponent,
/// underscores, or bare point at either end.
pub fn parse_money(field: &'static str, text: &str) -> Result<Decimal, BadInput> {
    let not_decimal = || BadInput::NotDecimal {
        field,
        text: text.chars().take(40).collect(),
    };
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|fraction| !digits(fraction)) {
        return Err(not_decimal());
    }
    let shown = || text.chars().take(40).collect::<String>();
    if whole.trim_start_matches('0').len() > 13 {
        return Err(BadInput::MoneyOutOfRange {
            field,
            value: shown(),
        });
    }
    if fraction.is_some_and(|fraction| fraction.len() > MAX_MONEY_SCALE as usize) {
        return Err(BadInput::TooPrecise {
            field,
            value: shown(),
        });
    }
    let value = Decimal::from_str(text).map_err(|_| not_decimal())?;
    check_money(field, value)
}

/// Check an amount already parsed: at most a trillion in magnitude, at most 8
/// decimal places.
pub fn check_money(field: &'static str, value: Decimal) -> Result<Decimal, BadInput> {
    if value.abs() > MAX_MONEY {
        return Err(BadInput::MoneyOutOfRange {
            field,
            value: value.to_string(),
        });
    }
    if value.scale() > MAX_MONEY_SCALE {
        return Err(BadInput::TooPrecise {
            field,
            value: value.to_string(),
        });
    }
    Ok(value)
}

/// [`check_money`], and not below zero.
pub fn check_amount(field: &'static str, value: Decimal) -> Result<Decimal, BadInput> {
    let value = check_money(field, value)?;
    if value.is_sign_negative() && !value.is_zero() {
        return Err(BadInput::Negative { field });
    }
    Ok(value)
}

/// Check an id: 1 to 64 bytes, no control characters.
pub fn check_id(field: &'static str, id: &str) -> Result<(), BadInput> {
    if id.is_empty() {
        return Err(BadInput::EmptyId { field });
    }
    if id.len() > MAX_ID_BYTES {
        return Err(BadInput::IdTooLong {
            field,
            len: id.len(),
        });
    }
    if id.chars().any(char::is_control) {
        return Err(BadInput::IdControl { field });
    }
    Ok(())
}

/// Check a call's length: 1 second to 7 days.
pub fn check_seconds(seconds: i64) -> Result<(), BadInput> {
    if !(1..=MAX_CALL_SECONDS).contains(&seconds) {
        return Err(BadInput::Seconds(seconds));
    }
    Ok(())
}

/// Check a number of minutes: 0 to 100,000,000.
pub fn check_minutes(field: &'static str, value: i64) -> Result<(), BadInput> {
    if !(0..=MAX_MINUTES).contains(&value) {
        return Err(BadInput::Minutes { field, value });
    }
    Ok(())
}

/// Check a time: within 1970-01-01 and 9999-12-31 (UTC).
pub fn check_time(field: &'static str, value: Timestamp) -> Result<(), BadInput> {
    if !(MIN_TIME..=MAX_TIME).contains(&value) {
        return Err(BadInput::Time { field, value });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_money_is_one_trillion() {
        assert_eq!(MAX_MONEY, Decimal::from(1_000_000_000_000_i64));
    }

    #[test]
    fn strict_money_syntax_takes_plain_decimals_only() {
        for good in ["10", "10.00", "-3.5", "0.00000001", "1000000000000"] {
            assert!(parse_money("amount", good).is_ok(), "{good}");
        }
        for bad in [
            "1_000", "1e2", "+10.00", " 10.00", "10.00 ", "10.", ".50", "", "-", "0x10", "١٠",
            "10,00", "--1", "NaN",
        ] {
            assert!(
                matches!(parse_money("amount", bad), Err(BadInput::NotDecimal { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn money_out_of_range_or_too_precise_is_named_as_such() {
        assert!(matches!(
            parse_money("amount", "9999999999999999999999999999"),
            Err(BadInput::MoneyOutOfRange { .. })
        ));
        assert!(matches!(
            parse_money("amount", "1000000000000.01"),
            Err(BadInput::MoneyOutOfRange { .. })
        ));
        assert!(matches!(
            parse_money("amount", "10.0000000000000000001"),
            Err(BadInput::TooPrecise { .. })
        ));
        let message = parse_money("amount", "10.0000000000000000001")
            .unwrap_err()
            .to_string();
        assert!(message.contains("`amount`"), "{message}");
    }

    #[test]
    fn ids_fit_the_keys_derived_from_them() {
        assert!(check_id("account", "alice").is_ok());
        assert!(check_id("account", &"a".repeat(64)).is_ok());
        assert!(matches!(
            check_id("account", &"a".repeat(300)),
            Err(BadInput::IdTooLong { len: 300, .. })
        ));
        assert!(matches!(
            check_id("account", ""),
            Err(BadInput::EmptyId { .. })
        ));
        assert!(matches!(
            check_id("card", "vi\nsa"),
            Err(BadInput::IdControl { .. })
        ));
    }

    #[test]
    fn calls_minutes_and_times_have_sane_bounds() {
        assert!(check_seconds(1).is_ok());
        assert!(check_seconds(MAX_CALL_SECONDS).is_ok());
        assert!(check_seconds(0).is_err());
        assert!(check_seconds(i64::MAX).is_err());
        assert!(check_minutes("basic", 0).is_ok());
        assert!(check_minutes("basic", -1).is_err());
        assert!(check_time("at", 0).is_ok());
        assert!(check_time("at", MAX_TIME).is_ok());
        assert!(check_time("at", -1).is_err());
        assert!(check_time("at", MAX_TIME + 1).is_err());
    }
}
