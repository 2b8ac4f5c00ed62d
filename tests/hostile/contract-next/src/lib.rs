//! A policy that accepts every event, built against `tests/hostile/wit-next`: the
//! contract at a version 9.0.0 that no host runs (this one runs 0.1.0 and 0.2.0),
//! so it must refuse to load this component.
#![no_std]

extern crate alloc;

use alloc::string::String;

wit_bindgen::generate!({
    world: "recharge-policy",
    path: "../wit-next",
});

use exports::recharge::policy::policy::{
    AccountView, Answer, Event, Guest, MinuteQuote, PolicyError, QueryKind,
};
use recharge::policy::balance::Account;
use recharge::policy::types::{Decimal, Rates};

#[path = "../../shared/realloc.rs"]
mod realloc;
#[path = "../../shared/runtime.rs"]
mod runtime;

struct NextVersion;

impl Guest for NextVersion {
    fn handle(
        _event: Event,
        _subject: &Account,
        _parent: Option<&Account>,
    ) -> Result<(), PolicyError> {
        Ok(())
    }

    fn query(
        _actor: String,
        _what: QueryKind,
        _subject: &Account,
        _parent: Option<&Account>,
    ) -> Result<Answer, PolicyError> {
        Ok(Answer::Service(true))
    }

    fn describe(_subject: &Account) -> AccountView {
        AccountView {
            auto_recharge: None,
            allocation: None,
        }
    }

    fn estimate(_basic: i64, _premium: i64, _rates: Rates) -> Decimal {
        Decimal {
            mantissa: 0,
            scale: 2,
        }
    }

    fn minutes_for(_credit: Decimal, _rates: Rates) -> MinuteQuote {
        MinuteQuote {
            basic_minutes: 0,
            premium_minutes: 0,
        }
    }
}

export!(NextVersion);
