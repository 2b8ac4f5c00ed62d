//! Payment gateways: the trait the outbox submits charges through, and a
//! simulated gateway with the card behaviours of scenario scripts (SPEC §7).
//!
//! A submission is idempotent by key: the same key never charges twice, and
//! submitting it again is how the host asks what became of it. The answer is
//! final (succeeded, declined, requires action), transient (failed: the policy
//! may try again under a new key), pending (the outcome comes later, by webhook,
//! through [`crate::Platform::deliver_outcome`]), or not known at all
//! ([`Unknown`]: a timeout, a reset connection, a 5xx), which the host resolves
//! by asking again with the same key, never by a new attempt.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use recharge_policy_sdk::model::{ChargeOutcome, Timestamp};
use rust_decimal::Decimal;
use thiserror::Error;

use crate::account::AccountId;

/// A charge as the gateway sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayCharge<'a> {
    /// The idempotency key: the same key never charges twice.
    pub key: &'a str,
    /// The card holder.
    pub payer: &'a AccountId,
    /// The card.
    pub card: &'a str,
    /// The amount in USD, whole cents.
    pub amount: Decimal,
    /// When the host submits it (the host's clock).
    pub at: Timestamp,
}

/// How a charge ended, as far as the gateway says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The outcome.
    pub outcome: ChargeOutcome,
    /// The gateway's own id of the charge, when it gave one.
    pub reference: Option<String>,
    /// The gateway's reason for a decline or failure, when it gave one.
    pub reason: Option<String>,
}

/// What a gateway answered about a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayAnswer {
    /// The charge ended: succeeded, declined, failed transiently, or needs the
    /// customer's authentication.
    Settled(Settlement),
    /// Accepted; the outcome comes later (a webhook to
    /// [`crate::Platform::deliver_outcome`]).
    Pending {
        /// The gateway's own id of the charge, when it gave one.
        reference: Option<String>,
    },
}

/// The gateway could not say what became of a charge: a timeout, a reset
/// connection, a 5xx. The card may or may not have been charged; the host asks
/// again with the same key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("gateway outcome unknown: {0}")]
pub struct Unknown(pub String);

/// Something that charges cards. It must be idempotent by key: a key seen
/// before is not charged again, and its answer says what became of it.
pub trait Gateway: Send + Sync {
    /// Submit a charge, or ask about one submitted before under the same key.
    fn submit(&self, charge: &GatewayCharge<'_>) -> Result<GatewayAnswer, Unknown>;
}

/// How the simulated gateway treats a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CardBehavior {
    /// Every charge succeeds.
    #[default]
    Ok,
    /// Every charge is declined (final).
    Decline,
    /// Every charge fails transiently.
    Fail,
    /// The next N charges fail transiently, then the card behaves as `Ok`.
    FailTimes(u32),
    /// Every charge goes through but the answer to its first submission is
    /// lost; asked again, the gateway says it succeeded.
    Timeout,
    /// The next N charges time out so, then the card behaves as `Ok`.
    TimeoutTimes(u32),
    /// Every charge is accepted as pending and confirms (succeeds) this many
    /// milliseconds later, by a webhook delivered twice.
    Pending(i64),
    /// Every charge needs the customer's authentication (3-D Secure).
    RequiresAction,
}

/// A card behaviour that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "unknown card behavior {0:?}: expected ok, decline, fail, fail:N, timeout, timeout:N, pending:DURATION (30s, 30m, 2h, 1d) or requires_action"
)]
pub struct BadBehavior(pub String);

/// A duration such as `30s`, `30m`, `2h` or `1d`, in milliseconds (at most a
/// year).
fn parse_duration(text: &str) -> Option<i64> {
    let split = text.len().checked_sub(1)?;
    let (number, unit) = text.split_at(split);
    if number.is_empty() || !number.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let count: i64 = number.parse().ok()?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    count
        .checked_mul(unit_ms)
        .filter(|ms| (1..=365 * 86_400_000).contains(ms))
}

fn count(text: &str, prefix: &str) -> Option<u32> {
    let digits = text.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl FromStr for CardBehavior {
    type Err = BadBehavior;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parsed = match text {
            "ok" => Some(CardBehavior::Ok),
            "decline" => Some(CardBehavior::Decline),
            "fail" => Some(CardBehavior::Fail),
            "timeout" => Some(CardBehavior::Timeout),
            "requires_action" => Some(CardBehavior::RequiresAction),
            _ => count(text, "fail:")
                .map(CardBehavior::FailTimes)
                .or_else(|| count(text, "timeout:").map(CardBehavior::TimeoutTimes))
                .or_else(|| {
                    text.strip_prefix("pending:")
                        .and_then(parse_duration)
                        .map(CardBehavior::Pending)
                }),
        };
        parsed.ok_or_else(|| BadBehavior(text.to_owned()))
    }
}

