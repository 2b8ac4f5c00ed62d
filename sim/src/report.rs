//! The replay output document (SPEC §7): serialisable, with money as decimal
//! strings and times as RFC 3339.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat};
use recharge_policy_sdk::model::{
    AccountView, Answer, AutoRechargeSettings, ChargeOutcome, Mode, Purpose, Snapshot, Timestamp,
};
use recharge_policy_sdk::money::display;
use serde::Serialize;
use serde_json::{Value, json};

use recharge_host::{Account, kind_name, status_name};
use recharge_host::{CardCharge, ChargeRecord, ChargeRequest, Notification, OutboxEntry};

/// The whole output of a replay.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Document {
    /// The clock at the end.
    pub clock: String,
    /// Every account by id.
    pub accounts: BTreeMap<String, AccountOut>,
    /// Every charge attempt, in order of settlement; attempts still waiting
    /// for the gateway's answer at the end come last, as `pending`.
    pub charges: Vec<ChargeOut>,
    /// What the simulated gateway really took from cards, in time order.
    pub card_charges: Vec<CardChargeOut>,
    /// Every notice, in order.
    pub notifications: Vec<NotificationOut>,
    /// Lines the host or policy rejected.
    pub rejections: Vec<Rejection>,
    /// Answers to queries.
    pub answers: Vec<AnswerOut>,
}

/// An account at the end of a replay.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AccountOut {
    /// `user`, `agency` or `sub-account`.
    pub kind: &'static str,
    /// The parent agency.
    pub parent: Option<String>,
    /// The wallet.
    pub balance: String,
    /// `active` or `paused`.
    pub status: &'static str,
    /// Plan-included basic seconds left.
    pub included_basic_seconds: i64,
    /// Plan-included premium seconds left.
    pub included_premium_seconds: i64,
    /// Purchased basic seconds left.
    pub basic_seconds: i64,
    /// Purchased premium seconds left.
    pub premium_seconds: i64,
    /// Auto-recharge settings, if ever saved.
    pub auto_recharge: Option<Value>,
    /// The active allocation.
    pub allocation: Option<Value>,
}

/// One charge attempt.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChargeOut {
    /// When it was executed.
    pub at: String,
    /// Who paid.
    pub payer: String,
    /// With which card.
    pub card: String,
    /// How much.
    pub amount: String,
    /// `auto_recharge`, `allocation` or `top_up`.
    pub purpose: &'static str,
    /// Who was credited.
    pub beneficiary: String,
    /// The idempotency key.
    pub key: String,
    /// `succeeded`, `declined`, `failed` or `requires_action`; `pending` for an
    /// attempt whose outcome the gateway has not given yet.
    pub outcome: &'static str,
}

/// Money the gateway really took from a card.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CardChargeOut {
    /// When the money moved.
    pub at: String,
    /// The card.
    pub card: String,
    /// The card holder.
    pub payer: String,
    /// How much.
    pub amount: String,
    /// The idempotency key it was charged under.
    pub key: String,
}

/// One notice.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NotificationOut {
    /// When.
    pub at: String,
    /// To whom.
    pub account: String,
    /// Its kind.
    pub kind: String,
    /// Its text.
    pub message: String,
}

/// A rejected line.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Rejection {
    /// The line.
    pub line: usize,
    /// `forbidden`, `invalid_settings`, `payment_method_required`, `unknown_account`
    /// or `policy_fault`.
    pub error: &'static str,
    /// Why.
    pub message: String,
}

/// A query's answer.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AnswerOut {
    /// The line.
    pub line: usize,
    /// The answer.
    pub answer: Value,
}

/// RFC 3339 in UTC, with milliseconds only when there are some.
pub fn time(at: Timestamp) -> String {
    DateTime::from_timestamp_millis(at)
        .map(|time| time.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| at.to_string())
}

/// The spelling of a purpose.
pub fn purpose_name(purpose: &Purpose) -> &'static str {
    match purpose {
        Purpose::AutoRecharge => "auto_recharge",
        Purpose::TopUp => "top_up",
        Purpose::Allocation(_) => "allocation",
    }
}

