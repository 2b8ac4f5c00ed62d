//! The mistake a tenant makes first: a policy built with `std` that prints what
//! it sees. `println!` on `wasm32-wasip2` imports `wasi:cli/stdout` and friends,
//! which the contract does not offer, so the host must refuse to load it.

wit_bindgen::generate!({
    world: "recharge-policy",
    path: "../../../wit/0.1.0",
});

use exports::recharge::policy::policy::{
    AccountView, Answer, Event, Guest, MinuteQuote, PolicyError, QueryKind, RatedCall,
};
use recharge::policy::balance::{Account, current_subject};
use recharge::policy::types::{Decimal, Rates};

struct Printer;

impl Guest for Printer {
    fn usage(call: RatedCall) -> Result<(), PolicyError> {
        let subject =
            current_subject().map_err(|refusal| PolicyError::Refused(format!("{refusal:?}")))?;
        println!("{} got {call:?}", subject.id());
        Ok(())
    }

    fn handle(
        event: Event,
        subject: &Account,
        _parent: Option<&Account>,
    ) -> Result<(), PolicyError> {
        println!("{} got {event:?}", subject.id());
        Ok(())
    }

    fn query(
        actor: String,
        what: QueryKind,
        _subject: &Account,
        _parent: Option<&Account>,
    ) -> Result<Answer, PolicyError> {
        println!("{actor} asks {what:?}");
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

export!(Printer);
