//! Conversions between the generated WIT types and the policy core's model.
//!
//! Decimals from a policy are untrusted: a scale over 28 is refused, never a panic.

use recharge_policy_sdk::model::{
    AccountKind, AccountView, AllocationSettings, AllocationView, Answer, AutoRechargeSettings,
    ChargeOutcome, Event, MinutePurchase, MinuteType, Mode, Notice, PolicyError, Purpose,
    QueryKind, Rates, Refusal, Snapshot, Status, Usage,
};
use recharge_policy_sdk::money::{from_parts, to_parts};
use rust_decimal::Decimal;

use super::bindings::v0_1::{exported, wit};

/// A value a policy sent that the host cannot accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy returned a malformed value: {0}")]
pub struct Malformed(pub String);

/// A decimal for the contract; money beyond 64-bit mantissas is clamped to its
/// scale-reduced form and refused if it still does not fit.
pub fn decimal(value: Decimal) -> Result<wit::Decimal, Malformed> {
    let parts = to_parts(value).or_else(|| to_parts(value.normalize()));
    parts
        .map(|(mantissa, scale)| wit::Decimal { mantissa, scale })
        .ok_or_else(|| Malformed(format!("{value} does not fit a 64-bit mantissa")))
}

/// A decimal from the contract.
pub fn from_decimal(value: wit::Decimal) -> Result<Decimal, Malformed> {
    from_parts(value.mantissa, value.scale)
        .ok_or_else(|| Malformed(format!("decimal scale {} is over 28", value.scale)))
}

pub fn rates(rates: &Rates) -> Result<wit::Rates, Malformed> {
    Ok(wit::Rates {
        basic: decimal(rates.basic)?,
        premium: decimal(rates.premium)?,
    })
}

pub fn kind(kind: AccountKind) -> wit::AccountKind {
    match kind {
        AccountKind::User => wit::AccountKind::User,
        AccountKind::Agency => wit::AccountKind::Agency,
        AccountKind::SubAccount => wit::AccountKind::SubAccount,
    }
}

pub fn status(status: Status) -> wit::AccountStatus {
    match status {
        Status::Active => wit::AccountStatus::Active,
        Status::Paused => wit::AccountStatus::Paused,
    }
}

pub fn from_status(status: wit::AccountStatus) -> Status {
    match status {
        wit::AccountStatus::Active => Status::Active,
        wit::AccountStatus::Paused => Status::Paused,
    }
}

pub fn snapshot(snapshot: &Snapshot) -> Result<wit::AccountSnapshot, Malformed> {
    Ok(wit::AccountSnapshot {
        id: snapshot.id.clone(),
        kind: kind(snapshot.kind),
        parent: snapshot.parent.clone(),
        balance: decimal(snapshot.balance)?,
        included_basic_seconds: snapshot.included_basic_seconds,
        included_premium_seconds: snapshot.included_premium_seconds,
        basic_seconds: snapshot.basic_seconds,
        premium_seconds: snapshot.premium_seconds,
        status: status(snapshot.status),
    })
}

fn from_kind(kind: wit::AccountKind) -> AccountKind {
    match kind {
        wit::AccountKind::User => AccountKind::User,
        wit::AccountKind::Agency => AccountKind::Agency,
        wit::AccountKind::SubAccount => AccountKind::SubAccount,
    }
}

fn from_snapshot(snapshot: wit::AccountSnapshot) -> Result<Snapshot, Malformed> {
    Ok(Snapshot {
        id: snapshot.id,
        kind: from_kind(snapshot.kind),
        parent: snapshot.parent,
        balance: from_decimal(snapshot.balance)?,
        included_basic_seconds: snapshot.included_basic_seconds,
        included_premium_seconds: snapshot.included_premium_seconds,
        basic_seconds: snapshot.basic_seconds,
        premium_seconds: snapshot.premium_seconds,
        status: from_status(snapshot.status),
    })
}

fn minute_type(minute_type: MinuteType) -> wit::MinuteType {
    match minute_type {
        MinuteType::Basic => wit::MinuteType::Basic,
        MinuteType::Premium => wit::MinuteType::Premium,
    }
}