impl fmt::Display for CardBehavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CardBehavior::Ok => f.write_str("ok"),
            CardBehavior::Decline => f.write_str("decline"),
            CardBehavior::Fail => f.write_str("fail"),
            CardBehavior::FailTimes(count) => write!(f, "fail:{count}"),
            CardBehavior::Timeout => f.write_str("timeout"),
            CardBehavior::TimeoutTimes(count) => write!(f, "timeout:{count}"),
            CardBehavior::Pending(ms) => write!(f, "pending:{}s", ms / 1_000),
            CardBehavior::RequiresAction => f.write_str("requires_action"),
        }
    }
}

/// Money the simulated gateway really took from a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardCharge {
    /// When the money moved.
    pub at: Timestamp,
    /// The card holder.
    pub payer: AccountId,
    /// The card.
    pub card: String,
    /// The amount.
    pub amount: Decimal,
    /// The idempotency key it was charged under.
    pub key: String,
    /// The gateway's id of the charge.
    pub reference: String,
}

/// A webhook the simulated gateway sends: the final outcome of a pending charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// When it is delivered.
    pub at: Timestamp,
    /// The charge's key.
    pub key: String,
    /// Its outcome.
    pub settlement: Settlement,
}

/// What the gateway knows of one key.
#[derive(Debug, Clone)]
enum Known {
    /// Ended so.
    Settled(Settlement),
    /// Accepted; succeeds at `confirms_at`.
    Pending {
        confirms_at: Timestamp,
        reference: String,
        charge: CardCharge,
    },
}

#[derive(Debug, Default)]
struct Ledger {
    behaviors: HashMap<(AccountId, String), CardBehavior>,
    known: HashMap<String, Known>,
    card_charges: Vec<CardCharge>,
    /// Webhooks not delivered yet, by due time and sequence.
    webhooks: BTreeMap<(Timestamp, u64), Webhook>,
    next_webhook: u64,
    submissions: u64,
}

impl Ledger {
    /// The gateway's id of a charge: derived from its key, so one card's
    /// charges read the same whatever else the gateway handles.
    fn reference(key: &str) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(key.as_bytes());
        let hex: String = digest[..8]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        format!("ch_{hex}")
    }

    /// Pending charges confirmed by `now` succeed: the money moves then.
    fn confirm_due(&mut self, now: Timestamp) {
        let due: Vec<String> = self
            .known
            .iter()
            .filter(|(_, known)| {
                matches!(known, Known::Pending { confirms_at, .. } if *confirms_at <= now)
            })
            .map(|(key, _)| key.clone())
            .collect();
        let mut confirmed: Vec<(Timestamp, String)> = Vec::new();
        for key in due {
            if let Some(Known::Pending {
                confirms_at,
                reference,
                charge,
            }) = self.known.remove(&key)
            {
                self.card_charges.push(charge);
                self.known.insert(
                    key.clone(),
                    Known::Settled(Settlement {
                        outcome: ChargeOutcome::Succeeded,
                        reference: Some(reference),
                        reason: None,
                    }),
                );
                confirmed.push((confirms_at, key));
            }
        }
        confirmed.sort();
        if confirmed.len() > 1 {
            // Money moves in time order, like the card network's.
            let tail = self.card_charges.len() - confirmed.len();
            self.card_charges[tail..].sort_by_key(|charge| (charge.at, charge.key.clone()));
        }
    }

    fn settle(&mut self, key: &str, settlement: Settlement) -> GatewayAnswer {
        self.known
            .insert(key.to_owned(), Known::Settled(settlement.clone()));
        GatewayAnswer::Settled(settlement)
    }

    fn answer(known: &Known) -> GatewayAnswer {
        match known {
            Known::Settled(settlement) => GatewayAnswer::Settled(settlement.clone()),
            Known::Pending { reference, .. } => GatewayAnswer::Pending {
                reference: Some(reference.clone()),
            },
        }
    }

    fn charge_card(&mut self, charge: &GatewayCharge<'_>, reference: &str) {
        self.card_charges.push(CardCharge {
            at: charge.at,
            payer: charge.payer.clone(),
            card: charge.card.to_owned(),
            amount: charge.amount,
            key: charge.key.to_owned(),
            reference: reference.to_owned(),
        });
    }
}

/// A gateway in memory, for simulations and tests: cards behave as told, each
/// key is charged at most once, and pending charges confirm by webhooks that
/// [`SimulatedGateway::take_webhooks`] hands out when they are due.
#[derive(Debug, Default)]
pub struct SimulatedGateway {
    ledger: Mutex<Ledger>,
}

fn succeeded(reference: String) -> Settlement {
    Settlement {
        outcome: ChargeOutcome::Succeeded,
        reference: Some(reference),
        reason: None,
    }
}

