//! Auto-recharge (R1–R6): settings, the trigger and its amount, the monthly limit,
//! outcomes with retries, pause and resume.

use alloc::{format, string::String};
use core::mem;
use rust_decimal::Decimal;

use super::auth::{Action, authorize};
use super::keys::{self, TimerTag};
use super::schedule::{month_index, next_utc_day, retry_at};
use super::session::{Session, out_of_range, refusal_reason, refused};
use super::state::{self, MAX_ATTEMPTS, MonthlyUsage, Recharge, State};
use super::text::{Message, push_unsigned};
use crate::caps::{Capabilities, Role};
use crate::model::{
    AutoRechargeSettings, ChargeOutcome, Mode, Notice, PaymentOutcome, PolicyError, Purpose,
    Refusal,
};
use crate::money::{
    at_common_scale, compare, from_parts, is_whole_cents, rescaled, to_parts, whole_cents_up,
};

/// R1: save the subject's settings. Only the subject itself may; disabling is
/// always accepted as given; a rejected save changes nothing.
pub(super) fn save<C: Capabilities>(
    session: &mut Session<'_, C>,
    actor: &str,
    settings: &AutoRechargeSettings,
) -> Result<(), PolicyError> {
    authorize(Action::SaveAutoRecharge, actor, session.subject()?)?;
    validate(settings)?;
    if settings.enabled && !session.has_card(Role::Subject, &settings.card) {
        return Err(PolicyError::PaymentMethodRequired(format!(
            "card {} is not a saved card of {}",
            settings.card,
            session.subject_id()?
        )));
    }
    let previous = session.state.auto.replace(settings.clone());
    // A refusal was about the old settings: the new ones may fit.
    session.state.refused = false;
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

/// The usage hot path. The watermark is the threshold while a recharge could
/// trigger (the session keeps it so, see [`state::recharge_gate`]), and a wasm
/// host hands it over with the balance: when nothing is to be done, which is
/// nearly always, the decision needs no call back to the host. Below it, the
/// state is read and its own gate decides, so a stale watermark can only cost
/// a read, never a wrong charge.
pub(super) fn on_usage(caps: &mut impl Capabilities, has_parent: bool) -> Result<(), PolicyError> {
    let Some(watermark) = caps.watermark(Role::Subject) else {
        return Ok(());
    };
    let balance = caps.balance(Role::Subject).map_err(refused)?;
    if !below_watermark(balance, Some(watermark)) {
        return Ok(());
    }
    let bytes = caps.state(Role::Subject);
    let below =
        state::recharge_gate(&bytes).is_some_and(|threshold| compare(balance, threshold).is_lt());
    if !below {
        return Ok(());
    }
    Session::run_usage(caps, has_parent, bytes, balance, |session| {
        trigger_after_gate(session, balance)
    })
}

/// Whether a usage event that leaves the subject at `balance` may trigger a
/// recharge: only below the watermark, which is the threshold while one could
/// (R2: equal to the threshold does not trigger).
pub(super) fn below_watermark(balance: Decimal, watermark: Option<Decimal>) -> bool {
    watermark.is_some_and(|watermark| compare(balance, watermark).is_lt())
}

/// R6: the subject updated a card: the suspension ends at once, and so does a
/// hold after a refusal.
pub(super) fn on_card_updated<C: Capabilities>(session: &mut Session<'_, C>) {
    session.state.suspended = false;
    session.state.refused = false;
}

/// R5: the next UTC day has come: a recharge deferred at the daily count cap
/// may be made again (the trigger runs after every timer).
pub(super) fn on_deferral_timer<C: Capabilities>(session: &mut Session<'_, C>) {
    end_deferral_when_due(session);
}

/// Lift the deferral once its day has come, whichever event comes first.
fn end_deferral_when_due<C: Capabilities>(session: &mut Session<'_, C>) {
    if let Some(until) = session.state.deferred_until
        && session.now() >= until
    {
        session.state.deferred_until = None;
    }
}

/// R2–R4: while enabled, not suspended and with nothing in flight, a balance
/// strictly below the threshold requests one charge, within the monthly limit.
pub(super) fn trigger<C: Capabilities>(session: &mut Session<'_, C>) -> Result<(), PolicyError> {
    end_deferral_when_due(session);
    if !may_trigger(&session.state) {
        return Ok(());
    }
    let balance = session.balance()?;
    let below = session
        .state
        .auto
        .as_ref()
        .is_some_and(|settings| compare(balance, settings.threshold).is_lt());
    if !below {
        return Ok(());
    }
    recharge(session, balance)
}

/// [`trigger`] after a usage event's gate ([`state::recharge_gate`]) found the
/// balance below the threshold it read from these very state bytes: the state
/// may still have failed to decode, but needs no second comparison.
fn trigger_after_gate<C: Capabilities>(
    session: &mut Session<'_, C>,
    balance: Decimal,
) -> Result<(), PolicyError> {
    if !may_trigger(&session.state) {
        return Ok(());
    }
    recharge(session, balance)
}

/// Enabled, not suspended, not held after a refusal or deferred, and with
/// nothing in flight (R2, R5).
fn may_trigger(state: &State) -> bool {
    let enabled = state.auto.as_ref().is_some_and(|settings| settings.enabled);
    enabled
        && !state.suspended
        && !state.refused
        && state.deferred_until.is_none()
        && state.recharge.is_none()
}

/// R3–R4: a charge for a balance below the threshold, within the monthly limit.
fn recharge<C: Capabilities>(
    session: &mut Session<'_, C>,
    balance: Decimal,
) -> Result<(), PolicyError> {
    let Some(settings) = session.state.auto.as_ref() else {
        return Ok(());
    };
    let amount =
        recharge_amount(settings, balance).ok_or_else(|| out_of_range("auto-recharge amount"))?;
    let limit = settings.monthly_limit;
    let now = session.now();
    let month = month_index(now).ok_or_else(|| out_of_range("current time"))?;
    let charged = session.state.usage.charged_in(month);
    // A month's first recharge needs no addition: `0 + amount` is `amount`.
    let total = if charged.is_zero() {
        Some(amount)
    } else {
        charged.checked_add(amount)
    };
    if let Some(limit) = limit
        && total.is_none_or(|total| compare(total, limit).is_gt())
    {
        return limit_reached(session, month, amount, limit);
    }
    let seq = session.take_seq()?;
    let charged = total.ok_or_else(|| out_of_range("monthly auto-recharge total"))?;
    session.state.usage = MonthlyUsage { month, charged };
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
            if let Some(amount) = whole_units_in_integers(settings.threshold, balance, unit) {
                return Some(amount);
            }
            let gap = settings.threshold.checked_sub(balance)?;
            units_to_close(gap, unit)?.checked_mul(unit)?
        }
        Mode::Target => whole_cents_up(settings.amount.checked_sub(balance)?),
    };
    (amount > Decimal::ZERO).then_some(amount)
}

