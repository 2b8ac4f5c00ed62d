//! The default policy's rules (SPEC.md §5, R1–R9) as a pure core.
//!
//! Everything the core knows of the world comes through [`Capabilities`]: the
//! subject account (and its parent agency, when `has_parent`), the clock, payment
//! and notify. Its own per-account state lives in the subject's state bytes. The
//! core does no I/O, so it runs the same natively (tests, speed baseline, the
//! host's fallback) and inside the wasm component.
//!
//! - [`handle`] applies one event: usage, a settings save, a top-up, a card
//!   update, a payment outcome or a timer. On error the host discards everything
//!   the event did.
//! - [`query`] answers an actor's question and changes nothing.
//! - [`describe`] reports the subject's settings for the host's report.
//! - [`estimate`] and [`minutes_for`] are pure quotes.
//!
//! ```
//! use recharge_policy_sdk::model::Rates;
//! use recharge_guest::policy::{estimate, minutes_for};
//! use rust_decimal::Decimal;
//!
//! let rates = Rates { basic: Decimal::new(9, 2), premium: Decimal::new(16, 2) };
//! assert_eq!(estimate(100, 50, &rates).to_string(), "17.00");
//! assert_eq!(minutes_for(Decimal::new(100, 2), &rates).premium_minutes, 6);
//! ```

mod allocation;
mod auth;
mod auto_recharge;
mod keys;
mod schedule;
mod service;
mod session;
mod state;
mod text;
mod top_up;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

use rust_decimal::Decimal;

use self::keys::TimerTag;
use self::session::Session;
use self::state::State;
use crate::caps::{Capabilities, Role};
use crate::model::{
    AccountView, Answer, Event, MinuteQuote, PolicyError, Purpose, QueryKind, Rates,
};
use crate::money::{allocation_price, minutes_bought};

/// Apply one event to the subject account. `has_parent` tells whether the
/// subject's parent agency was handed over too (`Role::Parent`).
///
/// Authorization comes first, then validation; every event that can change the
/// balance or the settings ends by re-running the auto-recharge trigger (R2).
pub fn handle(
    event: &Event,
    has_parent: bool,
    caps: &mut impl Capabilities,
) -> Result<(), PolicyError> {
    if let Event::Usage(_) = event {
        return auto_recharge::on_usage(caps, has_parent);
    }
    Session::run(caps, has_parent, |session| apply(event, session))
}

/// A non-usage event's rules, then the auto-recharge trigger (R2).
fn apply<C: Capabilities>(event: &Event, session: &mut Session<'_, C>) -> Result<(), PolicyError> {
    match event {
        Event::Usage(_) => {}
        Event::SaveAutoRecharge { actor, settings } => {
            auto_recharge::save(session, actor, settings)?
        }
        Event::SaveAllocation { actor, settings } => allocation::save(session, actor, settings)?,
        Event::TopUp {
            actor,
            card,
            amount,
        } => top_up::request(session, actor, card, *amount)?,
        Event::CardUpdated(_) => auto_recharge::on_card_updated(session),
        Event::PaymentOutcome(outcome) => match &outcome.purpose {
            Purpose::AutoRecharge => auto_recharge::on_outcome(session, outcome)?,
            Purpose::TopUp => top_up::on_outcome(session, outcome)?,
            Purpose::Allocation(bought) => allocation::on_outcome(session, outcome, bought)?,
        },
        Event::Timer(tag) => match TimerTag::decode(*tag) {
            Some(TimerTag::RechargeRetry { seq, attempt }) => {
                auto_recharge::on_retry_timer(session, seq, attempt)?
            }
            Some(TimerTag::RechargeDeferral) => auto_recharge::on_deferral_timer(session),
            Some(TimerTag::AllocationRun { series, period }) => {
                allocation::on_run_timer(session, series, period)?
            }
            Some(TimerTag::AllocationRetry {
                series,
                period,
                attempt,
            }) => allocation::on_retry_timer(session, series, period, attempt)?,
            None => {}
        },
    }
    auto_recharge::trigger(session)
}

/// Answer `actor`'s query about the subject: the subject itself or its parent
/// agency may ask, anyone else is `Forbidden`. Changes nothing.
///
/// The parent is recognised by the subject's snapshot, so `has_parent` is not
/// needed; it is taken for symmetry with [`handle`].
pub fn query(
    actor: &str,
    what: QueryKind,
    has_parent: bool,
    caps: &impl Capabilities,
) -> Result<Answer, PolicyError> {
    let _ = has_parent;
    service::answer(actor, what, caps)
}

/// The subject's auto-recharge settings (if ever saved) and its running
/// allocation with the time of its next run, for the host's report.
pub fn describe(caps: &impl Capabilities) -> AccountView {
    let state = State::decode(&caps.state(Role::Subject));
    AccountView {
        allocation: allocation::view(&state),
        auto_recharge: state.auto,
    }
}

/// The monthly price of `basic_minutes` and `premium_minutes` at `rates`, in whole
/// cents (100 basic + 50 premium at 0.09 / 0.16 = 17.00). Saturates at
/// `Decimal::MAX` for a price too large to represent.
pub fn estimate(basic_minutes: i64, premium_minutes: i64, rates: &Rates) -> Decimal {
    allocation_price(basic_minutes, premium_minutes, rates).unwrap_or(Decimal::MAX)
}

/// Whole minutes `credit` buys if spent all on basic, or all on premium.
pub fn minutes_for(credit: Decimal, rates: &Rates) -> MinuteQuote {
    MinuteQuote {
        basic_minutes: minutes_bought(credit, rates.basic),
        premium_minutes: minutes_bought(credit, rates.premium),
    }
}

/// The default policy as a [`PolicyRules`](crate::PolicyRules) implementation:
/// the functions of this module.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultPolicy;

impl crate::PolicyRules for DefaultPolicy {
    fn handle(
        event: &Event,
        has_parent: bool,
        caps: &mut impl Capabilities,
    ) -> Result<(), PolicyError> {
        handle(event, has_parent, caps)
    }

    fn query(
        actor: &str,
        what: QueryKind,
        has_parent: bool,
        caps: &impl Capabilities,
    ) -> Result<Answer, PolicyError> {
        query(actor, what, has_parent, caps)
    }

    fn describe(caps: &impl Capabilities) -> AccountView {
        describe(caps)
    }

    fn usage_matters(balance: Decimal, watermark: Option<Decimal>) -> bool {
        auto_recharge::below_watermark(balance, watermark)
    }

    fn estimate(basic_minutes: i64, premium_minutes: i64, rates: &Rates) -> Decimal {
        estimate(basic_minutes, premium_minutes, rates)
    }

    fn minutes_for(credit: Decimal, rates: &Rates) -> MinuteQuote {
        minutes_for(credit, rates)
    }
}
