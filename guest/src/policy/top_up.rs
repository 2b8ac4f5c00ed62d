//! Manual top-up (R8): one charge, no retries.

use alloc::format;
use rust_decimal::Decimal;

use super::auth::{Action, authorize};
use super::keys;
use super::session::{Session, refused};
use super::text::Message;
use crate::caps::{Capabilities, Role};
use crate::model::{ChargeOutcome, Notice, PaymentOutcome, PolicyError, Purpose};
use crate::money::is_whole_cents;

/// The subject tops itself up from a saved card.
pub(super) fn request<C: Capabilities>(
    session: &mut Session<'_, C>,
    actor: &str,
    card: &str,
    amount: Decimal,
) -> Result<(), PolicyError> {
    authorize(Action::TopUp, actor, session.subject()?)?;
    if amount <= Decimal::ZERO || !is_whole_cents(amount) {
        return Err(PolicyError::InvalidSettings(
            "amount must be whole cents and more than 0.00".into(),
        ));
    }
    if !session.has_card(Role::Subject, card) {
        return Err(PolicyError::PaymentMethodRequired(format!(
            "card {card} is not a saved card of {}",
            session.subject_id()?
        )));
    }
    let seq = session.take_seq()?;
    let key = keys::top_up(&session.subject_id()?, seq);
    session
        .charge(Role::Subject, card, amount, Purpose::TopUp, &key)
        .map_err(refused)
}

/// Success resolves a pause (R6); a failure of any kind is only noticed.
pub(super) fn on_outcome<C: Capabilities>(
    session: &mut Session<'_, C>,
    outcome: &PaymentOutcome,
) -> Result<(), PolicyError> {
    let what = |message: Message| message.text("top-up of ").money(outcome.amount);
    let (notice, how) = match outcome.outcome {
        ChargeOutcome::Succeeded => return session.payment_succeeded(what),
        ChargeOutcome::Declined => (Notice::TopUpFailed, " was declined"),
        ChargeOutcome::Failed => (Notice::TopUpFailed, " failed"),
        ChargeOutcome::RequiresAction => (
            Notice::PaymentActionRequired,
            " needs the card holder's authentication (3-D Secure); nothing was charged",
        ),
    };
    let message = what(Message::new()).text(how).finish();
    session.notify(notice, &message)
}
