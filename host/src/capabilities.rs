//! The capabilities lent to a policy for one event (`balance`, `payment`, `clock`,
//! `notify`) and the guardrails H1–H3 that hold whatever the policy asks.
//!
//! Everything a policy does lands in an [`EventContext`]; the host turns it into
//! one [`Batch`] when the policy returns success, and drops it otherwise (H4).

use std::sync::{Arc, OnceLock};

use recharge_policy_sdk::caps::{Capabilities, Role};
use recharge_policy_sdk::model::{
    AccountKind, Notice, Purpose, Rates, Refusal, Snapshot, Status, Timestamp,
};
use recharge_policy_sdk::money::{allocation_price, display, is_whole_cents};
use rust_decimal::Decimal;

use crate::account::{Account, AccountId, PolicyId};
use crate::ledger::{Cause, LedgerEntry, Totals};
use crate::store::{Batch, ChargeRequest, Notification, Store, StoreError, Timer, utc_day};

/// Limits on what one event may ask for (H3), all configurable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guardrails {
    /// The largest single charge, USD.
    pub max_charge: Decimal,
    /// Charge requests one event may make.
    pub max_charges_per_event: usize,
    /// Auto-recharge charges one account may request per UTC day.
    pub max_auto_recharges_per_day: u32,
    /// Wake-ups one event may ask for.
    pub max_timers_per_event: usize,
    /// Wake-ups an account may have pending.
    pub max_pending_timers_per_account: usize,
    /// Wake-ups one account may fire at one instant in one advance of the
    /// clock; past it, the policy faults (a policy that keeps re-arming
    /// wake-ups at or before "now" would otherwise hold the clock forever). A
    /// schedule that moves forward in time is never stopped.
    pub max_timers_per_account_per_advance: u32,
    /// Notices one event may send.
    pub max_notices_per_event: usize,
    /// Size of a notice message, bytes.
    pub max_message_bytes: usize,
    /// Size of a policy's per-account state, bytes.
    pub max_state_bytes: usize,
    /// Length of an idempotency key, bytes.
    pub max_key_bytes: usize,
}

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails {
            max_charge: Decimal::from(1_000),
            max_charges_per_event: 4,
            max_auto_recharges_per_day: 25,
            max_timers_per_event: 16,
            max_pending_timers_per_account: 64,
            max_timers_per_account_per_advance: 1_000,
            max_notices_per_event: 16,
            max_message_bytes: 1024,
            max_state_bytes: 64 * 1024,
            max_key_bytes: 200,
        }
    }
}

/// One event in progress: the accounts handed to the policy (subject first, then
/// its parent), and everything the policy asked for so far.
#[derive(Clone, Default)]
pub struct EventContext {
    accounts: Vec<Account>,
    changed: [bool; 2],
    policy: PolicyId,
    now: Timestamp,
    rates: Option<Rates>,
    guardrails: Arc<Guardrails>,
    store: Option<Arc<dyn Store>>,
    /// The first failure of the store while the policy ran: the event is then
    /// the host's failure, not the policy's.
    host_failure: OnceLock<StoreError>,
    charges: Vec<ChargeRequest>,
    timers: Vec<Timer>,
    notifications: Vec<Notification>,
    /// The host's own ledger entries for this event (a rated call, a credit).
    ledger: Vec<LedgerEntry>,
    /// Fuel the policy burnt on this event (wasm policies only).
    pub(crate) fuel_used: u64,
}

impl std::fmt::Debug for EventContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventContext")
            .field("subject", &self.accounts.first().map(|a| &a.id))
            .field("policy", &self.policy)
            .field("now", &self.now)
            .field("charges", &self.charges)
            .field("timers", &self.timers)
            .field("notifications", &self.notifications)
            .finish()
    }
}

/// Everything an [`EventContext`] needs to start.
pub(crate) struct EventSetup {
    /// The account the event is about.
    pub subject: Account,
    /// Its parent agency, for sub-accounts.
    pub parent: Option<Account>,
    /// Whose state the policy reads and writes.
    pub policy: PolicyId,
    /// The time of the event.
    pub now: Timestamp,
    /// The rates in force.
    pub rates: Rates,
    /// The guardrails in force.
    pub guardrails: Arc<Guardrails>,
    /// The store, for key and daily-count checks.
    pub store: Arc<dyn Store>,
}