impl SimulatedGateway {
    /// A gateway where every card behaves `ok` until told otherwise.
    pub fn new() -> Self {
        Self::default()
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// From now on, treat this card so.
    pub fn set_behavior(&self, payer: &AccountId, card: &str, behavior: CardBehavior) {
        self.ledger()
            .behaviors
            .insert((payer.clone(), card.to_owned()), behavior);
    }

    /// The total actually taken from cards.
    pub fn money_moved(&self) -> Decimal {
        self.ledger()
            .card_charges
            .iter()
            .map(|charge| charge.amount)
            .sum()
    }

    /// How many distinct keys reached the card network.
    pub fn attempts(&self) -> u64 {
        self.ledger().known.len() as u64
    }

    /// How many submissions arrived (asking again included).
    pub fn submissions(&self) -> u64 {
        self.ledger().submissions
    }

    /// Every charge that really took money from a card, in time order.
    pub fn card_charges(&self) -> Vec<CardCharge> {
        self.ledger().card_charges.clone()
    }

    /// The final outcome the gateway knows for `key`, if it is final.
    pub fn settled(&self, key: &str) -> Option<Settlement> {
        match self.ledger().known.get(key)? {
            Known::Settled(settlement) => Some(settlement.clone()),
            Known::Pending { .. } => None,
        }
    }

    /// When the next webhook is due, if any is waiting.
    pub fn next_webhook(&self) -> Option<Timestamp> {
        self.ledger().webhooks.keys().next().map(|(at, _)| *at)
    }

    /// The webhooks due by `until`, in due order, handed out once; the charges
    /// they confirm are settled by then.
    pub fn take_webhooks(&self, until: Timestamp) -> Vec<Webhook> {
        let mut ledger = self.ledger();
        ledger.confirm_due(until);
        let later = ledger.webhooks.split_off(&(until.saturating_add(1), 0));
        std::mem::replace(&mut ledger.webhooks, later)
            .into_values()
            .collect()
    }
}

impl Gateway for SimulatedGateway {
    fn submit(&self, charge: &GatewayCharge<'_>) -> Result<GatewayAnswer, Unknown> {
        let mut ledger = self.ledger();
        ledger.submissions += 1;
        ledger.confirm_due(charge.at);
        if let Some(known) = ledger.known.get(charge.key) {
            return Ok(Ledger::answer(known));
        }
        let slot = (charge.payer.clone(), charge.card.to_owned());
        let behavior = *ledger.behaviors.entry(slot.clone()).or_default();
        let reference = Ledger::reference(charge.key);
        let settled = |outcome, reason: &str| Settlement {
            outcome,
            reference: Some(reference.clone()),
            reason: Some(reason.to_owned()),
        };
        let answer = match behavior {
            CardBehavior::Ok | CardBehavior::FailTimes(0) | CardBehavior::TimeoutTimes(0) => {
                ledger.charge_card(charge, &reference);
                ledger.settle(charge.key, succeeded(reference))
            }
            CardBehavior::Decline => ledger.settle(
                charge.key,
                settled(ChargeOutcome::Declined, "card_declined"),
            ),
            CardBehavior::Fail => ledger.settle(
                charge.key,
                settled(ChargeOutcome::Failed, "processing_error"),
            ),
            CardBehavior::FailTimes(left) => {
                ledger
                    .behaviors
                    .insert(slot, CardBehavior::FailTimes(left - 1));
                ledger.settle(
                    charge.key,
                    settled(ChargeOutcome::Failed, "processing_error"),
                )
            }
            CardBehavior::RequiresAction => ledger.settle(
                charge.key,
                settled(ChargeOutcome::RequiresAction, "authentication_required"),
            ),
            CardBehavior::Timeout | CardBehavior::TimeoutTimes(_) => {
                if let CardBehavior::TimeoutTimes(left) = behavior {
                    ledger
                        .behaviors
                        .insert(slot, CardBehavior::TimeoutTimes(left - 1));
                }
                ledger.charge_card(charge, &reference);
                ledger.settle(charge.key, succeeded(reference));
                return Err(Unknown(format!(
                    "no answer to {} within the gateway's timeout",
                    charge.key
                )));
            }
            CardBehavior::Pending(after) => {
                let confirms_at = charge.at.saturating_add(after);
                let card_charge = CardCharge {
                    at: confirms_at,
                    payer: charge.payer.clone(),
                    card: charge.card.to_owned(),
                    amount: charge.amount,
                    key: charge.key.to_owned(),
                    reference: reference.clone(),
                };
                // The confirmation comes twice, as webhooks do.
                for _ in 0..2 {
                    let sequence = ledger.next_webhook;
                    ledger.next_webhook += 1;
                    ledger.webhooks.insert(
                        (confirms_at, sequence),
                        Webhook {
                            at: confirms_at,
                            key: charge.key.to_owned(),
                            settlement: succeeded(reference.clone()),
                        },
                    );
                }
                let known = Known::Pending {
                    confirms_at,
                    reference,
                    charge: card_charge,
                };
                let answer = Ledger::answer(&known);
                ledger.known.insert(charge.key.to_owned(), known);
                answer
            }
        };
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge<'a>(key: &'a str, payer: &'a AccountId, at: Timestamp) -> GatewayCharge<'a> {
        GatewayCharge {
            key,
            payer,
            card: "visa",
            amount: Decimal::TEN,
            at,
        }
    }

    fn outcome(answer: Result<GatewayAnswer, Unknown>) -> Option<ChargeOutcome> {
        match answer {
            Ok(GatewayAnswer::Settled(settlement)) => Some(settlement.outcome),
            _ => None,
        }
    }

    #[test]
    fn behaviors_parse_and_print_back() {
        for text in [
            "ok",
            "decline",
            "fail",
            "fail:3",
            "timeout",
            "timeout:2",
            "pending:1800s",
            "requires_action",
        ] {
            let behavior: CardBehavior = text.parse().unwrap();
            assert_eq!(behavior.to_string(), text);
        }
        assert_eq!("pending:30m".parse(), Ok(CardBehavior::Pending(1_800_000)));
        for bad in [
            "fail:x",
            "maybe",
            "fail:",
            "fail:+1",
            "pending:0m",
            "pending:5",
            "timeout:-1",
        ] {
            assert!(bad.parse::<CardBehavior>().is_err(), "{bad}");
        }
    }

    #[test]
    fn fail_n_fails_n_times_then_succeeds() {
        let gateway = SimulatedGateway::new();
        let payer = AccountId::from("u");
        gateway.set_behavior(&payer, "visa", CardBehavior::FailTimes(2));
        let outcomes: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|key| outcome(gateway.submit(&charge(key, &payer, 0))))
            .collect();
        use ChargeOutcome::*;
        assert_eq!(outcomes, [Some(Failed), Some(Failed), Some(Succeeded)]);
    }

