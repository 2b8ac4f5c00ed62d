//! Storage: a trait every backend implements, and the in-memory backend.
//!
//! Each event ends in one [`Batch`] that the store applies entirely or not at all
//! (guardrail H4): account records, charge requests for the outbox, timers and
//! notices together.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use recharge_policy_sdk::model::{ChargeOutcome, PaymentOutcome, Purpose, Timestamp};
use rust_decimal::Decimal;
use thiserror::Error;

use crate::account::{Account, AccountId};
use crate::ledger::LedgerEntry;

/// A charge a policy asked for, waiting in the outbox until executed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChargeRequest {
    /// The idempotency key the gateway sees: the host's, derived from the payer,
    /// the policy and the policy's own key (H3), so no policy can collide with,
    /// squat or replay another account's charges.
    pub key: String,
    /// The key the policy gave; the charge's outcome carries it back.
    pub policy_key: String,
    /// The paying account.
    pub payer: AccountId,
    /// The payer's saved card.
    pub card: String,
    /// The amount, whole cents.
    pub amount: Decimal,
    /// What it pays for; the host credits by it.
    pub purpose: Purpose,
    /// The account whose event asked for it; its policy gets the outcome.
    pub requested_by: AccountId,
    /// When it was asked for.
    pub requested_at: Timestamp,
}

impl ChargeRequest {
    /// The account credited when the charge succeeds.
    pub fn beneficiary(&self) -> AccountId {
        match &self.purpose {
            Purpose::Allocation(purchase) => AccountId(purchase.beneficiary.clone()),
            Purpose::AutoRecharge | Purpose::TopUp => self.payer.clone(),
        }
    }
}

/// Where a charge stands in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OutboxState {
    /// Committed, not submitted yet.
    Queued,
    /// Submitted to the gateway, whose final answer is not known yet: lost on
    /// the way (asked again with the same key at `next_check`), or pending (a
    /// webhook will tell; asked again at `next_check` all the same).
    Submitted {
        /// When it was first submitted: the time of the attempt.
        first_at: Timestamp,
        /// How many times it was submitted or asked about.
        asked: u32,
        /// Whether the gateway accepted it as pending.
        pending: bool,
        /// The gateway's own id of the charge, once it gave one.
        reference: Option<String>,
        /// When to ask the gateway again.
        next_check: Timestamp,
    },
}

/// A charge in the outbox and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutboxEntry {
    /// The charge.
    pub request: ChargeRequest,
    /// Where it stands.
    pub state: OutboxState,
}

impl OutboxEntry {
    /// When the outbox should next act on it: at once when queued, at the next
    /// check when submitted.
    pub fn due(&self) -> Timestamp {
        match &self.state {
            OutboxState::Queued => self.request.requested_at,
            OutboxState::Submitted { next_check, .. } => *next_check,
        }
    }

    /// When it was first submitted to the gateway, if it was.
    pub fn first_at(&self) -> Option<Timestamp> {
        match &self.state {
            OutboxState::Queued => None,
            OutboxState::Submitted { first_at, .. } => Some(*first_at),
        }
    }
}

/// One charge attempt, settled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChargeRecord {
    /// When it was attempted (first submitted to the gateway).
    pub at: Timestamp,
    /// When its final outcome was known.
    pub settled_at: Timestamp,
    /// The request it executed.
    pub request: ChargeRequest,
    /// How it ended.
    pub outcome: ChargeOutcome,
    /// The gateway's own id of the charge, when it gave one.
    pub reference: Option<String>,
    /// The gateway's reason for a decline or failure, when it gave one.
    pub reason: Option<String>,
}

/// A settled charge's outcome that its policy has not handled yet (it faulted):
/// kept in the store and offered again at `due` until a policy handles it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InboxItem {
    /// The account whose policy must hear of it.
    pub account: AccountId,
    /// The outcome, as the policy's event.
    pub outcome: PaymentOutcome,
    /// When to offer it again.
    pub due: Timestamp,
    /// How many times it was offered.
    pub attempts: u32,
}

/// An inbox item as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInbox {
    /// Unique, increasing with insertion.
    pub id: u64,
    /// The item.
    pub item: InboxItem,
}

