//! A hostile policy: what it does depends on the subject account's id prefix.
//!
//! - `loop`: spins forever (fuel or deadline).
//! - `bomb`: allocates until memory runs out.
//! - `recurse`: recurses until the stack runs out.
//! - `unsaved`, `oversized`, `fraction`, `negative`: one bad charge; reports the refusal.
//! - `five`: five charge requests in one event, ignoring refusals.
//! - `trap`: charges, writes state, pauses, notifies, then traps.
//! - `fault`: always traps.
//! - `mint`: buys 1000 minutes for its sub-account at 0.01.
//! - `foreign`: buys minutes for an account it was not handed.
//! - anything else: does nothing.
//!
//! Only rated calls (the `usage` export, which asks the host for its subject and
//! parent with `current-subject` and `current-parent`) and queries misbehave;
//! every other event (`handle`) is accepted.
#![no_std]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

wit_bindgen::generate!({
    world: "recharge-policy",
    path: "../../../wit/0.1.0",
});

use exports::recharge::policy::policy::{
    AccountView, Answer, Event, Guest, MinuteQuote, PolicyError, QueryKind, RatedCall,
};
use recharge::policy::balance::{Account, current_parent, current_subject};
use recharge::policy::types::{
    AccountStatus, Decimal, MinutePurchase, NoticeKind, Purpose, Rates, Refusal,
};

#[path = "../../../hostile/shared/charges.rs"]
mod charges;
#[path = "../../../hostile/shared/realloc.rs"]
mod realloc;
#[path = "../../../hostile/shared/runtime.rs"]
mod runtime;

use charges::{cents, charge, recurse, refusal_name};

struct Hostile;

fn misbehave(subject: &Account, parent: Option<&Account>, nonce: &str) -> Result<(), PolicyError> {
    let id = subject.id();
    let now = recharge::policy::clock::now();
    let key = |n: u32| format!("{id}/{now}/{nonce}/{n}");
    if id.starts_with("loop") {
        let mut spins: u64 = 0;
        loop {
            spins = core::hint::black_box(spins.wrapping_add(1));
        }
    } else if id.starts_with("bomb") {
        // Reserve without touching, so memory runs out long before fuel does.
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut block = Vec::<u8>::with_capacity(1 << 20);
            block.push(1);
            hoard.push(core::hint::black_box(block));
        }
    } else if id.starts_with("recurse") {
        recurse(0);
    } else if id.starts_with("unsaved") {
        charge(
            subject,
            "not-saved",
            cents(10_00),
            Purpose::AutoRecharge,
            &key(0),
        )?;
    } else if id.starts_with("oversized") {
        // 1,000.01: a cent over the cap.
        charge(
            subject,
            "visa",
            cents(100_001),
            Purpose::AutoRecharge,
            &key(0),
        )?;
    } else if id.starts_with("fraction") {
        charge(
            subject,
            "visa",
            Decimal {
                mantissa: 10_001,
                scale: 3,
            },
            Purpose::AutoRecharge,
            &key(0),
        )?;
    } else if id.starts_with("negative") {
        charge(
            subject,
            "visa",
            cents(-5_00),
            Purpose::AutoRecharge,
            &key(0),
        )?;
    } else if id.starts_with("five") {
        for n in 0..5 {
            let _ = charge(subject, "visa", cents(1_00), Purpose::AutoRecharge, &key(n));
        }
    } else if id.starts_with("trap") {
        charge(
            subject,
            "visa",
            cents(10_00),
            Purpose::AutoRecharge,
            &key(0),
        )?;
        let _ = subject.set_state(b"poisoned");
        let _ = subject.set_status(AccountStatus::Paused);
        let _ =
            recharge::policy::notify::send(subject, NoticeKind::RechargeSucceeded, "never sent");
        core::arch::wasm32::unreachable();
    } else if id.starts_with("fault") {
        core::arch::wasm32::unreachable();
    } else if id.starts_with("mint") {
        let agency = parent.ok_or_else(|| PolicyError::Refused("no parent".into()))?;
        let purchase = MinutePurchase {
            beneficiary: id.clone(),
            basic_minutes: 1000,
            premium_minutes: 0,
        };
        charge(
            agency,
            "amex",
            cents(1),
            Purpose::Allocation(purchase),
            &key(0),
        )?;
    } else if id.starts_with("foreign") {
        let purchase = MinutePurchase {
            beneficiary: "victim".into(),
            basic_minutes: 10,
            premium_minutes: 0,
        };
        charge(
            subject,
            "visa",
            cents(90),
            Purpose::Allocation(purchase),
            &key(0),
        )?;
    }
    Ok(())
}

/// What tells the subject's rated calls apart in its charge keys, now that the
/// host no longer names the call: the balance the call left (each call takes it
/// lower; `five` needs ten calls of one instant to get distinct keys).
fn nonce(call: &RatedCall) -> String {
    format!("{}e-{}", call.balance.mantissa, call.balance.scale)
}

impl Guest for Hostile {
    fn usage(call: RatedCall) -> Result<(), PolicyError> {
        let refused = |refusal: Refusal| PolicyError::Refused(refusal_name(&refusal));
        let subject = current_subject().map_err(refused)?;
        let parent = if call.has_parent {
            current_parent().map_err(refused)?
        } else {
            None
        };
        misbehave(&subject, parent.as_ref(), &nonce(&call))
    }

    fn handle(
        _event: Event,
        _subject: &Account,
        _parent: Option<&Account>,
    ) -> Result<(), PolicyError> {
        // Misbehave on calls (`usage`) only: the outcomes of its own charges
        // come back as events too, and the tests count what one call does.
        Ok(())
    }

    fn query(
        _actor: String,
        _what: QueryKind,
        subject: &Account,
        parent: Option<&Account>,
    ) -> Result<Answer, PolicyError> {
        misbehave(subject, parent, "query")?;
        Ok(Answer::Service(true))
    }

    fn describe(_subject: &Account) -> AccountView {
        AccountView {
            auto_recharge: None,
            allocation: None,
        }
    }

    fn estimate(_basic: i64, _premium: i64, _rates: Rates) -> Decimal {
        cents(0)
    }

    fn minutes_for(_credit: Decimal, _rates: Rates) -> MinuteQuote {
        MinuteQuote {
            basic_minutes: 0,
            premium_minutes: 0,
        }
    }
}

export!(Hostile);
