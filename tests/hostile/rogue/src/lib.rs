//! The hostile corpus's policy: what it does depends on the subject account's id.
//!
//! On a rated call (the `usage` export, which asks the host for its subject with
//! `current-subject`; and on queries, for the cases that answer), an account
//! whose id starts with one of these prefixes misbehaves so
//! (`tests/hostile/README.md` lists the outcome the host must give for each):
//!
//! - `spin`: loops forever.
//! - `reply-spin`: asks for its id; its `cabi_realloc` loops while the host lowers it.
//! - `reply-wild`: asks for its id; its `cabi_realloc` answers a pointer past memory.
//! - `hoard`: allocates 1 MiB blocks until the allocator fails, then aborts.
//! - `grow`: grows memory a page at a time until refused, and saves how far it got.
//! - `huge`: asks the allocator for 1 GiB at once.
//! - `recurse`: recurses until the stack runs out.
//! - `trap`: charges, saves state, pauses, notifies and wakes, then traps.
//! - `unsaved`, `negative`, `fraction`, `oversized`, `zero`, `scale`: one bad charge;
//!   gives up with the refusal.
//! - `foreign`: buys minutes for the bystander `calm`; gives up with the refusal.
//! - `forge`: charges through an account handle it made up.
//! - `squat`: four 1.00 top-ups on its own card under the keys the default
//!   policy will use for the bystander `calm`'s next recharge and its retries
//!   (`calm/ar/2/1` to `calm/ar/2/4`), ignoring refusals.
//! - `hundred`: a hundred charge requests, ignoring refusals; saves the tally.
//! - `past`: two wake-ups in the past; on each timer, notes its tag in its state.
//! - `million`: a million wake-up requests, ignoring refusals; saves the tally.
//! - `storm`: a wake-up now, and on every timer another one in the past.
//! - `swarm`: a wake-up in a minute, and on every timer sixteen more a minute later.
//! - `panic`: indexes past the end of a slice.
//! - `fault`: traps on every event.
//! - `bad-answer`: answers queries and describes with decimals of scale 200.
//! - `clutch`: asks for its subject twenty times without dropping a handle, and
//!   for its parent; drops one and asks for the parent again; keeps a subject
//!   and a parent handle for a later call, and reports what the handles kept by
//!   an earlier call name now (on a rated call only, see [`clutch`]).
//! - `chaos`: acts at random on every event (see [`chaos`]).
//!
//! Any other account, and every other event (`handle`), is accepted doing nothing.
#![no_std]

extern crate alloc;

mod chaos;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU8, AtomicU32, Ordering};

wit_bindgen::generate!({
    world: "recharge-policy",
    path: "../../../wit/0.1.0",
});

use exports::recharge::policy::policy::{
    AccountView, Answer, Event, Guest, MinuteQuote, PolicyError, QueryKind, RatedCall,
};
use recharge::policy::balance::{Account, current_parent, current_subject};
use recharge::policy::clock::{now, wake_me_at};
use recharge::policy::notify::send;
use recharge::policy::payment::request_charge;
use recharge::policy::types::{
    AccountStatus, AutoRechargeSettings, Decimal, MinutePurchase, NoticeKind, Purpose, Rates,
    RechargeMode, Refusal,
};

#[path = "../../shared/charges.rs"]
mod charges;
#[path = "../../shared/runtime.rs"]
mod runtime;

use charges::{cents, charge, recurse, refusal_name};

/// What `cabi_realloc` does: allocate, spin, or answer a wild pointer.
static REALLOC_MODE: AtomicU8 = AtomicU8::new(REALLOC_NORMAL);
const REALLOC_NORMAL: u8 = 0;
const REALLOC_SPIN: u8 = 1;
const REALLOC_WILD: u8 = 2;

