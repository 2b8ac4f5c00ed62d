//! The platform: the host's front door, a thin facade over its parts. Every
//! command is one event: the host checks and records its facts ([`accounts`]),
//! the policy decides and the host commits what it decided in one batch
//! ([`events`]), then the outbox executes the charges and their outcomes come
//! back as events ([`outbox`]); timers fire on the clock ([`scheduler`]); the
//! policy deciding for an account is chosen by tenancy ([`crate::tenants`]).

mod accounts;
mod builder;
mod events;
mod outbox;
mod scheduler;
mod shared;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use recharge_policy_sdk::model::{
    AccountKind, AccountView, AllocationSettings, Answer, AutoRechargeSettings, Event, MinuteType,
    QueryKind, Rates, Timestamp, Usage,
};
use recharge_policy_sdk::money::display;
use rust_decimal::Decimal;

use crate::account::{Account, AccountId};
use crate::capabilities::Guardrails;
use crate::error::{HostError, InvalidCommand};
use crate::gateway::{Gateway, GatewayAnswer};
use crate::input::{check_amount, check_id, check_minutes, check_money, check_seconds};
use crate::ledger::{Cause, LedgerEntry};
use crate::policy::Policy;
use crate::rating::rate_call;
use crate::sandbox::PolicyEngine;
use crate::store::{
    Batch, ChargeRecord, ChargeRequest, Lease, Notification, OutboxEntry, Pruned, RatedCall, Store,
    StoredInbox,
};
use crate::tenants::Tenants;

pub use self::builder::{DEFAULT_LEASE, DEFAULT_NODE, DEFAULT_RETENTION, PlatformBuilder};
pub use self::shared::{CONFIG_STREAM, sha256_hex};

/// What one command did: the decisions it cost, and the charges it queued and
/// the notices it sent (with those of the payment outcomes it led to).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventReport {
    /// Policy decisions made (events and queries handled).
    pub decisions: u64,
    /// Fuel burnt by the policy (0 for native policies).
    pub fuel: u64,
    /// The charge requests committed to the outbox, in order.
    pub charges: Vec<ChargeRequest>,
    /// The notices committed, in order.
    pub notices: Vec<Notification>,
    /// The timers this node fired (their ids), in order: each fires once,
    /// on one node.
    pub fired: Vec<u64>,
}

impl EventReport {
    /// Add what `other` did to this report.
    pub fn add(&mut self, other: EventReport) {
        self.decisions += other.decisions;
        self.fuel += other.fuel;
        self.charges.extend(other.charges);
        self.notices.extend(other.notices);
        self.fired.extend(other.fired);
    }
}

/// Where the time comes from.
#[derive(Debug)]
enum Clock {
    System,
    Simulated(AtomicI64),
}

/// The default rates: basic 0.09, premium 0.16 USD per minute.
pub fn default_rates() -> Rates {
    Rates {
        basic: Decimal::new(9, 2),
        premium: Decimal::new(16, 2),
    }
}

/// A billing host: accounts, policies, guardrails, outbox and timers.
///
/// `Send + Sync`: events of different account families run in parallel; events of
/// one family (an agency and its sub-accounts, or one user) are serialised.
pub struct Platform {
    store: Arc<dyn Store>,
    gateway: Arc<dyn Gateway>,
    engine: PolicyEngine,
    tenants: Tenants,
    guardrails: Arc<Guardrails>,
    rates: RwLock<Rates>,
    clock: Clock,
    families: Mutex<HashMap<AccountId, Arc<Mutex<()>>>>,
    node: String,
    lease_ms: i64,
    retention_ms: i64,
    /// The UTC day retention last ran for.
    pruned_day: AtomicI64,
    shared: Mutex<shared::SharedState>,
    compiled: Mutex<HashMap<String, Arc<dyn Policy>>>,
}

impl Platform {
    /// Start building a platform.
    pub fn builder() -> PlatformBuilder {
        PlatformBuilder::new()
    }

