//! The simulated gateway: cards behave as told, each key is charged at most
//! once, pending charges confirm by webhooks.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use recharge_policy_sdk::model::{ChargeOutcome, Timestamp};
use rust_decimal::Decimal;

use super::{CardBehavior, Gateway, GatewayAnswer, GatewayCharge, Settlement, Unknown};
use crate::account::AccountId;
use crate::store::{Store, StoreError};

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
    /// How many journal entries it has applied (durable gateways).
    applied: u64,
    /// Per key, submissions the host made as first ones (`asked` 0).
    first_submissions: HashMap<String, u32>,
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

/// One input to the simulated gateway. Its state is a function of its inputs
/// in order, so a journal of them is its durable ledger: replayed at start, and
/// shared by every node that reads the same journal.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Input {
    Behavior {
        payer: AccountId,
        card: String,
        behavior: CardBehavior,
    },
    Submit {
        key: String,
        payer: AccountId,
        card: String,
        amount: Decimal,
        at: Timestamp,
        #[serde(default)]
        asked: u32,
    },
    TakeWebhooks {
        until: Timestamp,
    },
}

/// What an input gave back.
enum Output {
    Nothing,
    Answer(Result<GatewayAnswer, Unknown>),
    Webhooks(Vec<Webhook>),
}

impl Ledger {
    fn apply(&mut self, input: &Input) -> Output {
        match input {
            Input::Behavior {
                payer,
                card,
                behavior,
            } => {
                self.behaviors
                    .insert((payer.clone(), card.clone()), *behavior);
                Output::Nothing
            }
            Input::Submit {
                key,
                payer,
                card,
                amount,
                at,
                asked,
            } => Output::Answer(self.submit(&GatewayCharge {
                key,
                payer,
                card,
                amount: *amount,
                at: *at,
                asked: *asked,
            })),
            Input::TakeWebhooks { until } => {
                self.confirm_due(*until);
                let later = self.webhooks.split_off(&(until.saturating_add(1), 0));
                Output::Webhooks(
                    std::mem::replace(&mut self.webhooks, later)
                        .into_values()
                        .collect(),
                )
            }
        }
    }
}

/// Where a durable simulated gateway keeps its inputs.
struct Journal {
    store: Arc<dyn Store>,
    stream: String,
}

/// A gateway for simulations, trials and tests: cards behave as told, each key
/// is charged at most once, and pending charges confirm by webhooks that
/// [`SimulatedGateway::take_webhooks`] hands out when they are due.
///
/// In memory ([`new`](Self::new)), or durable ([`in_store`](Self::in_store)):
/// every input is appended to a journal stream of a store before it takes
/// effect, so a host restarted after a crash meets the card network as it was
/// (a charge it took before the host heard of it is still taken), and several
/// nodes on one database share one card network.
#[derive(Default)]
pub struct SimulatedGateway {
    ledger: Mutex<Ledger>,
    journal: Option<Journal>,
}

impl std::fmt::Debug for SimulatedGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedGateway")
            .field("durable", &self.journal.is_some())
            .finish_non_exhaustive()
    }
}

/// The journal stream a durable simulated gateway keeps its inputs in.
pub const GATEWAY_STREAM: &str = "simulated-gateway";

fn succeeded(reference: String) -> Settlement {
    Settlement {
        outcome: ChargeOutcome::Succeeded,
        reference: Some(reference),
        reason: None,
    }
}

impl SimulatedGateway {
    /// A gateway in memory where every card behaves `ok` until told otherwise.
    pub fn new() -> Self {
        Self::default()
    }

    /// A durable gateway whose inputs live in `store`'s journal stream
    /// [`GATEWAY_STREAM`]; what the store holds already is replayed first.
    pub fn in_store(store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let gateway = SimulatedGateway {
            ledger: Mutex::new(Ledger::default()),
            journal: Some(Journal {
                store,
                stream: GATEWAY_STREAM.to_owned(),
            }),
        };
        gateway.refresh()?;
        Ok(gateway)
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Take in what other nodes gave a durable gateway since this one last
    /// looked (nothing to do in memory). The reads below answer as of then.
    pub fn refresh(&self) -> Result<(), StoreError> {
        let mut ledger = self.ledger();
        self.catch_up(&mut ledger)
    }

    fn catch_up(&self, ledger: &mut Ledger) -> Result<(), StoreError> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        for (seq, entry) in journal.store.journal(&journal.stream, ledger.applied)? {
            let input: Input = serde_json::from_str(&entry).map_err(|err| {
                StoreError::Backend(format!("simulated gateway journal entry {seq}: {err}"))
            })?;
            ledger.apply(&input);
            ledger.applied = seq;
        }
        Ok(())
    }

    /// Journal `input` (durable gateways), then apply it.
    fn run(&self, input: Input) -> Result<Output, StoreError> {
        let mut ledger = self.ledger();
        if let Some(journal) = &self.journal {
            let entry = serde_json::to_string(&input)
                .map_err(|err| StoreError::Backend(format!("simulated gateway input: {err}")))?;
            loop {
                self.catch_up(&mut ledger)?;
                match journal.store.append(
                    &journal.stream,
                    ledger.applied,
                    std::slice::from_ref(&entry),
                ) {
                    Ok(()) => break,
                    Err(StoreError::Behind(_)) => continue,
                    Err(other) => return Err(other),
                }
            }
            ledger.applied += 1;
        }
        Ok(ledger.apply(&input))
    }