/// Fixed mode's amount in 64-bit integers, the decimal arithmetic's value and
/// scale (the unit's), for amounts that fit; `None` leaves the case to it.
fn whole_units_in_integers(threshold: Decimal, balance: Decimal, unit: Decimal) -> Option<Decimal> {
    let ((threshold, threshold_scale), (balance, balance_scale)) =
        (to_parts(threshold)?, to_parts(balance)?);
    let (unit, unit_scale) = to_parts(unit)?;
    if unit <= 0 {
        return None;
    }
    let scale = threshold_scale.max(balance_scale).max(unit_scale);
    let gap = rescaled(threshold, threshold_scale, scale)?.checked_sub(rescaled(
        balance,
        balance_scale,
        scale,
    )?)?;
    let unit_at_scale = rescaled(unit, unit_scale, scale)?;
    let units = if gap <= 0 {
        1
    } else {
        (gap - 1) / unit_at_scale + 1
    };
    from_parts(units.checked_mul(unit)?, unit_scale)
}

/// The smallest k >= 1 with `k × unit >= gap`, in integers at a common scale
/// (a decimal division costs a wasm policy thousands of instructions), 64-bit
/// ones when the amounts fit (128-bit ones are emulated in wasm).
fn units_to_close(gap: Decimal, unit: Decimal) -> Option<Decimal> {
    if let Some((gap, unit)) = at_common_scale(gap, unit) {
        return match (gap, unit) {
            (_, ..=0) => None,
            (..=0, _) => Some(Decimal::ONE),
            _ => from_parts((gap - 1) / unit + 1, 0),
        };
    }
    units_to_close_wide(gap, unit)
}