/// A notice delivered to an account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Notification {
    /// When it was sent.
    pub at: Timestamp,
    /// The addressee.
    pub account: AccountId,
    /// Its kind (`recharge_succeeded`, `policy_fault`, ...).
    pub kind: String,
    /// A human-readable message.
    pub message: String,
}

/// A change of a charge's state in the outbox, made only if the charge still
/// stands as it was read: two nodes that read it queued cannot both submit it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// The charge's key.
    pub key: String,
    /// Its state as read.
    pub from: OutboxState,
    /// Its new state.
    pub to: OutboxState,
}

/// A claim on due work: who holds it, and until when, in wall-clock
/// milliseconds (leases expire in real time, whatever clock the platform
/// runs on). A holder may take back its own leases at once: a node restarted
/// under its name resumes its work without waiting for them to expire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The node claiming.
    pub holder: String,
    /// The wall-clock time now.
    pub now: i64,
    /// When the claim lapses unless the work is done.
    pub until: i64,
}

impl Lease {
    /// Whether work leased to `holder` until `until` is free for this claim.
    pub fn may_take(&self, holder: Option<&str>, until: i64) -> bool {
        match holder {
            None => true,
            Some(holder) => holder == self.holder || until < self.now,
        }
    }
}

/// A wake-up a policy asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    /// When it is due.
    pub due: Timestamp,
    /// The account it wakes.
    pub account: AccountId,
    /// The policy's tag.
    pub tag: u64,
}

/// A timer as stored, with its place in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTimer {
    /// Unique, increasing with insertion: ties on `due` fire in this order.
    pub id: u64,
    /// The timer.
    pub timer: Timer,
}

/// A call rated for an account, and when: its id is kept for the retention
/// window, inside which the same call id rates nothing again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatedCall {
    /// The account the call was rated for.
    pub account: AccountId,
    /// The call's id.
    pub call: String,
    /// When it was rated.
    pub at: Timestamp,
}

/// What [`Store::prune`] let go of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Rated call ids forgotten.
    pub rated_calls: u64,
    /// Idempotency keys forgotten.
    pub used_keys: u64,
    /// Payers' auto-recharge counts of past days forgotten.
    pub auto_recharge_days: u64,
}

/// The response kept under an `Idempotency-Key` of the HTTP service, replayed
/// to a retry of the same request.
///
/// A key is first *reserved*, kept with [`KeptResponse::IN_PROGRESS`] as its
/// status before the request runs, so that of two requests with one key only
/// the one whose reservation landed first runs at all; it is then *finished*
/// with the response ([`Store::finish_response`]), or *released*
/// ([`Store::release_response`]) when the host failed and a retry may run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptResponse {
    /// The key the client sent.
    pub key: String,
    /// SHA-256 (hex) of the request's method, path and body: a retry must
    /// match it.
    pub fingerprint: String,
    /// The response's HTTP status, or [`KeptResponse::IN_PROGRESS`].
    pub status: u16,
    /// The response's body.
    pub body: String,
    /// When it was kept (milliseconds since the epoch); pruned by it.
    pub at: Timestamp,
}

impl KeptResponse {
    /// The status of a reservation whose request is still running (or was
    /// cut short by a crash: its outcome is unknown).
    pub const IN_PROGRESS: u16 = 0;

    /// Whether the request kept under the key is still running.
    pub fn in_progress(&self) -> bool {
        self.status == Self::IN_PROGRESS
    }
}

/// Everything one event changes, applied atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Accounts to create; each must not exist yet.
    pub created: Vec<Account>,
    /// Changed accounts; each must still be at the version it was read at.
    pub updated: Vec<Account>,
    /// New charge requests for the outbox.
    pub charges: Vec<ChargeRequest>,
    /// Charges settled, leaving the outbox.
    pub settled: Vec<ChargeRecord>,
    /// New states of charges still in the outbox (submitted, pending), each
    /// made only from the state read.
    pub submitted: Vec<StateChange>,
    /// Outcomes a policy did not handle, to offer again.
    pub inbox: Vec<InboxItem>,
    /// Inbox items handled (or replaced by a new attempt).
    pub inbox_done: Vec<u64>,
    /// New timers; each replaces a pending timer of the same account and tag.
    pub timers: Vec<Timer>,
    /// Timers that fired.
    pub fired: Vec<u64>,
    /// Notices to deliver.
    pub notifications: Vec<Notification>,
    /// Calls rated; each may be rated once within the retention window.
    pub rated_calls: Vec<RatedCall>,
    /// The ledger entries of the host's changes to money and minutes.
    pub ledger: Vec<LedgerEntry>,
}

