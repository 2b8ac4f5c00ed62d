//! The event runner: hand the policy its accounts, let it decide, check and
//! commit what it decided in one batch (H4), and answer for its faults (H5, H6).
//!
//! What the host itself records with an event (a rated call, a fired timer, a
//! settled charge and its credit, a handled inbox item) commits in the same
//! batch as the policy's decision, and commits even when the policy rejects the
//! event or faults: a step is never half done, and nothing the host knows is
//! lost to a policy's failure.

use std::sync::Arc;

use recharge_policy_sdk::Role;
use recharge_policy_sdk::model::{Answer, Event, PolicyError, QueryKind};

use super::{EventReport, Platform};
use crate::account::AccountId;
use crate::capabilities::{EventContext, EventSetup};
use crate::error::HostError;
use crate::policy::PolicyFault;
use crate::store::{Batch, Notification, StoreError};
use crate::tenants::Selected;

/// How often an event is re-run when its accounts changed under it.
const CONFLICT_RETRIES: usize = 10;

/// Run a read-change-commit of the host's own (no policy) again from a fresh
/// read when an account it changed was changed meanwhile (by another node).
pub(super) fn retry_on_conflict<R>(
    mut work: impl FnMut() -> Result<R, HostError>,
) -> Result<R, HostError> {
    let mut tries = 1;
    loop {
        match work() {
            Err(HostError::Store(StoreError::Conflict(_))) if tries < CONFLICT_RETRIES => {
                tries += 1
            }
            done => return done,
        }
    }
}

/// What the host records with an event, whatever the policy decides.
#[derive(Default)]
pub(super) struct Facts {
    /// Records committed with the event (a fired timer, a settled charge, a
    /// rated call id, a handled inbox item).
    pub records: Batch,
    /// Records committed only if the policy faults (the outcome it failed to
    /// handle, kept in the inbox to offer again).
    pub on_fault: Batch,
}

/// How an event ended once committed.
pub(super) enum Committed {
    /// The policy decided and its decision committed.
    Decided(EventReport),
    /// The host's records committed; the policy rejected the event.
    Rejected(PolicyError),
    /// The host's records committed; the policy faulted.
    Faulted(PolicyFault),
    /// A record could not commit: the step was done already (a charge settled
    /// by someone else).
    AlreadyDone,
}

impl Platform {
    /// The accounts handed to an event about `id`, and the policy deciding.
    pub(super) fn context(&self, id: &AccountId) -> Result<(Selected, EventContext), HostError> {
        self.catch_up()?;
        let subject = self.account(id)?;
        let parent = match &subject.parent {
            Some(parent) => Some(self.account(parent)?),
            None => None,
        };
        let selected = self.tenants.select(&subject);
        let ctx = EventContext::new(EventSetup {
            subject,
            parent,
            policy: selected.state_id.clone(),
            now: self.now(),
            rates: self.rates(),
            guardrails: Arc::clone(&self.guardrails),
            store: Arc::clone(&self.store),
        });
        Ok((selected, ctx))
    }

    /// Let the policy handle one event and commit what it did, atomically (H4).
    /// The caller holds the family lock.
    pub(super) fn decide(&self, id: &AccountId, event: &Event) -> Result<EventReport, HostError> {
        self.decide_with(id, |_| Ok(event.clone()), Facts::default())?
            .into_result()
    }

