//! The platform: the host's front door. Every command is one event: the host
//! checks and records its facts, the policy decides, the host checks the
//! decisions and commits them in one batch, then the outbox executes the charges
//! and their outcomes come back as events.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use recharge_guest::model::{
    AccountKind, AccountView, AllocationSettings, Answer, AutoRechargeSettings, ChargeOutcome,
    Event, MinuteType, PaymentOutcome, PolicyError, Purpose, QueryKind, Rates, Timestamp, Usage,
};
use recharge_guest::money::display;
use rust_decimal::Decimal;
use thiserror::Error;

use crate::account::{Account, AccountId};
use crate::capabilities::{EventContext, EventSetup, Guardrails};
use crate::gateway::{Gateway, GatewayCharge};
use crate::policy::{NativePolicy, Policy, PolicyFault};
use crate::rating::{RatingError, rate_call};
use crate::sandbox::{Limits, LoadError, PolicyEngine};
use crate::store::{
    Batch, ChargeRecord, ChargeRequest, MemoryStore, Notification, Store, StoreError,
};
use crate::tenants::{Selected, Tenants};

/// Why a command was not carried out.
#[derive(Debug, Error)]
pub enum HostError {
    /// No account with this id.
    #[error("unknown account {0}")]
    UnknownAccount(AccountId),
    /// The policy rejected the request.
    #[error("{}", describe_rejection(.0))]
    Rejected(PolicyError),
    /// The policy faulted; the event changed nothing.
    #[error("policy fault: {0}")]
    Fault(PolicyFault),
    /// The command itself is not valid.
    #[error("{0}")]
    Invalid(String),
    /// A policy component could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A usage record could not be rated.
    #[error(transparent)]
    Rating(#[from] RatingError),
}

fn describe_rejection(error: &PolicyError) -> String {
    match error {
        PolicyError::Forbidden(why) => format!("forbidden: {why}"),
        PolicyError::InvalidSettings(why) => format!("invalid settings: {why}"),
        PolicyError::PaymentMethodRequired(why) => format!("payment method required: {why}"),
        PolicyError::Refused(why) => format!("policy gave up after a refusal: {why}"),
    }
}

/// What one event cost the policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventReport {
    /// Policy decisions made (events and queries handled).
    pub decisions: u64,
    /// Fuel burnt by the policy (0 for native policies).
    pub fuel: u64,
}

impl EventReport {
    fn add(&mut self, other: EventReport) {
        self.decisions += other.decisions;
        self.fuel += other.fuel;
    }
}

/// A committed event: what it cost, and the charges it queued for the outbox.
#[derive(Debug, Default)]
struct Committed {
    report: EventReport,
    charges: Vec<String>,
}

/// Where the time comes from.
#[derive(Debug)]
enum Clock {
    System,
    Simulated(AtomicI64),
}

/// Builds a [`Platform`].
pub struct PlatformBuilder {
    store: Option<Arc<dyn Store>>,
    gateway: Option<Arc<dyn Gateway>>,
    limits: Limits,
    guardrails: Guardrails,
    cache_dir: Option<PathBuf>,
    rates: Rates,
    clock: Clock,
    native_default: bool,
    engine: Option<PolicyEngine>,
    default_policy: Option<Arc<dyn Policy>>,
}

impl PlatformBuilder {
    /// Share an existing engine (its limits and cache win over [`Self::limits`]).
    pub fn engine(mut self, engine: PolicyEngine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Use this default policy instead of loading the embedded component.
    pub fn default_policy(mut self, policy: Arc<dyn Policy>) -> Self {
        self.default_policy = Some(policy);
        self
    }

    /// Keep accounts in this store (default: a new [`MemoryStore`]).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Charge cards through this gateway (required).
    pub fn gateway(mut self, gateway: Arc<dyn Gateway>) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// Sandbox limits (H5).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Charge guardrails (H3).
    pub fn guardrails(mut self, guardrails: Guardrails) -> Self {
        self.guardrails = guardrails;
        self
    }

    /// Cache compiled components in this directory.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// The rates in force at start.
    pub fn rates(mut self, rates: Rates) -> Self {
        self.rates = rates;
        self
    }

    /// Run on a simulated clock starting at `start` instead of the system clock.
    pub fn simulated_clock(mut self, start: Timestamp) -> Self {
        self.clock = Clock::Simulated(AtomicI64::new(start));
        self
    }

    /// Run the default policy natively instead of sandboxed (the speed baseline).
    pub fn native_default_policy(mut self) -> Self {
        self.native_default = true;
        self
    }

    /// Build the platform; the default policy is the embedded component.
    pub fn build(self) -> Result<Platform, HostError> {
        let gateway = self
            .gateway
            .ok_or_else(|| HostError::Invalid("a platform needs a payment gateway".into()))?;
        let engine = match self.engine {
            Some(engine) => engine,
            None => PolicyEngine::new(self.limits, self.cache_dir)?,
        };
        let default: Arc<dyn Policy> = match (self.default_policy, self.native_default) {
            (Some(policy), _) => policy,
            (None, true) => Arc::new(NativePolicy),
            (None, false) => Arc::new(engine.load(crate::DEFAULT_POLICY)?),
        };
        Ok(Platform {
            store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
            gateway,
            engine,
            tenants: Tenants::new(default),
            guardrails: Arc::new(self.guardrails),
            rates: RwLock::new(self.rates),
            clock: self.clock,
            families: Mutex::new(HashMap::new()),
        })
    }
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
}

/// How often an event is re-run when its accounts changed under it.
const CONFLICT_RETRIES: usize = 3;

impl Platform {
    /// Start building a platform.
    pub fn builder() -> PlatformBuilder {
        PlatformBuilder {
            store: None,
            gateway: None,
            limits: Limits::default(),
            guardrails: Guardrails::default(),
            cache_dir: None,
            rates: default_rates(),
            clock: Clock::System,
            native_default: false,
            engine: None,
            default_policy: None,
        }
    }