impl Batch {
    /// Whether the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Batch::default()
    }

    /// Add everything `other` changes to this batch.
    pub fn extend(&mut self, other: Batch) {
        self.created.extend(other.created);
        self.updated.extend(other.updated);
        self.charges.extend(other.charges);
        self.settled.extend(other.settled);
        self.submitted.extend(other.submitted);
        self.inbox.extend(other.inbox);
        self.inbox_done.extend(other.inbox_done);
        self.timers.extend(other.timers);
        self.fired.extend(other.fired);
        self.notifications.extend(other.notifications);
        self.rated_calls.extend(other.rated_calls);
        self.ledger.extend(other.ledger);
    }
}

/// Why the store refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An account changed since it was read; the event should be run again.
    #[error("account {0} changed concurrently")]
    Conflict(AccountId),
    /// An account to create exists already.
    #[error("account {0} already exists")]
    Exists(AccountId),
    /// An idempotency key is already in use.
    #[error("idempotency key {0} already used")]
    DuplicateKey(String),
    /// A call was already rated for this account.
    #[error("call {1} of {0} already rated")]
    AlreadyRated(AccountId, String),
    /// A charge to settle or move on is not in the outbox, or no longer in the
    /// state it was read in; or a timer or inbox item to retire is gone: the
    /// work was done already (by another node, say).
    #[error("{0} is not pending")]
    NotPending(String),
    /// A journal stream has entries after the one the writer read: catch up
    /// and try again.
    #[error("journal {0} moved on")]
    Behind(String),
    /// The backend failed.
    #[error("storage failed: {0}")]
    Backend(String),
}

