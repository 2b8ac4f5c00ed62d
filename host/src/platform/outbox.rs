//! The outbox: charges run only after the event that asked for them committed,
//! each under its idempotency key, and never inside a policy call.
//!
//! Each charge's state lives in the store: queued, then submitted (written
//! before the gateway hears of it, so a restart asks again instead of
//! forgetting), then settled. A gateway answer that never came (a timeout, a
//! 5xx) is resolved by asking again with the same key, with backoff, never by a
//! new attempt; a pending charge waits for its webhook ([`deliver`]) and is asked
//! about now and then all the same.
//!
//! Settling is one step: the record, the credit by the purpose recorded at
//! request time (H2) and the policy's reaction commit in one batch. If the
//! policy faults, the record and the credit commit with the outcome kept in the
//! inbox, offered again until a policy handles it (the default policy once a
//! tenant's is quarantined).

use recharge_policy_sdk::model::{ChargeOutcome, Event, PaymentOutcome, Purpose, Timestamp};

use super::events::{Committed, Facts};
use super::{EventReport, Platform};
use crate::capabilities::EventContext;
use crate::error::HostError;
use crate::gateway::{GatewayAnswer, GatewayCharge, Settlement};
use crate::ledger::Cause;
use crate::store::{
    Batch, ChargeRecord, ChargeRequest, InboxItem, OutboxEntry, OutboxState, StateChange,
    StoreError, StoredInbox,
};

/// The first wait before asking the gateway again about an answer that never
/// came; it doubles with each ask, up to [`LONGEST_WAIT_MS`].
const FIRST_WAIT_MS: i64 = 60_000;
/// The longest wait between two asks about one charge.
const LONGEST_WAIT_MS: i64 = 3_600_000;
/// How often a pending charge is asked about while its webhook has not come.
const PENDING_CHECK_MS: i64 = 3_600_000;
/// The first wait before an unhandled outcome is offered to a policy again; it
/// doubles with each offer, up to [`LONGEST_WAIT_MS`].
const INBOX_RETRY_MS: i64 = 60_000;

/// The wait before the `asked`-th ask's successor.
fn backoff(first: i64, asked: u32) -> i64 {
    let doublings = asked.saturating_sub(1).min(16);
    first.saturating_mul(1 << doublings).min(LONGEST_WAIT_MS)
}

