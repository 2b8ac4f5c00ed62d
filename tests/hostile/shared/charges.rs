//! Helpers of the two guests built against the current contract (`rogue` and
//! `tests/guests/hostile`), included with `#[path]`: amounts, refusal names,
//! a charge that gives up on refusal, and recursion without end.

use alloc::format;
use alloc::string::String;

use crate::exports::recharge::policy::policy::PolicyError;
use crate::recharge::policy::balance::Account;
use crate::recharge::policy::payment::request_charge;
use crate::recharge::policy::types::{Decimal, Purpose, Refusal};

/// `cents` hundredths of a dollar.
pub fn cents(cents: i64) -> Decimal {
    Decimal {
        mantissa: cents,
        scale: 2,
    }
}

/// A refusal as the guests write it into their notes.
pub fn refusal_name(refusal: &Refusal) -> String {
    match refusal {
        Refusal::ForeignAccount => "foreign-account".into(),
        Refusal::UnknownCard => "unknown-card".into(),
        Refusal::BadAmount(why) => format!("bad-amount({why})"),
        Refusal::PriceMismatch => "price-mismatch".into(),
        Refusal::TooManyCharges => "too-many-charges".into(),
        Refusal::DuplicateKey => "duplicate-key".into(),
        Refusal::Invalid(why) => format!("invalid({why})"),
    }
}

/// One charge; a refusal becomes the policy giving up.
pub fn charge(
    payer: &Account,
    card: &str,
    amount: Decimal,
    purpose: Purpose,
    key: &str,
) -> Result<(), PolicyError> {
    request_charge(payer, card, amount, &purpose, key)
        .map_err(|refusal| PolicyError::Refused(refusal_name(&refusal)))
}

/// Recursion with 512-byte frames on the shadow stack, until something gives.
#[inline(never)]
#[allow(unconditional_recursion)]
pub fn recurse(depth: u64) -> u64 {
    let frame = [depth; 64];
    core::hint::black_box(&frame);
    recurse(core::hint::black_box(depth + 1)) + frame[0]
}
