//! Plain data of the policy core, mirroring the WIT contract without binding types.

use alloc::string::String;
use rust_decimal::Decimal;

/// A point in time: milliseconds since 1970-01-01T00:00:00Z.
pub type Timestamp = i64;

/// What an account is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AccountKind {
    /// A direct customer with its own wallet.
    User,
    /// An agency: it may own sub-accounts and buy minutes for them.
    Agency,
    /// An account owned by an agency.
    SubAccount,
}

/// Whether an account may take calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Status {
    /// Serving normally.
    Active,
    /// Stopped until a successful payment resolves it.
    Paused,
}

/// The two kinds of call minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MinuteType {
    /// Basic minutes.
    Basic,
    /// Premium minutes.
    Premium,
}

/// Per-minute prices in force, USD per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Rates {
    /// Price of one basic minute.
    pub basic: Decimal,
    /// Price of one premium minute.
    pub premium: Decimal,
}

impl Rates {
    /// The price of one minute of this type.
    pub fn of(&self, minute_type: MinuteType) -> Decimal {
        match minute_type {
            MinuteType::Basic => self.basic,
            MinuteType::Premium => self.premium,
        }
    }
}

/// What the host knows of an account's money, read in one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The account's id.
    pub id: String,
    /// What the account is.
    pub kind: AccountKind,
    /// The parent agency's id, for sub-accounts.
    pub parent: Option<String>,
    /// The wallet balance in USD.
    pub balance: Decimal,
    /// Plan-included basic seconds left.
    pub included_basic_seconds: i64,
    /// Plan-included premium seconds left.
    pub included_premium_seconds: i64,
    /// Purchased basic seconds left.
    pub basic_seconds: i64,
    /// Purchased premium seconds left.
    pub premium_seconds: i64,
    /// Whether the account is serving.
    pub status: Status,
}

impl Snapshot {
    /// Whether any minute bucket has seconds left.
    pub fn has_minutes(&self) -> bool {
        self.included_basic_seconds > 0
            || self.included_premium_seconds > 0
            || self.basic_seconds > 0
            || self.premium_seconds > 0
    }
}

/// Auto-recharge mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Mode {
    /// Charge a multiple of the amount, enough to reach the threshold.
    #[default]
    Fixed,
    /// Refill the balance up to the amount.
    Target,
}

/// Auto-recharge settings as an account saves and reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AutoRechargeSettings {
    /// Whether auto-recharge is on.
    pub enabled: bool,
    /// Recharge when the balance falls below this.
    pub threshold: Decimal,
    /// Fixed mode: the unit of a charge; target mode: the balance to refill to.
    pub amount: Decimal,
    /// The saved card to charge.
    pub card: String,
    /// Fixed or target.
    pub mode: Mode,
    /// The most auto-recharge may charge in one UTC calendar month.
    pub monthly_limit: Option<Decimal>,
}

/// A monthly minute allocation for a sub-account, paid by its agency.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AllocationSettings {
    /// Whole basic minutes bought each month.
    pub basic_minutes: i64,
    /// Whole premium minutes bought each month.
    pub premium_minutes: i64,
    /// The agency's saved card.
    pub card: String,
}

/// A running allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationView {
    /// The allocation's settings.
    pub settings: AllocationSettings,
    /// When the next purchase runs.
    pub next_run: Timestamp,
}

/// What the policy keeps for one account, for the host's reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountView {
    /// The auto-recharge settings, if ever saved.
    pub auto_recharge: Option<AutoRechargeSettings>,
    /// The active monthly allocation, if any.
    pub allocation: Option<AllocationView>,
}

/// Minutes bought by an allocation charge.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MinutePurchase {
    /// The sub-account receiving the minutes.
    pub beneficiary: String,
    /// Whole basic minutes.
    pub basic_minutes: i64,
    /// Whole premium minutes.
    pub premium_minutes: i64,
}

/// What a charge is for; the host credits a succeeded charge by it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Purpose {
    /// Automatic refill of the payer's wallet.
    AutoRecharge,
    /// A manual top-up of the payer's wallet.
    TopUp,
    /// Minutes bought for a sub-account of the paying agency.
    Allocation(MinutePurchase),
}

/// How a charge ended at the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ChargeOutcome {
    /// Paid and credited by the host.
    Succeeded,
    /// Declined: final.
    Declined,
    /// Failed transiently.
    Failed,
    /// The card needs the customer's authentication (3-D Secure): final for
    /// this attempt, never retried blindly; nothing was charged.
    RequiresAction,
}