fn outcome_name(outcome: ChargeOutcome) -> &'static str {
    match outcome {
        ChargeOutcome::Succeeded => "succeeded",
        ChargeOutcome::Declined => "declined",
        ChargeOutcome::Failed => "failed",
        ChargeOutcome::RequiresAction => "requires_action",
    }
}

/// Auto-recharge settings as JSON.
pub fn settings_json(settings: &AutoRechargeSettings) -> Value {
    json!({
        "enabled": settings.enabled,
        "threshold": display(settings.threshold),
        "amount": display(settings.amount),
        "card": settings.card,
        "mode": match settings.mode { Mode::Fixed => "fixed", Mode::Target => "target" },
        "monthly_limit": settings.monthly_limit.map(display),
    })
}

/// An account with what its policy keeps for it.
pub fn account_out(account: &Account, view: &AccountView) -> AccountOut {
    AccountOut {
        kind: kind_name(account.kind),
        parent: account.parent.as_ref().map(|parent| parent.0.clone()),
        balance: display(account.balance),
        status: status_name(account.status),
        included_basic_seconds: account.included_basic_seconds,
        included_premium_seconds: account.included_premium_seconds,
        basic_seconds: account.basic_seconds,
        premium_seconds: account.premium_seconds,
        auto_recharge: view.auto_recharge.as_ref().map(settings_json),
        allocation: view.allocation.as_ref().map(|running| {
            json!({
                "basic": running.settings.basic_minutes,
                "premium": running.settings.premium_minutes,
                "card": running.settings.card,
                "next_run": time(running.next_run),
            })
        }),
    }
}

/// A charge attempt as JSON.
pub fn charge_out(record: &ChargeRecord) -> ChargeOut {
    attempt_out(&record.request, record.at, outcome_name(record.outcome))
}

/// A charge still in the outbox, as a `pending` attempt.
pub fn pending_out(entry: &OutboxEntry) -> ChargeOut {
    let at = entry.first_at().unwrap_or(entry.request.requested_at);
    attempt_out(&entry.request, at, "pending")
}

fn attempt_out(request: &ChargeRequest, at: Timestamp, outcome: &'static str) -> ChargeOut {
    ChargeOut {
        at: time(at),
        payer: request.payer.0.clone(),
        card: request.card.clone(),
        amount: display(request.amount),
        purpose: purpose_name(&request.purpose),
        beneficiary: request.beneficiary().0,
        key: request.key.clone(),
        outcome,
    }
}

/// Money taken from a card, as JSON.
pub fn card_charge_out(charge: &CardCharge) -> CardChargeOut {
    CardChargeOut {
        at: time(charge.at),
        card: charge.card.clone(),
        payer: charge.payer.0.clone(),
        amount: display(charge.amount),
        key: charge.key.clone(),
    }
}

/// A notice as JSON.
pub fn notification_out(notice: &Notification) -> NotificationOut {
    NotificationOut {
        at: time(notice.at),
        account: notice.account.0.clone(),
        kind: notice.kind.clone(),
        message: notice.message.clone(),
    }
}

fn balance_json(snapshot: &Snapshot) -> Value {
    json!({
        "balance": display(snapshot.balance),
        "included_basic_seconds": snapshot.included_basic_seconds,
        "included_premium_seconds": snapshot.included_premium_seconds,
        "basic_seconds": snapshot.basic_seconds,
        "premium_seconds": snapshot.premium_seconds,
    })
}

/// A query's answer as JSON.
pub fn answer_json(answer: &Answer) -> Value {
    match answer {
        Answer::AutoRecharge(settings) => {
            settings.as_ref().map(settings_json).unwrap_or(Value::Null)
        }
        Answer::Estimate(estimate) => json!({ "monthly_estimate": display(*estimate) }),
        Answer::Service(can_call) => json!({ "can_call": can_call }),
        Answer::Balance(snapshot) => balance_json(snapshot),
    }
}
