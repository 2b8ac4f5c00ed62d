//! An example tenant policy: **refill to a target, weekdays only**.
//!
//! An agency that only staffs its phones Monday to Friday does not want its card
//! charged at the weekend. This policy reads the account's auto-recharge settings
//! as "when the balance falls below `threshold`, refill it to `amount`", but only
//! charges on weekdays (UTC); a shortfall at the weekend waits for Monday 00:00.
//! A failed charge is not retried: the account gets `recharge_failed` and the next
//! weekday shortfall tries again. It sells no monthly allocations.
//!
//! It is written against [`recharge_policy_sdk::PolicyRules`] with the SDK's
//! [`Helpers`] (actor roles, typed state, keys) and exported with
//! [`recharge_policy_sdk::export_policy!`]; build it with
//! `cargo build -p weekday-refill --release --target wasm32-wasip2` and check it
//! with `recharge check target/wasm32-wasip2/release/weekday_refill.wasm`.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

mod state;

use alloc::format;
use chrono::{DateTime, Datelike, Days, Weekday};
use recharge_policy_sdk::model::{
    AccountView, Answer, AutoRechargeSettings, ChargeOutcome, Event, Notice, PolicyError, Purpose,
    QueryKind, Status, Timestamp,
};
use recharge_policy_sdk::money::{display, is_whole_cents, whole_cents_up};
use recharge_policy_sdk::{Actor, Capabilities, Helpers, PolicyRules, Role};
use rust_decimal::Decimal;

use self::state::State;

/// The timer tag for "it is Monday now".
const MONDAY: u64 = 1;

/// The policy.
pub struct WeekdayRefill;

recharge_policy_sdk::export_policy!(WeekdayRefill);

/// Whether `actor` is the subject itself, or (`or_parent`) its parent agency.
fn allowed(actor: &str, caps: &impl Capabilities, or_parent: bool) -> Result<bool, PolicyError> {
    Ok(match caps.actor(actor)? {
        Actor::Subject => true,
        Actor::Agency => or_parent,
        Actor::Other => false,
    })
}

/// Monday 00:00 UTC after `now`, if `now` falls on a weekend.
fn next_monday(now: Timestamp) -> Option<Timestamp> {
    let day = DateTime::from_timestamp_millis(now)?.date_naive();
    let wait = match day.weekday() {
        Weekday::Sat => 2,
        Weekday::Sun => 1,
        _ => return None,
    };
    let monday = day
        .checked_add_days(Days::new(wait))?
        .and_hms_opt(0, 0, 0)?;
    Some(monday.and_utc().timestamp_millis())
}

fn validate(settings: &AutoRechargeSettings, caps: &impl Capabilities) -> Result<(), PolicyError> {
    if !settings.enabled {
        return Ok(());
    }
    let money_ok = |value: Decimal| value >= Decimal::ZERO && is_whole_cents(value);
    if !money_ok(settings.threshold)
        || !money_ok(settings.amount)
        || settings.amount <= settings.threshold
    {
        return Err(PolicyError::InvalidSettings(
            "threshold and target must be whole cents, the target above the threshold".into(),
        ));
    }
    if !caps.has_card(Role::Subject, &settings.card) {
        return Err(PolicyError::PaymentMethodRequired(format!(
            "no saved card {}",
            settings.card
        )));
    }
    Ok(())
}

/// Refill to the target if below the threshold: now on a weekday, on Monday otherwise.
fn refill(state: &mut State, caps: &mut impl Capabilities) -> Result<(), PolicyError> {
    let Some(settings) = state.settings.as_ref().filter(|settings| settings.enabled) else {
        return Ok(());
    };
    let balance = caps.balance(Role::Subject)?;
    if state.in_flight || balance >= settings.threshold {
        return Ok(());
    }
    let now = caps.now();
    if let Some(monday) = next_monday(now) {
        // Asked again on every weekend event: the same tag replaces the
        // earlier wake-up, so one Monday wake-up stays pending.
        return Ok(caps.wake_at(Role::Subject, monday, MONDAY)?);
    }
    let amount = whole_cents_up(settings.amount - balance);
    let key = caps.charge_key("weekday", state.next_key);
    caps.request_charge(
        Role::Subject,
        &settings.card,
        amount,
        Purpose::AutoRecharge,
        &key,
    )?;
    state.next_key += 1;
    state.in_flight = true;
    Ok(())
}