/// The notices a policy may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Notice {
    /// An auto-recharge charge succeeded.
    RechargeSucceeded,
    /// An auto-recharge charge failed for good.
    RechargeFailed,
    /// Auto-recharge stopped at the monthly limit.
    RechargeLimitReached,
    /// The account was paused.
    AccountPaused,
    /// The account was resumed.
    AccountResumed,
    /// A monthly allocation purchase succeeded.
    AllocationSucceeded,
    /// A monthly allocation purchase failed for good.
    AllocationFailed,
    /// A manual top-up failed.
    TopUpFailed,
    /// A charge needs the customer's authentication; nothing was charged.
    PaymentActionRequired,
    /// Auto-recharge waits for a host cap (charges per day) to lift.
    RechargeDeferred,
}

impl Notice {
    /// The notice's name as SPEC.md spells it (`recharge_succeeded`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Notice::RechargeSucceeded => "recharge_succeeded",
            Notice::RechargeFailed => "recharge_failed",
            Notice::RechargeLimitReached => "recharge_limit_reached",
            Notice::AccountPaused => "account_paused",
            Notice::AccountResumed => "account_resumed",
            Notice::AllocationSucceeded => "allocation_succeeded",
            Notice::AllocationFailed => "allocation_failed",
            Notice::TopUpFailed => "top_up_failed",
            Notice::PaymentActionRequired => "payment_action_required",
            Notice::RechargeDeferred => "recharge_deferred",
        }
    }
}

/// Why the host refused a capability call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The account is not one handed to this event.
    ForeignAccount,
    /// The card is not a saved card of the payer.
    UnknownCard,
    /// The amount is not positive, not whole cents, or over the cap.
    BadAmount(String),
    /// The allocation's price at current rates differs from the amount.
    PriceMismatch,
    /// Too many charge requests in this event or for this account today.
    TooManyCharges,
    /// The idempotency key was already used.
    DuplicateKey,
    /// The request is malformed.
    Invalid(String),
}

impl From<Refusal> for PolicyError {
    /// A refusal the policy gives up on: `?` on a capability call.
    fn from(refusal: Refusal) -> Self {
        PolicyError::Refused(crate::caps::describe_refusal(&refusal))
    }
}

/// A finished call the host has rated and recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The call's length in seconds.
    pub seconds: i64,
    /// Which minutes it used.
    pub minute_type: MinuteType,
    /// What the wallet paid.
    pub wallet_cost: Decimal,
}

/// The outcome of a charge the policy requested.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PaymentOutcome {
    /// The charge's idempotency key.
    pub key: String,
    /// How it ended.
    pub outcome: ChargeOutcome,
    /// The amount charged.
    pub amount: Decimal,
    /// What it was for.
    pub purpose: Purpose,
    /// The account that paid.
    pub payer: String,
    /// The gateway's own id of the charge, when it gave one.
    pub reference: Option<String>,
    /// The gateway's reason for a decline or failure, when it gave one.
    pub reason: Option<String>,
}

/// Something that happened to the subject account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A call was rated against the subject.
    Usage(Usage),
    /// `actor` saves auto-recharge settings of the subject.
    SaveAutoRecharge {
        /// The account asking.
        actor: String,
        /// The settings.
        settings: AutoRechargeSettings,
    },
    /// `actor` saves the subject's monthly allocation.
    SaveAllocation {
        /// The account asking.
        actor: String,
        /// The allocation (0 and 0 stops it).
        settings: AllocationSettings,
    },
    /// `actor` asks for a manual top-up of the subject.
    TopUp {
        /// The account asking.
        actor: String,
        /// The saved card to charge.
        card: String,
        /// The amount.
        amount: Decimal,
    },
    /// The subject updated the payment details of this card.
    CardUpdated(String),
    /// A charge requested for the subject ended.
    PaymentOutcome(PaymentOutcome),
    /// A wake-up the policy asked for.
    Timer(u64),
}

/// What a caller may ask about an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryKind {
    /// The auto-recharge settings.
    AutoRecharge,
    /// The monthly allocation estimate at current rates.
    Estimate,
    /// Whether the account can take calls.
    Service,
    /// The balance and minute buckets.
    Balance,
}

/// An answer to a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The settings, or none.
    AutoRecharge(Option<AutoRechargeSettings>),
    /// The monthly estimate.
    Estimate(Decimal),
    /// Whether the account can take calls.
    Service(bool),
    /// The balance and minute buckets.
    Balance(Snapshot),
}

/// Why the policy rejected an event or query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    /// The actor may not do this.
    Forbidden(String),
    /// The settings are not valid.
    InvalidSettings(String),
    /// A saved card is needed and missing.
    PaymentMethodRequired(String),
    /// A capability call was refused and the policy gave up.
    Refused(String),
}

/// Whole minutes a sum of credit buys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinuteQuote {
    /// Whole basic minutes.
    pub basic_minutes: i64,
    /// Whole premium minutes.
    pub premium_minutes: i64,
}