fn settings(settings: &AutoRechargeSettings) -> Result<wit::AutoRechargeSettings, Malformed> {
    Ok(wit::AutoRechargeSettings {
        enabled: settings.enabled,
        threshold: decimal(settings.threshold)?,
        amount: decimal(settings.amount)?,
        card: settings.card.clone(),
        mode: match settings.mode {
            Mode::Fixed => wit::RechargeMode::Fixed,
            Mode::Target => wit::RechargeMode::Target,
        },
        monthly_limit: settings.monthly_limit.map(decimal).transpose()?,
    })
}

fn from_settings(settings: wit::AutoRechargeSettings) -> Result<AutoRechargeSettings, Malformed> {
    Ok(AutoRechargeSettings {
        enabled: settings.enabled,
        threshold: from_decimal(settings.threshold)?,
        amount: from_decimal(settings.amount)?,
        card: settings.card,
        mode: match settings.mode {
            wit::RechargeMode::Fixed => Mode::Fixed,
            wit::RechargeMode::Target => Mode::Target,
        },
        monthly_limit: settings.monthly_limit.map(from_decimal).transpose()?,
    })
}

fn allocation(settings: &AllocationSettings) -> wit::AllocationSettings {
    wit::AllocationSettings {
        basic_minutes: settings.basic_minutes,
        premium_minutes: settings.premium_minutes,
        card: settings.card.clone(),
    }
}

fn from_allocation(settings: wit::AllocationSettings) -> AllocationSettings {
    AllocationSettings {
        basic_minutes: settings.basic_minutes,
        premium_minutes: settings.premium_minutes,
        card: settings.card,
    }
}

pub fn purpose(purpose: &Purpose) -> wit::Purpose {
    match purpose {
        Purpose::AutoRecharge => wit::Purpose::AutoRecharge,
        Purpose::TopUp => wit::Purpose::TopUp,
        Purpose::Allocation(purchase) => wit::Purpose::Allocation(wit::MinutePurchase {
            beneficiary: purchase.beneficiary.clone(),
            basic_minutes: purchase.basic_minutes,
            premium_minutes: purchase.premium_minutes,
        }),
    }
}

pub fn from_purpose(purpose: wit::Purpose) -> Purpose {
    match purpose {
        wit::Purpose::AutoRecharge => Purpose::AutoRecharge,
        wit::Purpose::TopUp => Purpose::TopUp,
        wit::Purpose::Allocation(purchase) => Purpose::Allocation(MinutePurchase {
            beneficiary: purchase.beneficiary,
            basic_minutes: purchase.basic_minutes,
            premium_minutes: purchase.premium_minutes,
        }),
    }
}

fn outcome(outcome: ChargeOutcome) -> wit::ChargeOutcome {
    match outcome {
        ChargeOutcome::Succeeded => wit::ChargeOutcome::Succeeded,
        ChargeOutcome::Declined => wit::ChargeOutcome::Declined,
        ChargeOutcome::Failed => wit::ChargeOutcome::Failed,
    }
}

pub fn notice(kind: wit::NoticeKind) -> Notice {
    match kind {
        wit::NoticeKind::RechargeSucceeded => Notice::RechargeSucceeded,
        wit::NoticeKind::RechargeFailed => Notice::RechargeFailed,
        wit::NoticeKind::RechargeLimitReached => Notice::RechargeLimitReached,
        wit::NoticeKind::AccountPaused => Notice::AccountPaused,
        wit::NoticeKind::AccountResumed => Notice::AccountResumed,
        wit::NoticeKind::AllocationSucceeded => Notice::AllocationSucceeded,
        wit::NoticeKind::AllocationFailed => Notice::AllocationFailed,
        wit::NoticeKind::TopUpFailed => Notice::TopUpFailed,
    }
}

pub fn refusal(refusal: Refusal) -> wit::Refusal {
    match refusal {
        Refusal::ForeignAccount => wit::Refusal::ForeignAccount,
        Refusal::UnknownCard => wit::Refusal::UnknownCard,
        Refusal::BadAmount(why) => wit::Refusal::BadAmount(why),
        Refusal::PriceMismatch => wit::Refusal::PriceMismatch,
        Refusal::TooManyCharges => wit::Refusal::TooManyCharges,
        Refusal::DuplicateKey => wit::Refusal::DuplicateKey,
        Refusal::Invalid(why) => wit::Refusal::Invalid(why),
    }
}