impl EventContext {
    /// Start an event.
    pub(crate) fn new(setup: EventSetup) -> Self {
        let mut accounts = vec![setup.subject];
        accounts.extend(setup.parent);
        EventContext {
            accounts,
            changed: [false; 2],
            policy: setup.policy,
            now: setup.now,
            rates: Some(setup.rates),
            guardrails: setup.guardrails,
            store: Some(setup.store),
            host_failure: OnceLock::new(),
            charges: Vec::new(),
            timers: Vec::new(),
            notifications: Vec::new(),
            ledger: Vec::new(),
            fuel_used: 0,
        }
    }

    /// An event about `subject` alone, outside any platform, for `policy`'s state
    /// (`default`, `tenant:OWNER`) under the default guardrails: a policy's
    /// decision can be run and inspected ([`Self::charges`],
    /// [`Self::notifications`]) but never committed anywhere.
    pub fn offline(subject: Account, policy: &str, now: Timestamp, rates: Rates) -> Self {
        EventContext::new(EventSetup {
            subject,
            parent: None,
            policy: policy.into(),
            now,
            rates,
            guardrails: Arc::new(Guardrails::default()),
            store: Arc::new(crate::store::MemoryStore::new()),
        })
    }

    /// Whether the subject has a parent handed to the event.
    pub fn has_parent(&self) -> bool {
        self.accounts.len() > 1
    }

    /// The account in this role, if handed to the event (H1).
    pub fn account(&self, who: Role) -> Option<&Account> {
        self.accounts.get(role_index(who))
    }

    fn account_mut(&mut self, who: Role) -> Result<&mut Account, Refusal> {
        let index = role_index(who);
        let account = self
            .accounts
            .get_mut(index)
            .ok_or(Refusal::ForeignAccount)?;
        self.changed[index] = true;
        Ok(account)
    }

    /// Let the host change an account of the event by id (a rated call, a
    /// credit) before the policy decides, and record the change in the ledger
    /// with its `cause`; both are committed with the event. `None` if the
    /// account is not the event's.
    pub(crate) fn host_change<R>(
        &mut self,
        id: &AccountId,
        cause: Cause,
        change: impl FnOnce(&mut Account) -> R,
    ) -> Option<R> {
        let index = self.accounts.iter().position(|account| &account.id == id)?;
        self.changed[index] = true;
        let account = self.accounts.get_mut(index)?;
        let before = Totals::held(account);
        let result = change(account);
        self.ledger
            .push(LedgerEntry::between(&before, account, cause, self.now));
        Some(result)
    }

    /// The charges asked for so far.
    pub fn charges(&self) -> &[ChargeRequest] {
        &self.charges
    }

    /// The notices sent so far.
    pub fn notifications(&self) -> &[Notification] {
        &self.notifications
    }

    /// The time of the event.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Everything the event changed, as one batch for the store.
    /// What the event would commit if the policy succeeded, as a copy to inspect
    /// (committing is the host's alone).
    pub fn as_batch(&self) -> Batch {
        self.clone().into_batch()
    }

    pub(crate) fn into_batch(self) -> Batch {
        let updated = self
            .accounts
            .into_iter()
            .zip(self.changed)
            .filter_map(|(account, changed)| changed.then_some(account))
            .collect();
        Batch {
            updated,
            charges: self.charges,
            timers: self.timers,
            notifications: self.notifications,
            ledger: self.ledger,
            ..Batch::default()
        }
    }

    /// The store's failure while the policy ran, if any: the event failed for
    /// the host's reasons, whatever the policy made of the refusal it got.
    pub(crate) fn host_failure(&self) -> Option<&StoreError> {
        self.host_failure.get()
    }

    /// Ask the store; a failure is kept as the host's and the policy is refused.
    fn ask_store<T>(
        &self,
        absent: T,
        ask: impl FnOnce(&dyn Store) -> Result<T, StoreError>,
    ) -> Result<T, Refusal> {
        let Some(store) = &self.store else {
            return Ok(absent);
        };
        ask(store.as_ref()).map_err(|err| {
            let _ = self.host_failure.set(err);
            Refusal::Invalid("the host's storage is unavailable".into())
        })
    }

    fn key_taken(&self, key: &str) -> Result<bool, Refusal> {
        if self.charges.iter().any(|charge| charge.key == key) {
            return Ok(true);
        }
        self.ask_store(false, |store| store.key_used(key))
    }

    fn auto_recharges_today(&self, payer: &AccountId) -> Result<u32, Refusal> {
        let day = utc_day(self.now);
        let stored = self.ask_store(0, |store| store.auto_recharges_on(payer, day))?;
        let pending = self
            .charges
            .iter()
            .filter(|charge| &charge.payer == payer && charge.purpose == Purpose::AutoRecharge)
            .count();
        Ok(stored.saturating_add(u32::try_from(pending).unwrap_or(u32::MAX)))
    }