    /// The policy engine (to load tenant components).
    pub fn engine(&self) -> &PolicyEngine {
        &self.engine
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        match &self.clock {
            Clock::System => chrono::Utc::now().timestamp_millis(),
            Clock::Simulated(now) => now.load(Ordering::SeqCst),
        }
    }

    /// This node's claim on due work now: held under its name for the lease
    /// time, in wall-clock time.
    pub(crate) fn lease(&self) -> Lease {
        let now = chrono::Utc::now().timestamp_millis();
        Lease {
            holder: self.node.clone(),
            now,
            until: now.saturating_add(self.lease_ms),
        }
    }

    /// The node's name: its claims on due work are held under it.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The rates in force.
    pub fn rates(&self) -> Rates {
        *self
            .rates
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Change the rates; every later charge and rating uses them, on every
    /// node sharing the store.
    pub fn set_rates(&self, rates: Rates) -> Result<(), HostError> {
        if rates.basic < Decimal::ZERO || rates.premium < Decimal::ZERO {
            return Err(InvalidCommand::NegativeRates.into());
        }
        check_amount("basic", rates.basic)?;
        check_amount("premium", rates.premium)?;
        self.record_rates(rates)
    }

    fn put_rates(&self, rates: Rates) {
        *self
            .rates
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = rates;
    }

    /// One account as stored.
    pub fn account(&self, id: &AccountId) -> Result<Account, HostError> {
        self.store
            .account(id)?
            .ok_or_else(|| HostError::UnknownAccount(id.clone()))
    }

    /// Every account id, in order.
    pub fn account_ids(&self) -> Result<Vec<AccountId>, HostError> {
        Ok(self.store.account_ids()?)
    }

    /// Every settled charge attempt, in order of settlement.
    pub fn charges(&self) -> Result<Vec<ChargeRecord>, HostError> {
        Ok(self.store.charges()?)
    }

    /// The charges waiting in the outbox, oldest first.
    pub fn pending_charges(&self) -> Result<Vec<ChargeRequest>, HostError> {
        Ok(self.store.pending_charges()?)
    }

    /// The charges in the outbox and where each stands (queued, submitted,
    /// pending), oldest first.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>, HostError> {
        Ok(self.store.outbox()?)
    }

    /// Payment outcomes a policy has not handled yet (it faulted), waiting to
    /// be offered again.
    pub fn inbox(&self) -> Result<Vec<StoredInbox>, HostError> {
        Ok(self.store.inbox()?)
    }

    /// Every notice, in order.
    pub fn notifications(&self) -> Result<Vec<Notification>, HostError> {
        Ok(self.store.notifications()?)
    }

    /// Every change the host made to money and minutes, with its cause, in
    /// order: each account's balance and buckets are the sums of its entries.
    pub fn ledger(&self) -> Result<Vec<LedgerEntry>, HostError> {
        Ok(self.store.ledger()?)
    }

    /// Forget the rated call ids and used idempotency keys older than the
    /// retention window (see [`PlatformBuilder::retention`]), and the
    /// auto-recharge counts of days before it.
    pub fn apply_retention(&self) -> Result<Pruned, HostError> {
        let before = self.now().saturating_sub(self.retention_ms);
        Ok(self.store.prune(before)?)
    }

    /// Open an account. A sub-account names its parent agency.
    pub fn open_account(
        &self,
        id: AccountId,
        kind: AccountKind,
        parent: Option<AccountId>,
    ) -> Result<(), HostError> {
        check_id("account", id.as_str())?;
        accounts::open(self, id, kind, parent)
    }

    /// Save a card for an account (no event: saving alone changes no balance).
    pub fn add_card(&self, id: &AccountId, card: &str) -> Result<(), HostError> {
        accounts::check_card(card)?;
        self.serialised(id, || accounts::save_card(self, id, card))
    }

    /// The account updates the payment details of a card (saving it if new); the
    /// policy hears of it (R6).
    pub fn update_card(&self, id: &AccountId, card: &str) -> Result<EventReport, HostError> {
        accounts::check_card(card)?;
        self.with_outbox(id, || {
            accounts::save_card(self, id, card)?;
            self.decide(id, &Event::CardUpdated(card.to_owned()))
        })
    }