    /// The policy engine (to load tenant components).
    pub fn engine(&self) -> &PolicyEngine {
        &self.engine
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        match &self.clock {
            Clock::System => chrono::Utc::now().timestamp_millis(),
            Clock::Simulated(now) => now.load(Ordering::SeqCst),
        }
    }

    /// The rates in force.
    pub fn rates(&self) -> Rates {
        self.rates
            .read()
            .map(|rates| *rates)
            .unwrap_or_else(|_| default_rates())
    }

    /// Change the rates; every later charge and rating uses them.
    pub fn set_rates(&self, rates: Rates) -> Result<(), HostError> {
        if rates.basic < Decimal::ZERO || rates.premium < Decimal::ZERO {
            return Err(HostError::Invalid("rates must not be negative".into()));
        }
        let mut current = self
            .rates
            .write()
            .map_err(|_| HostError::Invalid("rates lock poisoned".into()))?;
        *current = rates;
        Ok(())
    }

    /// One account as stored.
    pub fn account(&self, id: &AccountId) -> Result<Account, HostError> {
        self.store
            .account(id)?
            .ok_or_else(|| HostError::UnknownAccount(id.clone()))
    }

    /// Every executed charge, in order.
    pub fn charges(&self) -> Result<Vec<ChargeRecord>, HostError> {
        Ok(self.store.charges()?)
    }

    /// Every notice, in order.
    pub fn notifications(&self) -> Result<Vec<Notification>, HostError> {
        Ok(self.store.notifications()?)
    }

    /// The lock of the account's family (its agency, or itself), by account id.
    fn family_lock(&self, id: &AccountId) -> Result<Arc<Mutex<()>>, HostError> {
        let mut families = self
            .families
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(lock) = families.get(id) {
            return Ok(Arc::clone(lock));
        }
        // Opened by another host on the same store (or before a restart).
        let family = self.account(id)?.family().clone();
        let lock = Arc::clone(families.entry(family).or_default());
        families.insert(id.clone(), Arc::clone(&lock));
        Ok(lock)
    }

    /// Run `work` with the account's family serialised.
    fn serialised<R>(
        &self,
        id: &AccountId,
        work: impl FnOnce() -> Result<R, HostError>,
    ) -> Result<R, HostError> {
        let lock = self.family_lock(id)?;
        let _guard = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        work()
    }

    /// Open an account. A sub-account names its parent agency.
    pub fn open_account(
        &self,
        id: AccountId,
        kind: AccountKind,
        parent: Option<AccountId>,
    ) -> Result<(), HostError> {
        match (kind, &parent) {
            (AccountKind::SubAccount, None) => {
                return Err(HostError::Invalid(format!(
                    "sub-account {id} needs a parent agency"
                )));
            }
            (AccountKind::SubAccount, Some(parent_id)) => {
                if self.account(parent_id)?.kind != AccountKind::Agency {
                    return Err(HostError::Invalid(format!(
                        "parent {parent_id} of {id} is not an agency"
                    )));
                }
            }
            (_, Some(_)) => {
                return Err(HostError::Invalid(format!(
                    "only sub-accounts have a parent ({id})"
                )));
            }
            (_, None) => {}
        }
        let account = Account::new(id.clone(), kind, parent);
        self.store
            .commit(Batch {
                created: vec![account],
                ..Batch::default()
            })
            .map_err(|err| match err {
                StoreError::Exists(id) => {
                    HostError::Invalid(format!("account {id} already exists"))
                }
                other => HostError::Store(other),
            })
    }

