//! Auto-recharge (R1–R6): settings, the trigger and its amount, the monthly limit,
//! outcomes with retries, pause and resume.

use alloc::{format, string::String};
use rust_decimal::Decimal;

use super::auth::{Action, authorize};
use super::keys::{self, TimerTag};
use super::schedule::{month_index, retry_at};
use super::session::{Session, out_of_range, refused};
use super::state::{self, MAX_ATTEMPTS, Recharge};
use crate::caps::{Capabilities, Role};
use crate::model::{
    AutoRechargeSettings, ChargeOutcome, Mode, Notice, PaymentOutcome, PolicyError, Purpose,
};
use crate::money::{display, is_whole_cents, whole_cents_up};

/// R1: save the subject's settings. Only the subject itself may; disabling is
/// always accepted as given; a rejected save changes nothing.
pub(super) fn save<C: Capabilities>(
    session: &mut Session<'_, C>,
    actor: &str,
    settings: &AutoRechargeSettings,
) -> Result<(), PolicyError> {
    authorize(Action::SaveAutoRecharge, actor, &session.subject)?;
    validate(settings)?;
    if settings.enabled && !session.has_card(Role::Subject, &settings.card) {
        return Err(PolicyError::PaymentMethodRequired(format!(
            "card {} is not a saved card of {}",
            settings.card, session.subject.id
        )));
    }
    let previous = session.state.auto.replace(settings.clone());
    if !settings.enabled {
        cancel_pending_retry(session);
    } else if previous.is_some_and(|previous| previous.card != settings.card) {
        // The suspension was about the old card: a new one deserves a try.
        session.state.suspended = false;
    }
    Ok(())
}

/// The R1 checks of enabled settings, in order, naming the field at fault.
fn validate(settings: &AutoRechargeSettings) -> Result<(), PolicyError> {
    let invalid = |message: &str| Err(PolicyError::InvalidSettings(message.into()));
    if !settings.enabled {
        return Ok(());
    }
    if settings.threshold < Decimal::ZERO || !is_whole_cents(settings.threshold) {
        return invalid("threshold must be whole cents and at least 0.00");
    }
    if settings.amount <= Decimal::ZERO || !is_whole_cents(settings.amount) {
        return invalid("amount must be whole cents and more than 0.00");
    }
    if let Some(limit) = settings.monthly_limit
        && (limit <= Decimal::ZERO || !is_whole_cents(limit))
    {
        return invalid("monthly_limit must be whole cents and more than 0.00");
    }
    if settings.mode == Mode::Target && settings.amount <= settings.threshold {
        return invalid(
            "amount (the balance to refill to) must exceed the threshold in target mode",
        );
    }
    Ok(())
}

/// R6: disabling cancels a retry still waiting for its timer; that recharge no
/// longer counts against the month. A charge already executing cannot be called
/// back: it stays in flight until its outcome.
fn cancel_pending_retry<C: Capabilities>(session: &mut Session<'_, C>) {
    if let Some(recharge) = session
        .state
        .recharge
        .filter(|recharge| recharge.awaiting_retry)
    {
        session.state.usage.remove(recharge.month, recharge.amount);
        session.state.recharge = None;
    }
}

/// The usage hot path: one state read and one balance read when nothing is to
/// be done, which is nearly always.
pub(super) fn on_usage(caps: &mut impl Capabilities, has_parent: bool) -> Result<(), PolicyError> {
    let bytes = caps.state(Role::Subject);
    let Some(threshold) = state::recharge_gate(&bytes) else {
        return Ok(());
    };
    if caps.balance(Role::Subject).map_err(refused)? >= threshold {
        return Ok(());
    }
    let mut session = Session::with_state(caps, has_parent, bytes)?;
    trigger(&mut session)?;
    session.commit()
}

/// R6: the subject updated a card: the suspension ends at once.
pub(super) fn on_card_updated<C: Capabilities>(session: &mut Session<'_, C>) {
    session.state.suspended = false;
}

/// R2–R4: while enabled, not suspended and with nothing in flight, a balance
/// strictly below the threshold requests one charge, within the monthly limit.
pub(super) fn trigger<C: Capabilities>(session: &mut Session<'_, C>) -> Result<(), PolicyError> {
    let Some(settings) = session
        .state
        .auto
        .as_ref()
        .filter(|settings| settings.enabled)
    else {
        return Ok(());
    };
    let balance = session.subject.balance;
    if session.state.suspended || session.state.recharge.is_some() || balance >= settings.threshold
    {
        return Ok(());
    }
    let amount =
        recharge_amount(settings, balance).ok_or_else(|| out_of_range("auto-recharge amount"))?;
    let limit = settings.monthly_limit;
    let now = session.now();
    let month = month_index(now).ok_or_else(|| out_of_range("current time"))?;
    if let Some(limit) = limit {
        let total = session.state.usage.charged_in(month).checked_add(amount);
        if total.is_none_or(|total| total > limit) {
            return limit_reached(session, month, amount, limit);
        }
    }
    let seq = session.take_seq()?;
    session
        .state
        .usage
        .add(month, amount)
        .ok_or_else(|| out_of_range("monthly auto-recharge total"))?;
    let recharge = Recharge {
        seq,
        attempt: 1,
        amount,
        attempted_at: now,
        month,
        awaiting_retry: false,
    };
    session.state.recharge = Some(recharge);
    request(session, recharge)
}

