//! The event runner: hand the policy its accounts, let it decide, check and
//! commit what it decided in one batch (H4), and answer for its faults (H5, H6).

use std::sync::Arc;

use recharge_policy_sdk::Role;
use recharge_policy_sdk::model::{Answer, Event, MinuteType, PolicyError, QueryKind, Usage};

use super::{EventReport, Platform};
use crate::account::AccountId;
use crate::capabilities::{EventContext, EventSetup};
use crate::error::HostError;
use crate::policy::PolicyFault;
use crate::rating::rate_call;
use crate::store::{Batch, Notification, StoreError};
use crate::tenants::Selected;

/// How often an event is re-run when its accounts changed under it.
const CONFLICT_RETRIES: usize = 3;

impl Platform {
    /// The accounts handed to an event about `id`, and the policy deciding.
    pub(super) fn context(&self, id: &AccountId) -> Result<(Selected, EventContext), HostError> {
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
        for _ in 0..CONFLICT_RETRIES {
            let (selected, mut ctx) = self.context(id)?;
            let verdict = selected.policy.handle(event, &mut ctx);
            self.settle_verdict(&selected, &ctx, verdict)?;
            if let Some(committed) = self.commit(ctx, Vec::new())? {
                return Ok(committed);
            }
        }
        Err(HostError::Store(StoreError::Conflict(id.clone())))
    }

    /// Rate a call and let the policy react, in one commit; the call is recorded
    /// even if the policy rejects it or faults. The caller holds the family lock.
    pub(super) fn rate_and_decide(
        &self,
        id: &AccountId,
        call: &str,
        seconds: i64,
        minute_type: MinuteType,
    ) -> Result<EventReport, HostError> {
        if self.store.call_rated(id, call)? {
            return Ok(EventReport::default());
        }
        let rates = self.rates();
        let rated_call = || vec![(id.clone(), call.to_owned())];
        for _ in 0..CONFLICT_RETRIES {
            let (selected, mut ctx) = self.context(id)?;
            let rated = rate_call(ctx.subject_mut(), seconds, minute_type, &rates)?;
            let usage = Usage {
                seconds,
                minute_type,
                wallet_cost: rated.wallet_cost,
            };
            let verdict = selected.policy.handle(&Event::Usage(usage), &mut ctx);
            if let Err(refused) = self.settle_verdict(&selected, &ctx, verdict) {
                let mut account = self.account(id)?;
                rate_call(&mut account, seconds, minute_type, &rates)?;
                self.store.commit(Batch {
                    updated: vec![account],
                    rated_calls: rated_call(),
                    ..Batch::default()
                })?;
                return Err(refused);
            }
            if let Some(committed) = self.commit(ctx, rated_call())? {
                return Ok(committed);
            }
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
        self.settle_verdict(&selected, &ctx, verdict)
    }

    /// Commit what a policy decided (and the calls the host rated for it); `None`
    /// if its accounts changed meanwhile and the event must run again.
    fn commit(
        &self,
        ctx: EventContext,
        rated_calls: Vec<(AccountId, String)>,
    ) -> Result<Option<EventReport>, HostError> {
        let report = EventReport {
            decisions: 1,
            fuel: ctx.fuel_used,
            charges: ctx.charges().to_vec(),
            notices: ctx.notifications().to_vec(),
        };
        let mut batch = ctx.into_batch();
        batch.rated_calls = rated_calls;
        match self.store.commit(batch) {
            Ok(()) => Ok(Some(report)),
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }

    /// Turn a policy's verdict into a result, reporting faults (H5) and
    /// quarantining a tenant after repeated ones (H6). A store that failed while
    /// the policy ran makes the event the host's failure, whatever the policy
    /// made of it: never a fault, never counted towards quarantine.
    fn settle_verdict<T>(
        &self,
        selected: &Selected,
        ctx: &EventContext,
        verdict: Result<Result<T, PolicyError>, PolicyFault>,
    ) -> Result<T, HostError> {
        if let Some(failure) = ctx.host_failure() {
            return Err(HostError::Store(failure.clone()));
        }
        match verdict {
            Ok(answer) => {
                if let Some(tenant) = &selected.tenant {
                    tenant.record_success();
                }
                answer.map_err(HostError::Rejected)
            }
            Err(fault) => {
                let subject = ctx
                    .account(Role::Subject)
                    .map(|account| account.id.clone())
                    .ok_or(HostError::Internal("an event without a subject"))?;
                self.report_fault(selected, &subject, &fault)?;
                Err(HostError::Fault(fault))
            }
        }
    }

    /// Tell the subject its policy faulted; quarantine a tenant's policy after
    /// repeated faults and tell every account it governed.
    pub(super) fn report_fault(
        &self,
        selected: &Selected,
        subject: &AccountId,
        fault: &PolicyFault,
    ) -> Result<(), HostError> {
        let now = self.now();
        let mut notifications = vec![Notification {
            at: now,
            account: subject.clone(),
            kind: "policy_fault".into(),
            message: format!("{} ({})", fault, selected.policy.name()),
        }];
        if let Some(tenant) = &selected.tenant
            && tenant.record_fault()
        {
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
        }
        self.store.commit(Batch {
            notifications,
            ..Batch::default()
        })?;
        Ok(())
    }
}
