//! Property tests: random event sequences on the fake host, checked against the
//! invariants of R2–R5 with a small model of the spec kept beside the policy.

use alloc::{collections::BTreeMap, string::String, vec::Vec};

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::schedule::month_index;
use super::state::recharge_gate;
use super::testing::{FakeHost, MINUTE, d};
use crate::model::{AutoRechargeSettings, ChargeOutcome, Event, Mode, PolicyError, Purpose};
use crate::money::is_whole_cents;

#[derive(Debug, Clone)]
enum Op {
    Usage { cents: i64 },
    Save(AutoRechargeSettings),
    Settle(ChargeOutcome),
    FireNextTimer,
    Advance { minutes: i64 },
    CardUpdated,
    TopUp { cents: i64 },
}

fn cents(value: i64) -> Decimal {
    Decimal::new(value, 2)
}

fn settings() -> impl Strategy<Value = AutoRechargeSettings> {
    (
        proptest::bool::weighted(0.8),
        -100i64..5_000,
        -100i64..10_000,
        proptest::bool::ANY,
        proptest::option::of(-100i64..20_000),
        proptest::sample::select(["card", "card", "card", "card-2", "nope"].as_slice()),
    )
        .prop_map(
            |(enabled, threshold, amount, target, limit, card)| AutoRechargeSettings {
                enabled,
                threshold: cents(threshold),
                amount: cents(amount),
                card: String::from(card),
                mode: if target { Mode::Target } else { Mode::Fixed },
                monthly_limit: limit.map(cents),
            },
        )
}

fn outcome() -> impl Strategy<Value = ChargeOutcome> {
    prop_oneof![
        3 => Just(ChargeOutcome::Succeeded),
        3 => Just(ChargeOutcome::Failed),
        1 => Just(ChargeOutcome::Declined),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1i64..4_000).prop_map(|cents| Op::Usage { cents }),
        2 => settings().prop_map(Op::Save),
        4 => outcome().prop_map(Op::Settle),
        3 => Just(Op::FireNextTimer),
        2 => (1i64..60 * 24 * 20).prop_map(|minutes| Op::Advance { minutes }),
        1 => Just(Op::CardUpdated),
        1 => (1i64..5_000).prop_map(|cents| Op::TopUp { cents }),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Its latest attempt is executing, or failed with a retry to come.
    Live,
    Succeeded,
    /// Final failure, or cancelled by disabling.
    Dead,
}

#[derive(Debug, Clone)]
struct Recharge {
    amount: Decimal,
    month: i64,
    attempts: u8,
    fate: Fate,
    /// Threshold, mode and balance when first requested, and whether usage
    /// happened since.
    threshold: Decimal,
    mode: Mode,
    balance: Decimal,
    usage_since: bool,
    /// Its latest attempt failed and the next waits for its timer.
    awaiting_retry: bool,
}

/// What the spec says about auto-recharge, tracked independently of the policy.
#[derive(Debug, Default)]
struct Model {
    settings: Option<AutoRechargeSettings>,
    suspended: bool,
    recharges: BTreeMap<u32, Recharge>,
}

impl Model {
    fn enabled(&self) -> bool {
        self.settings
            .as_ref()
            .is_some_and(|settings| settings.enabled)
    }

    /// What counts against `month`'s limit: recharges of that month, succeeded or
    /// in flight.
    fn counted_in(&self, month: i64) -> Decimal {
        self.recharges
            .values()
            .filter(|recharge| recharge.month == month && recharge.fate != Fate::Dead)
            .map(|recharge| recharge.amount)
            .sum()
    }
}

/// The sequence number and attempt of an auto-recharge key `u1/ar/{seq}/{attempt}`.
fn recharge_key(key: &str) -> (u32, u8) {
    let mut parts = key.strip_prefix("u1/ar/").unwrap().split('/');
    let seq = parts.next().unwrap().parse().unwrap();
    let attempt = parts.next().unwrap().parse().unwrap();
    (seq, attempt)
}