/// A storage backend. Implementations must apply a [`Batch`] atomically.
pub trait Store: Send + Sync {
    /// One account, if it exists.
    fn account(&self, id: &AccountId) -> Result<Option<Account>, StoreError>;
    /// Every account id, in order.
    fn account_ids(&self) -> Result<Vec<AccountId>, StoreError>;
    /// Up to `limit` account ids after `after` (from the first when `None`),
    /// in the order of [`account_ids`](Self::account_ids) (byte order): the
    /// last id of a page is the cursor of the next.
    fn account_ids_after(
        &self,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<AccountId>, StoreError>;
    /// Apply a batch entirely or not at all.
    fn commit(&self, batch: Batch) -> Result<(), StoreError>;
    /// Whether an idempotency key was used (and not pruned since).
    fn key_used(&self, key: &str) -> Result<bool, StoreError>;
    /// Whether this call id was already rated for the account (and not
    /// pruned since).
    fn call_rated(&self, account: &AccountId, call: &str) -> Result<bool, StoreError>;
    /// How many auto-recharge charges the payer requested on this UTC day
    /// (days since the epoch).
    fn auto_recharges_on(&self, payer: &AccountId, day: i64) -> Result<u32, StoreError>;
    /// The charges in the outbox and where they stand, oldest first.
    fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError>;
    /// One charge in the outbox.
    fn outbox_entry(&self, key: &str) -> Result<Option<OutboxEntry>, StoreError>;
    /// The outbox entry due first, if it is due by `until`.
    fn next_outbox(&self, until: Timestamp) -> Result<Option<OutboxEntry>, StoreError>;
    /// The charges waiting in the outbox, oldest first.
    fn pending_charges(&self) -> Result<Vec<ChargeRequest>, StoreError> {
        Ok(self
            .outbox()?
            .into_iter()
            .map(|entry| entry.request)
            .collect())
    }
    /// Every outcome waiting in the inbox, oldest first.
    fn inbox(&self) -> Result<Vec<StoredInbox>, StoreError>;
    /// The inbox item due first, if it is due by `until`.
    fn next_inbox(&self, until: Timestamp) -> Result<Option<StoredInbox>, StoreError>;
    /// How many wake-ups are pending for the account.
    fn pending_timers(&self, account: &AccountId) -> Result<usize, StoreError>;
    /// Whether a wake-up with this tag is pending for the account.
    fn timer_pending(&self, account: &AccountId, tag: u64) -> Result<bool, StoreError>;
    /// The earliest timer due at or before `until` that no live lease of
    /// another holder keeps.
    fn next_timer(
        &self,
        until: Timestamp,
        lease: &Lease,
    ) -> Result<Option<StoredTimer>, StoreError>;
    /// Claim the earliest timer due at or before `until` that `lease` may take,
    /// leasing it: no other node fires it while the lease lives, and its
    /// firing commits with the event it wakes (retiring it).
    fn claim_timer(
        &self,
        until: Timestamp,
        lease: &Lease,
    ) -> Result<Option<StoredTimer>, StoreError>;
    /// The entries of a journal stream after the `after`-th, with their
    /// numbers (from 1, in order).
    fn journal(&self, stream: &str, after: u64) -> Result<Vec<(u64, String)>, StoreError>;
    /// Append entries to a journal stream that has exactly `after` entries, as
    /// one step; [`StoreError::Behind`] if it has more.
    fn append(&self, stream: &str, after: u64, entries: &[String]) -> Result<(), StoreError>;
    /// Keep a policy component under its SHA-256 (hex); keeping it again is a
    /// no-op.
    fn put_component(&self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError>;
    /// A component kept under this SHA-256 (hex).
    fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every settled charge, in order.
    fn charges(&self) -> Result<Vec<ChargeRecord>, StoreError>;
    /// Up to `limit` settled charges after the one numbered `after` (from the
    /// first when 0), in order, each with its number: increasing, in the order
    /// they committed, the last of a page the cursor of the next.
    fn charges_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, ChargeRecord)>, StoreError>;
    /// Every notice, in order.
    fn notifications(&self) -> Result<Vec<Notification>, StoreError>;
    /// Up to `limit` notices after the one numbered `after`, numbered as
    /// [`charges_after`](Self::charges_after) numbers charges: a delivery
    /// cursor.
    fn notifications_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Notification)>, StoreError>;
    /// Every ledger entry, in order.
    fn ledger(&self) -> Result<Vec<LedgerEntry>, StoreError>;
    /// Forget what is kept only for a window: call ids rated and idempotency
    /// keys used before `before` (but not the key of a charge still in the
    /// outbox), and the auto-recharge counts of days before `before`'s UTC day.
    fn prune(&self, before: Timestamp) -> Result<Pruned, StoreError>;
    /// The response kept under an idempotency key, finished or reserved.
    fn idempotent(&self, key: &str) -> Result<Option<KeptResponse>, StoreError>;
    /// Keep `response` under its key only if nothing is kept under it yet:
    /// `false` if another request kept one first (read and replay that one).
    /// A reservation is a response whose status is
    /// [`KeptResponse::IN_PROGRESS`].
    fn keep_response(&self, response: KeptResponse) -> Result<bool, StoreError>;
    /// Replace the reservation of `response.key` (with the same fingerprint)
    /// by the response; [`StoreError::NotPending`] if no such reservation is
    /// kept.
    fn finish_response(&self, response: KeptResponse) -> Result<(), StoreError>;
    /// Forget the reservation of `key`, if it is one (a finished response
    /// stays): the request failed in the host and a retry may run it.
    fn release_response(&self, key: &str) -> Result<(), StoreError>;
    /// Forget the responses kept before `before`; how many.
    fn prune_responses(&self, before: Timestamp) -> Result<u64, StoreError>;
}

/// The days since the epoch of a timestamp (UTC calendar day).
pub fn utc_day(at: Timestamp) -> i64 {
    at.div_euclid(86_400_000)
}

