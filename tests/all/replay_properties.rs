//! Properties of replay over generated scripts: every script that parses replays
//! without a panic, and its document holds the ledger's invariants — charge keys
//! are unique, charges and notices come in time order, every charge is whole
//! cents within the cap (H3), and each account's balance is exactly what its
//! succeeded top-ups and auto-recharges credited (H2) less the wallet cost of its
//! usage at the rates in force, rounded as SPEC §4 says.
//!
//! The scripts open users only, with no included or allocated minutes, so every
//! usage second is paid from the wallet and the model stays exact.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat};
use proptest::prelude::*;
use recharge_host::Platform;
use recharge_host::model::Timestamp;
use recharge_sim::replay::replay;
use recharge_sim::report::Document;
use recharge_sim::script::parse_script;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};

use super::{JAN_1, MINUTE, d, shared};

const USERS: [&str; 3] = ["u0", "u1", "u2"];
/// The card behaviours the simulated gateway has.
const BEHAVIORS: [&str; 5] = ["ok", "decline", "fail", "fail:1", "fail:3"];

/// One generated script line after the accounts are open.
#[derive(Debug, Clone)]
enum Op {
    TopUp {
        user: usize,
        cents: i64,
    },
    AutoRecharge {
        user: usize,
        enabled: bool,
        threshold: i64,
        amount: i64,
        target: bool,
        limit: Option<i64>,
    },
    /// Call ids come from a small pool, so some calls are repeated.
    Usage {
        user: usize,
        call: u8,
        seconds: i64,
        premium: bool,
    },
    /// Rates in ten-thousandths of a dollar per minute.
    Rates {
        basic: i64,
        premium: i64,
    },
    SetBehavior {
        user: usize,
        behavior: usize,
    },
    UpdateCard {
        user: usize,
        behavior: Option<usize>,
    },
    Advance,
    Query {
        user: usize,
    },
    /// Usage of an account never opened: rejected, costs nothing.
    Ghost {
        seconds: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS.len();
    let behavior = 0..BEHAVIORS.len();
    prop_oneof![
        1 => (user.clone(), 1..50_000_i64).prop_map(|(user, cents)| Op::TopUp { user, cents }),
        1 => (
            user.clone(),
            any::<bool>(),
            0..5_000_i64,
            1..10_000_i64,
            any::<bool>(),
            proptest::option::of(1..50_000_i64)
        )
            .prop_map(|(user, enabled, threshold, amount, target, limit)| {
                Op::AutoRecharge {
                    user,
                    enabled,
                    threshold,
                    amount,
                    target,
                    limit,
                }
            }),
        4 => (user.clone(), 0..6_u8, 1..7_200_i64, any::<bool>()).prop_map(
            |(user, call, seconds, premium)| Op::Usage {
                user,
                call,
                seconds,
                premium,
            }
        ),
        1 => (0..5_000_i64, 0..5_000_i64).prop_map(|(basic, premium)| Op::Rates { basic, premium }),
        1 => (user.clone(), behavior.clone())
            .prop_map(|(user, behavior)| Op::SetBehavior { user, behavior }),
        1 => (user.clone(), proptest::option::of(behavior))
            .prop_map(|(user, behavior)| Op::UpdateCard { user, behavior }),
        1 => Just(Op::Advance),
        1 => user.prop_map(|user| Op::Query { user }),
        1 => (1..600_i64).prop_map(|seconds| Op::Ghost { seconds }),
    ]
}

fn time(at: Timestamp) -> String {
    DateTime::from_timestamp_millis(at)
        .expect("a time in range")
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn cents(value: i64) -> String {
    Decimal::new(value, 2).to_string()
}

fn rate(value: i64) -> String {
    Decimal::new(value, 4).to_string()
}

/// A generated script: its text, and each op's line number.
struct Script {
    text: String,
    ops: Vec<(usize, Op)>,
}

/// The users opened with a card each, then the ops, `minutes` apart.
fn script(cards: &[usize], steps: &[(i64, Op)]) -> Script {
    let mut lines: Vec<Value> = Vec::new();
    let start = time(JAN_1);
    for (user, behavior) in USERS.iter().zip(cards) {
        lines.push(json!({"at": start, "do": "open", "account": user, "kind": "user"}));
        lines.push(
            json!({"at": start, "do": "add_card", "account": user, "card": "visa",
            "behavior": BEHAVIORS[*behavior]}),
        );
    }
    let mut at = JAN_1;
    let mut ops = Vec::new();
    for (minutes, op) in steps {
        at += minutes * MINUTE;
        let now = time(at);
        let line = match op {
            Op::TopUp {
                user,
                cents: amount,
            } => json!({"at": now, "do": "top_up",
                "account": USERS[*user], "card": "visa", "amount": cents(*amount)}),
            Op::AutoRecharge {
                user,
                enabled,
                threshold,
                amount,
                target,
                limit,
            } => {
                let mut line = json!({"at": now, "do": "auto_recharge", "actor": USERS[*user],
                    "account": USERS[*user], "enabled": enabled, "threshold": cents(*threshold),
                    "amount": cents(*amount), "card": "visa",
                    "mode": if *target { "target" } else { "fixed" }});
                if let Some(limit) = limit {
                    line["monthly_limit"] = json!(cents(*limit));
                }
                line
            }
            Op::Usage {
                user,
                call,
                seconds,
                premium,
            } => json!({"at": now, "do": "usage", "account": USERS[*user],
                "call": format!("call-{call}"), "seconds": seconds,
                "type": if *premium { "premium" } else { "basic" }}),
            Op::Rates { basic, premium } => {
                json!({"at": now, "do": "rates", "basic": rate(*basic), "premium": rate(*premium)})
            }
            Op::SetBehavior { user, behavior } => json!({"at": now, "do": "set_card_behavior",
                "account": USERS[*user], "card": "visa", "behavior": BEHAVIORS[*behavior]}),
            Op::UpdateCard { user, behavior } => {
                let mut line = json!({"at": now, "do": "update_card", "account": USERS[*user],
                    "card": "visa"});
                if let Some(behavior) = behavior {
                    line["behavior"] = json!(BEHAVIORS[*behavior]);
                }
                line
            }
            Op::Advance => json!({"at": now, "do": "advance"}),
            Op::Query { user } => json!({"at": now, "do": "query", "actor": USERS[*user],
                "account": USERS[*user], "what": "balance"}),
            Op::Ghost { seconds } => json!({"at": now, "do": "usage", "account": "ghost",
                "call": "call-0", "seconds": seconds, "type": "basic"}),
        };
        lines.push(line);
        ops.push((lines.len(), op.clone()));
    }
    let text = lines
        .iter()
        .map(|line| format!("{line}\n"))
        .collect::<String>();
    Script { text, ops }
}

/// Replay on the shared engine and the compiled default policy.
fn replayed(text: &str) -> Document {
    let path = Path::new("property.jsonl");
    let lines = parse_script(path, text).expect("a generated script parses");
    let (engine, default) = shared();
    let builder = Platform::builder()
        .engine(engine.clone())
        .default_policy(Arc::clone(default));
    replay(path, &lines, builder).expect("a parsed script replays")
}

fn at_of(text: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(text)
        .expect("document times are RFC 3339")
        .timestamp_millis()
}

/// What usage cost each user's wallet, by the model: the rates in force at each
/// line, each call id rated once per account, rejected lines costing nothing.
fn usage_costs(script: &Script, document: &Document) -> [Decimal; 3] {
    let rejected: HashSet<usize> = document.rejections.iter().map(|r| r.line).collect();
    let (mut basic, mut premium) = (d("0.09"), d("0.16"));
    let mut rated = HashSet::new();
    let mut costs = [Decimal::ZERO; 3];
    for (line, op) in &script.ops {
        if rejected.contains(line) {
            continue;
        }
        match op {
            Op::Rates {
                basic: new_basic,
                premium: new_premium,
            } => {
                basic = Decimal::new(*new_basic, 4);
                premium = Decimal::new(*new_premium, 4);
            }
            Op::Usage {
                user,
                call,
                seconds,
                premium: is_premium,
            } if rated.insert((*user, *call)) => {
                let rate = if *is_premium { premium } else { basic };
                let cost = (Decimal::from(*seconds) * rate / Decimal::from(60))
                    .round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero);
                costs[*user] += cost;
            }
            _ => {}
        }
    }
    costs
}

fn check_invariants(script: &Script, document: &Document) -> Result<(), TestCaseError> {
    let mut keys = HashSet::new();
    for charge in &document.charges {
        prop_assert!(keys.insert(&charge.key), "key {} used twice", charge.key);
        let amount = d(&charge.amount);
        prop_assert!(
            amount > Decimal::ZERO && amount <= d("1000.00") && amount.round_dp(2) == amount,
            "charge of {amount}: whole cents within the cap"
        );
    }
    for pair in document.charges.windows(2) {
        prop_assert!(
            at_of(&pair[0].at) <= at_of(&pair[1].at),
            "charges out of order"
        );
    }
    for pair in document.notifications.windows(2) {
        prop_assert!(
            at_of(&pair[0].at) <= at_of(&pair[1].at),
            "notifications out of order"
        );
    }
    let costs = usage_costs(script, document);
    for (index, user) in USERS.iter().enumerate() {
        let credited: Decimal = document
            .charges
            .iter()
            .filter(|charge| {
                charge.payer == *user
                    && charge.outcome == "succeeded"
                    && matches!(charge.purpose, "auto_recharge" | "top_up")
            })
            .map(|charge| d(&charge.amount))
            .sum();
        let balance = d(&document.accounts[*user].balance);
        prop_assert_eq!(
            balance,
            credited - costs[index],
            "{}: credited {} and used {}",
            user,
            credited,
            costs[index]
        );
    }
    Ok(())
}

fn steps() -> impl Strategy<Value = Vec<(i64, Op)>> {
    proptest::collection::vec((0..180_i64, op()), 1..40)
}

fn cards() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0..BEHAVIORS.len(), USERS.len())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    // Bad input loses nothing and never panics; a replayed ledger always balances.
    #[test]
    fn replay_every_parsed_script_keeps_keys_unique_time_ordered_and_balances_exact(
        cards in cards(),
        steps in steps(),
    ) {
        let script = script(&cards, &steps);
        let document = replayed(&script.text);
        check_invariants(&script, &document)?;
    }

    // Bad input is rejected before any policy sees it, at exactly its line.
    #[test]
    fn bad_input_malformed_money_anywhere_stops_the_parse_at_its_line(
        cards in cards(),
        steps in steps(),
        pick in any::<prop::sample::Index>(),
        bad in prop::sample::select(vec!["1_000", "1e2", "+10.00", " 10.00", "10.", ".50",
            "9999999999999999999999999999", "10.0000000000000000001"]),
    ) {
        let script = script(&cards, &steps);
        let mut lines: Vec<String> = script.text.lines().map(str::to_owned).collect();
        let at = pick.index(lines.len());
        let line: Value = serde_json::from_str(&lines[at]).unwrap();
        let time = line["at"].as_str().unwrap();
        lines[at] = json!({"at": time, "do": "top_up", "account": "u0", "card": "visa",
            "amount": bad}).to_string();
        let malformed = parse_script(Path::new("bad.jsonl"), &lines.join("\n")).unwrap_err();
        prop_assert_eq!(malformed.line, at + 1);
        prop_assert!(malformed.message.starts_with("`amount`: "), "{}", malformed);
    }
}
