//! The scheduler: timers fire in time order, each at its own due time, as the
//! clock moves on.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use recharge_policy_sdk::model::{Event, Timestamp};

use super::{Clock, EventReport, Platform};
use crate::account::AccountId;
use crate::error::HostError;
use crate::policy::PolicyFault;
use crate::store::Batch;

/// Wake-ups an account fired at one instant in this advance: a policy that keeps
/// re-arming wake-ups at or before "now" would otherwise hold the clock forever,
/// while a schedule that moves forward in time (a monthly allocation advanced a
/// century in one go) is never stopped.
#[derive(Default)]
struct AtOneInstant {
    due: Timestamp,
    count: u32,
}

pub(super) fn advance_to(platform: &Platform, at: Timestamp) -> Result<EventReport, HostError> {
    let mut report = EventReport::default();
    let mut fired: HashMap<AccountId, AtOneInstant> = HashMap::new();
    let limit = platform.guardrails.max_timers_per_account_per_advance;
    while let Some(stored) = platform.store.next_timer(at)? {
        if let Clock::Simulated(now) = &platform.clock {
            now.fetch_max(stored.timer.due, Ordering::SeqCst);
        }
        platform.store.commit(Batch {
            fired: vec![stored.id],
            ..Batch::default()
        })?;
        let account = stored.timer.account.clone();
        let instant = fired.entry(account.clone()).or_default();
        if stored.timer.due > instant.due {
            *instant = AtOneInstant {
                due: stored.timer.due,
                count: 0,
            };
        }
        instant.count += 1;
        if instant.count > limit {
            // A runaway chain: fault once, then let its wake-ups at this
            // instant lapse.
            if instant.count == limit + 1 {
                let selected = platform.tenants.select(&platform.account(&account)?);
                platform.report_fault(&selected, &account, &PolicyFault::Runaway(limit))?;
            }
            continue;
        }
        match platform.with_outbox(&account, || {
            platform.decide(&account, &Event::Timer(stored.timer.tag))
        }) {
            Ok(done) => report.add(done),
            // A fault is already reported to the account; a rejection of a
            // wake-up has no one to answer to. Time goes on either way.
            Err(HostError::Fault(_) | HostError::Rejected(_)) => {}
            Err(other) => return Err(other),
        }
    }
    if let Clock::Simulated(now) = &platform.clock {
        now.fetch_max(at, Ordering::SeqCst);
    }
    Ok(report)
}