/// A payment outcome the gateway reports later (a webhook), applied once:
/// `true` if it settled the charge, `false` if the charge was settled already,
/// is unknown, or the answer is still pending.
pub(super) fn deliver(
    platform: &Platform,
    key: &str,
    answer: GatewayAnswer,
) -> Result<bool, HostError> {
    let Some(entry) = platform.store.outbox_entry(key)? else {
        return Ok(false);
    };
    let settlement = match answer {
        GatewayAnswer::Settled(settlement) => settlement,
        GatewayAnswer::Pending { reference } => {
            platform.mark_pending(entry, reference)?;
            return Ok(false);
        }
    };
    let first_at = entry.first_at().unwrap_or_else(|| platform.now());
    let settled = platform.settle(entry.request, first_at, settlement)?;
    let Some(reaction) = settled else {
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
        id: &crate::account::AccountId,
        work: impl FnOnce() -> Result<EventReport, HostError>,
    ) -> Result<EventReport, HostError> {
        let mut report = self.serialised(id, work)?;
        let keys = keys_of(&report);
        report.add(self.execute(keys)?);
        Ok(report)
    }

    /// Submit each key's charge, act on the answer, and submit in turn the
    /// charges the reactions requested.
    pub(super) fn execute(&self, mut keys: Vec<String>) -> Result<EventReport, HostError> {
        let mut report = EventReport::default();
        let mut next = 0;
        while next < keys.len() {
            let key = std::mem::take(&mut keys[next]);
            next += 1;
            let Some(entry) = self.store.outbox_entry(&key)? else {
                continue;
            };
            let reaction = self.submit(entry)?;
            keys.extend(keys_of(&reaction));
            report.add(reaction);
        }
        Ok(report)
    }

    /// Submit a charge of the outbox, or ask again about one submitted before,
    /// and act on the answer; the reaction to a settled charge is returned.
    pub(super) fn submit(&self, entry: OutboxEntry) -> Result<EventReport, HostError> {
        let now = self.now();
        let (first_at, asked, pending, reference) = match &entry.state {
            OutboxState::Queued => (now, 0, false, None),
            OutboxState::Submitted {
                first_at,
                asked,
                pending,
                reference,
                ..
            } => (*first_at, *asked, *pending, reference.clone()),
        };
        let asked = asked.saturating_add(1);
        let wait = if pending {
            PENDING_CHECK_MS
        } else {
            backoff(FIRST_WAIT_MS, asked)
        };
        // Written ahead: the store knows the charge was submitted before the
        // gateway does, so a crash in between is resolved by asking again.
        let submitted = OutboxState::Submitted {
            first_at,
            asked,
            pending,
            reference,
            next_check: now.saturating_add(wait),
        };
        if !self.set_state(&entry, submitted)? {
            return Ok(EventReport::default());
        }
        let request = &entry.request;
        let answer = self.gateway.submit(&GatewayCharge {
            key: &request.key,
            payer: &request.payer,
            card: &request.card,
            amount: request.amount,
            at: now,
            asked: asked - 1,
        });
        match answer {
            // Not known: asked again at the next check, with the same key.
            Err(_) => Ok(EventReport::default()),
            Ok(GatewayAnswer::Pending { reference }) => {
                if let Some(current) = self.store.outbox_entry(&entry.request.key)? {
                    self.mark_pending(current, reference)?;
                }
                Ok(EventReport::default())
            }
            Ok(GatewayAnswer::Settled(settlement)) => Ok(self
                .settle(entry.request, first_at, settlement)?
                .unwrap_or_default()),
        }
    }

    /// A charge the gateway accepted as pending: wait for its webhook, asking
    /// now and then.
    fn mark_pending(&self, entry: OutboxEntry, reference: Option<String>) -> Result<(), HostError> {
        let now = self.now();
        let (first_at, asked, known) = match &entry.state {
            OutboxState::Queued => (now, 0, None),
            OutboxState::Submitted {
                first_at,
                asked,
                reference,
                ..
            } => (*first_at, *asked, reference.clone()),
        };
        let state = OutboxState::Submitted {
            first_at,
            asked,
            pending: true,
            reference: reference.or(known),
            next_check: now.saturating_add(PENDING_CHECK_MS),
        };
        self.set_state(&entry, state)?;
        Ok(())
    }

    /// Record a charge's new state, made from the state it was read in: `false`
    /// if it left the outbox or moved on meanwhile (another node took it; that
    /// one submits it, so this one must not).
    fn set_state(&self, entry: &OutboxEntry, state: OutboxState) -> Result<bool, HostError> {
        match self.store.commit(Batch {
            submitted: vec![StateChange {
                key: entry.request.key.clone(),
                from: entry.state.clone(),
                to: state,
            }],
            ..Batch::default()
        }) {
            Ok(()) => Ok(true),
            Err(StoreError::NotPending(_)) => Ok(false),
            Err(other) => Err(other.into()),
        }
    }

    /// Settle a charge in one step: its record, its credit by purpose if it
    /// succeeded (H2) and the requesting account's policy's reaction commit
    /// together; if the policy faults, the outcome waits in the inbox. `None`
    /// if the charge was settled already (nothing happens twice).
    fn settle(
        &self,
        request: ChargeRequest,
        first_at: Timestamp,
        settlement: Settlement,
    ) -> Result<Option<EventReport>, HostError> {
        let requested_by = request.requested_by.clone();
        self.serialised(&requested_by, || {
            let now = self.now();
            let outcome = PaymentOutcome {
                key: request.policy_key.clone(),
                outcome: settlement.outcome,
                amount: request.amount,
                purpose: request.purpose.clone(),
                payer: request.payer.0.clone(),
                reference: settlement.reference.clone(),
                reason: settlement.reason.clone(),
            };
            let facts = Facts {
                records: Batch {
                    settled: vec![ChargeRecord {
                        at: first_at,
                        settled_at: now,
                        request: request.clone(),
                        outcome: settlement.outcome,
                        reference: settlement.reference.clone(),
                        reason: settlement.reason.clone(),
                    }],
                    ..Batch::default()
                },
                on_fault: Batch {
                    inbox: vec![InboxItem {
                        account: requested_by.clone(),
                        outcome: outcome.clone(),
                        due: now.saturating_add(INBOX_RETRY_MS),
                        attempts: 1,
                    }],
                    ..Batch::default()
                },
            };
            let paid = settlement.outcome == ChargeOutcome::Succeeded;
            let prepare = |ctx: &mut EventContext| {
                if paid {
                    credit(ctx, &request)?;
                }
                Ok(Event::PaymentOutcome(outcome.clone()))
            };
            Ok(match self.decide_with(&requested_by, prepare, facts)? {
                Committed::Decided(reaction) => Some(reaction),
                Committed::Rejected(_) | Committed::Faulted(_) => Some(EventReport::default()),
                Committed::AlreadyDone => None,
            })
        })
    }

    /// Offer an unhandled outcome to the account's policy again: handled, it
    /// leaves the inbox with the policy's reaction; faulted again, it waits
    /// longer (after repeated faults the tenant's policy is quarantined and the
    /// default policy handles it).
    pub(super) fn redeliver(&self, stored: StoredInbox) -> Result<EventReport, HostError> {
        let item = stored.item;
        let account = item.account.clone();
        let reaction = self.serialised(&account, || {
            let now = self.now();
            let facts = Facts {
                records: Batch {
                    inbox_done: vec![stored.id],
                    ..Batch::default()
                },
                on_fault: Batch {
                    inbox: vec![InboxItem {
                        due: now.saturating_add(backoff(INBOX_RETRY_MS, item.attempts + 1)),
                        attempts: item.attempts.saturating_add(1),
                        ..item.clone()
                    }],
                    ..Batch::default()
                },
            };
            let event = Event::PaymentOutcome(item.outcome.clone());
            match self.decide_with(&account, |_| Ok(event.clone()), facts)? {
                Committed::Decided(reaction) => Ok(reaction),
                _ => Ok(EventReport::default()),
            }
        })?;
        let mut report = self.execute(keys_of(&reaction))?;
        report.add(reaction);
        Ok(report)
    }
}

/// Credit a succeeded charge to its beneficiary by the purpose recorded at
/// request time (H2): the wallet for auto-recharge and top-up, the
/// sub-account's minutes for an allocation. The beneficiary is always an
/// account of the requesting event (the host checked it at request time).
fn credit(ctx: &mut EventContext, request: &ChargeRequest) -> Result<(), HostError> {
    let cause = Cause::Charge(request.key.clone());
    let credited = ctx.host_change(&request.beneficiary(), cause, |beneficiary| {
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
        Ok(())
    });
    credited.ok_or(HostError::Internal(
        "a charge's beneficiary is not an account of its event",
    ))?
}