#[derive(Debug, Default)]
struct Tables {
    accounts: HashMap<AccountId, Account>,
    account_order: BTreeSet<AccountId>,
    /// Each key with the time of the charge that used it.
    used_keys: HashMap<String, Timestamp>,
    /// Each account's rated call ids with the time they were rated.
    rated_calls: HashMap<AccountId, HashMap<String, Timestamp>>,
    outbox: Vec<OutboxEntry>,
    inbox: BTreeMap<u64, InboxItem>,
    next_inbox_id: u64,
    charges: Vec<ChargeRecord>,
    notifications: Vec<Notification>,
    ledger: Vec<LedgerEntry>,
    timers: BTreeMap<(Timestamp, u64), Timer>,
    timer_due: HashMap<u64, Timestamp>,
    timers_pending: HashMap<AccountId, usize>,
    timer_by_tag: HashMap<(AccountId, u64), u64>,
    timer_leases: HashMap<u64, (String, i64)>,
    next_timer_id: u64,
    journals: HashMap<String, Vec<String>>,
    components: HashMap<String, Vec<u8>>,
    auto_recharges: HashMap<(AccountId, i64), u32>,
    responses: HashMap<String, KeptResponse>,
}

impl Tables {
    fn remove_timer(&mut self, id: u64) {
        let Some(due) = self.timer_due.remove(&id) else {
            return;
        };
        self.timer_leases.remove(&id);
        if let Some(timer) = self.timers.remove(&(due, id)) {
            if let Some(pending) = self.timers_pending.get_mut(&timer.account) {
                *pending = pending.saturating_sub(1);
            }
            self.timer_by_tag.remove(&(timer.account, timer.tag));
        }
    }

    fn check(&self, batch: &Batch) -> Result<(), StoreError> {
        for account in &batch.created {
            if self.accounts.contains_key(&account.id) {
                return Err(StoreError::Exists(account.id.clone()));
            }
        }
        for account in &batch.updated {
            match self.accounts.get(&account.id) {
                Some(stored) if stored.version == account.version => {}
                _ => return Err(StoreError::Conflict(account.id.clone())),
            }
        }
        let mut keys = HashSet::new();
        for charge in &batch.charges {
            if self.used_keys.contains_key(&charge.key) || !keys.insert(&charge.key) {
                return Err(StoreError::DuplicateKey(charge.key.clone()));
            }
        }
        for key in batch.settled.iter().map(|record| &record.request.key) {
            if !self.outbox.iter().any(|entry| &entry.request.key == key) {
                return Err(StoreError::NotPending(key.clone()));
            }
        }
        for change in &batch.submitted {
            let stands = self
                .outbox
                .iter()
                .any(|entry| entry.request.key == change.key && entry.state == change.from);
            if !stands {
                return Err(StoreError::NotPending(change.key.clone()));
            }
        }
        for id in &batch.fired {
            if !self.timer_due.contains_key(id) {
                return Err(StoreError::NotPending(format!("timer {id}")));
            }
        }
        for id in &batch.inbox_done {
            if !self.inbox.contains_key(id) {
                return Err(StoreError::NotPending(format!("inbox item {id}")));
            }
        }
        Ok(())
    }

    fn apply(&mut self, batch: Batch) {
        for account in batch.created {
            self.account_order.insert(account.id.clone());
            self.accounts.insert(account.id.clone(), account);
        }
        for mut account in batch.updated {
            account.version += 1;
            if let Some(stored) = self.accounts.get_mut(&account.id) {
                *stored = account;
            }
        }
        for charge in batch.charges {
            self.used_keys
                .insert(charge.key.clone(), charge.requested_at);
            if charge.purpose == Purpose::AutoRecharge {
                *self
                    .auto_recharges
                    .entry((charge.payer.clone(), utc_day(charge.requested_at)))
                    .or_default() += 1;
            }
            self.outbox.push(OutboxEntry {
                request: charge,
                state: OutboxState::Queued,
            });
        }
        for change in batch.submitted {
            if let Some(entry) = self
                .outbox
                .iter_mut()
                .find(|entry| entry.request.key == change.key)
            {
                entry.state = change.to;
            }
        }
        for record in batch.settled {
            self.outbox
                .retain(|entry| entry.request.key != record.request.key);
            self.charges.push(record);
        }
        for id in batch.inbox_done {
            self.inbox.remove(&id);
        }
        for item in batch.inbox {
            self.inbox.insert(self.next_inbox_id, item);
            self.next_inbox_id += 1;
        }
        for id in batch.fired {
            self.remove_timer(id);
        }
        for timer in batch.timers {
            if let Some(replaced) = self
                .timer_by_tag
                .get(&(timer.account.clone(), timer.tag))
                .copied()
            {
                self.remove_timer(replaced);
            }
            let id = self.next_timer_id;
            self.next_timer_id += 1;
            self.timer_due.insert(id, timer.due);
            *self
                .timers_pending
                .entry(timer.account.clone())
                .or_default() += 1;
            self.timer_by_tag
                .insert((timer.account.clone(), timer.tag), id);
            self.timers.insert((timer.due, id), timer);
        }
        self.notifications.extend(batch.notifications);
        self.ledger.extend(batch.ledger);
        for rated in batch.rated_calls {
            self.rated_calls
                .entry(rated.account)
                .or_default()
                .entry(rated.call)
                .or_insert(rated.at);
        }
    }