    /// Add plan-included minutes to a user or agency.
    pub fn include_minutes(
        &self,
        id: &AccountId,
        basic_minutes: i64,
        premium_minutes: i64,
    ) -> Result<(), HostError> {
        check_minutes("basic", basic_minutes)?;
        check_minutes("premium", premium_minutes)?;
        accounts::include_minutes(self, id, basic_minutes, premium_minutes)
    }

    /// Rate a finished call and let the policy react, in one commit. The call is
    /// recorded even if the policy rejects it or faults; a repeated call id
    /// changes nothing.
    pub fn record_usage(
        &self,
        id: &AccountId,
        call: &str,
        seconds: i64,
        minute_type: MinuteType,
    ) -> Result<EventReport, HostError> {
        check_id("call", call)?;
        check_seconds(seconds)?;
        self.with_outbox(id, || {
            if self.store.call_rated(id, call)? {
                return Ok(EventReport::default());
            }
            let rates = self.rates();
            let facts = events::Facts {
                records: Batch {
                    rated_calls: vec![RatedCall {
                        account: id.clone(),
                        call: call.to_owned(),
                        at: self.now(),
                    }],
                    ..Batch::default()
                },
                ..events::Facts::default()
            };
            // The rating is the host's fact: it commits whatever the policy
            // makes of the call.
            let rate = |ctx: &mut crate::capabilities::EventContext| {
                let cause = Cause::Call(call.to_owned());
                let rated = ctx
                    .host_change(id, cause, |subject| {
                        rate_call(subject, seconds, minute_type, &rates)
                    })
                    .ok_or(HostError::Internal("an event without its subject"))??;
                Ok(Event::Usage(Usage {
                    seconds,
                    minute_type,
                    wallet_cost: rated.wallet_cost,
                }))
            };
            self.decide_with(id, rate, facts)?.into_result()
        })
    }

    /// `actor` saves the account's auto-recharge settings (R1).
    pub fn save_auto_recharge(
        &self,
        actor: &AccountId,
        id: &AccountId,
        settings: AutoRechargeSettings,
    ) -> Result<EventReport, HostError> {
        check_money("threshold", settings.threshold)?;
        check_money("amount", settings.amount)?;
        if let Some(limit) = settings.monthly_limit {
            check_money("monthly_limit", limit)?;
        }
        check_card_name(&settings.card)?;
        self.on_behalf(actor, id, |actor| Event::SaveAutoRecharge {
            actor,
            settings,
        })
    }

    /// `actor` saves a sub-account's monthly allocation (R7).
    pub fn save_allocation(
        &self,
        actor: &AccountId,
        id: &AccountId,
        settings: AllocationSettings,
    ) -> Result<EventReport, HostError> {
        // Below zero is the policy's to reject (after it checked who asks);
        // beyond the host's range, no policy sees it.
        check_minutes("basic", settings.basic_minutes.max(0))?;
        check_minutes("premium", settings.premium_minutes.max(0))?;
        check_card_name(&settings.card)?;
        self.on_behalf(actor, id, |actor| Event::SaveAllocation { actor, settings })
    }

    /// `actor` asks for a manual top-up of the account (R8).
    pub fn top_up(
        &self,
        actor: &AccountId,
        id: &AccountId,
        card: &str,
        amount: Decimal,
    ) -> Result<EventReport, HostError> {
        check_id("card", card)?;
        check_money("amount", amount)?;
        self.on_behalf(actor, id, |actor| Event::TopUp {
            actor,
            card: card.to_owned(),
            amount,
        })
    }

    /// `actor` asks about the account; nothing changes.
    pub fn query(
        &self,
        actor: &AccountId,
        id: &AccountId,
        what: QueryKind,
    ) -> Result<Answer, HostError> {
        self.account(actor)?;
        self.serialised(id, || self.ask(actor, id, what))
    }