    /// From now on, treat this card so.
    pub fn set_behavior(
        &self,
        payer: &AccountId,
        card: &str,
        behavior: CardBehavior,
    ) -> Result<(), StoreError> {
        self.run(Input::Behavior {
            payer: payer.clone(),
            card: card.to_owned(),
            behavior,
        })
        .map(|_| ())
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

    /// Keys the host submitted as new more than once: none, ever, if no two
    /// nodes (or threads) submit one charge (asking again is not submitting).
    pub fn submitted_twice(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .ledger()
            .first_submissions
            .iter()
            .filter(|(_, count)| **count > 1)
            .map(|(key, _)| key.clone())
            .collect();
        keys.sort();
        keys
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
    pub fn take_webhooks(&self, until: Timestamp) -> Result<Vec<Webhook>, StoreError> {
        match self.run(Input::TakeWebhooks { until })? {
            Output::Webhooks(webhooks) => Ok(webhooks),
            _ => Ok(Vec::new()),
        }
    }
}

impl Gateway for SimulatedGateway {
    fn submit(&self, charge: &GatewayCharge<'_>) -> Result<GatewayAnswer, Unknown> {
        let input = Input::Submit {
            key: charge.key.to_owned(),
            payer: charge.payer.clone(),
            card: charge.card.to_owned(),
            amount: charge.amount,
            at: charge.at,
            asked: charge.asked,
        };
        match self.run(input) {
            Ok(Output::Answer(answer)) => answer,
            Ok(_) => Err(Unknown("the simulated gateway gave no answer".into())),
            // The card network's own records failed: to the host, an answer
            // that never came, asked about again later.
            Err(error) => Err(Unknown(format!("simulated gateway: {error}"))),
        }
    }
}

impl Ledger {
    /// A submission: charged at most once per key, answered as the card behaves.
    fn submit(&mut self, charge: &GatewayCharge<'_>) -> Result<GatewayAnswer, Unknown> {
        let ledger = self;
        ledger.submissions += 1;
        if charge.asked == 0 {
            *ledger
                .first_submissions
                .entry(charge.key.to_owned())
                .or_default() += 1;
        }
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
            asked: 0,
        }
    }

    fn outcome(answer: Result<GatewayAnswer, Unknown>) -> Option<ChargeOutcome> {
        match answer {
            Ok(GatewayAnswer::Settled(settlement)) => Some(settlement.outcome),
            _ => None,
        }
    }

    #[test]
    fn fail_n_fails_n_times_then_succeeds() {
        let gateway = SimulatedGateway::new();
        let payer = AccountId::from("u");
        gateway
            .set_behavior(&payer, "visa", CardBehavior::FailTimes(2))
            .unwrap();
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
        gateway
            .set_behavior(&payer, "visa", CardBehavior::TimeoutTimes(1))
            .unwrap();
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
        gateway
            .set_behavior(&payer, "visa", "pending:30m".parse().unwrap())
            .unwrap();
        let answer = gateway.submit(&charge("k", &payer, 0)).unwrap();
        assert!(matches!(
            answer,
            GatewayAnswer::Pending { reference: Some(_) }
        ));
        assert!(gateway.take_webhooks(1_799_999).unwrap().is_empty());
        assert!(gateway.card_charges().is_empty());
        assert_eq!(gateway.next_webhook(), Some(1_800_000));
        let webhooks = gateway.take_webhooks(1_800_000).unwrap();
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

    /// Nothing lost, no double charge: a durable gateway rebuilt from its store
    /// (a restart) knows what it took, and two gateways on one store (two
    /// nodes) are one card network: a key charged through one is not charged
    /// again through the other.
    #[test]
    fn a_durable_gateway_survives_a_restart_and_is_shared() {
        let store: Arc<dyn Store> = Arc::new(crate::store::MemoryStore::new());
        let payer = AccountId::from("u");
        let first = SimulatedGateway::in_store(Arc::clone(&store)).unwrap();
        first
            .set_behavior(&payer, "visa", CardBehavior::TimeoutTimes(1))
            .unwrap();
        assert!(first.submit(&charge("k", &payer, 0)).is_err());
        drop(first);
        let restarted = SimulatedGateway::in_store(Arc::clone(&store)).unwrap();
        let other_node = SimulatedGateway::in_store(Arc::clone(&store)).unwrap();
        assert_eq!(restarted.card_charges().len(), 1);
        assert_eq!(
            outcome(other_node.submit(&charge("k", &payer, 60_000))),
            Some(ChargeOutcome::Succeeded)
        );
        assert_eq!(
            outcome(restarted.submit(&charge("k2", &payer, 60_000))),
            Some(ChargeOutcome::Succeeded)
        );
        assert_eq!(
            outcome(other_node.submit(&charge("k2", &payer, 60_000))),
            Some(ChargeOutcome::Succeeded)
        );
        other_node.refresh().unwrap();
        restarted.refresh().unwrap();
        assert_eq!(other_node.money_moved(), Decimal::from(20));
        assert_eq!(restarted.card_charges(), other_node.card_charges());
        assert_eq!(restarted.submissions(), 4);
    }
}