/// R3: fixed mode charges the smallest multiple of the amount that reaches the
/// threshold, as one charge; target mode refills to the target, in whole cents up.
/// `None` on overflow or for an amount that is not positive.
fn recharge_amount(settings: &AutoRechargeSettings, balance: Decimal) -> Option<Decimal> {
    let amount = match settings.mode {
        Mode::Fixed => {
            let unit = settings.amount;
            let gap = settings.threshold.checked_sub(balance)?;
            units_to_close(gap, unit)?.checked_mul(unit)?
        }
        Mode::Target => whole_cents_up(settings.amount.checked_sub(balance)?),
    };
    (amount > Decimal::ZERO).then_some(amount)
}

/// The smallest k >= 1 with `k × unit >= gap`, in integers at a common scale
/// (a decimal division costs a wasm policy thousands of instructions).
fn units_to_close(gap: Decimal, unit: Decimal) -> Option<Decimal> {
    if unit <= Decimal::ZERO {
        return None;
    }
    if gap <= Decimal::ZERO {
        return Some(Decimal::ONE);
    }
    let scale = gap.scale().max(unit.scale());
    let at_scale = |value: Decimal| -> Option<i128> {
        let factor = 10i128.checked_pow(scale - value.scale())?;
        value.mantissa().checked_mul(factor)
    };
    let (gap, unit) = (at_scale(gap)?, at_scale(unit)?);
    let units = gap.checked_add(unit - 1)? / unit;
    Some(Decimal::from_i128_with_scale(units.max(1), 0))
}

/// R4: no charge; the first time this month, a notice.
fn limit_reached<C: Capabilities>(
    session: &mut Session<'_, C>,
    month: i64,
    amount: Decimal,
    limit: Decimal,
) -> Result<(), PolicyError> {
    if session.state.limit_notice_month == Some(month) {
        return Ok(());
    }
    session.state.limit_notice_month = Some(month);
    let message = format!(
        "auto-recharge of {} not made: it would exceed the monthly limit of {}",
        display(amount),
        display(limit)
    );
    session.notify(Notice::RechargeLimitReached, &message)
}

/// Request the current attempt of `recharge` on the saved card. A charge the host
/// refuses (too many today, over its cap, a card gone) counts as a failed attempt,
/// so the recharge still ends in a retry or a final failure rather than stalling.
fn request<C: Capabilities>(
    session: &mut Session<'_, C>,
    recharge: Recharge,
) -> Result<(), PolicyError> {
    let Some(card) = session
        .state
        .auto
        .as_ref()
        .map(|settings| settings.card.clone())
    else {
        session.state.recharge = None;
        return Ok(());
    };
    let key = keys::recharge(&session.subject.id, recharge.seq, recharge.attempt);
    match session.charge(
        Role::Subject,
        &card,
        recharge.amount,
        Purpose::AutoRecharge,
        &key,
    ) {
        Ok(()) => Ok(()),
        Err(_) => attempt_failed(session, recharge),
    }
}

/// R5/R6: the outcome of an auto-recharge charge.
pub(super) fn on_outcome<C: Capabilities>(
    session: &mut Session<'_, C>,
    outcome: &PaymentOutcome,
) -> Result<(), PolicyError> {
    let subject = &session.subject.id;
    let current = session.state.recharge.filter(|recharge| {
        !recharge.awaiting_retry
            && keys::recharge(subject, recharge.seq, recharge.attempt) == outcome.key
    });
    match (current, outcome.outcome) {
        (Some(_), ChargeOutcome::Succeeded) => {
            session.state.recharge = None;
            succeeded(session, outcome.amount)
        }
        // A charge this state no longer tracks was still paid: say so, and resume.
        (None, ChargeOutcome::Succeeded) => succeeded(session, outcome.amount),
        (None, _) => Ok(()),
        (Some(recharge), ChargeOutcome::Declined) => {
            final_failure(session, recharge, "was declined")
        }
        (Some(recharge), ChargeOutcome::Failed) => attempt_failed(session, recharge),
    }
}

fn succeeded<C: Capabilities>(
    session: &mut Session<'_, C>,
    amount: Decimal,
) -> Result<(), PolicyError> {
    let what = format!("auto-recharge of {}", display(amount));
    session.notify(Notice::RechargeSucceeded, &format!("{what} succeeded"))?;
    session.payment_succeeded(&what)
}

