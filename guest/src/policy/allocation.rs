//! Monthly sub-account minute allocation (R7), paid by the parent agency.
//!
//! The agency's wallet and status are never touched: the policy only charges the
//! agency's card and tells the agency how it went; the host adds the minutes to
//! the sub-account on success.

use alloc::{format, string::String};
use rust_decimal::Decimal;

use super::auth::{Action, authorize};
use super::keys::{self, TimerTag};
use super::schedule::{nth_run, retry_at};
use super::session::{Session, out_of_range, refused};
use super::state::{Allocation, MAX_ATTEMPTS, Purchase, State};
use super::text::{Message, concat, push_signed, push_unsigned};
use crate::caps::{Capabilities, Role};
use crate::model::{
    AllocationSettings, AllocationView, ChargeOutcome, MinutePurchase, Notice, PaymentOutcome,
    PolicyError, Purpose, Rates, Refusal,
};
use crate::money::allocation_price;

/// R7: the parent agency saves the subject's allocation. Non-zero with none
/// active buys at once and anchors the schedule; while active it changes what
/// the next run buys; 0 and 0 stops it.
pub(super) fn save<C: Capabilities>(
    session: &mut Session<'_, C>,
    actor: &str,
    settings: &AllocationSettings,
) -> Result<(), PolicyError> {
    authorize(Action::SaveAllocation, actor, session.subject()?)?;
    if settings.basic_minutes < 0 {
        return Err(PolicyError::InvalidSettings(
            "basic_minutes must be 0 or more".into(),
        ));
    }
    if settings.premium_minutes < 0 {
        return Err(PolicyError::InvalidSettings(
            "premium_minutes must be 0 or more".into(),
        ));
    }
    if settings.basic_minutes == 0 && settings.premium_minutes == 0 {
        session.state.allocation = None;
        return Ok(());
    }
    if !session.has_parent {
        return Err(refused(Refusal::ForeignAccount));
    }
    if !session.has_card(Role::Parent, &settings.card) {
        return Err(PolicyError::PaymentMethodRequired(format!(
            "card {} is not a saved card of {actor}",
            settings.card
        )));
    }
    if allocation_price(
        settings.basic_minutes,
        settings.premium_minutes,
        &session.rates(),
    )
    .is_none()
    {
        return Err(PolicyError::InvalidSettings(
            "the allocation's price is out of range".into(),
        ));
    }
    if let Some(active) = &mut session.state.allocation {
        active.settings = settings.clone();
        return Ok(());
    }
    let series = session.take_seq()?;
    session.state.allocation = Some(Allocation {
        settings: settings.clone(),
        series,
        anchor: session.now(),
        next_period: 0,
        last_paid: None,
        purchase: None,
    });
    run(session, 0)
}

/// The monthly price of the subject's allocation at `rates`: zero when none is
/// active, `None` on overflow.
pub(super) fn monthly_estimate(state: &State, rates: &Rates) -> Option<Decimal> {
    match &state.allocation {
        Some(allocation) => allocation_price(
            allocation.settings.basic_minutes,
            allocation.settings.premium_minutes,
            rates,
        ),
        None => Some(Decimal::new(0, 2)),
    }
}

/// The running allocation as the host reports it.
pub(super) fn view(state: &State) -> Option<AllocationView> {
    let allocation = state.allocation.as_ref()?;
    Some(AllocationView {
        settings: allocation.settings.clone(),
        next_run: nth_run(allocation.anchor, allocation.next_period).unwrap_or(i64::MAX),
    })
}

/// The timer of run `period` of schedule `series`; stale timers do nothing.
pub(super) fn on_run_timer<C: Capabilities>(
    session: &mut Session<'_, C>,
    series: u32,
    period: u32,
) -> Result<(), PolicyError> {
    let due =
        session.state.allocation.as_ref().is_some_and(|allocation| {
            allocation.series == series && allocation.next_period == period
        });
    if due { run(session, period) } else { Ok(()) }
}

/// Run `period`: schedule the next run right away, whatever this one's outcome,
/// then buy this period's minutes unless a purchase for it already succeeded.
/// A new run supersedes a purchase of an earlier period still retrying.
fn run<C: Capabilities>(session: &mut Session<'_, C>, period: u32) -> Result<(), PolicyError> {
    let now = session.now();
    let Some(allocation) = &mut session.state.allocation else {
        return Ok(());
    };
    let next = period
        .checked_add(1)
        .ok_or_else(|| out_of_range("allocation period"))?;
    let next_at =
        nth_run(allocation.anchor, next).ok_or_else(|| out_of_range("allocation schedule"))?;
    let tag = TimerTag::AllocationRun {
        series: allocation.series,
        period: next,
    }
    .encode()
    .ok_or_else(|| out_of_range("allocation period"))?;
    allocation.next_period = next;
    let already_paid = allocation.last_paid.is_some_and(|paid| paid >= period);
    let purchase = Purchase {
        period,
        attempt: 1,
        basic_minutes: allocation.settings.basic_minutes,
        premium_minutes: allocation.settings.premium_minutes,
        attempted_at: now,
        awaiting_retry: false,
    };
    allocation.purchase = (!already_paid).then_some(purchase);
    session.wake_at(next_at, tag)?;
    if already_paid {
        Ok(())
    } else {
        request(session, purchase)
    }
}