/// [`units_to_close`] for amounts beyond 64 bits, out of line.
#[cold]
#[inline(never)]
fn units_to_close_wide(gap: Decimal, unit: Decimal) -> Option<Decimal> {
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
    Decimal::try_from_i128_with_scale(units.max(1), 0).ok()
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
    let message = Message::new()
        .text("auto-recharge of ")
        .money(amount)
        .text(" not made: it would exceed the monthly limit of ")
        .money(limit)
        .finish();
    session.notify(Notice::RechargeLimitReached, &message)
}

/// Request the current attempt of `recharge` on the saved card. A charge the
/// host refuses is not a card failure (R5): no card was charged. Over the
/// per-charge cap, a first attempt charges what fits instead; at the daily
/// count cap the recharge waits for the next UTC day; any other refusal ends
/// it without pausing anything.
fn request<C: Capabilities>(
    session: &mut Session<'_, C>,
    recharge: Recharge,
) -> Result<(), PolicyError> {
    if session.state.auto.is_none() {
        session.state.recharge = None;
        return Ok(());
    }
    let key = keys::recharge(&session.subject_id()?, recharge.seq, recharge.attempt);
    match ask(session, recharge.amount, &key) {
        Ok(()) => Ok(()),
        Err(Refusal::TooManyCharges) => defer(session, recharge),
        Err(Refusal::BadAmount(_)) if recharge.attempt == 1 => within_cap(session, recharge, &key),
        Err(refusal) => refused_outright(session, recharge, &refusal),
    }
}

/// Ask for an auto-recharge of `amount` on the saved card under `key`.
fn ask<C: Capabilities>(
    session: &mut Session<'_, C>,
    amount: Decimal,
    key: &str,
) -> Result<(), Refusal> {
    with_card(session, |session, card| {
        session.charge(Role::Subject, card, amount, Purpose::AutoRecharge, key)
    })
}

/// Whether the host would refuse an auto-recharge of `amount` as over its
/// per-charge cap, asked without charging ([`Session::over_cap`]).
fn over_cap<C: Capabilities>(session: &mut Session<'_, C>, amount: Decimal) -> bool {
    with_card(session, |session, card| {
        session.over_cap(Role::Subject, card, amount, Purpose::AutoRecharge)
    })
}