    fn check_amount(&self, amount: Decimal) -> Result<(), Refusal> {
        if amount <= Decimal::ZERO {
            return Err(Refusal::BadAmount(format!(
                "{} is not positive",
                display(amount)
            )));
        }
        if !is_whole_cents(amount) {
            return Err(Refusal::BadAmount(format!("{amount} is not whole cents")));
        }
        if amount > self.guardrails.max_charge {
            return Err(Refusal::BadAmount(format!(
                "{} is over the {} cap",
                display(amount),
                display(self.guardrails.max_charge)
            )));
        }
        Ok(())
    }

    /// H2: an allocation credits only a sub-account of the payer handed to the
    /// event, at exactly the price of its minutes now.
    fn check_allocation(
        &self,
        payer: &Account,
        purpose: &Purpose,
        amount: Decimal,
    ) -> Result<(), Refusal> {
        let Purpose::Allocation(purchase) = purpose else {
            return Ok(());
        };
        let beneficiary = self
            .accounts
            .iter()
            .find(|account| account.id.as_str() == purchase.beneficiary)
            .ok_or(Refusal::ForeignAccount)?;
        if beneficiary.kind != AccountKind::SubAccount
            || beneficiary.parent.as_ref() != Some(&payer.id)
        {
            return Err(Refusal::ForeignAccount);
        }
        if purchase.basic_minutes < 0 || purchase.premium_minutes < 0 {
            return Err(Refusal::Invalid("negative minutes".into()));
        }
        let rates = self.rates();
        match allocation_price(purchase.basic_minutes, purchase.premium_minutes, &rates) {
            Some(price) if price == amount => Ok(()),
            _ => Err(Refusal::PriceMismatch),
        }
    }
}

/// The host's idempotency key for a policy's `key` on `payer`'s card: the payer
/// (for people reading it), then a digest of the payer, the policy and the key,
/// each length-prefixed so no two triples meet. Whatever a policy names its
/// keys, it cannot reach a key of another payer or of another policy.
pub(crate) fn scoped_key(payer: &AccountId, policy: &str, key: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    for part in [payer.as_str(), policy, key] {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part.as_bytes());
    }
    let digest = digest.finalize();
    let mut scoped = String::with_capacity(payer.as_str().len() + 33);
    scoped.push_str(payer.as_str());
    scoped.push('~');
    for byte in &digest[..16] {
        scoped.push_str(&format!("{byte:02x}"));
    }
    scoped
}

fn role_index(who: Role) -> usize {
    match who {
        Role::Subject => 0,
        Role::Parent => 1,
    }
}

impl Capabilities for EventContext {
    fn snapshot(&self, who: Role) -> Result<Snapshot, Refusal> {
        self.account(who)
            .map(Account::snapshot)
            .ok_or(Refusal::ForeignAccount)
    }

    fn balance(&self, who: Role) -> Result<Decimal, Refusal> {
        self.account(who)
            .map(|account| account.balance)
            .ok_or(Refusal::ForeignAccount)
    }

    fn id(&self, who: Role) -> Result<String, Refusal> {
        self.account(who)
            .map(|account| account.id.0.clone())
            .ok_or(Refusal::ForeignAccount)
    }

    fn status(&self, who: Role) -> Result<Status, Refusal> {
        self.account(who)
            .map(|account| account.status)
            .ok_or(Refusal::ForeignAccount)
    }

    fn has_card(&self, who: Role, card: &str) -> bool {
        self.account(who)
            .is_some_and(|account| account.has_card(card))
    }

    fn state(&self, who: Role) -> Vec<u8> {
        self.account(who)
            .and_then(|account| account.policy_state.get(&self.policy))
            .cloned()
            .unwrap_or_default()
    }

    fn set_state(&mut self, who: Role, state: Vec<u8>) -> Result<(), Refusal> {
        if state.len() > self.guardrails.max_state_bytes {
            return Err(Refusal::Invalid(format!(
                "state of {} bytes is over the {} byte limit",
                state.len(),
                self.guardrails.max_state_bytes
            )));
        }
        let policy = self.policy.clone();
        self.account_mut(who)?.policy_state.insert(policy, state);
        Ok(())
    }