/// The canonical ABI's allocator, which the host calls to lower strings and lists
/// into the guest; hostile on request.
///
/// # Safety
/// Called by the component runtime with a valid old allocation, or none.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(
    old: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    match REALLOC_MODE.load(Ordering::Relaxed) {
        REALLOC_SPIN => {
            let mut spins: u64 = 0;
            loop {
                spins = core::hint::black_box(spins.wrapping_add(1));
            }
        }
        REALLOC_WILD => return (u32::MAX - 7) as usize as *mut u8,
        _ => {}
    }
    // SAFETY: forwarded under the same contract.
    unsafe { runtime::realloc_block(old, old_len, align, new_len) }
}

struct Rogue;

/// Tally refusals by name: `accepted N, refused M (name...)`.
fn tally(results: impl Iterator<Item = Result<(), Refusal>>) -> Vec<u8> {
    let (mut accepted, mut refused) = (0u32, 0u32);
    let mut names: Vec<String> = Vec::new();
    for result in results {
        match result {
            Ok(()) => accepted += 1,
            Err(refusal) => {
                refused += 1;
                let name = refusal_name(&refusal);
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    format!(
        "accepted {accepted}, refused {refused} ({})",
        names.join(", ")
    )
    .into_bytes()
}

fn misbehave(subject: &Account, nonce: &str) -> Result<(), PolicyError> {
    let id = subject.id();
    let at = now();
    let key = |n: u32| format!("{id}/{at}/{nonce}/{n}");
    let prefix = |name: &str| id.starts_with(name);
    if prefix("spin") {
        let mut spins: u64 = 0;
        loop {
            spins = core::hint::black_box(spins.wrapping_add(1));
        }
    } else if prefix("reply-spin") {
        REALLOC_MODE.store(REALLOC_SPIN, Ordering::Relaxed);
        core::hint::black_box(subject.id());
    } else if prefix("reply-wild") {
        REALLOC_MODE.store(REALLOC_WILD, Ordering::Relaxed);
        core::hint::black_box(subject.id());
    } else if prefix("hoard") {
        // Reserve without touching, so memory runs out long before fuel does.
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut block = Vec::<u8>::with_capacity(1 << 20);
            block.push(1);
            hoard.push(core::hint::black_box(block));
        }
    } else if prefix("grow") {
        let before = core::arch::wasm32::memory_size(0);
        let mut pages = before;
        while core::arch::wasm32::memory_grow(0, 1) != usize::MAX {
            pages += 1;
        }
        let refused_at = core::arch::wasm32::memory_size(0);
        let note = format!("grew from {before} to {pages} pages, refused at {refused_at}");
        subject
            .set_state(note.as_bytes())
            .map_err(|refusal| PolicyError::Refused(refusal_name(&refusal)))?;
    } else if prefix("huge") {
        let block = Vec::<u8>::with_capacity(1 << 30);
        core::hint::black_box(block);
    } else if prefix("recurse") {
        recurse(0);
    } else if prefix("trap") {
        charge(
            subject,
            "visa",
            cents(10_00),
            Purpose::AutoRecharge,
            &key(0),
        )?;
        let _ = subject.set_state(b"poisoned");
        let _ = subject.set_status(AccountStatus::Paused);
        let _ = send(subject, NoticeKind::RechargeSucceeded, "never sent");
        let _ = wake_me_at(subject, at + 60_000, 1);
        core::arch::wasm32::unreachable();
    } else if prefix("unsaved") {
        charge(
            subject,
            "not-saved",
            cents(10_00),
            Purpose::AutoRecharge,
            &key(0),
        )?;
    } else if prefix("negative") {
        charge(subject, "visa", cents(-5_00), Purpose::TopUp, &key(0))?;
    } else if prefix("fraction") {
        let amount = Decimal {
            mantissa: 10_001,
            scale: 3,
        };
        charge(subject, "visa", amount, Purpose::AutoRecharge, &key(0))?;
    } else if prefix("oversized") {
        // 1,000.01: a cent over the cap.
        charge(subject, "visa", cents(100_001), Purpose::TopUp, &key(0))?;
    } else if prefix("zero") {
        charge(subject, "visa", cents(0), Purpose::AutoRecharge, &key(0))?;
    } else if prefix("scale") {
        let amount = Decimal {
            mantissa: i64::MAX,
            scale: 255,
        };
        charge(subject, "visa", amount, Purpose::AutoRecharge, &key(0))?;
    } else if prefix("foreign") {
        let purchase = MinutePurchase {
            beneficiary: "calm".into(),
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
    } else if prefix("forge") {
        // SAFETY: deliberately not a handle the host gave: the point of the case.
        let forged = unsafe { Account::from_handle(7) };
        let result = charge(&forged, "visa", cents(10_00), Purpose::TopUp, &key(0));
        core::mem::forget(forged);
        result?;
    } else if prefix("squat") {
        for attempt in 1..=4 {
            let squatted = format!("calm/ar/2/{attempt}");
            let _ = request_charge(subject, "visa", cents(1_00), &Purpose::TopUp, &squatted);
        }
    } else if prefix("hundred") {
        let results = (0..100)
            .map(|n| request_charge(subject, "visa", cents(1_00), &Purpose::TopUp, &key(n)));
        subject
            .set_state(&tally(results))
            .map_err(|refusal| PolicyError::Refused(refusal_name(&refusal)))?;
    } else if prefix("past") {
        let _ = wake_me_at(subject, 0, 1);
        let _ = wake_me_at(subject, at - 86_400_000, 2);
    } else if prefix("million") {
        let results = (0..1_000_000u64).map(|n| wake_me_at(subject, at + 1 + n as i64, n));
        subject
            .set_state(&tally(results))
            .map_err(|refusal| PolicyError::Refused(refusal_name(&refusal)))?;
    } else if prefix("storm") {
        let _ = wake_me_at(subject, at, 0);
    } else if prefix("swarm") {
        let _ = wake_me_at(subject, at + 60_000, 0);
    } else if prefix("panic") {
        let cards = subject.cards();
        let index = core::hint::black_box(cards.len() + 3);
        core::hint::black_box(&cards[index]);
    } else if prefix("fault") {
        core::arch::wasm32::unreachable();
    }
    Ok(())
}

/// A timer: `past` notes which one fired and when; `storm` asks for another at
/// once; `swarm` for sixteen more a minute later.
fn woken(subject: &Account, tag: u64) -> Result<(), PolicyError> {
    let id = subject.id();
    if id.starts_with("past") {
        let mut state = subject.state();
        state.extend_from_slice(format!("woke {tag} at {};", now()).as_bytes());
        subject
            .set_state(&state)
            .map_err(|refusal| PolicyError::Refused(refusal_name(&refusal)))?;
    } else if id.starts_with("storm") {
        let _ = wake_me_at(subject, 0, tag + 1);
    } else if id.starts_with("swarm") {
        let at = now();
        for n in 0..16 {
            let _ = wake_me_at(subject, at + 60_000, tag * 16 + n);
        }
    } else if id.starts_with("fault") {
        core::arch::wasm32::unreachable();
    }
    Ok(())
}

/// What tells the subject's rated calls apart in its charge keys, now that the
/// host no longer names the call: the balance the call left (each call takes it
/// lower).
fn nonce(call: &RatedCall) -> String {
    format!("{}e-{}", call.balance.mantissa, call.balance.scale)
}

/// The handles `clutch` keeps from one rated call for the next one the same
/// instance serves (0: none; the component model never hands out index 0).
static KEPT_SUBJECT: AtomicU32 = AtomicU32::new(0);
static KEPT_PARENT: AtomicU32 = AtomicU32::new(0);

/// What an account handle kept from an earlier call names now, and whether it
/// may write there.
fn kept(role: &str, slot: &AtomicU32) -> String {
    match slot.swap(0, Ordering::Relaxed) {
        0 => format!("no {role} kept"),
        handle => {
            // SAFETY: a handle this instance got from the host and never dropped.
            let account = unsafe { Account::from_handle(handle) };
            let id = account.id();
            let write = match account.set_watermark(None) {
                Ok(()) => String::from("writable"),
                Err(refusal) => refusal_name(&refusal),
            };
            format!("kept {role} names '{id}' ({write})")
        }
    }
}

/// What `current-parent` answered.
fn parent_note(when: &str, answer: &Result<Option<Account>, Refusal>) -> String {
    match answer {
        Ok(Some(parent)) => format!("{when}: parent '{}'", parent.id()),
        Ok(None) => format!("{when}: no parent"),
        Err(refusal) => format!("{when}: {}", refusal_name(refusal)),
    }
}

/// `clutch`, on a rated call: hoards handles from `current-subject` and
/// `current-parent` and keeps two past the call. Saves in the subject's state,
/// `; ` between the parts: what the handles an earlier call kept name now
/// (subject, then parent); the tally of twenty `current-subject` calls that drop
/// nothing; what `current-parent` answers then; and, if it refused, what it
/// answers once one subject handle is dropped.
fn clutch() -> Result<(), PolicyError> {
    let mut notes = vec![kept("subject", &KEPT_SUBJECT), kept("parent", &KEPT_PARENT)];
    let mut hoard: Vec<Account> = Vec::new();
    let results = (0..20).map(|_| current_subject().map(|handle| hoard.push(handle)));
    notes.push(String::from_utf8(tally(results)).unwrap_or_default());
    let first = current_parent();
    notes.push(parent_note("then", &first));
    let subject = hoard
        .pop()
        .ok_or_else(|| PolicyError::Refused("no subject handle".into()))?;
    drop(hoard.pop());
    let parent = match first {
        Ok(parent) => parent,
        Err(_) => {
            let again = current_parent();
            notes.push(parent_note("after a drop", &again));
            again.ok().flatten()
        }
    };
    subject
        .set_state(notes.join("; ").as_bytes())
        .map_err(|refusal| PolicyError::Refused(refusal_name(&refusal)))?;
    // Keep a handle of each role past the call; leave the rest undropped.
    KEPT_SUBJECT.store(subject.take_handle(), Ordering::Relaxed);
    if let Some(parent) = parent {
        KEPT_PARENT.store(parent.take_handle(), Ordering::Relaxed);
    }
    core::mem::forget(hoard);
    Ok(())
}

/// A decimal the host cannot take: scale 200.
fn bad_decimal() -> Decimal {
    Decimal {
        mantissa: 1,
        scale: 200,
    }
}

impl Guest for Rogue {
    fn usage(call: RatedCall) -> Result<(), PolicyError> {
        let subject =
            current_subject().map_err(|refusal| PolicyError::Refused(refusal_name(&refusal)))?;
        let id = subject.id();
        if id.starts_with("chaos") {
            return chaos::usage(&call, subject);
        }
        if id.starts_with("clutch") {
            drop(subject);
            return clutch();
        }
        misbehave(&subject, &nonce(&call))
    }

    fn handle(
        event: Event,
        subject: &Account,
        parent: Option<&Account>,
    ) -> Result<(), PolicyError> {
        if subject.id().starts_with("chaos") {
            return chaos::handle(&event, subject, parent);
        }
        // Misbehave on calls (`usage`) and timers only: the outcomes of its own
        // charges come back as events too, and the tests count what one call does.
        match &event {
            Event::Timer(tag) => woken(subject, *tag),
            _ if subject.id().starts_with("fault") => core::arch::wasm32::unreachable(),
            _ => Ok(()),
        }
    }

    fn query(
        _actor: String,
        _what: QueryKind,
        subject: &Account,
        _parent: Option<&Account>,
    ) -> Result<Answer, PolicyError> {
        if subject.id().starts_with("bad-answer") {
            return Ok(Answer::Estimate(bad_decimal()));
        }
        if subject.id().starts_with("chaos") {
            return Ok(Answer::Service(true));
        }
        misbehave(subject, "query")?;
        Ok(Answer::Service(true))
    }

    fn describe(subject: &Account) -> AccountView {
        let auto_recharge = subject
            .id()
            .starts_with("bad-answer")
            .then(|| AutoRechargeSettings {
                enabled: true,
                threshold: bad_decimal(),
                amount: cents(10_00),
                card: "visa".into(),
                mode: RechargeMode::Fixed,
                monthly_limit: None,
            });
        AccountView {
            auto_recharge,
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

export!(Rogue);
