//! The invariants, checked against what the host's store and the card network
//! hold. Safety holds at every step, faults or not; liveness once faults
//! stopped and time ran on.

use std::collections::{BTreeMap, BTreeSet};

use recharge_host::model::{ChargeOutcome, Purpose};
use recharge_host::{
    CardCharge, Cause, ChargeRequest, HostError, LedgerEntry, Platform, SimulatedGateway, Totals,
};
use rust_decimal::Decimal;

/// What the store and the card network hold, read once.
pub struct Snapshot {
    cards: Vec<CardCharge>,
    ledger: Vec<LedgerEntry>,
    requests: BTreeMap<String, ChargeRequest>,
    settled: BTreeMap<String, ChargeOutcome>,
    in_outbox: BTreeSet<String>,
}

impl Snapshot {
    /// Read the platform's store and the network's ledger.
    pub fn read(platform: &Platform, network: &SimulatedGateway) -> Result<Self, HostError> {
        let mut requests = BTreeMap::new();
        let mut settled = BTreeMap::new();
        for record in platform.charges()? {
            settled.insert(record.request.key.clone(), record.outcome);
            requests.insert(record.request.key.clone(), record.request);
        }
        let mut in_outbox = BTreeSet::new();
        for entry in platform.outbox()? {
            in_outbox.insert(entry.request.key.clone());
            requests.insert(entry.request.key.clone(), entry.request);
        }
        Ok(Snapshot {
            cards: network.card_charges(),
            ledger: platform.ledger()?,
            requests,
            settled,
            in_outbox,
        })
    }
}

/// Every safety invariant; the first broken one, described.
pub fn safety(
    platform: &Platform,
    network: &SimulatedGateway,
    snapshot: &Snapshot,
) -> Result<(), String> {
    // No two card charges for one attempt: the network took money once per key.
    let mut charged: BTreeMap<&str, &CardCharge> = BTreeMap::new();
    for card in &snapshot.cards {
        if charged.insert(&card.key, card).is_some() {
            return Err(format!(
                "key {} was charged twice by the card network",
                card.key
            ));
        }
        // Nothing charged that the host did not ask for, as it asked.
        let Some(request) = snapshot.requests.get(&card.key) else {
            return Err(format!("card charge {} was never requested", card.key));
        };
        if request.amount != card.amount || request.payer != card.payer || request.card != card.card
        {
            return Err(format!(
                "card charge {} differs from its request: {card:?} vs {request:?}",
                card.key
            ));
        }
    }
    // Every credit comes from a charge the network made, once, by its purpose.
    let mut credited: BTreeSet<&str> = BTreeSet::new();
    let mut calls: BTreeSet<(&str, &str)> = BTreeSet::new();
    for entry in &snapshot.ledger {
        match &entry.cause {
            Cause::Charge(key) => {
                if !credited.insert(key) {
                    return Err(format!("charge {key} was credited twice"));
                }
                let Some(card) = charged.get(key.as_str()) else {
                    return Err(format!("charge {key} was credited, never charged"));
                };
                let request = &snapshot.requests[key];
                check_credit(entry, request, card.amount)?;
            }
            Cause::Call(call) => {
                if !calls.insert((entry.account.as_str(), call)) {
                    return Err(format!("call {call} of {} was rated twice", entry.account));
                }
                if entry.wallet > Decimal::ZERO
                    || [
                        entry.included_basic_seconds,
                        entry.included_premium_seconds,
                        entry.basic_seconds,
                        entry.premium_seconds,
                    ]
                    .iter()
                    .any(|delta| *delta > 0)
                {
                    return Err(format!("call {call} credited something: {entry:?}"));
                }
            }
            Cause::Included => {}
        }
    }
    // A settled record says what the network did: a lost answer never
    // became a failure of a charge that went through.
    for (key, outcome) in &snapshot.settled {
        let took_money = charged.contains_key(key.as_str());
        if took_money != (*outcome == ChargeOutcome::Succeeded) {
            return Err(format!(
                "charge {key} settled as {outcome:?} but the network {} it",
                if took_money {
                    "charged"
                } else {
                    "did not charge"
                }
            ));
        }
        if let Some(known) = network.settled(key)
            && known.outcome != *outcome
        {
            return Err(format!(
                "charge {key} settled as {outcome:?}; the network says {:?}",
                known.outcome
            ));
        }
        if snapshot.in_outbox.contains(key) {
            return Err(format!("charge {key} is settled and still in the outbox"));
        }
    }
    // Each account's money and minutes are the sums of its ledger.
    for id in platform.account_ids().map_err(|err| err.to_string())? {
        let account = platform.account(&id).map_err(|err| err.to_string())?;
        let held = Totals::held(&account);
        let summed = Totals::of(&id, &snapshot.ledger);
        if held != summed {
            return Err(format!(
                "{id} holds {held:?} but its ledger sums to {summed:?}"
            ));
        }
    }
    Ok(())
}

/// A credit entry is the charge's amount, to its beneficiary, by its purpose.
fn check_credit(
    entry: &LedgerEntry,
    request: &ChargeRequest,
    charged: Decimal,
) -> Result<(), String> {
    let wrong = |what: &str| Err(format!("charge {} credited {what}: {entry:?}", request.key));
    if entry.account != request.beneficiary() {
        return wrong("to another account");
    }
    let (wallet, basic, premium) = match &request.purpose {
        Purpose::AutoRecharge | Purpose::TopUp => (charged, 0, 0),
        Purpose::Allocation(purchase) => (
            Decimal::ZERO,
            purchase.basic_minutes * 60,
            purchase.premium_minutes * 60,
        ),
    };
    let included = entry.included_basic_seconds != 0 || entry.included_premium_seconds != 0;
    if entry.wallet != wallet
        || entry.basic_seconds != basic
        || entry.premium_seconds != premium
        || included
    {
        return wrong("not by its purpose");
    }
    Ok(())
}

/// Liveness, once faults stopped and time ran on: nothing in flight,
/// unsettled, undelivered or unfired, and every charge credited.
pub fn liveness(
    platform: &Platform,
    network: &SimulatedGateway,
    snapshot: &Snapshot,
    in_transit: usize,
) -> Result<(), String> {
    let err = |error: HostError| error.to_string();
    if !snapshot.in_outbox.is_empty() {
        let outbox = platform.outbox().map_err(err)?;
        return Err(format!(
            "charges still unsettled at {}: {outbox:?}",
            platform.now()
        ));
    }
    let inbox = platform.inbox().map_err(err)?;
    if !inbox.is_empty() {
        return Err(format!("outcomes never handled: {inbox:?}"));
    }
    if let Some(due) = platform.next_due(platform.now()).map_err(err)? {
        return Err(format!("work due at {due} never ran"));
    }
    if network.next_webhook().is_some() || in_transit > 0 {
        return Err("webhooks never delivered".into());
    }
    let credited: BTreeSet<&str> = snapshot
        .ledger
        .iter()
        .filter_map(|entry| match &entry.cause {
            Cause::Charge(key) => Some(key.as_str()),
            _ => None,
        })
        .collect();
    for card in &snapshot.cards {
        if !credited.contains(card.key.as_str()) {
            return Err(format!(
                "charge {} took money and was never credited",
                card.key
            ));
        }
    }
    Ok(())
}
