//! The ledger: every change the host makes to an account's money and minutes,
//! with its cause, appended in the same batch as the change. An account's
//! balance and minute buckets are the sums of its entries, so anyone can audit
//! where each cent came from (a charge's key) and went (a call's id).

use recharge_policy_sdk::model::Timestamp;
use rust_decimal::Decimal;

use crate::account::{Account, AccountId};

/// Why money or minutes moved.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Cause {
    /// A call was rated (its id).
    Call(String),
    /// A succeeded charge was credited (the key the gateway saw).
    Charge(String),
    /// Plan-included minutes were added.
    Included,
}

/// One change to an account's money and minutes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LedgerEntry {
    /// When.
    pub at: Timestamp,
    /// Whose.
    pub account: AccountId,
    /// Why.
    pub cause: Cause,
    /// Change of the wallet, USD.
    pub wallet: Decimal,
    /// Change of the plan-included basic seconds.
    pub included_basic_seconds: i64,
    /// Change of the plan-included premium seconds.
    pub included_premium_seconds: i64,
    /// Change of the purchased basic seconds.
    pub basic_seconds: i64,
    /// Change of the purchased premium seconds.
    pub premium_seconds: i64,
}

impl LedgerEntry {
    /// The entry of what changed in `after` since it held `before`.
    pub fn between(before: &Totals, after: &Account, cause: Cause, at: Timestamp) -> Self {
        LedgerEntry {
            at,
            account: after.id.clone(),
            cause,
            wallet: after.balance - before.wallet,
            included_basic_seconds: after.included_basic_seconds - before.included_basic_seconds,
            included_premium_seconds: after.included_premium_seconds
                - before.included_premium_seconds,
            basic_seconds: after.basic_seconds - before.basic_seconds,
            premium_seconds: after.premium_seconds - before.premium_seconds,
        }
    }
}

/// An account's money and minutes as its ledger entries add up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// The wallet.
    pub wallet: Decimal,
    /// Plan-included basic seconds.
    pub included_basic_seconds: i64,
    /// Plan-included premium seconds.
    pub included_premium_seconds: i64,
    /// Purchased basic seconds.
    pub basic_seconds: i64,
    /// Purchased premium seconds.
    pub premium_seconds: i64,
}

impl Totals {
    /// The sums of `entries` for `account`.
    pub fn of<'a>(account: &AccountId, entries: impl IntoIterator<Item = &'a LedgerEntry>) -> Self {
        let mut totals = Totals::default();
        for entry in entries
            .into_iter()
            .filter(|entry| &entry.account == account)
        {
            totals.wallet += entry.wallet;
            totals.included_basic_seconds += entry.included_basic_seconds;
            totals.included_premium_seconds += entry.included_premium_seconds;
            totals.basic_seconds += entry.basic_seconds;
            totals.premium_seconds += entry.premium_seconds;
        }
        totals
    }

    /// What an account record holds, in the same form.
    pub fn held(account: &Account) -> Self {
        Totals {
            wallet: account.balance,
            included_basic_seconds: account.included_basic_seconds,
            included_premium_seconds: account.included_premium_seconds,
            basic_seconds: account.basic_seconds,
            premium_seconds: account.premium_seconds,
        }
    }
}