    fn watermark(&self, who: Role) -> Option<Decimal> {
        self.account(who)
            .and_then(|account| account.watermarks.get(&self.policy))
            .copied()
    }

    fn set_watermark(&mut self, who: Role, watermark: Option<Decimal>) -> Result<(), Refusal> {
        let policy = self.policy.clone();
        let watermarks = &mut self.account_mut(who)?.watermarks;
        match watermark {
            Some(watermark) => watermarks.insert(policy, watermark),
            None => watermarks.remove(&policy),
        };
        Ok(())
    }

    fn set_status(&mut self, who: Role, status: Status) -> Result<(), Refusal> {
        self.account_mut(who)?.status = status;
        Ok(())
    }

    fn now(&self) -> Timestamp {
        self.now
    }

    fn rates(&self) -> Rates {
        self.rates.unwrap_or(Rates {
            basic: Decimal::ZERO,
            premium: Decimal::ZERO,
        })
    }

    fn request_charge(
        &mut self,
        payer: Role,
        card: &str,
        amount: Decimal,
        purpose: Purpose,
        key: &str,
    ) -> Result<(), Refusal> {
        let payer_account = self.account(payer).ok_or(Refusal::ForeignAccount)?;
        if !payer_account.has_card(card) {
            return Err(Refusal::UnknownCard);
        }
        self.check_amount(amount)?;
        self.check_allocation(payer_account, &purpose, amount)?;
        if key.is_empty() || key.len() > self.guardrails.max_key_bytes {
            return Err(Refusal::Invalid(format!(
                "key must be 1 to {} bytes",
                self.guardrails.max_key_bytes
            )));
        }
        if self.charges.len() >= self.guardrails.max_charges_per_event {
            return Err(Refusal::TooManyCharges);
        }
        let payer_id = payer_account.id.clone();
        if purpose == Purpose::AutoRecharge
            && self.auto_recharges_today(&payer_id)? >= self.guardrails.max_auto_recharges_per_day
        {
            return Err(Refusal::TooManyCharges);
        }
        let scoped = scoped_key(&payer_id, &self.policy, key);
        if self.key_taken(&scoped)? {
            return Err(Refusal::DuplicateKey);
        }
        let requested_by = self.accounts[0].id.clone();
        self.charges.push(ChargeRequest {
            key: scoped,
            policy_key: key.to_owned(),
            payer: payer_id,
            card: card.to_owned(),
            amount,
            purpose,
            requested_by,
            requested_at: self.now,
        });
        Ok(())
    }

    fn wake_at(&mut self, who: Role, at: Timestamp, tag: u64) -> Result<(), Refusal> {
        let account = self.account(who).ok_or(Refusal::ForeignAccount)?.id.clone();
        let due = at.max(self.now);
        // A wake-up replaces a pending one of the same account and tag.
        if let Some(asked) = self
            .timers
            .iter_mut()
            .find(|timer| timer.account == account && timer.tag == tag)
        {
            asked.due = due;
            return Ok(());
        }
        if self.timers.len() >= self.guardrails.max_timers_per_event {
            return Err(Refusal::Invalid(format!(
                "more than {} wake-ups in one event",
                self.guardrails.max_timers_per_event
            )));
        }
        let replaces = self.ask_store(false, |store| store.timer_pending(&account, tag))?;
        let stored = self.ask_store(0, |store| store.pending_timers(&account))?;
        let asked = self
            .timers
            .iter()
            .filter(|timer| timer.account == account)
            .count();
        if !replaces && stored + asked >= self.guardrails.max_pending_timers_per_account {
            return Err(Refusal::Invalid(format!(
                "more than {} pending wake-ups",
                self.guardrails.max_pending_timers_per_account
            )));
        }
        self.timers.push(Timer { due, account, tag });
        Ok(())
    }

    fn notify(&mut self, who: Role, kind: Notice, message: &str) -> Result<(), Refusal> {
        let account = self.account(who).ok_or(Refusal::ForeignAccount)?.id.clone();
        if self.notifications.len() >= self.guardrails.max_notices_per_event {
            return Err(Refusal::Invalid(format!(
                "more than {} notices in one event",
                self.guardrails.max_notices_per_event
            )));
        }
        if message.len() > self.guardrails.max_message_bytes {
            return Err(Refusal::Invalid(format!(
                "message over {} bytes",
                self.guardrails.max_message_bytes
            )));
        }
        self.notifications.push(Notification {
            at: self.now,
            account,
            kind: kind.as_str().to_owned(),
            message: message.to_owned(),
        });
        Ok(())
    }
}