/// Call the host with the saved card, lent out of the settings for the call
/// rather than cloned.
fn with_card<C: Capabilities, T>(
    session: &mut Session<'_, C>,
    call: impl FnOnce(&mut Session<'_, C>, &str) -> T,
) -> T {
    let card = session
        .state
        .auto
        .as_mut()
        .map(|settings| mem::take(&mut settings.card))
        .unwrap_or_default();
    let result = call(session, &card);
    if let Some(settings) = &mut session.state.auto {
        settings.card = card;
    }
    result
}

/// R5: the host refused the first attempt of `recharge` as over its per-charge
/// cap. The largest amount it accepts is charged instead, under the same key:
/// a multiple of the amount in fixed mode (the trigger charges the rest once it
/// succeeds), whole cents in target mode. When not even one step fits, no card
/// is charged.
fn within_cap<C: Capabilities>(
    session: &mut Session<'_, C>,
    recharge: Recharge,
    key: &str,
) -> Result<(), PolicyError> {
    let step = match session.state.auto.as_ref() {
        Some(settings) if settings.mode == Mode::Fixed => settings.amount,
        _ => Decimal::new(1, 2),
    };
    let Some(fitting) = largest_fitting(session, recharge.amount, step) else {
        return refused_outright(session, recharge, &Refusal::BadAmount(String::new()));
    };
    session.state.usage.remove(recharge.month, recharge.amount);
    session
        .state
        .usage
        .add(recharge.month, fitting)
        .ok_or_else(|| out_of_range("monthly auto-recharge total"))?;
    let recharge = Recharge {
        amount: fitting,
        ..recharge
    };
    session.state.recharge = Some(recharge);
    match ask(session, fitting, key) {
        Ok(()) => Ok(()),
        Err(Refusal::TooManyCharges) => defer(session, recharge),
        Err(refusal) => refused_outright(session, recharge, &refusal),
    }
}

/// The largest multiple of `step` below `too_much` (itself a multiple of it)
/// that the host takes for within its per-charge cap, found by a binary search
/// of probes that charge nothing; `None` when not even one step fits.
fn largest_fitting<C: Capabilities>(
    session: &mut Session<'_, C>,
    too_much: Decimal,
    step: Decimal,
) -> Option<Decimal> {
    let steps = too_much.checked_div(step)?.trunc();
    // Beyond 2^64 steps the amount is refused whatever the cap can be.
    let mut over = u64::try_from(steps).unwrap_or(u64::MAX);
    let mut fits = 0u64;
    while over - fits > 1 {
        let mid = fits + (over - fits) / 2;
        match Decimal::from(mid).checked_mul(step) {
            Some(amount) if !over_cap(session, amount) => fits = mid,
            _ => over = mid,
        }
    }
    (fits > 0).then(|| Decimal::from(fits).checked_mul(step))?
}

/// R5: the host's daily count of auto-recharges is reached. No card was
/// charged and nothing failed: the recharge waits for the next UTC day, with
/// one notice. A first attempt gives way to the trigger then (the balance will
/// have moved); a retry is made then, as the same attempt.
fn defer<C: Capabilities>(
    session: &mut Session<'_, C>,
    recharge: Recharge,
) -> Result<(), PolicyError> {
    let at = next_utc_day(session.now()).ok_or_else(|| out_of_range("current time"))?;
    let tag = if recharge.attempt > 1 {
        session.state.recharge = Some(Recharge {
            attempt: recharge.attempt - 1,
            awaiting_retry: true,
            ..recharge
        });
        TimerTag::RechargeRetry {
            seq: recharge.seq,
            attempt: recharge.attempt,
        }
    } else {
        session.state.recharge = None;
        session.state.usage.remove(recharge.month, recharge.amount);
        session.state.deferred_until = Some(at);
        TimerTag::RechargeDeferral
    };
    session.wake_at(at, tag.encode().ok_or_else(|| out_of_range("timer tag"))?)?;
    let message = Message::new()
        .text("auto-recharge of ")
        .money(recharge.amount)
        .text(" deferred to the next UTC day: the host's daily count of auto-recharges is reached; no card was charged")
        .finish();
    session.notify(DEFERRED, &message)
}

/// The notice of a deferral (SPEC R5), a kind of contract 0.2.0.
const DEFERRED: Notice = Notice::RechargeDeferred;

/// R5: the host refused `recharge` outright. No card was charged, so nothing
/// failed and nothing pauses: one notice says what happened, and auto-recharge
/// holds until the settings, the card or the balance change (a save, a card
/// update, a payment) rather than ask again on every usage.
fn refused_outright<C: Capabilities>(
    session: &mut Session<'_, C>,
    recharge: Recharge,
    refusal: &Refusal,
) -> Result<(), PolicyError> {
    session.state.recharge = None;
    session.state.usage.remove(recharge.month, recharge.amount);
    session.state.refused = true;
    let message = Message::new()
        .text("auto-recharge of ")
        .money(recharge.amount)
        .text(" not made: the host refused it ")
        .text(&refusal_reason(refusal))
        .text("; no card was charged")
        .finish();
    session.notify(Notice::RechargeFailed, &message)
}

/// R5/R6: the outcome of an auto-recharge charge.
pub(super) fn on_outcome<C: Capabilities>(
    session: &mut Session<'_, C>,
    outcome: &PaymentOutcome,
) -> Result<(), PolicyError> {
    let current = {
        let subject = session.subject_id()?;
        session.state.recharge.filter(|recharge| {
            !recharge.awaiting_retry
                && keys::is_recharge(&outcome.key, &subject, recharge.seq, recharge.attempt)
        })
    };
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
        // R5: the customer must authenticate the card. One attempt, never
        // retried blindly, treated as after a decline.
        (Some(recharge), ChargeOutcome::RequiresAction) => give_up(
            session,
            recharge,
            Notice::PaymentActionRequired,
            "needs the card holder's authentication (3-D Secure); nothing was charged",
        ),
    }
}

