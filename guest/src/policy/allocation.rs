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
use super::session::{Session, out_of_range, refusal_reason, refused};
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
/// the next run buys; 0 and 0 stops it. A price over the host's per-charge cap
/// is rejected (R5): the purchase at once would be refused, and so would every
/// run.
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
    let Some(price) = allocation_price(
        settings.basic_minutes,
        settings.premium_minutes,
        &session.rates(),
    ) else {
        return Err(PolicyError::InvalidSettings(
            "the allocation's price is out of range".into(),
        ));
    };
    if session.state.allocation.is_some() {
        let purpose = purchase_of(session.subject_id()?.into_owned(), settings);
        if price > Decimal::ZERO && session.over_cap(Role::Parent, &settings.card, price, purpose) {
            return Err(over_cap(price));
        }
        if let Some(active) = &mut session.state.allocation {
            active.settings = settings.clone();
        }
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
    match run(session, 0)? {
        Some((_, Refusal::BadAmount(_))) => Err(over_cap(price)),
        Some((purchase, refusal)) => refused_outright(session, purchase, &refusal),
        None => Ok(()),
    }
}

/// The rejection of an allocation priced over the host's per-charge cap.
fn over_cap(price: Decimal) -> PolicyError {
    PolicyError::InvalidSettings(
        Message::new()
            .text("the allocation's price of ")
            .money(price)
            .text(" is over the host's per-charge cap")
            .finish(),
    )
}

/// What a purchase of `settings` for `beneficiary` is for.
fn purchase_of(beneficiary: String, settings: &AllocationSettings) -> Purpose {
    Purpose::Allocation(MinutePurchase {
        beneficiary,
        basic_minutes: settings.basic_minutes,
        premium_minutes: settings.premium_minutes,
    })
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
    if !due {
        return Ok(());
    }
    match run(session, period)? {
        Some((purchase, refusal)) => refused_outright(session, purchase, &refusal),
        None => Ok(()),
    }
}

/// Run `period`: schedule the next run right away, whatever this one's outcome,
/// then buy this period's minutes unless a purchase for it already succeeded.
/// A new run supersedes a purchase of an earlier period still retrying. The
/// purchase and the host's refusal, if it refused it, for the caller to say.
fn run<C: Capabilities>(
    session: &mut Session<'_, C>,
    period: u32,
) -> Result<Option<(Purchase, Refusal)>, PolicyError> {
    let now = session.now();
    let Some(allocation) = &mut session.state.allocation else {
        return Ok(None);
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
        return Ok(None);
    }
    Ok(request(session, purchase)?.map(|refusal| (purchase, refusal)))
}

/// Charge the agency's card for the current attempt of `purchase`, at the rates
/// in force now; the host's refusal, if it refused the charge.
fn request<C: Capabilities>(
    session: &mut Session<'_, C>,
    purchase: Purchase,
) -> Result<Option<Refusal>, PolicyError> {
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
        return Ok(None);
    }
    let Some(allocation) = &session.state.allocation else {
        return Ok(None);
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
    Ok(session
        .charge(Role::Parent, &card, price, purpose, &key)
        .err())
}

/// R5/R7: the host refused a purchase outright. No card was charged, so there
/// is nothing to retry: the agency hears what happened, nothing is credited and
/// the next run stays as scheduled.
fn refused_outright<C: Capabilities>(
    session: &mut Session<'_, C>,
    purchase: Purchase,
    refusal: &Refusal,
) -> Result<(), PolicyError> {
    let reason = refusal_reason(refusal);
    give_up(
        session,
        purchase,
        &[
            " not made: the host refused it ",
            &reason,
            "; no card was charged",
        ],
    )
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
        // R5: the agency must authenticate the card; one attempt, no retry.
        (Some(purchase), ChargeOutcome::RequiresAction) => give_up_as(
            session,
            purchase,
            Notice::PaymentActionRequired,
            &[
                " needs the card holder's authentication (3-D Secure)",
                ": nothing charged",
            ],
        ),
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
    give_up(session, purchase, &[" ", how, ": nothing charged"])
}

/// Drop the purchase and tell the agency: what it was, then `why`.
fn give_up<C: Capabilities>(
    session: &mut Session<'_, C>,
    purchase: Purchase,
    why: &[&str],
) -> Result<(), PolicyError> {
    give_up_as(session, purchase, Notice::AllocationFailed, why)
}

/// Drop the purchase and tell the agency so with `notice`.
fn give_up_as<C: Capabilities>(
    session: &mut Session<'_, C>,
    purchase: Purchase,
    notice: Notice,
    why: &[&str],
) -> Result<(), PolicyError> {
    if let Some(allocation) = &mut session.state.allocation {
        allocation.purchase = None;
    }
    let what = describe_purchase(
        &session.subject_id()?,
        purchase.basic_minutes,
        purchase.premium_minutes,
    );
    let mut parts = alloc::vec![what.as_str()];
    parts.extend_from_slice(why);
    let message = concat(&parts);
    session.notify_parent(notice, &message)
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
    match request(session, purchase)? {
        Some(refusal) => refused_outright(session, purchase, &refusal),
        None => Ok(()),
    }
}