    /// No double charge: the same key is charged once, however often it is sent.
    #[test]
    fn the_same_key_never_charges_twice() {
        let gateway = SimulatedGateway::new();
        let payer = AccountId::from("u");
        for _ in 0..3 {
            assert_eq!(
                outcome(gateway.submit(&charge("k", &payer, 0))),
                Some(ChargeOutcome::Succeeded)
            );
        }
        assert_eq!(gateway.money_moved(), Decimal::TEN);
        assert_eq!(gateway.attempts(), 1);
        assert_eq!(gateway.submissions(), 3);
    }

    /// No double charge: a lost answer was charged; asking again says so and
    /// charges nothing more.
    #[test]
    fn a_timeout_charges_once_and_asking_again_tells() {
        let gateway = SimulatedGateway::new();
        let payer = AccountId::from("u");
        gateway.set_behavior(&payer, "visa", CardBehavior::TimeoutTimes(1));
        assert!(gateway.submit(&charge("k", &payer, 0)).is_err());
        assert_eq!(gateway.card_charges().len(), 1);
        assert_eq!(
            outcome(gateway.submit(&charge("k", &payer, 60_000))),
            Some(ChargeOutcome::Succeeded)
        );
        assert_eq!(gateway.card_charges().len(), 1);
        // The next charge is answered at once.
        assert_eq!(
            outcome(gateway.submit(&charge("k2", &payer, 0))),
            Some(ChargeOutcome::Succeeded)
        );
    }

    /// Nothing credited without a charge: a pending charge takes money only
    /// when it confirms, and its webhook comes twice.
    #[test]
    fn a_pending_charge_confirms_later_by_two_webhooks() {
        let gateway = SimulatedGateway::new();
        let payer = AccountId::from("u");
        gateway.set_behavior(&payer, "visa", "pending:30m".parse().unwrap());
        let answer = gateway.submit(&charge("k", &payer, 0)).unwrap();
        assert!(matches!(
            answer,
            GatewayAnswer::Pending { reference: Some(_) }
        ));
        assert!(gateway.take_webhooks(1_799_999).is_empty());
        assert!(gateway.card_charges().is_empty());
        assert_eq!(gateway.next_webhook(), Some(1_800_000));
        let webhooks = gateway.take_webhooks(1_800_000);
        assert_eq!(webhooks.len(), 2);
        assert!(
            webhooks
                .iter()
                .all(|hook| hook.key == "k" && hook.settlement.outcome == ChargeOutcome::Succeeded)
        );
        assert_eq!(gateway.card_charges().len(), 1);
        assert_eq!(gateway.card_charges()[0].at, 1_800_000);
        assert_eq!(gateway.next_webhook(), None);
    }
}