    /// The earliest timer due by `until` that `lease` may take.
    fn first_free_timer(&self, until: Timestamp, lease: &Lease) -> Option<StoredTimer> {
        self.timers
            .iter()
            .take_while(|((due, _), _)| *due <= until)
            .find(|((_, id), _)| {
                let held = self.timer_leases.get(id);
                lease.may_take(
                    held.map(|(holder, _)| holder.as_str()),
                    held.map_or(0, |h| h.1),
                )
            })
            .map(|((_, id), timer)| StoredTimer {
                id: *id,
                timer: timer.clone(),
            })
    }

    fn is_rated(&self, account: &AccountId, call: &str) -> bool {
        self.rated_calls
            .get(account)
            .is_some_and(|calls| calls.contains_key(call))
    }

    fn prune(&mut self, before: Timestamp) -> Pruned {
        let mut pruned = Pruned::default();
        for calls in self.rated_calls.values_mut() {
            let kept = calls.len();
            calls.retain(|_, at| *at >= before);
            pruned.rated_calls += (kept - calls.len()) as u64;
        }
        self.rated_calls.retain(|_, calls| !calls.is_empty());
        let queued: HashSet<&str> = self
            .outbox
            .iter()
            .map(|entry| entry.request.key.as_str())
            .collect();
        let kept = self.used_keys.len();
        self.used_keys
            .retain(|key, at| *at >= before || queued.contains(key.as_str()));
        pruned.used_keys = (kept - self.used_keys.len()) as u64;
        let kept = self.auto_recharges.len();
        let day = utc_day(before);
        self.auto_recharges.retain(|(_, on), _| *on >= day);
        pruned.auto_recharge_days = (kept - self.auto_recharges.len()) as u64;
        pruned
    }
}

/// Up to `limit` of `rows` after the `after`-th, numbered from 1.
fn page<T: Clone>(rows: &[T], after: u64, limit: usize) -> Vec<(u64, T)> {
    let start = usize::try_from(after).unwrap_or(usize::MAX);
    rows.iter()
        .enumerate()
        .skip(start)
        .take(limit)
        .map(|(index, row)| (index as u64 + 1, row.clone()))
        .collect()
}

/// The in-memory store: every table behind one lock, so a batch is trivially atomic.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn tables(&self) -> Result<std::sync::MutexGuard<'_, Tables>, StoreError> {
        self.tables
            .lock()
            .map_err(|_| StoreError::Backend("store lock poisoned".into()))
    }
}

