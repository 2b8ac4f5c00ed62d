//! The outbox: charges run only after the event that asked for them committed,
//! each with its idempotency key; a settled charge is credited by the purpose
//! recorded at request time (H2) and its outcome comes back to the policy.

use recharge_policy_sdk::model::{ChargeOutcome, Event, PaymentOutcome, Purpose};

use super::{EventReport, Platform};
use crate::account::{Account, AccountId};
use crate::error::HostError;
use crate::gateway::GatewayCharge;
use crate::store::{Batch, ChargeRecord, ChargeRequest, StoreError};

/// A payment outcome reported by the gateway, applied once.
pub(super) fn deliver(
    platform: &Platform,
    key: &str,
    outcome: ChargeOutcome,
) -> Result<bool, HostError> {
    let Some(request) = platform.store.pending_charge(key)? else {
        return Ok(false);
    };
    let Some(reaction) = platform.settle(request, outcome)? else {
        return Ok(false);
    };
    platform.execute(keys_of(&reaction))?;
    Ok(true)
}

fn keys_of(report: &EventReport) -> Vec<String> {
    report
        .charges
        .iter()
        .map(|charge| charge.key.clone())
        .collect()
}

impl Platform {
    /// Run `work` serialised on the account's family, then execute the charges it
    /// committed (and those their outcomes lead to).
    pub(super) fn with_outbox(
        &self,
        id: &AccountId,
        work: impl FnOnce() -> Result<EventReport, HostError>,
    ) -> Result<EventReport, HostError> {
        let mut report = self.serialised(id, work)?;
        let keys = keys_of(&report);
        report.add(self.execute(keys)?);
        Ok(report)
    }

    /// Charge each key through the gateway, settle it and deliver its outcome;
    /// charges requested while reacting are executed in turn.
    pub(super) fn execute(&self, mut keys: Vec<String>) -> Result<EventReport, HostError> {
        let mut report = EventReport::default();
        let mut next = 0;
        while next < keys.len() {
            let key = std::mem::take(&mut keys[next]);
            next += 1;
            let Some(request) = self.store.pending_charge(&key)? else {
                continue;
            };
            let outcome = self.gateway.charge(&GatewayCharge {
                key: &request.key,
                payer: &request.payer,
                card: &request.card,
                amount: request.amount,
            });
            if let Some(reaction) = self.settle(request, outcome)? {
                keys.extend(keys_of(&reaction));
                report.add(reaction);
            }
        }
        Ok(report)
    }

    /// Record a charge's outcome, credit it by purpose if it succeeded (H2), and
    /// let the requesting account's policy react. `None` if the charge was no
    /// longer pending (settled by someone else: nothing happens twice).
    fn settle(
        &self,
        request: ChargeRequest,
        outcome: ChargeOutcome,
    ) -> Result<Option<EventReport>, HostError> {
        let requested_by = request.requested_by.clone();
        self.serialised(&requested_by, || {
            let event = Event::PaymentOutcome(PaymentOutcome {
                key: request.policy_key.clone(),
                outcome,
                amount: request.amount,
                purpose: request.purpose.clone(),
                payer: request.payer.0.clone(),
            });
            let mut batch = Batch::default();
            if outcome == ChargeOutcome::Succeeded {
                batch.updated.push(self.credited(&request)?);
            }
            batch.settled.push(ChargeRecord {
                at: self.now(),
                request,
                outcome,
            });
            match self.store.commit(batch) {
                Ok(()) => {}
                Err(StoreError::NotPending(_)) => return Ok(None),
                Err(other) => return Err(other.into()),
            }
            // The money is settled whatever the policy makes of it.
            match self.decide(&requested_by, &event) {
                Ok(reaction) => Ok(Some(reaction)),
                Err(HostError::Fault(_) | HostError::Rejected(_)) => {
                    Ok(Some(EventReport::default()))
                }
                Err(other) => Err(other),
            }
        })
    }

    /// The beneficiary's record with a succeeded charge credited by its purpose.
    fn credited(&self, request: &ChargeRequest) -> Result<Account, HostError> {
        let mut beneficiary = self.account(&request.beneficiary())?;
        match &request.purpose {
            Purpose::AutoRecharge | Purpose::TopUp => {
                beneficiary.balance = beneficiary
                    .balance
                    .checked_add(request.amount)
                    .ok_or(HostError::Internal("a credit overflows the balance"))?;
            }
            Purpose::Allocation(purchase) => {
                let seconds = |minutes: i64| minutes.checked_mul(60).unwrap_or(i64::MAX);
                beneficiary.basic_seconds = beneficiary
                    .basic_seconds
                    .saturating_add(seconds(purchase.basic_minutes));
                beneficiary.premium_seconds = beneficiary
                    .premium_seconds
                    .saturating_add(seconds(purchase.premium_minutes));
            }
        }
        Ok(beneficiary)
    }
}
