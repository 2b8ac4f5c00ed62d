//! Payment gateways: the trait the outbox charges through, and a simulated gateway
//! with the card behaviours of scenario scripts.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use recharge_policy_sdk::model::ChargeOutcome;
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
}

/// Something that charges cards. It must be idempotent by key: a key seen before
/// returns the first outcome without charging again.
pub trait Gateway: Send + Sync {
    /// Charge a card once per key.
    fn charge(&self, charge: &GatewayCharge<'_>) -> ChargeOutcome;
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
}

/// A card behaviour that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown card behavior {0:?}: expected ok, decline, fail or fail:N")]
pub struct BadBehavior(pub String);

impl FromStr for CardBehavior {
    type Err = BadBehavior;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "ok" => Ok(CardBehavior::Ok),
            "decline" => Ok(CardBehavior::Decline),
            "fail" => Ok(CardBehavior::Fail),
            _ => text
                .strip_prefix("fail:")
                .and_then(|count| count.parse().ok())
                .map(CardBehavior::FailTimes)
                .ok_or_else(|| BadBehavior(text.to_owned())),
        }
    }
}

impl fmt::Display for CardBehavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CardBehavior::Ok => f.write_str("ok"),
            CardBehavior::Decline => f.write_str("decline"),
            CardBehavior::Fail => f.write_str("fail"),
            CardBehavior::FailTimes(count) => write!(f, "fail:{count}"),
        }
    }
}

#[derive(Debug, Default)]
struct Ledger {
    behaviors: HashMap<(AccountId, String), CardBehavior>,
    outcomes: HashMap<String, ChargeOutcome>,
    money_moved: Decimal,
    attempts: u64,
}

/// A gateway in memory, for simulations and tests: cards behave as told, outcomes
/// are remembered per key.
#[derive(Debug, Default)]
pub struct SimulatedGateway {
    ledger: Mutex<Ledger>,
}

impl SimulatedGateway {
    /// A gateway where every card behaves `ok` until told otherwise.
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on, treat this card so.
    pub fn set_behavior(&self, payer: &AccountId, card: &str, behavior: CardBehavior) {
        if let Ok(mut ledger) = self.ledger.lock() {
            ledger
                .behaviors
                .insert((payer.clone(), card.to_owned()), behavior);
        }
    }

    /// The total actually charged, counting each key once.
    pub fn money_moved(&self) -> Decimal {
        self.ledger
            .lock()
            .map(|ledger| ledger.money_moved)
            .unwrap_or_default()
    }

    /// How many distinct keys reached the card network.
    pub fn attempts(&self) -> u64 {
        self.ledger
            .lock()
            .map(|ledger| ledger.attempts)
            .unwrap_or_default()
    }
}

impl Gateway for SimulatedGateway {
    fn charge(&self, charge: &GatewayCharge<'_>) -> ChargeOutcome {
        let Ok(mut ledger) = self.ledger.lock() else {
            return ChargeOutcome::Failed;
        };
        if let Some(first) = ledger.outcomes.get(charge.key) {
            return *first;
        }
        let slot = (charge.payer.clone(), charge.card.to_owned());
        let behavior = ledger.behaviors.entry(slot).or_default();
        let outcome = match *behavior {
            CardBehavior::Ok => ChargeOutcome::Succeeded,
            CardBehavior::Decline => ChargeOutcome::Declined,
            CardBehavior::Fail => ChargeOutcome::Failed,
            CardBehavior::FailTimes(0) => ChargeOutcome::Succeeded,
            CardBehavior::FailTimes(left) => {
                *behavior = CardBehavior::FailTimes(left - 1);
                ChargeOutcome::Failed
            }
        };
        ledger.attempts += 1;
        if outcome == ChargeOutcome::Succeeded {
            ledger.money_moved += charge.amount;
        }
        ledger.outcomes.insert(charge.key.to_owned(), outcome);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge<'a>(key: &'a str, payer: &'a AccountId) -> GatewayCharge<'a> {
        GatewayCharge {
            key,
            payer,
            card: "visa",
            amount: Decimal::TEN,
        }
    }

    #[test]
    fn behaviors_parse() {
        assert_eq!("fail:3".parse(), Ok(CardBehavior::FailTimes(3)));
        assert_eq!("decline".parse(), Ok(CardBehavior::Decline));
        assert!("fail:x".parse::<CardBehavior>().is_err());
        assert!("maybe".parse::<CardBehavior>().is_err());
    }

    #[test]
    fn fail_n_fails_n_times_then_succeeds() {
        let gateway = SimulatedGateway::new();
        let payer = AccountId::from("u");
        gateway.set_behavior(&payer, "visa", CardBehavior::FailTimes(2));
        let outcomes: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|key| gateway.charge(&charge(key, &payer)))
            .collect();
        assert_eq!(
            outcomes,
            [
                ChargeOutcome::Failed,
                ChargeOutcome::Failed,
                ChargeOutcome::Succeeded
            ]
        );
    }

    #[test]
    fn the_same_key_never_charges_twice() {
        let gateway = SimulatedGateway::new();
        let payer = AccountId::from("u");
        assert_eq!(
            gateway.charge(&charge("k", &payer)),
            ChargeOutcome::Succeeded
        );
        assert_eq!(
            gateway.charge(&charge("k", &payer)),
            ChargeOutcome::Succeeded
        );
        assert_eq!(gateway.money_moved(), Decimal::TEN);
        assert_eq!(gateway.attempts(), 1);
    }
}