impl Store for MemoryStore {
    fn account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        Ok(self.tables()?.accounts.get(id).cloned())
    }

    fn account_ids(&self) -> Result<Vec<AccountId>, StoreError> {
        Ok(self.tables()?.account_order.iter().cloned().collect())
    }

    fn account_ids_after(
        &self,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<AccountId>, StoreError> {
        use std::ops::Bound::{Excluded, Unbounded};
        let tables = self.tables()?;
        let from = after.map_or(Unbounded, Excluded);
        Ok(tables
            .account_order
            .range::<AccountId, _>((from, Unbounded))
            .take(limit)
            .cloned()
            .collect())
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let mut tables = self.tables()?;
        tables.check(&batch)?;
        tables.apply(batch);
        Ok(())
    }

    fn key_used(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.tables()?.used_keys.contains_key(key))
    }

    fn call_rated(&self, account: &AccountId, call: &str) -> Result<bool, StoreError> {
        Ok(self.tables()?.is_rated(account, call))
    }

    fn auto_recharges_on(&self, payer: &AccountId, day: i64) -> Result<u32, StoreError> {
        Ok(self
            .tables()?
            .auto_recharges
            .get(&(payer.clone(), day))
            .copied()
            .unwrap_or(0))
    }

    fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        Ok(self.tables()?.outbox.clone())
    }

    fn outbox_entry(&self, key: &str) -> Result<Option<OutboxEntry>, StoreError> {
        let tables = self.tables()?;
        Ok(tables
            .outbox
            .iter()
            .find(|entry| entry.request.key == key)
            .cloned())
    }

    fn next_outbox(&self, until: Timestamp) -> Result<Option<OutboxEntry>, StoreError> {
        let tables = self.tables()?;
        Ok(tables
            .outbox
            .iter()
            .filter(|entry| entry.due() <= until)
            .min_by_key(|entry| entry.due())
            .cloned())
    }

    fn inbox(&self) -> Result<Vec<StoredInbox>, StoreError> {
        Ok(self
            .tables()?
            .inbox
            .iter()
            .map(|(id, item)| StoredInbox {
                id: *id,
                item: item.clone(),
            })
            .collect())
    }

    fn next_inbox(&self, until: Timestamp) -> Result<Option<StoredInbox>, StoreError> {
        let tables = self.tables()?;
        Ok(tables
            .inbox
            .iter()
            .filter(|(_, item)| item.due <= until)
            .min_by_key(|(id, item)| (item.due, **id))
            .map(|(id, item)| StoredInbox {
                id: *id,
                item: item.clone(),
            }))
    }

    fn pending_timers(&self, account: &AccountId) -> Result<usize, StoreError> {
        Ok(self
            .tables()?
            .timers_pending
            .get(account)
            .copied()
            .unwrap_or(0))
    }

    fn timer_pending(&self, account: &AccountId, tag: u64) -> Result<bool, StoreError> {
        Ok(self
            .tables()?
            .timer_by_tag
            .contains_key(&(account.clone(), tag)))
    }

    fn next_timer(
        &self,
        until: Timestamp,
        lease: &Lease,
    ) -> Result<Option<StoredTimer>, StoreError> {
        Ok(self.tables()?.first_free_timer(until, lease))
    }

    fn claim_timer(
        &self,
        until: Timestamp,
        lease: &Lease,
    ) -> Result<Option<StoredTimer>, StoreError> {
        let mut tables = self.tables()?;
        let claimed = tables.first_free_timer(until, lease);
        if let Some(stored) = &claimed {
            tables
                .timer_leases
                .insert(stored.id, (lease.holder.clone(), lease.until));
        }
        Ok(claimed)
    }

    fn journal(&self, stream: &str, after: u64) -> Result<Vec<(u64, String)>, StoreError> {
        let tables = self.tables()?;
        let entries = tables.journals.get(stream).map_or(&[][..], Vec::as_slice);
        Ok(entries
            .iter()
            .enumerate()
            .skip(usize::try_from(after).unwrap_or(usize::MAX))
            .map(|(index, entry)| (index as u64 + 1, entry.clone()))
            .collect())
    }

    fn append(&self, stream: &str, after: u64, entries: &[String]) -> Result<(), StoreError> {
        let mut tables = self.tables()?;
        let journal = tables.journals.entry(stream.to_owned()).or_default();
        if journal.len() as u64 != after {
            return Err(StoreError::Behind(stream.to_owned()));
        }
        journal.extend_from_slice(entries);
        Ok(())
    }

    fn put_component(&self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.tables()?
            .components
            .entry(sha256.to_owned())
            .or_insert_with(|| bytes.to_vec());
        Ok(())
    }

    fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tables()?.components.get(sha256).cloned())
    }

    fn charges(&self) -> Result<Vec<ChargeRecord>, StoreError> {
        Ok(self.tables()?.charges.clone())
    }

    fn charges_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, ChargeRecord)>, StoreError> {
        Ok(page(&self.tables()?.charges, after, limit))
    }

    fn notifications(&self) -> Result<Vec<Notification>, StoreError> {
        Ok(self.tables()?.notifications.clone())
    }

    fn notifications_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Notification)>, StoreError> {
        Ok(page(&self.tables()?.notifications, after, limit))
    }

    fn ledger(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        Ok(self.tables()?.ledger.clone())
    }

    fn prune(&self, before: Timestamp) -> Result<Pruned, StoreError> {
        Ok(self.tables()?.prune(before))
    }

    fn idempotent(&self, key: &str) -> Result<Option<KeptResponse>, StoreError> {
        Ok(self.tables()?.responses.get(key).cloned())
    }

    fn keep_response(&self, response: KeptResponse) -> Result<bool, StoreError> {
        let mut tables = self.tables()?;
        if tables.responses.contains_key(&response.key) {
            return Ok(false);
        }
        tables.responses.insert(response.key.clone(), response);
        Ok(true)
    }

    fn finish_response(&self, response: KeptResponse) -> Result<(), StoreError> {
        let mut tables = self.tables()?;
        match tables.responses.get_mut(&response.key) {
            Some(kept) if kept.in_progress() && kept.fingerprint == response.fingerprint => {
                *kept = response;
                Ok(())
            }
            _ => Err(StoreError::NotPending(format!(
                "idempotency key {}",
                response.key
            ))),
        }
    }

    fn release_response(&self, key: &str) -> Result<(), StoreError> {
        let mut tables = self.tables()?;
        if tables
            .responses
            .get(key)
            .is_some_and(KeptResponse::in_progress)
        {
            tables.responses.remove(key);
        }
        Ok(())
    }

    fn prune_responses(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut tables = self.tables()?;
        let kept = tables.responses.len();
        tables.responses.retain(|_, response| response.at >= before);
        Ok((kept - tables.responses.len()) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use recharge_policy_sdk::model::AccountKind;

    fn user(id: &str) -> Account {
        Account::new(id.into(), AccountKind::User, None)
    }

    fn charge(key: &str) -> ChargeRequest {
        ChargeRequest {
            key: key.into(),
            policy_key: key.into(),
            payer: "u".into(),
            card: "c".into(),
            amount: Decimal::ONE,
            purpose: Purpose::TopUp,
            requested_by: "u".into(),
            requested_at: 0,
        }
    }

    #[test]
    fn a_failing_batch_changes_nothing() {
        let store = MemoryStore::new();
        store
            .commit(Batch {
                created: vec![user("u")],
                ..Batch::default()
            })
            .unwrap();
        let mut stale = store.account(&"u".into()).unwrap().unwrap();
        stale.balance = Decimal::TEN;
        store
            .commit(Batch {
                updated: vec![stale.clone()],
                ..Batch::default()
            })
            .unwrap();
        let batch = Batch {
            updated: vec![stale],
            charges: vec![charge("k1")],
            ..Batch::default()
        };
        assert!(matches!(store.commit(batch), Err(StoreError::Conflict(_))));
        assert!(store.pending_charges().unwrap().is_empty());
        assert!(!store.key_used("k1").unwrap());
    }

    #[test]
    fn keys_are_never_reused() {
        let store = MemoryStore::new();
        store
            .commit(Batch {
                charges: vec![charge("k1")],
                ..Batch::default()
            })
            .unwrap();
        let again = Batch {
            charges: vec![charge("k1")],
            ..Batch::default()
        };
        assert_eq!(
            store.commit(again),
            Err(StoreError::DuplicateKey("k1".into()))
        );
    }

    #[test]
    fn timers_come_out_in_due_order_then_insertion_order() {
        let store = MemoryStore::new();
        let timer = |due, tag| Timer {
            due,
            account: "u".into(),
            tag,
        };
        store
            .commit(Batch {
                timers: vec![timer(20, 1), timer(10, 2), timer(10, 3)],
                ..Batch::default()
            })
            .unwrap();
        let lease = Lease {
            holder: "node".into(),
            now: 0,
            until: 1,
        };
        let first = store.next_timer(100, &lease).unwrap().unwrap();
        assert_eq!(first.timer.tag, 2);
        store
            .commit(Batch {
                fired: vec![first.id],
                ..Batch::default()
            })
            .unwrap();
        assert_eq!(store.next_timer(100, &lease).unwrap().unwrap().timer.tag, 3);
        assert!(store.next_timer(5, &lease).unwrap().is_none());
    }
}
