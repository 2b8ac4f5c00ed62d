//! The scheduler: as the clock moves on, the host's due work runs in time
//! order, each piece at its own due time: policies' wake-ups, charges to ask the
//! gateway about again, and outcomes to offer a policy again.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use recharge_policy_sdk::model::{Event, Timestamp};

use super::events::{Committed, Facts};
use super::{Clock, EventReport, Platform};
use crate::account::AccountId;
use crate::error::HostError;
use crate::policy::PolicyFault;
use crate::store::{Batch, OutboxEntry, StoreError, StoredInbox, StoredTimer, utc_day};

/// Wake-ups an account fired at one instant in this advance: a policy that keeps
/// re-arming wake-ups at or before "now" would otherwise hold the clock forever,
/// while a schedule that moves forward in time (a monthly allocation advanced a
/// century in one go) is never stopped.
#[derive(Default)]
struct AtOneInstant {
    due: Timestamp,
    count: u32,
}

/// The next piece of due work.
enum Due {
    Outbox(OutboxEntry),
    Inbox(StoredInbox),
    Timer(StoredTimer),
}

impl Due {
    fn at(&self) -> Timestamp {
        match self {
            Due::Outbox(entry) => entry.due(),
            Due::Inbox(stored) => stored.item.due,
            Due::Timer(stored) => stored.timer.due,
        }
    }
}

/// The work due first by `until`; on a tie, the outbox first (money owed
/// settles before policies wake), then the inbox, then timers.
fn next_due(platform: &Platform, until: Timestamp) -> Result<Option<Due>, HostError> {
    let candidates = [
        platform.store.next_outbox(until)?.map(Due::Outbox),
        platform.store.next_inbox(until)?.map(Due::Inbox),
        platform
            .store
            .next_timer(until, &platform.lease())?
            .map(Due::Timer),
    ];
    Ok(candidates
        .into_iter()
        .flatten()
        .enumerate()
        .min_by_key(|(order, due)| (due.at(), *order))
        .map(|(_, due)| due))
}

/// When the first piece of work due by `until` is due.
pub(super) fn next_due_at(
    platform: &Platform,
    until: Timestamp,
) -> Result<Option<Timestamp>, HostError> {
    Ok(next_due(platform, until)?.map(|due| due.at()))
}

pub(super) fn advance_to(platform: &Platform, at: Timestamp) -> Result<EventReport, HostError> {
    let mut report = EventReport::default();
    let mut fired: HashMap<AccountId, AtOneInstant> = HashMap::new();
    let limit = platform.guardrails.max_timers_per_account_per_advance;
    while let Some(due) = next_due(platform, at)? {
        if let Clock::Simulated(now) = &platform.clock {
            now.fetch_max(due.at(), Ordering::SeqCst);
        }
        let stored = match due {
            Due::Outbox(entry) => {
                report.add(platform.submit(entry)?);
                continue;
            }
            Due::Inbox(stored) => {
                report.add(platform.redeliver(stored)?);
                continue;
            }
            // Claimed before it fires: another node may have taken it
            // since (then it is not ours to fire), or an equally due one.
            Due::Timer(peeked) => match platform
                .store
                .claim_timer(peeked.timer.due, &platform.lease())?
            {
                Some(stored) => stored,
                None => continue,
            },
        };
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
            match platform.store.commit(Batch {
                fired: vec![stored.id],
                ..Batch::default()
            }) {
                Ok(()) => report.fired.push(stored.id),
                // Retired by another node meanwhile.
                Err(StoreError::NotPending(_)) => continue,
                Err(other) => return Err(other.into()),
            }
            if instant.count == limit + 1 {
                let selected = platform.tenants.select(&platform.account(&account)?);
                platform.report_fault(&selected, &account, &PolicyFault::Runaway(limit))?;
            }
            continue;
        }
        report.add(fire(platform, &account, stored)?);
    }
    if let Clock::Simulated(now) = &platform.clock {
        now.fetch_max(at, Ordering::SeqCst);
    }
    // Once a day, what is older than the retention window goes.
    let day = utc_day(platform.now());
    if platform.pruned_day.fetch_max(day, Ordering::SeqCst) < day {
        platform.apply_retention()?;
    }
    Ok(report)
}

/// Fire one timer: its firing and its event's effects commit in one batch, so
/// a crash in between fires it again rather than losing it. A fault (already
/// reported to the account) or a rejection of a wake-up has no one to answer
/// to: time goes on either way.
fn fire(
    platform: &Platform,
    account: &AccountId,
    stored: StoredTimer,
) -> Result<EventReport, HostError> {
    let event = Event::Timer(stored.timer.tag);
    let facts = Facts {
        records: Batch {
            fired: vec![stored.id],
            ..Batch::default()
        },
        ..Facts::default()
    };
    let id = stored.id;
    platform.with_outbox(account, || {
        let mut report = match platform.decide_with(account, |_| Ok(event.clone()), facts)? {
            Committed::Decided(report) => report,
            // Fired elsewhere meanwhile: not this node's to report.
            Committed::AlreadyDone => return Ok(EventReport::default()),
            Committed::Rejected(_) | Committed::Faulted(_) => EventReport::default(),
        };
        report.fired.push(id);
        Ok(report)
    })
}