fn outcome(
    state: &mut State,
    result: ChargeOutcome,
    amount: Decimal,
    purpose: &Purpose,
    caps: &mut impl Capabilities,
) -> Result<(), PolicyError> {
    if *purpose == Purpose::AutoRecharge {
        state.in_flight = false;
    }
    match result {
        ChargeOutcome::Succeeded => {
            if *purpose == Purpose::AutoRecharge {
                let message = format!("refilled {}", display(amount));
                caps.notify(Role::Subject, Notice::RechargeSucceeded, &message)?;
            }
            if caps.status(Role::Subject)? == Status::Paused {
                caps.set_status(Role::Subject, Status::Active)?;
                caps.notify(Role::Subject, Notice::AccountResumed, "payment received")?;
            }
        }
        ChargeOutcome::Declined | ChargeOutcome::Failed | ChargeOutcome::RequiresAction => {
            let (kind, what) = match purpose {
                Purpose::TopUp => (Notice::TopUpFailed, "top-up"),
                _ => (Notice::RechargeFailed, "refill"),
            };
            let message = format!("{what} of {} failed", display(amount));
            caps.notify(Role::Subject, kind, &message)?;
        }
    }
    Ok(())
}

impl PolicyRules for WeekdayRefill {
    fn handle(
        event: &Event,
        _has_parent: bool,
        caps: &mut impl Capabilities,
    ) -> Result<(), PolicyError> {
        let mut state: State = caps.load_state(Role::Subject)?;
        match event {
            Event::SaveAutoRecharge { actor, settings } => {
                if !allowed(actor, caps, false)? {
                    return Err(PolicyError::Forbidden(
                        "only the account saves its settings".into(),
                    ));
                }
                validate(settings, caps)?;
                state.settings = Some(settings.clone());
            }
            Event::SaveAllocation { .. } => {
                return Err(PolicyError::Forbidden(
                    "this policy sells no monthly allocations".into(),
                ));
            }
            Event::TopUp {
                actor,
                card,
                amount,
            } => {
                if !allowed(actor, caps, false)? {
                    return Err(PolicyError::Forbidden(
                        "only the account tops itself up".into(),
                    ));
                }
                if *amount <= Decimal::ZERO || !is_whole_cents(*amount) {
                    return Err(PolicyError::InvalidSettings(
                        "amount must be positive whole cents".into(),
                    ));
                }
                if !caps.has_card(Role::Subject, card) {
                    return Err(PolicyError::PaymentMethodRequired(format!(
                        "no saved card {card}"
                    )));
                }
                let key = caps.charge_key("topup", state.next_key);
                caps.request_charge(Role::Subject, card, *amount, Purpose::TopUp, &key)?;
                state.next_key += 1;
            }
            Event::PaymentOutcome(result) => outcome(
                &mut state,
                result.outcome,
                result.amount,
                &result.purpose,
                caps,
            )?,
            Event::Usage(_) | Event::CardUpdated(_) | Event::Timer(_) => {}
        }
        refill(&mut state, caps)?;
        Ok(caps.save_state(Role::Subject, &state)?)
    }

    fn query(
        actor: &str,
        what: QueryKind,
        _has_parent: bool,
        caps: &impl Capabilities,
    ) -> Result<Answer, PolicyError> {
        if !allowed(actor, caps, true)? {
            return Err(PolicyError::Forbidden(
                "only the account and its agency may ask".into(),
            ));
        }
        let snapshot = caps.snapshot(Role::Subject)?;
        Ok(match what {
            QueryKind::AutoRecharge => {
                Answer::AutoRecharge(caps.load_state::<State>(Role::Subject)?.settings)
            }
            QueryKind::Estimate => Answer::Estimate(Decimal::ZERO),
            QueryKind::Service => Answer::Service(
                snapshot.status == Status::Active
                    && (snapshot.balance > Decimal::ZERO || snapshot.has_minutes()),
            ),
            QueryKind::Balance => Answer::Balance(snapshot),
        })
    }

    fn describe(caps: &impl Capabilities) -> AccountView {
        AccountView {
            auto_recharge: caps
                .load_state::<State>(Role::Subject)
                .ok()
                .and_then(|state| state.settings),
            allocation: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SATURDAY: Timestamp = 1_767_398_400_000; // 2026-01-03T00:00:00Z
    const MONDAY_AFTER: Timestamp = 1_767_571_200_000; // 2026-01-05T00:00:00Z

    #[test]
    fn weekends_wait_for_monday_midnight() {
        assert_eq!(next_monday(SATURDAY + 3_600_000), Some(MONDAY_AFTER));
        assert_eq!(next_monday(SATURDAY + 86_400_000), Some(MONDAY_AFTER));
        assert_eq!(next_monday(MONDAY_AFTER), None);
    }
}
