//! Accounts as the host keeps them: the truth the policy only reads through
//! capabilities.

use std::collections::BTreeMap;
use std::fmt;

use recharge_policy_sdk::model::{AccountKind, Snapshot, Status};
use rust_decimal::Decimal;

/// An account's id.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct AccountId(pub String);

impl AccountId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for AccountId {
    fn from(id: &str) -> Self {
        AccountId(id.to_owned())
    }
}

/// Which policy wrote a piece of per-account state: the default policy and each
/// tenant component keep their own, so a quarantined tenant's bytes never reach
/// the default policy. Shared, so handing it to every event costs no allocation.
pub type PolicyId = std::sync::Arc<str>;

/// An account and everything the host knows of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Account {
    /// The account's id.
    pub id: AccountId,
    /// What the account is.
    pub kind: AccountKind,
    /// The parent agency, for sub-accounts.
    pub parent: Option<AccountId>,
    /// The wallet in USD.
    pub balance: Decimal,
    /// Plan-included basic seconds left.
    pub included_basic_seconds: i64,
    /// Plan-included premium seconds left.
    pub included_premium_seconds: i64,
    /// Purchased basic seconds left.
    pub basic_seconds: i64,
    /// Purchased premium seconds left.
    pub premium_seconds: i64,
    /// Whether the account serves calls.
    pub status: Status,
    /// Ids of the saved cards, in the order they were added.
    pub cards: Vec<String>,
    /// Each policy's own state bytes for this account.
    pub(crate) policy_state: BTreeMap<PolicyId, Vec<u8>>,
    /// Each policy's watermark for this account: a balance it keeps beside its
    /// state and gets back with every usage event (the usage hot path).
    pub(crate) watermarks: BTreeMap<PolicyId, Decimal>,
    /// Bumped by every commit; guards against lost updates.
    pub(crate) version: u64,
}

impl Account {
    /// A new, empty, active account.
    pub fn new(id: AccountId, kind: AccountKind, parent: Option<AccountId>) -> Self {
        Account {
            id,
            kind,
            parent,
            balance: Decimal::ZERO,
            included_basic_seconds: 0,
            included_premium_seconds: 0,
            basic_seconds: 0,
            premium_seconds: 0,
            status: Status::Active,
            cards: Vec::new(),
            policy_state: BTreeMap::new(),
            watermarks: BTreeMap::new(),
            version: 0,
        }
    }

    /// The record's version: bumped by every commit that changes it.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// What `policy` (a policy's state id: `default`, `tenant:OWNER`) keeps for
    /// this account.
    pub fn policy_state(&self, policy: &str) -> Option<&[u8]> {
        self.policy_state.get(policy).map(Vec::as_slice)
    }

    /// Every policy's state for this account, by policy state id.
    pub fn policy_states(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.policy_state
            .iter()
            .map(|(policy, state)| (&**policy, state.as_slice()))
    }

    /// Every policy's watermark for this account, by policy state id.
    pub fn watermarks(&self) -> impl Iterator<Item = (&str, Decimal)> {
        self.watermarks
            .iter()
            .map(|(policy, watermark)| (&**policy, *watermark))
    }

    /// The watermark `policy` keeps for this account (the usage hot path).
    pub fn watermark(&self, policy: &str) -> Option<Decimal> {
        self.watermarks.get(policy).copied()
    }

    /// Whether the account has a saved card with this id.
    pub fn has_card(&self, card: &str) -> bool {
        self.cards.iter().any(|saved| saved == card)
    }

    /// What the policy may read of the account.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            id: self.id.0.clone(),
            kind: self.kind,
            parent: self.parent.as_ref().map(|parent| parent.0.clone()),
            balance: self.balance,
            included_basic_seconds: self.included_basic_seconds,
            included_premium_seconds: self.included_premium_seconds,
            basic_seconds: self.basic_seconds,
            premium_seconds: self.premium_seconds,
            status: self.status,
        }
    }

    /// The account whose lock serialises events of this one: its agency for a
    /// sub-account, itself otherwise.
    pub fn family(&self) -> &AccountId {
        self.parent.as_ref().unwrap_or(&self.id)
    }
}

/// The spelling of an account kind in scripts and reports.
pub fn kind_name(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::User => "user",
        AccountKind::Agency => "agency",
        AccountKind::SubAccount => "sub-account",
    }
}

/// The spelling of a status in scripts and reports.
pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::Active => "active",
        Status::Paused => "paused",
    }
}
