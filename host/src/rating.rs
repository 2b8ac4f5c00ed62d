//! Usage rating (SPEC §4): included minutes, then purchased minutes, then the wallet.

use recharge_policy_sdk::model::{MinuteType, Rates};
use recharge_policy_sdk::money::usage_cost;
use rust_decimal::Decimal;
use thiserror::Error;

use crate::account::Account;

/// What rating one call took from an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rated {
    /// Seconds taken from the plan-included bucket.
    pub included_seconds: i64,
    /// Seconds taken from the purchased bucket.
    pub purchased_seconds: i64,
    /// Seconds paid from the wallet.
    pub wallet_seconds: i64,
    /// What the wallet paid.
    pub wallet_cost: Decimal,
}

/// Why a usage record could not be rated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RatingError {
    /// Seconds must be at least 1.
    #[error("seconds must be at least 1, got {0}")]
    NonPositiveSeconds(i64),
    /// The cost does not fit the money type.
    #[error("usage cost overflows")]
    Overflow,
}

/// Rate `seconds` of `minute_type` against the account and apply it. Only usage
/// takes the wallet below zero. (That a call id is rated once is the store's
/// business: see [`crate::Store::call_rated`].)
pub fn rate_call(
    account: &mut Account,
    seconds: i64,
    minute_type: MinuteType,
    rates: &Rates,
) -> Result<Rated, RatingError> {
    if seconds < 1 {
        return Err(RatingError::NonPositiveSeconds(seconds));
    }
    let (included, purchased) = match minute_type {
        MinuteType::Basic => (account.included_basic_seconds, account.basic_seconds),
        MinuteType::Premium => (account.included_premium_seconds, account.premium_seconds),
    };
    let included_seconds = seconds.min(included.max(0));
    let purchased_seconds = (seconds - included_seconds).min(purchased.max(0));
    let wallet_seconds = seconds - included_seconds - purchased_seconds;
    let wallet_cost = if wallet_seconds > 0 {
        usage_cost(wallet_seconds, rates.of(minute_type)).ok_or(RatingError::Overflow)?
    } else {
        Decimal::ZERO
    };
    let balance = account
        .balance
        .checked_sub(wallet_cost)
        .ok_or(RatingError::Overflow)?;
    let (included_bucket, purchased_bucket) = match minute_type {
        MinuteType::Basic => (
            &mut account.included_basic_seconds,
            &mut account.basic_seconds,
        ),
        MinuteType::Premium => (
            &mut account.included_premium_seconds,
            &mut account.premium_seconds,
        ),
    };
    *included_bucket -= included_seconds;
    *purchased_bucket -= purchased_seconds;
    account.balance = balance;
    Ok(Rated {
        included_seconds,
        purchased_seconds,
        wallet_seconds,
        wallet_cost,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use recharge_policy_sdk::model::AccountKind;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn rates() -> Rates {
        Rates {
            basic: d("0.09"),
            premium: d("0.16"),
        }
    }

    fn account() -> Account {
        Account::new("u".into(), AccountKind::User, None)
    }

    #[test]
    fn included_then_purchased_then_wallet() {
        let mut account = account();
        account.included_premium_seconds = 30;
        account.premium_seconds = 20;
        account.balance = d("1.00");
        let rated = rate_call(&mut account, 111, MinuteType::Premium, &rates()).unwrap();
        assert_eq!(
            (
                rated.included_seconds,
                rated.purchased_seconds,
                rated.wallet_seconds
            ),
            (30, 20, 61)
        );
        assert_eq!(rated.wallet_cost, d("0.1627"));
        assert_eq!(account.balance, d("0.8373"));
        assert_eq!(
            (account.included_premium_seconds, account.premium_seconds),
            (0, 0)
        );
    }

    #[test]
    fn other_type_buckets_are_not_used() {
        let mut account = account();
        account.included_basic_seconds = 600;
        rate_call(&mut account, 60, MinuteType::Premium, &rates()).unwrap();
        assert_eq!(account.included_basic_seconds, 600);
        assert_eq!(account.balance, d("-0.16"));
    }

    #[test]
    fn zero_seconds_is_an_error() {
        assert_eq!(
            rate_call(&mut account(), 0, MinuteType::Basic, &rates()),
            Err(RatingError::NonPositiveSeconds(0))
        );
    }
}