    /// Save a card for an account (no event: saving alone changes no balance).
    pub fn add_card(&self, id: &AccountId, card: &str) -> Result<(), HostError> {
        if card.is_empty() {
            return Err(HostError::Invalid("a card needs an id".into()));
        }
        self.serialised(id, || self.save_card(id, card))
    }

    fn save_card(&self, id: &AccountId, card: &str) -> Result<(), HostError> {
        let mut account = self.account(id)?;
        if !account.has_card(card) {
            account.cards.push(card.to_owned());
            self.store.commit(Batch {
                updated: vec![account],
                ..Batch::default()
            })?;
        }
        Ok(())
    }

    /// The account updates the payment details of a card (saving it if new); the
    /// policy hears of it (R6).
    pub fn update_card(&self, id: &AccountId, card: &str) -> Result<EventReport, HostError> {
        if card.is_empty() {
            return Err(HostError::Invalid("a card needs an id".into()));
        }
        self.with_outbox(id, || {
            self.save_card(id, card)?;
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
        if basic_minutes < 0 || premium_minutes < 0 {
            return Err(HostError::Invalid(
                "included minutes must not be negative".into(),
            ));
        }
        self.serialised(id, || {
            let mut account = self.account(id)?;
            if account.kind == AccountKind::SubAccount {
                return Err(HostError::Invalid(format!(
                    "{id} is a sub-account: included minutes belong to users and agencies"
                )));
            }
            let seconds = |minutes: i64| {
                minutes
                    .checked_mul(60)
                    .ok_or_else(|| HostError::Invalid("too many minutes".into()))
            };
            account.included_basic_seconds = account
                .included_basic_seconds
                .checked_add(seconds(basic_minutes)?)
                .ok_or_else(|| HostError::Invalid("too many minutes".into()))?;
            account.included_premium_seconds = account
                .included_premium_seconds
                .checked_add(seconds(premium_minutes)?)
                .ok_or_else(|| HostError::Invalid("too many minutes".into()))?;
            self.store.commit(Batch {
                updated: vec![account],
                ..Batch::default()
            })?;
            Ok(())
        })
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
        self.with_outbox(id, || {
            if self.store.call_rated(id, call)? {
                return Ok(Committed::default());
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
        })
    }

    /// `actor` saves the account's auto-recharge settings (R1).
    pub fn save_auto_recharge(
        &self,
        actor: &AccountId,
        id: &AccountId,
        settings: AutoRechargeSettings,
    ) -> Result<EventReport, HostError> {
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
        self.on_behalf(actor, id, |actor| Event::TopUp {
            actor,
            card: card.to_owned(),
            amount,
        })
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

    /// `actor` asks about the account; nothing changes.
    pub fn query(
        &self,
        actor: &AccountId,
        id: &AccountId,
        what: QueryKind,
    ) -> Result<Answer, HostError> {
        self.account(actor)?;
        self.serialised(id, || {
            let (selected, mut ctx) = self.context(id)?;
            let verdict = selected.policy.query(actor.as_str(), what, &mut ctx);
            self.settle_verdict(&selected, &ctx, verdict)
        })
    }

    /// What the account's policy keeps for it (settings, allocation), for reports.
    ///
    /// A report, not an event: a fault is returned, not recorded as a notice or
    /// counted towards quarantine.
    pub fn describe(&self, id: &AccountId) -> Result<AccountView, HostError> {
        let (selected, mut ctx) = self.context(id)?;
        selected.policy.describe(&mut ctx).map_err(HostError::Fault)
    }

    /// Give `owner` (a user or agency) and its sub-accounts their own policy.
    pub fn set_policy(&self, owner: &AccountId, component: &[u8]) -> Result<String, HostError> {
        let account = self.account(owner)?;
        if account.kind == AccountKind::SubAccount {
            return Err(HostError::Invalid(format!(
                "{owner} is a sub-account: policies are set on users and agencies"
            )));
        }
        let policy = self.engine.load(component)?;
        let name = policy.name().to_owned();
        self.tenants.assign(owner.clone(), Arc::new(policy));
        Ok(name)
    }

    /// Give `owner` a policy already loaded (a native one, or one shared by tenants).
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
        let mut report = EventReport::default();
        let mut fired: HashMap<AccountId, u32> = HashMap::new();
        let limit = self.guardrails.max_timers_per_account_per_advance;
        while let Some(stored) = self.store.next_timer(at)? {
            if let Clock::Simulated(now) = &self.clock {
                now.fetch_max(stored.timer.due, Ordering::SeqCst);
            }
            self.store.commit(Batch {
                fired: vec![stored.id],
                ..Batch::default()
            })?;
            let account = stored.timer.account.clone();
            let count = fired.entry(account.clone()).or_default();
            *count += 1;
            if *count > limit {
                // A runaway chain: fault once, then let its wake-ups lapse.
                if *count == limit + 1 {
                    let selected = self.tenants.select(&self.account(&account)?);
                    self.report_fault(&selected, &account, &PolicyFault::Runaway(limit))?;
                }
                continue;
            }
            match self.with_outbox(&account, || {
                self.decide(&account, &Event::Timer(stored.timer.tag))
            }) {
                Ok(done) => report.add(done),
                // A fault is already reported to the account; a rejection of a
                // wake-up has no one to answer to. Time goes on either way.
                Err(HostError::Fault(_) | HostError::Rejected(_)) => {}
                Err(other) => return Err(other),
            }
        }
        if let Clock::Simulated(now) = &self.clock {
            now.fetch_max(at, Ordering::SeqCst);
        }
        Ok(report)
    }

    /// Execute every charge waiting in the outbox (after a restart, say). Keys make
    /// it safe: a charge the gateway already saw is not charged again.
    pub fn run_outbox(&self) -> Result<EventReport, HostError> {
        let keys = self
            .store
            .pending_charges()?
            .into_iter()
            .map(|charge| charge.key)
            .collect();
        self.execute(keys)
    }

    /// A payment outcome reported by the gateway. Applied once: a second delivery
    /// of the same key changes nothing and returns `false`.
    pub fn deliver_outcome(&self, key: &str, outcome: ChargeOutcome) -> Result<bool, HostError> {
        let Some(request) = self.store.pending_charge(key)? else {
            return Ok(false);
        };
        let Some(reaction) = self.settle(request, outcome)? else {
            return Ok(false);
        };
        self.execute(reaction.charges)?;
        Ok(true)
    }

    /// Run `work` serialised on the account's family, then execute the charges it
    /// committed (and those their outcomes lead to).
    fn with_outbox(
        &self,
        id: &AccountId,
        work: impl FnOnce() -> Result<Committed, HostError>,
    ) -> Result<EventReport, HostError> {
        let committed = self.serialised(id, work)?;
        let mut report = committed.report;
        report.add(self.execute(committed.charges)?);
        Ok(report)
    }

    /// Charge each key through the gateway, settle it and deliver its outcome;
    /// charges requested while reacting are executed in turn.
    fn execute(&self, mut keys: Vec<String>) -> Result<EventReport, HostError> {
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
                report.add(reaction.report);
                keys.extend(reaction.charges);
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
    ) -> Result<Option<Committed>, HostError> {
        let requested_by = request.requested_by.clone();
        self.serialised(&requested_by, || {
            let event = Event::PaymentOutcome(PaymentOutcome {
                key: request.key.clone(),
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
                Err(HostError::Fault(_) | HostError::Rejected(_)) => Ok(Some(Committed::default())),
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
                    .ok_or_else(|| HostError::Invalid("balance overflow".into()))?;
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

    /// The accounts handed to an event about `id`, and the policy deciding.
    fn context(&self, id: &AccountId) -> Result<(Selected, EventContext), HostError> {
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
    fn decide(&self, id: &AccountId, event: &Event) -> Result<Committed, HostError> {
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

    /// Commit what a policy decided (and the calls the host rated for it); `None`
    /// if its accounts changed meanwhile and the event must run again.
    fn commit(
        &self,
        ctx: EventContext,
        rated_calls: Vec<(AccountId, String)>,
    ) -> Result<Option<Committed>, HostError> {
        let committed = Committed {
            report: EventReport {
                decisions: 1,
                fuel: ctx.fuel_used,
            },
            charges: ctx
                .charges()
                .iter()
                .map(|charge| charge.key.clone())
                .collect(),
        };
        let mut batch = ctx.into_batch();
        batch.rated_calls = rated_calls;
        match self.store.commit(batch) {
            Ok(()) => Ok(Some(committed)),
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }

    /// Turn a policy's verdict into a result, reporting faults (H5) and
    /// quarantining a tenant after repeated ones (H6).
    fn settle_verdict<T>(
        &self,
        selected: &Selected,
        ctx: &EventContext,
        verdict: Result<Result<T, PolicyError>, PolicyFault>,
    ) -> Result<T, HostError> {
        match verdict {
            Ok(answer) => {
                if let Some(tenant) = &selected.tenant {
                    tenant.record_success();
                }
                answer.map_err(HostError::Rejected)
            }
            Err(fault) => {
                let subject = ctx
                    .account(recharge_guest::Role::Subject)
                    .map(|account| account.id.clone())
                    .ok_or_else(|| HostError::Invalid("event without a subject".into()))?;
                self.report_fault(selected, &subject, &fault)?;
                Err(HostError::Fault(fault))
            }
        }
    }

    fn report_fault(
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

/// Money for reports: see [`recharge_guest::money::display`].
pub fn money(amount: Decimal) -> String {
    display(amount)
}