/// A usage event as the contract's flat `rated-call`, with the subject's balance
/// and watermark handed over with it.
pub fn rated_call(
    usage: &Usage,
    balance: Decimal,
    watermark: Option<Decimal>,
    has_parent: bool,
) -> Result<exported::RatedCall, Malformed> {
    Ok(exported::RatedCall {
        seconds: usage.seconds,
        minute_type: minute_type(usage.minute_type),
        wallet_cost: decimal(usage.wallet_cost)?,
        balance: decimal(balance)?,
        watermark: watermark.map(decimal).transpose()?,
        has_parent,
    })
}

/// Any other event in the contract's form (usage goes through [`rated_call`]).
pub fn event(event: &Event) -> Result<exported::Event, Malformed> {
    Ok(match event {
        Event::Usage(_) => {
            return Err(Malformed(String::from(
                "a usage event goes through the policy's usage export",
            )));
        }
        Event::SaveAutoRecharge {
            actor,
            settings: saved,
        } => exported::Event::SaveAutoRecharge(exported::AutoRechargeRequest {
            actor: actor.clone(),
            settings: settings(saved)?,
        }),
        Event::SaveAllocation {
            actor,
            settings: saved,
        } => exported::Event::SaveAllocation(exported::AllocationRequest {
            actor: actor.clone(),
            settings: allocation(saved),
        }),
        Event::TopUp {
            actor,
            card,
            amount,
        } => exported::Event::TopUp(exported::TopUpRequest {
            actor: actor.clone(),
            card: card.clone(),
            amount: decimal(*amount)?,
        }),
        Event::CardUpdated(card) => exported::Event::CardUpdated(card.clone()),
        Event::PaymentOutcome(result) => {
            exported::Event::PaymentOutcome(exported::PaymentOutcome {
                key: result.key.clone(),
                outcome: outcome(result.outcome),
                amount: decimal(result.amount)?,
                purpose: purpose(&result.purpose),
                payer: result.payer.clone(),
            })
        }
        Event::Timer(tag) => exported::Event::Timer(*tag),
    })
}

pub fn query_kind(what: QueryKind) -> exported::QueryKind {
    match what {
        QueryKind::AutoRecharge => exported::QueryKind::AutoRecharge,
        QueryKind::Estimate => exported::QueryKind::Estimate,
        QueryKind::Service => exported::QueryKind::Service,
        QueryKind::Balance => exported::QueryKind::Balance,
    }
}

pub fn from_answer(answer: exported::Answer) -> Result<Answer, Malformed> {
    Ok(match answer {
        exported::Answer::AutoRecharge(saved) => {
            Answer::AutoRecharge(saved.map(from_settings).transpose()?)
        }
        exported::Answer::Estimate(value) => Answer::Estimate(from_decimal(value)?),
        exported::Answer::Service(can_call) => Answer::Service(can_call),
        exported::Answer::Balance(snapshot) => Answer::Balance(from_snapshot(snapshot)?),
    })
}

pub fn from_policy_error(error: exported::PolicyError) -> PolicyError {
    match error {
        exported::PolicyError::Forbidden(why) => PolicyError::Forbidden(why),
        exported::PolicyError::InvalidSettings(why) => PolicyError::InvalidSettings(why),
        exported::PolicyError::PaymentMethodRequired(why) => {
            PolicyError::PaymentMethodRequired(why)
        }
        exported::PolicyError::Refused(why) => PolicyError::Refused(why),
    }
}

pub fn from_view(view: wit::AccountView) -> Result<AccountView, Malformed> {
    Ok(AccountView {
        auto_recharge: view.auto_recharge.map(from_settings).transpose()?,
        allocation: view.allocation.map(|running| AllocationView {
            settings: from_allocation(running.settings),
            next_run: running.next_run,
        }),
    })
}