    /// What the account's policy keeps for it (settings, allocation), for reports.
    ///
    /// A report, not an event: a fault is returned, not recorded as a notice or
    /// counted towards quarantine.
    pub fn describe(&self, id: &AccountId) -> Result<AccountView, HostError> {
        let (selected, mut ctx) = self.context(id)?;
        selected.policy.describe(&mut ctx).map_err(HostError::Fault)
    }

    /// Give `owner` (a user or agency) and its sub-accounts their own policy;
    /// returns the policy's name. The component is kept in the store by its
    /// SHA-256 and the assignment is shared: every node sharing the store, and
    /// this one after a restart, runs it.
    pub fn set_policy(&self, owner: &AccountId, component: &[u8]) -> Result<String, HostError> {
        self.check_policy_owner(owner)?;
        // Compiled (and so checked) before anything is recorded.
        let (_, policy) = self.compile(component)?;
        let name = policy.name().to_owned();
        self.record_policy(owner, component)?;
        Ok(name)
    }

    /// Give `owner` a policy already loaded (a native one, or one shared by
    /// tenants).
    pub fn set_policy_object(
        &self,
        owner: &AccountId,
        policy: Arc<dyn Policy>,
    ) -> Result<(), HostError> {
        self.account(owner)?;
        self.tenants.assign(owner.clone(), policy);
        Ok(())
    }

    /// Move the simulated clock to `at`, firing every timer due by then in time
    /// order, each at its own due time. With the system clock, fires what is due.
    pub fn advance_to(&self, at: Timestamp) -> Result<EventReport, HostError> {
        scheduler::advance_to(self, at)
    }

    /// When the host's next piece of work is due (a wake-up, a charge to ask
    /// the gateway about, an outcome to offer again), if any is due by `until`.
    pub fn next_due(&self, until: Timestamp) -> Result<Option<Timestamp>, HostError> {
        scheduler::next_due_at(self, until)
    }

    /// Submit every charge in the outbox now, whatever its next check (after a
    /// restart, say): queued ones for the first time, submitted ones by asking
    /// the gateway again. Keys make it safe: a charge the gateway already saw
    /// is not charged again, and its answer settles it.
    pub fn run_outbox(&self) -> Result<EventReport, HostError> {
        let mut report = EventReport::default();
        for entry in self.store.outbox()? {
            report.add(self.submit(entry)?);
        }
        Ok(report)
    }

    /// A payment outcome the gateway reports later (a webhook), by the key the
    /// gateway saw. Applied once: it settles, credits and lets the policy react
    /// in one step and returns `true`; a second delivery, a key the outbox does
    /// not hold, or an answer that is still pending changes nothing more and
    /// returns `false`.
    pub fn deliver_outcome(&self, key: &str, answer: GatewayAnswer) -> Result<bool, HostError> {
        outbox::deliver(self, key, answer)
    }

    fn check_policy_owner(&self, owner: &AccountId) -> Result<(), HostError> {
        if self.account(owner)?.kind == AccountKind::SubAccount {
            return Err(InvalidCommand::NotForSubAccounts {
                account: owner.clone(),
                what: "policies",
            }
            .into());
        }
        Ok(())
    }

    /// An event an actor asks for: the actor must exist; the policy decides.
    fn on_behalf(
        &self,
        actor: &AccountId,
        id: &AccountId,
        event: impl FnOnce(String) -> Event,
    ) -> Result<EventReport, HostError> {
        self.account(actor)?;
        let event = event(actor.0.clone());
        self.with_outbox(id, || self.decide(id, &event))
    }
}

/// A card named in settings: none (empty) is the policy's to judge; a name is
/// held to the rules of ids.
fn check_card_name(card: &str) -> Result<(), HostError> {
    if !card.is_empty() {
        check_id("card", card)?;
    }
    Ok(())
}

/// Money for reports: see [`recharge_policy_sdk::money::display`].
pub fn money(amount: Decimal) -> String {
    display(amount)
}