/// R5: retry 5 min, 30 min, then 2 h after the failed attempt; after the last
/// one, or once auto-recharge is disabled, the failure is final.
fn attempt_failed<C: Capabilities>(
    session: &mut Session<'_, C>,
    recharge: Recharge,
) -> Result<(), PolicyError> {
    let enabled = session
        .state
        .auto
        .as_ref()
        .is_some_and(|settings| settings.enabled);
    let retry = retry_at(recharge.attempted_at, recharge.attempt).filter(|_| enabled);
    let Some(at) = retry else {
        let how = if recharge.attempt >= MAX_ATTEMPTS {
            format!("failed after {} attempts", recharge.attempt)
        } else {
            String::from("failed")
        };
        return final_failure(session, recharge, &how);
    };
    let tag = TimerTag::RechargeRetry {
        seq: recharge.seq,
        attempt: recharge.attempt + 1,
    }
    .encode()
    .ok_or_else(|| out_of_range("timer tag"))?;
    session.state.recharge = Some(Recharge {
        awaiting_retry: true,
        ..recharge
    });
    session.wake_at(at, tag)
}

/// R5: a final failure no longer counts against the month; while enabled it
/// suspends auto-recharge and pauses the account.
fn final_failure<C: Capabilities>(
    session: &mut Session<'_, C>,
    recharge: Recharge,
    how: &str,
) -> Result<(), PolicyError> {
    session.state.recharge = None;
    session.state.usage.remove(recharge.month, recharge.amount);
    let what = format!("auto-recharge of {} {how}", display(recharge.amount));
    session.notify(Notice::RechargeFailed, &what)?;
    if !session
        .state
        .auto
        .as_ref()
        .is_some_and(|settings| settings.enabled)
    {
        return Ok(());
    }
    session.state.suspended = true;
    session.pause(&what)
}

/// R5: the timer of attempt `attempt` of recharge `seq`; stale timers do nothing.
pub(super) fn on_retry_timer<C: Capabilities>(
    session: &mut Session<'_, C>,
    seq: u32,
    attempt: u8,
) -> Result<(), PolicyError> {
    let due = session.state.recharge.filter(|recharge| {
        recharge.seq == seq
            && recharge.awaiting_retry
            && recharge.attempt.checked_add(1) == Some(attempt)
    });
    let Some(recharge) = due else {
        return Ok(());
    };
    let now = session.now();
    let month = month_index(now).ok_or_else(|| out_of_range("current time"))?;
    if month != recharge.month {
        // R4: an attempt counts in the month it is made: a retry that crosses
        // into a new month moves its amount there, within that month's limit.
        session.state.usage.remove(recharge.month, recharge.amount);
        let limit = session
            .state
            .auto
            .as_ref()
            .and_then(|settings| settings.monthly_limit);
        if let Some(limit) = limit {
            let total = session
                .state
                .usage
                .charged_in(month)
                .checked_add(recharge.amount);
            if total.is_none_or(|total| total > limit) {
                session.state.recharge = None;
                return limit_reached(session, month, recharge.amount, limit);
            }
        }
        session
            .state
            .usage
            .add(month, recharge.amount)
            .ok_or_else(|| out_of_range("monthly auto-recharge total"))?;
    }
    let recharge = Recharge {
        attempt,
        attempted_at: now,
        awaiting_retry: false,
        month,
        ..recharge
    };
    session.state.recharge = Some(recharge);
    request(session, recharge)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn settings(mode: Mode, threshold: &str, amount: &str) -> AutoRechargeSettings {
        AutoRechargeSettings {
            enabled: true,
            threshold: d(threshold),
            amount: d(amount),
            card: "card".into(),
            mode,
            monthly_limit: None,
        }
    }

    #[test]
    fn fixed_amount_is_the_smallest_multiple_reaching_the_threshold() {
        let fixed = settings(Mode::Fixed, "15", "10");
        assert_eq!(recharge_amount(&fixed, d("0")), Some(d("20")));
        assert_eq!(recharge_amount(&fixed, d("14.99")), Some(d("10")));
        assert_eq!(recharge_amount(&fixed, d("5")), Some(d("10")));
        assert_eq!(recharge_amount(&fixed, d("4.99")), Some(d("20")));
        assert_eq!(recharge_amount(&fixed, d("-100.0001")), Some(d("120")));
        let thirds = settings(Mode::Fixed, "20", "3");
        assert_eq!(recharge_amount(&thirds, d("0")), Some(d("21")));
    }

    #[test]
    fn target_amount_rounds_up_to_cents() {
        let target = settings(Mode::Target, "10", "50");
        assert_eq!(recharge_amount(&target, d("9.9999")), Some(d("40.01")));
        assert_eq!(recharge_amount(&target, d("-3.5")), Some(d("53.50")));
    }

    #[test]
    fn overflow_and_bad_units_are_none() {
        let huge = settings(Mode::Fixed, "1", "79228162514264337593543950335");
        assert_eq!(recharge_amount(&huge, Decimal::MIN), None);
        let zero = settings(Mode::Fixed, "1", "0");
        assert_eq!(recharge_amount(&zero, d("0")), None);
        let negative = settings(Mode::Fixed, "1", "-1");
        assert_eq!(recharge_amount(&negative, d("0")), None);
    }
}