    /// Let the policy handle the event `prepare` makes, with the host's
    /// `facts`, and commit both in one batch. `prepare` first records the
    /// host's own changes to the event's accounts (a rated call, a credit);
    /// those and the facts commit even when the policy rejects the event or
    /// faults. The caller holds the family lock.
    pub(super) fn decide_with(
        &self,
        id: &AccountId,
        prepare: impl Fn(&mut EventContext) -> Result<Event, HostError>,
        facts: Facts,
    ) -> Result<Committed, HostError> {
        // What the host changed, kept whatever the policy makes of it: made
        // again on fresh accounts, only when the policy did not decide.
        let host_only = || -> Result<Batch, HostError> {
            let (_, mut fresh) = self.context(id)?;
            prepare(&mut fresh)?;
            let mut batch = fresh.into_batch();
            batch.extend(facts.records.clone());
            Ok(batch)
        };
        for _ in 0..CONFLICT_RETRIES {
            let (selected, mut ctx) = self.context(id)?;
            let event = prepare(&mut ctx)?;
            let verdict = selected.policy.handle(&event, &mut ctx);
            if let Some(failure) = ctx.host_failure() {
                return Err(HostError::Store(failure.clone()));
            }
            let (batch, committed) = match verdict {
                Ok(Ok(())) => {
                    let report = EventReport {
                        decisions: 1,
                        fuel: ctx.fuel_used,
                        charges: ctx.charges().to_vec(),
                        notices: ctx.notifications().to_vec(),
                        fired: Vec::new(),
                    };
                    let mut batch = ctx.into_batch();
                    batch.extend(facts.records.clone());
                    (batch, Committed::Decided(report))
                }
                Ok(Err(rejected)) => (host_only()?, Committed::Rejected(rejected)),
                Err(fault) => {
                    let mut batch = host_only()?;
                    batch.extend(facts.on_fault.clone());
                    batch
                        .notifications
                        .push(self.fault_notice(&selected, id, &fault));
                    (batch, Committed::Faulted(fault))
                }
            };
            // A policy's decision always commits (its accounts' versions are
            // checked); the host's records alone only when there are some.
            let decided = matches!(committed, Committed::Decided(_));
            let stored = if batch.is_empty() && !decided {
                Ok(())
            } else {
                self.store.commit(batch)
            };
            match stored {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) => continue,
                Err(StoreError::NotPending(_)) => return Ok(Committed::AlreadyDone),
                Err(other) => return Err(other.into()),
            }
            match &committed {
                Committed::Faulted(_) => self.count_fault(&selected)?,
                _ => self.count_success(&selected)?,
            }
            return Ok(committed);
        }
        Err(HostError::Store(StoreError::Conflict(id.clone())))
    }

    /// `actor`'s question about the account, answered by its policy. The caller
    /// holds the family lock.
    pub(super) fn ask(
        &self,
        actor: &AccountId,
        id: &AccountId,
        what: QueryKind,
    ) -> Result<Answer, HostError> {
        let (selected, mut ctx) = self.context(id)?;
        let verdict = selected.policy.query(actor.as_str(), what, &mut ctx);
        if let Some(failure) = ctx.host_failure() {
            return Err(HostError::Store(failure.clone()));
        }
        match verdict {
            Ok(answer) => {
                self.count_success(&selected)?;
                answer.map_err(HostError::Rejected)
            }
            Err(fault) => {
                let subject = ctx
                    .account(Role::Subject)
                    .map(|account| account.id.clone())
                    .ok_or(HostError::Internal("an event without a subject"))?;
                self.report_fault(&selected, &subject, &fault)?;
                Err(HostError::Fault(fault))
            }
        }
    }

    /// The `policy_fault` notice to the subject of a faulting event.
    fn fault_notice(
        &self,
        selected: &Selected,
        subject: &AccountId,
        fault: &PolicyFault,
    ) -> Notification {
        Notification {
            at: self.now(),
            account: subject.clone(),
            kind: "policy_fault".into(),
            message: format!("{} ({})", fault, selected.policy.name()),
        }
    }

    /// Tell the subject its policy faulted and count the fault (H6); for a fault
    /// outside an event (a query, a runaway chain of wake-ups).
    pub(super) fn report_fault(
        &self,
        selected: &Selected,
        subject: &AccountId,
        fault: &PolicyFault,
    ) -> Result<(), HostError> {
        self.store.commit(Batch {
            notifications: vec![self.fault_notice(selected, subject, fault)],
            ..Batch::default()
        })?;
        self.count_fault(selected)
    }

    /// A tenant's policy ended a call without a fault: its run of faults
    /// starts again (written to the shared configuration only after faults).
    fn count_success(&self, selected: &Selected) -> Result<(), HostError> {
        let Some(tenant) = &selected.tenant else {
            return Ok(());
        };
        match tenant.sha256() {
            Some(sha256) if tenant.faults() > 0 => {
                self.record_shared_recovery(tenant.owner(), sha256)
            }
            Some(_) => Ok(()),
            None => {
                tenant.record_success();
                Ok(())
            }
        }
    }

    /// Count a committed fault of a tenant's policy; after repeated ones,
    /// quarantine it and tell every account it governed (H6).
    fn count_fault(&self, selected: &Selected) -> Result<(), HostError> {
        let Some(tenant) = &selected.tenant else {
            return Ok(());
        };
        let quarantined = match tenant.sha256() {
            Some(sha256) => self.record_shared_fault(tenant.owner(), sha256)?,
            None => tenant.record_fault(),
        };
        if !quarantined {
            return Ok(());
        }
        let now = self.now();
        let mut notifications = Vec::new();
        for account in self.store.account_ids()? {
            let Some(record) = self.store.account(&account)? else {
                continue;
            };
            if &record.id == tenant.owner() || record.parent.as_ref() == Some(tenant.owner()) {
                notifications.push(Notification {
                    at: now,
                    account: record.id.clone(),
                    kind: "policy_quarantined".into(),
                    message: format!(
                        "policy {} quarantined after repeated faults; the default policy applies",
                        selected.policy.name()
                    ),
                });
            }
        }
        self.store.commit(Batch {
            notifications,
            ..Batch::default()
        })?;
        Ok(())
    }
}

impl Committed {
    /// The event's report, or why the policy did not decide.
    pub(super) fn into_result(self) -> Result<EventReport, HostError> {
        match self {
            Committed::Decided(report) => Ok(report),
            Committed::Rejected(rejected) => Err(HostError::Rejected(rejected)),
            Committed::Faulted(fault) => Err(HostError::Fault(fault)),
            Committed::AlreadyDone => Ok(EventReport::default()),
        }
    }
}