fn apply(host: &mut FakeHost, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    let charges_before = host.charges.len();
    let state_before = host.subject.state.clone();
    let mut settled = None;
    let result = match op {
        Op::Usage { cents: cost } => {
            for recharge in model.recharges.values_mut() {
                recharge.usage_since = true;
            }
            host.usage(&cents(*cost).to_string())
        }
        Op::Save(settings) => host.save_auto("u1", settings.clone()),
        Op::Settle(outcome) => match host
            .charges
            .iter()
            .rposition(|charge| charge.outcome.is_none())
        {
            Some(index) => {
                settled = Some((index, *outcome));
                host.settle(index, *outcome)
            }
            None => Ok(()),
        },
        Op::FireNextTimer => match host.timers.iter().map(|timer| timer.at).min() {
            Some(at) => host.advance_to(at),
            None => Ok(()),
        },
        Op::Advance { minutes } => host.advance(minutes * MINUTE),
        Op::CardUpdated => host.handle(Event::CardUpdated(String::from("card"))),
        Op::TopUp { cents: amount } => host.top_up("u1", "card", &cents(*amount).to_string()),
    };

    // The model follows the spec for what the op did.
    match (op, &result) {
        (
            Op::Save(_),
            Err(PolicyError::InvalidSettings(_) | PolicyError::PaymentMethodRequired(_)),
        ) => {
            prop_assert_eq!(
                &host.subject.state,
                &state_before,
                "a rejected save changed the state"
            );
            prop_assert_eq!(host.charges.len(), charges_before);
        }
        (_, Err(error)) => {
            return Err(TestCaseError::fail(alloc::format!(
                "{op:?} failed: {error:?}"
            )));
        }
        (Op::Save(settings), Ok(())) => {
            let previous_card = model
                .settings
                .as_ref()
                .map(|previous| previous.card.clone());
            if settings.enabled && previous_card.is_some_and(|card| card != settings.card) {
                model.suspended = false;
            }
            if !settings.enabled {
                // Retries waiting for their timer are cancelled.
                for recharge in model.recharges.values_mut() {
                    if recharge.fate == Fate::Live && recharge.awaiting_retry {
                        recharge.fate = Fate::Dead;
                    }
                }
            }
            model.settings = Some(settings.clone());
        }
        (Op::CardUpdated, Ok(())) => model.suspended = false,
        _ => {}
    }
    if let Some((index, outcome)) = settled {
        let charge = host.charges[index].clone();
        let succeeded = outcome == ChargeOutcome::Succeeded;
        if succeeded {
            model.suspended = false;
        }
        if charge.purpose == Purpose::AutoRecharge {
            let (seq, attempt) = recharge_key(&charge.key);
            let enabled = model.enabled();
            let recharge = model.recharges.get_mut(&seq).unwrap();
            prop_assert_eq!(attempt, recharge.attempts, "an outcome for an old attempt");
            if succeeded {
                recharge.fate = Fate::Succeeded;
                if recharge.mode == Mode::Fixed {
                    prop_assert!(recharge.balance + recharge.amount >= recharge.threshold);
                    if !recharge.usage_since {
                        prop_assert!(host.balance() >= recharge.threshold);
                    }
                }
            } else if outcome == ChargeOutcome::Declined || attempt == 4 || !enabled {
                recharge.fate = Fate::Dead;
                if enabled {
                    model.suspended = true;
                }
            } else {
                recharge.awaiting_retry = true;
            }
        }
    }

    retire_vanished_retries(host, model, charges_before)?;

    // Every charge the op requested.
    for charge in &host.charges[charges_before..] {
        prop_assert!(
            charge.amount > Decimal::ZERO && is_whole_cents(charge.amount),
            "{charge:?}"
        );
        if charge.purpose != Purpose::AutoRecharge {
            continue;
        }
        prop_assert!(model.enabled(), "a recharge while disabled: {charge:?}");
        prop_assert!(!model.suspended, "a recharge while suspended: {charge:?}");
        let (seq, attempt) = recharge_key(&charge.key);
        if attempt == 1 {
            prop_assert!(
                model
                    .recharges
                    .values()
                    .all(|recharge| recharge.fate != Fate::Live),
                "two recharges in flight: {:?}",
                model.recharges
            );
            let settings = model.settings.clone().unwrap();
            let month = month_index(charge.at).unwrap();
            if let Some(limit) = settings.monthly_limit {
                let counted: Decimal = model
                    .recharges
                    .values()
                    .filter(|recharge| recharge.month == month && recharge.fate != Fate::Dead)
                    .map(|recharge| recharge.amount)
                    .sum();
                prop_assert!(
                    counted + charge.amount <= limit,
                    "over the monthly limit {limit}"
                );
            }
            let previous = model.recharges.insert(
                seq,
                Recharge {
                    amount: charge.amount,
                    month,
                    attempts: 1,
                    fate: Fate::Live,
                    threshold: settings.threshold,
                    mode: settings.mode,
                    balance: host.balance(),
                    usage_since: false,
                    awaiting_retry: false,
                },
            );
            prop_assert!(previous.is_none(), "a reused sequence number");
        } else {
            let recharge = model.recharges.get_mut(&seq).unwrap();
            prop_assert_eq!(recharge.fate, Fate::Live);
            prop_assert_eq!(attempt, recharge.attempts + 1);
            prop_assert!(recharge.awaiting_retry, "a retry before the failure");
            prop_assert_eq!(
                charge.amount,
                recharge.amount,
                "a retry with another amount"
            );
            recharge.attempts = attempt;
            recharge.awaiting_retry = false;
            // R4: an attempt counts in the month it is made; one that crosses
            // into a new month must fit that month's limit.
            let month = month_index(charge.at).unwrap();
            let moved = recharge.month != month;
            recharge.month = month;
            let limit = model
                .settings
                .as_ref()
                .and_then(|settings| settings.monthly_limit);
            if let Some(limit) = limit.filter(|_| moved) {
                prop_assert!(
                    model.counted_in(month) <= limit,
                    "a retry over the monthly limit {limit}"
                );
            }
        }
    }
    let live = model
        .recharges
        .values()
        .filter(|recharge| recharge.fate == Fate::Live)
        .count();
    prop_assert!(live <= 1, "{live} recharges in flight");
    prop_assert_eq!(host.state().recharge.is_some(), live == 1);
    // The usage hot path trusts the watermark: it is always the state's gate.
    prop_assert_eq!(
        host.subject.watermark,
        recharge_gate(&host.subject.state),
        "the watermark strayed from the state"
    );
    Ok(())
}