fn succeeded<C: Capabilities>(
    session: &mut Session<'_, C>,
    amount: Decimal,
) -> Result<(), PolicyError> {
    let what = |message: Message| message.text("auto-recharge of ").money(amount);
    let notice = what(Message::new()).text(" succeeded").finish();
    session.notify(Notice::RechargeSucceeded, &notice)?;
    session.payment_succeeded(what)
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
            let mut how = String::from("failed after ");
            push_unsigned(&mut how, recharge.attempt.into());
            how.push_str(" attempts");
            how
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
    give_up(session, recharge, Notice::RechargeFailed, how)
}

/// Drop `recharge` for good and tell the account so with `notice`; while
/// enabled, suspend auto-recharge and pause the account (R5).
fn give_up<C: Capabilities>(
    session: &mut Session<'_, C>,
    recharge: Recharge,
    notice: Notice,
    how: &str,
) -> Result<(), PolicyError> {
    session.state.recharge = None;
    session.state.usage.remove(recharge.month, recharge.amount);
    let what = Message::new()
        .text("auto-recharge of ")
        .money(recharge.amount)
        .text(" ")
        .text(how)
        .finish();
    session.notify(notice, &what)?;
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

    /// R3 in decimal arithmetic throughout: what the integer paths must match,
    /// scale included.
    fn decimal_amount(settings: &AutoRechargeSettings, balance: Decimal) -> Option<Decimal> {
        let amount = match settings.mode {
            Mode::Fixed => {
                let (unit, gap) = (settings.amount, settings.threshold.checked_sub(balance)?);
                if unit <= Decimal::ZERO {
                    return None;
                }
                let units = if gap <= Decimal::ZERO {
                    Decimal::ONE
                } else {
                    let scale = gap.scale().max(unit.scale());
                    let at_scale = |value: Decimal| -> Option<i128> {
                        value
                            .mantissa()
                            .checked_mul(10i128.checked_pow(scale - value.scale())?)
                    };
                    let (gap, unit) = (at_scale(gap)?, at_scale(unit)?);
                    Decimal::try_from_i128_with_scale(gap.checked_add(unit - 1)? / unit, 0).ok()?
                };
                units.checked_mul(unit)?
            }
            Mode::Target => settings
                .amount
                .checked_sub(balance)?
                .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToPositiveInfinity),
        };
        (amount > Decimal::ZERO).then_some(amount)
    }

    fn money() -> impl proptest::strategy::Strategy<Value = Decimal> {
        use proptest::prelude::*;
        let mantissa = prop_oneof![
            -100_000i128..100_000,
            any::<i64>().prop_map(i128::from),
            -(1i128 << 96) + 1..(1i128 << 96),
        ];
        (mantissa, 0u32..=28)
            .prop_map(|(mantissa, scale)| Decimal::from_i128_with_scale(mantissa, scale))
    }

    proptest::proptest! {
        #[test]
        fn amounts_match_decimal_arithmetic(
            threshold in money(),
            amount in money(),
            balance in money(),
            target in proptest::bool::ANY,
        ) {
            let mode = if target { Mode::Target } else { Mode::Fixed };
            let mut settings = settings(mode, "0", "0");
            settings.threshold = threshold;
            settings.amount = amount;
            let (fast, exact) = (recharge_amount(&settings, balance), decimal_amount(&settings, balance));
            proptest::prop_assert_eq!(fast, exact);
            proptest::prop_assert_eq!(fast.map(|fast| fast.scale()), exact.map(|exact| exact.scale()));
        }
    }

    #[test]
    fn overflow_and_bad_units_are_none() {
        let huge = settings(Mode::Fixed, "1", "79228162514264337593543950335");
        assert_eq!(recharge_amount(&huge, Decimal::MIN), None);
        let zero = settings(Mode::Fixed, "1", "0");
        assert_eq!(recharge_amount(&zero, d("0")), None);
        let negative = settings(Mode::Fixed, "1", "-1");
        assert_eq!(recharge_amount(&negative, d("0")), None);
        // More units than a decimal holds: out of range, not a trap.
        let tiny = settings(Mode::Fixed, "100000000000000000000", "0.0000000001");
        assert_eq!(recharge_amount(&tiny, d("0")), None);
    }
}
