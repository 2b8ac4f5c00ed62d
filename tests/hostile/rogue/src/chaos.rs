//! `chaos`: capability calls drawn at random from the event, for the host's
//! invariant tests (`tests/all/invariants.rs`).
//!
//! The draw is seeded by a hash of the subject, the event (or rated call) and
//! the time, so the same event at the same time does the same thing. Each event
//! may request charges (random payer, card, amount, purpose, beneficiary and
//! key), save state of random size, pause or resume, ask for wake-ups, send
//! notices, and then succeed, give up with an error, or trap. Reactions to
//! timers and payment outcomes act less, so chains of events die out. A rated
//! call gets its accounts from `current-subject` and `current-parent`: it asks
//! for the parent when the call says there is one (and now and then when it
//! says there is none), and sometimes asks for more handles, dropping some and
//! leaving others undropped.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::exports::recharge::policy::policy::{Event, PolicyError, RatedCall};
use crate::recharge::policy::balance::{Account, current_parent, current_subject};
use crate::recharge::policy::clock::{current_rates, now, wake_me_at};
use crate::recharge::policy::notify::send;
use crate::recharge::policy::payment::request_charge;
use crate::recharge::policy::types::{AccountStatus, Decimal, MinutePurchase, NoticeKind, Purpose};

const MINUTE: i64 = 60_000;
const DAY: i64 = 24 * 60 * MINUTE;

/// SplitMix64, seeded by FNV-1a.
struct Draw(u64);