/// A retry that fell in a new month whose limit has no room is not made, and its
/// recharge ends (R4): only then may a waiting retry vanish. The trigger may then
/// start a new recharge in the same event, under the current settings (R2), so
/// this runs before the op's new charges are checked.
fn retire_vanished_retries(
    host: &FakeHost,
    model: &mut Model,
    charges_before: usize,
) -> Result<(), TestCaseError> {
    let current = host.state().recharge.map(|recharge| recharge.seq);
    let retried: Vec<u32> = host.charges[charges_before..]
        .iter()
        .filter(|charge| charge.purpose == Purpose::AutoRecharge)
        .map(|charge| recharge_key(&charge.key))
        .filter(|(_, attempt)| *attempt > 1)
        .map(|(seq, _)| seq)
        .collect();
    let month = month_index(host.now).unwrap();
    let limit = model
        .settings
        .as_ref()
        .and_then(|settings| settings.monthly_limit);
    let vanished: Vec<u32> = model
        .recharges
        .iter()
        .filter(|(seq, recharge)| {
            recharge.fate == Fate::Live
                && recharge.awaiting_retry
                && current != Some(**seq)
                && !retried.contains(seq)
        })
        .map(|(seq, _)| *seq)
        .collect();
    for seq in vanished {
        let amount = model.recharges[&seq].amount;
        let moved = model.recharges[&seq].month != month;
        let others = model.counted_in(month) - if moved { Decimal::ZERO } else { amount };
        prop_assert!(
            moved && limit.is_some_and(|limit| others + amount > limit),
            "a waiting retry vanished without the monthly limit forbidding it"
        );
        if let Some(recharge) = model.recharges.get_mut(&seq) {
            recharge.fate = Fate::Dead;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn auto_recharge_invariants_hold_for_random_event_sequences(
        balance in -2_000i64..5_000,
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let mut host = FakeHost::user("u1");
        host.subject.cards.push(String::from("card-2"));
        host.charge_cap = d("1000000000");
        host.set_balance(&cents(balance).to_string());
        let mut model = Model::default();
        for op in &ops {
            apply(&mut host, &mut model, op)?;
        }
    }
}

mod allocation {
    use super::*;
    use crate::caps::Role;

    fn step() -> impl Strategy<Value = (Option<(i64, i64)>, Option<ChargeOutcome>, i64)> {
        (
            proptest::option::weighted(0.2, (0i64..300, 0i64..300)),
            proptest::option::weighted(0.7, outcome()),
            1i64..60 * 24 * 45,
        )
    }

    proptest! {
        #[test]
        fn one_successful_purchase_per_period_on_the_anchor_schedule(
            steps in proptest::collection::vec(step(), 1..40),
        ) {
            let mut host = FakeHost::sub_account("s1", "a1");
            let mut successes: Vec<String> = Vec::new();
            for (save, outcome, minutes) in steps {
                if let Some((basic, premium)) = save {
                    host.save_allocation("a1", basic, premium, "agency-card").unwrap();
                }
                if let Some(outcome) = outcome
                    && let Some(index) = host.charges.iter().rposition(|charge| charge.outcome.is_none())
                {
                    host.settle(index, outcome).unwrap();
                    if outcome == ChargeOutcome::Succeeded {
                        successes.push(host.charges[index].key.clone());
                    }
                }
                host.advance(minutes * MINUTE).unwrap();
            }
            // Keys are `s1/alloc/{series}/{period}/{attempt}`: one success per period.
            let mut periods: Vec<&str> = successes.iter().map(|key| key.rsplit_once('/').unwrap().0).collect();
            let total = periods.len();
            periods.sort_unstable();
            periods.dedup();
            prop_assert_eq!(periods.len(), total);
            for charge in &host.charges {
                prop_assert_eq!(charge.payer, Role::Parent);
                prop_assert!(charge.amount > Decimal::ZERO && is_whole_cents(charge.amount));
            }
            prop_assert!(host.parent.as_ref().unwrap().state.is_empty());
            prop_assert!(host.statuses.is_empty());
        }
    }
}