/// Charge the agency's card for the current attempt of `purchase`, at the rates
/// in force now. A refused charge counts as a failed attempt.
fn request<C: Capabilities>(
    session: &mut Session<'_, C>,
    purchase: Purchase,
) -> Result<(), PolicyError> {
    let price = allocation_price(
        purchase.basic_minutes,
        purchase.premium_minutes,
        &session.rates(),
    )
    .ok_or_else(|| out_of_range("allocation price"))?;
    if price <= Decimal::ZERO {
        // Free minutes cannot be charged, and the host credits only what is paid.
        if let Some(allocation) = &mut session.state.allocation {
            allocation.purchase = None;
        }
        return Ok(());
    }
    let Some(allocation) = &session.state.allocation else {
        return Ok(());
    };
    let card = allocation.settings.card.clone();
    let subject = session.subject_id()?.into_owned();
    let key = keys::allocation(
        &subject,
        allocation.series,
        purchase.period,
        purchase.attempt,
    );
    let purpose = Purpose::Allocation(MinutePurchase {
        beneficiary: subject,
        basic_minutes: purchase.basic_minutes,
        premium_minutes: purchase.premium_minutes,
    });
    match session.charge(Role::Parent, &card, price, purpose, &key) {
        Ok(()) => Ok(()),
        Err(_) => attempt_failed(session, purchase),
    }
}

/// The outcome of an allocation charge: success tells the agency and marks the
/// period paid; failures retry as R5, then tell the agency.
pub(super) fn on_outcome<C: Capabilities>(
    session: &mut Session<'_, C>,
    outcome: &PaymentOutcome,
    bought: &MinutePurchase,
) -> Result<(), PolicyError> {
    let current = {
        let subject = session.subject_id()?;
        session.state.allocation.as_ref().and_then(|allocation| {
            allocation.purchase.filter(|purchase| {
                !purchase.awaiting_retry
                    && keys::is_allocation(
                        &outcome.key,
                        &subject,
                        allocation.series,
                        purchase.period,
                        purchase.attempt,
                    )
            })
        })
    };
    match (current, outcome.outcome) {
        (Some(purchase), ChargeOutcome::Succeeded) => {
            if let Some(allocation) = &mut session.state.allocation {
                allocation.purchase = None;
                allocation.last_paid = Some(purchase.period);
            }
            succeeded(session, outcome, bought)
        }
        // Paid for a schedule this state no longer tracks: the minutes were added.
        (None, ChargeOutcome::Succeeded) => succeeded(session, outcome, bought),
        (None, _) => Ok(()),
        (Some(purchase), ChargeOutcome::Declined) => {
            final_failure(session, purchase, "was declined")
        }
        (Some(purchase), ChargeOutcome::Failed) => attempt_failed(session, purchase),
    }
}

fn describe_purchase(subject: &str, basic_minutes: i64, premium_minutes: i64) -> String {
    let mut text = String::from("allocation of ");
    push_signed(&mut text, basic_minutes);
    text.push_str(" basic and ");
    push_signed(&mut text, premium_minutes);
    text.push_str(" premium minutes for ");
    text.push_str(subject);
    text
}

fn succeeded<C: Capabilities>(
    session: &mut Session<'_, C>,
    outcome: &PaymentOutcome,
    bought: &MinutePurchase,
) -> Result<(), PolicyError> {
    let message = Message::new()
        .text(&describe_purchase(
            &bought.beneficiary,
            bought.basic_minutes,
            bought.premium_minutes,
        ))
        .text(" succeeded: ")
        .money(outcome.amount)
        .text(" charged")
        .finish();
    session.notify_parent(Notice::AllocationSucceeded, &message)
}

fn attempt_failed<C: Capabilities>(
    session: &mut Session<'_, C>,
    purchase: Purchase,
) -> Result<(), PolicyError> {
    let Some(at) = retry_at(purchase.attempted_at, purchase.attempt) else {
        let mut how = String::from("failed after ");
        push_unsigned(&mut how, MAX_ATTEMPTS.into());
        how.push_str(" attempts");
        return final_failure(session, purchase, &how);
    };
    let Some(allocation) = &mut session.state.allocation else {
        return Ok(());
    };
    let tag = TimerTag::AllocationRetry {
        series: allocation.series,
        period: purchase.period,
        attempt: purchase.attempt + 1,
    }
    .encode()
    .ok_or_else(|| out_of_range("allocation period"))?;
    allocation.purchase = Some(Purchase {
        awaiting_retry: true,
        ..purchase
    });
    session.wake_at(at, tag)
}

/// A final failure credits nothing and leaves the next run as scheduled.
fn final_failure<C: Capabilities>(
    session: &mut Session<'_, C>,
    purchase: Purchase,
    how: &str,
) -> Result<(), PolicyError> {
    if let Some(allocation) = &mut session.state.allocation {
        allocation.purchase = None;
    }
    let message = concat(&[
        &describe_purchase(
            &session.subject_id()?,
            purchase.basic_minutes,
            purchase.premium_minutes,
        ),
        " ",
        how,
        ": nothing charged",
    ]);
    session.notify_parent(Notice::AllocationFailed, &message)
}

/// The timer of attempt `attempt` of the purchase for `period`; stale timers do
/// nothing.
pub(super) fn on_retry_timer<C: Capabilities>(
    session: &mut Session<'_, C>,
    series: u32,
    period: u32,
    attempt: u8,
) -> Result<(), PolicyError> {
    let now = session.now();
    let Some(allocation) = session
        .state
        .allocation
        .as_mut()
        .filter(|allocation| allocation.series == series)
    else {
        return Ok(());
    };
    let due = allocation.purchase.filter(|purchase| {
        purchase.period == period
            && purchase.awaiting_retry
            && purchase.attempt.checked_add(1) == Some(attempt)
    });
    let Some(purchase) = due else {
        return Ok(());
    };
    let purchase = Purchase {
        attempt,
        attempted_at: now,
        awaiting_retry: false,
        ..purchase
    };
    allocation.purchase = Some(purchase);
    request(session, purchase)
}