impl Draw {
    fn seeded(parts: &[&[u8]]) -> Draw {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for part in parts {
            for byte in *part {
                hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
            }
            hash = (hash ^ 0xff).wrapping_mul(0x0100_0000_01b3);
        }
        Draw(hash)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`.
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// What kind of event it is, and how much it may do.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reaction {
    /// A request or a rated call: the full range of actions.
    Full,
    /// A timer or a payment outcome: fewer charges, only future wake-ups.
    Echo,
}

fn describe(event: &Event) -> (String, Reaction) {
    match event {
        Event::SaveAutoRecharge(request) => (format!("save {}", request.actor), Reaction::Full),
        Event::SaveAllocation(request) => (
            format!(
                "allocate {} {}",
                request.actor, request.settings.basic_minutes
            ),
            Reaction::Full,
        ),
        Event::TopUp(request) => (
            format!("top-up {} {}", request.actor, request.amount.mantissa),
            Reaction::Full,
        ),
        Event::CardUpdated(card) => (format!("card {card}"), Reaction::Full),
        Event::PaymentOutcome(outcome) => (format!("outcome {}", outcome.key), Reaction::Echo),
        Event::Timer(tag) => (format!("timer {tag}"), Reaction::Echo),
    }
}

/// An amount: usually fine (now and then exactly the 1,000.00 cap), sometimes
/// negative, zero, fractional, oversized or not a decimal the host can read.
fn amount(draw: &mut Draw) -> Decimal {
    match draw.below(16) {
        0 => Decimal {
            mantissa: -(draw.below(10_000) as i64),
            scale: 2,
        },
        1 => Decimal {
            mantissa: draw.below(100_000) as i64,
            scale: 3,
        },
        2 => Decimal {
            mantissa: 100_000 + draw.below(1_000_000) as i64,
            scale: 2,
        },
        3 => Decimal {
            mantissa: draw.next() as i64,
            scale: draw.below(256) as u8,
        },
        4 => Decimal {
            mantissa: 100_000,
            scale: 2,
        },
        _ => Decimal {
            mantissa: 1 + draw.below(20_000) as i64,
            scale: 2,
        },
    }
}

/// The price of minutes at `rates`, in cents, rounded half away from zero; `None`
/// if the rates are not in the shape the host sends (scale 2 or less).
fn price_in_cents(basic: i64, premium: i64) -> Option<i64> {
    let rates = current_rates();
    let to_ten_thousandths = |rate: &Decimal| -> Option<i64> {
        let factor = 10i64.checked_pow(4u32.checked_sub(u32::from(rate.scale))?)?;
        rate.mantissa.checked_mul(factor)
    };
    let total = basic
        .checked_mul(to_ten_thousandths(&rates.basic)?)?
        .checked_add(premium.checked_mul(to_ten_thousandths(&rates.premium)?)?)?;
    Some((total + 50) / 100)
}

fn purpose(
    draw: &mut Draw,
    subject: &Account,
    parent: Option<&Account>,
) -> (Purpose, Option<Decimal>) {
    match draw.below(4) {
        0 => (Purpose::TopUp, None),
        1 => (Purpose::AutoRecharge, None),
        _ => {
            let mut candidates = vec![subject.id(), String::from("calm"), String::from("calm-sub")];
            if let Some(parent) = parent {
                candidates.push(parent.id());
            }
            candidates.push(String::from("chaos-sub-1"));
            candidates.push(String::from("chaos-sub-2"));
            let beneficiary = draw.pick(&candidates).clone();
            let basic = draw.below(120) as i64 - 5;
            let premium = draw.below(60) as i64;
            let exact = draw
                .chance(70)
                .then(|| price_in_cents(basic, premium))
                .flatten()
                .map(|cents| Decimal {
                    mantissa: cents,
                    scale: 2,
                });
            let purchase = MinutePurchase {
                beneficiary,
                basic_minutes: basic,
                premium_minutes: premium,
            };
            (Purpose::Allocation(purchase), exact)
        }
    }
}

fn charges(
    draw: &mut Draw,
    reaction: Reaction,
    subject: &Account,
    parent: Option<&Account>,
    seed: u64,
) {
    let count = match reaction {
        Reaction::Full => draw.below(7),
        Reaction::Echo => u64::from(draw.chance(20)),
    };
    for n in 0..count {
        let payer = match parent {
            Some(parent) if draw.chance(50) => parent,
            _ => subject,
        };
        let cards = payer.cards();
        let card = match cards.first() {
            Some(_) if draw.chance(80) => draw.pick(&cards).clone(),
            _ => String::from(*draw.pick(&["ghost", "visa", "amex"])),
        };
        let (purpose, exact) = purpose(draw, subject, parent);
        let amount = exact.unwrap_or_else(|| amount(draw));
        let key = match draw.below(20) {
            0 => String::new(),
            1 | 2 => format!("chaos-key-{}", draw.below(8)),
            3 => "k".repeat(201),
            _ => format!("chaos-{seed:016x}-{n}"),
        };
        let _ = request_charge(payer, &card, amount, &purpose, &key);
    }
}

const NOTICES: [NoticeKind; 8] = [
    NoticeKind::RechargeSucceeded,
    NoticeKind::RechargeFailed,
    NoticeKind::RechargeLimitReached,
    NoticeKind::AccountPaused,
    NoticeKind::AccountResumed,
    NoticeKind::AllocationSucceeded,
    NoticeKind::AllocationFailed,
    NoticeKind::TopUpFailed,
];

fn side_effects(draw: &mut Draw, reaction: Reaction, subject: &Account, parent: Option<&Account>) {
    let at = now();
    let target = |draw: &mut Draw| match parent {
        Some(parent) if draw.chance(30) => parent,
        _ => subject,
    };
    if draw.chance(30) {
        let size = if draw.chance(10) {
            70_000
        } else {
            draw.below(64) as usize
        };
        let byte = draw.below(256) as u8;
        let _ = target(draw).set_state(&vec![byte; size]);
    }
    if draw.chance(15) {
        let status = if draw.chance(50) {
            AccountStatus::Paused
        } else {
            AccountStatus::Active
        };
        let _ = target(draw).set_status(status);
    }
    let wake_ups = match reaction {
        Reaction::Full if draw.chance(30) => draw.below(20),
        Reaction::Full => 0,
        Reaction::Echo => u64::from(draw.chance(30)),
    };
    for tag in 0..wake_ups {
        let when = match reaction {
            Reaction::Full if draw.chance(20) => at - draw.below(2 * DAY as u64) as i64,
            _ => at + MINUTE + draw.below(3 * DAY as u64) as i64,
        };
        let _ = wake_me_at(target(draw), when, tag);
    }
    let notices = match reaction {
        Reaction::Full if draw.chance(30) => draw.below(20),
        _ => u64::from(draw.chance(20)),
    };
    for _ in 0..notices {
        let kind = *draw.pick(&NOTICES);
        let length = if draw.chance(10) {
            1_100
        } else {
            draw.below(40) as usize
        };
        let message = "x".repeat(length);
        let _ = send(target(draw), kind, &message);
    }
}

/// Act at random on one rated call (the `usage` export) of `subject`, which
/// the policy asked the host for; then succeed, give up or trap. The host no
/// longer names the call: its length and the balance it left tell calls apart.
pub fn usage(call: &RatedCall, subject: Account) -> Result<(), PolicyError> {
    let what = format!(
        "usage {} {}e-{}",
        call.seconds, call.balance.mantissa, call.balance.scale
    );
    let mut draw = seeded(&subject, &what);
    let parent = if call.has_parent || draw.chance(10) {
        current_parent().ok().flatten()
    } else {
        None
    };
    // More handles than a policy needs: each dropped at once, or never.
    let extra = if draw.chance(15) { draw.below(12) } else { 0 };
    let mut undropped: Vec<Account> = Vec::new();
    for _ in 0..extra {
        let handle = if draw.chance(50) {
            current_subject().ok()
        } else {
            current_parent().ok().flatten()
        };
        if let Some(handle) = handle
            && draw.chance(50)
        {
            undropped.push(handle);
        }
    }
    let verdict = decide(draw, &what, Reaction::Full, &subject, parent.as_ref());
    core::mem::forget(undropped);
    verdict
}

/// Act at random on one event; then succeed, give up or trap.
pub fn handle(
    event: &Event,
    subject: &Account,
    parent: Option<&Account>,
) -> Result<(), PolicyError> {
    let (what, reaction) = describe(event);
    decide(seeded(subject, &what), &what, reaction, subject, parent)
}

/// The draw for `what` (an event or a call) of the subject, now.
fn seeded(subject: &Account, what: &str) -> Draw {
    let at = now();
    Draw::seeded(&[subject.id().as_bytes(), what.as_bytes(), &at.to_le_bytes()])
}

/// Act at random as `what` allows; then succeed, give up or trap.
fn decide(
    mut draw: Draw,
    what: &str,
    reaction: Reaction,
    subject: &Account,
    parent: Option<&Account>,
) -> Result<(), PolicyError> {
    let seed = draw.next();
    charges(&mut draw, reaction, subject, parent, seed);
    side_effects(&mut draw, reaction, subject, parent);
    match draw.below(100) {
        0..=9 => core::arch::wasm32::unreachable(),
        10..=17 => Err(PolicyError::Refused(format!("chaos gives up on {what}"))),
        18..=20 => Err(PolicyError::InvalidSettings(String::from("chaos says no"))),
        _ => Ok(()),
    }
}
