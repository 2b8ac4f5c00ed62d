//! One seed's world: accounts, a host over a faulty store and gateway, the card
//! network behind it, webhooks in transit, and a client that drives it all with
//! random commands and restarts the host when it crashes.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use recharge_host::model::{
    AccountKind, AllocationSettings, AutoRechargeSettings, MinuteType, Mode, Rates, Timestamp,
};
use recharge_host::{
    AccountId, CardBehavior, EventReport, GatewayAnswer, HostError, Platform, Settlement,
    SimulatedGateway, Store,
};
use rust_decimal::Decimal;

use super::check::{self, Snapshot};
use super::faults::{
    Faults, FaultyGateway, FaultyStore, FlakyPolicy, Rates as FaultRates, faulty_store,
};
use super::{Shared, Stats};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// 2027-01-01T00:00:00Z: every seed starts there.
const START: Timestamp = 1_798_761_600_000;

/// An account as the client knows it.
struct Known {
    id: AccountId,
    kind: AccountKind,
    parent: Option<AccountId>,
    cards: Vec<&'static str>,
}

/// A webhook on its way to the host, maybe late, maybe again.
struct InTransit {
    at: Timestamp,
    key: String,
    settlement: Settlement,
}

/// How a command ended, as the client sees it.
enum Ended {
    /// Done, or refused for the caller's or the policy's reasons.
    Answered,
    /// The host failed (a store fault, a crash); the client may try again.
    HostFailed,
}

/// The world of one seed.
pub struct World<'a> {
    shared: &'a Shared,
    step: usize,
    rng: ChaCha8Rng,
    faults: Arc<Faults>,
    store: Arc<FaultyStore>,
    network: Arc<SimulatedGateway>,
    gateway: Arc<FaultyGateway>,
    platform: Platform,
    rates: Rates,
    accounts: Vec<Known>,
    /// Owners whose family runs the flaky tenant policy.
    tenants: Vec<AccountId>,
    transit: Vec<InTransit>,
    /// Usage records the host failed to take, to send again with the same id.
    unrecorded: Vec<(AccountId, String, i64, MinuteType)>,
    calls: u64,
    /// What happened, for the report.
    pub stats: Stats,
}

/// A violation: what broke, at which step.
pub type Broken = (usize, String);

impl<'a> World<'a> {
    /// A world for `seed` on `store` (empty): a few users, agencies and sub-accounts with cards,
    /// some of them under the flaky tenant policy.
    pub fn new(shared: &'a Shared, seed: u64, store: Arc<dyn Store>) -> Result<Self, Broken> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let faults = Arc::new(Faults::new(seed, FaultRates::default()));
        let store = Arc::new(faulty_store(store, Arc::clone(&faults)));
        let network = Arc::new(SimulatedGateway::new());
        let gateway = Arc::new(FaultyGateway::new(
            Arc::clone(&network),
            Arc::clone(&faults),
        ));
        let rates = recharge_host::default_rates();
        let platform = build(shared, &store, &gateway, rates, START).map_err(|err| (0, err))?;
        let mut world = World {
            shared,
            step: 0,
            rng: ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            faults,
            store,
            network,
            gateway,
            platform,
            rates,
            accounts: Vec::new(),
            tenants: Vec::new(),
            transit: Vec::new(),
            unrecorded: Vec::new(),
            calls: 0,
            stats: Stats::default(),
        };
        // Accounts open before the faults start: opening is not under test.
        world.faults_paused(|world| {
            for user in 0..rng.random_range(1..=3) {
                world.open(&format!("u{user}"), AccountKind::User, None);
            }
            for agency in 0..rng.random_range(0..=2) {
                let owner = format!("a{agency}");
                world.open(&owner, AccountKind::Agency, None);
                for sub in 0..rng.random_range(1..=2) {
                    world.open(
                        &format!("a{agency}s{sub}"),
                        AccountKind::SubAccount,
                        Some(AccountId(owner.clone())),
                    );
                }
            }
            let owners: Vec<AccountId> = world
                .accounts
                .iter()
                .filter(|known| known.kind != AccountKind::SubAccount)
                .map(|known| known.id.clone())
                .collect();
            for owner in owners {
                if rng.random_ratio(1, 4) {
                    world.tenants.push(owner);
                }
            }
            world.assign_tenants()
        })?;
        Ok(world)
    }

    /// Run `steps` random commands with faults, then the liveness phase; check
    /// safety as it goes and everything at the end.
    pub fn run(&mut self, steps: usize) -> Result<(), Broken> {
        for step in 1..=steps {
            self.step = step;
            self.random_command()?;
            if step % 16 == 0 {
                self.check_safety()?;
            }
        }
        self.check_safety()?;
        self.settle_down()?;
        self.probe_auto_recharge()?;
        self.check_safety()?;
        let snapshot = self.snapshot()?;
        check::liveness(&self.platform, &self.network, &snapshot, self.transit.len())
            .map_err(|what| (self.step, format!("liveness: {what}")))
    }

    /// What happened, with the faults injected and the money moved.
    pub fn stats(&self) -> Stats {
        let counts = &self.faults.counts;
        let load = |counter: &std::sync::atomic::AtomicU64| {
            counter.load(std::sync::atomic::Ordering::Relaxed)
        };
        let cards = self.network.card_charges();
        let cents: Decimal =
            cards.iter().map(|card| card.amount).sum::<Decimal>() * Decimal::ONE_HUNDRED;
        Stats {
            crashes: load(&counts.crashes),
            store_faults: load(&counts.conflicts) + load(&counts.backend),
            lost_answers: load(&counts.lost_answers),
            policy_faults: load(&counts.policy_faults),
            card_charges: cards.len() as u64,
            charged_cents: u64::try_from(cents.trunc()).unwrap_or(0),
            ..self.stats.clone()
        }
    }

    fn broken(&self, what: impl Into<String>) -> Broken {
        (self.step, what.into())
    }

    /// Run `work` with no faults injected (what it does is not under test).
    fn faults_paused<R>(
        &mut self,
        work: impl FnOnce(&mut Self) -> Result<R, Broken>,
    ) -> Result<R, Broken> {
        let enabled = self.faults.enabled();
        self.faults.set_enabled(false);
        let result = work(self);
        self.faults.set_enabled(enabled);
        result
    }

    fn open(&mut self, name: &str, kind: AccountKind, parent: Option<AccountId>) {
        let id = AccountId(name.to_owned());
        if self
            .platform
            .open_account(id.clone(), kind, parent.clone())
            .is_ok()
        {
            let _ = self.platform.add_card(&id, "visa");
            self.accounts.push(Known {
                id,
                kind,
                parent,
                cards: vec!["visa"],
            });
        }
    }

    fn assign_tenants(&mut self) -> Result<(), Broken> {
        for owner in self.tenants.clone() {
            let flaky =
                FlakyPolicy::new(Arc::clone(&self.shared.default), Arc::clone(&self.faults));
            self.platform
                .set_policy_object(&owner, Arc::new(flaky))
                .map_err(|err| self.broken(format!("assigning a tenant: {err}")))?;
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Snapshot, Broken> {
        Snapshot::read(&self.platform, &self.network)
            .map_err(|err| self.broken(format!("reading the store: {err}")))
    }

    fn check_safety(&mut self) -> Result<(), Broken> {
        if self.store.hooks().crashed() {
            self.restart()?;
        }
        let snapshot = self.snapshot()?;
        check::safety(&self.platform, &self.network, &snapshot)
            .map_err(|what| self.broken(format!("safety: {what}")))
    }

    /// The host died: build a new one on the same store and card network, as a
    /// restarted process would, and let it resume its outbox.
    fn restart(&mut self) -> Result<(), Broken> {
        let now = self.platform.now();
        self.store.hooks().restart();
        self.stats.restarts += 1;
        self.platform = build(self.shared, &self.store, &self.gateway, self.rates, now)
            .map_err(|err| self.broken(err))?;
        // Tenancy lives in the process for now (the durable store keeps it):
        // the restarted host is told again.
        self.faults_paused(|world| world.assign_tenants())?;
        for _ in 0..8 {
            match self.platform.run_outbox() {
                Ok(report) => {
                    self.absorb(&report);
                    break;
                }
                Err(error) => {
                    self.judge(error)?;
                    if self.store.hooks().crashed() {
                        self.store.hooks().restart();
                        self.stats.restarts += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// Take a command's result: the host's failures are expected only while
    /// faults are injected; anything else the host calls its own is a bug.
    fn judge(&self, error: HostError) -> Result<Ended, Broken> {
        match error {
            HostError::Store(_) if self.faults.enabled() => Ok(Ended::HostFailed),
            HostError::Store(store) => {
                Err(self.broken(format!("a store error without a fault: {store}")))
            }
            HostError::Internal(why) => Err(self.broken(format!("an internal error: {why}"))),
            HostError::Fault(_)
            | HostError::Rejected(_)
            | HostError::Invalid(_)
            | HostError::UnknownAccount(_)
            | HostError::AlreadyExists(_) => Ok(Ended::Answered),
            other => Err(self.broken(format!("an unexpected host error: {other}"))),
        }
    }

    fn absorb(&mut self, report: &EventReport) {
        self.stats.decisions += report.decisions;
    }

    /// Run one command; a crash restarts the host.
    fn command(
        &mut self,
        run: impl FnOnce(&Platform) -> Result<EventReport, HostError>,
    ) -> Result<Ended, Broken> {
        let ended = match run(&self.platform) {
            Ok(report) => {
                self.absorb(&report);
                Ended::Answered
            }
            Err(error) => self.judge(error)?,
        };
        if self.store.hooks().crashed() {
            self.restart()?;
        }
        Ok(ended)
    }

    fn pick_account(&mut self) -> Known {
        let known = self
            .accounts
            .choose(&mut self.rng)
            .expect("a world has accounts");
        Known {
            id: known.id.clone(),
            kind: known.kind,
            parent: known.parent.clone(),
            cards: known.cards.clone(),
        }
    }

    fn money(&mut self, low_cents: i64, high_cents: i64) -> Decimal {
        Decimal::new(self.rng.random_range(low_cents..=high_cents), 2)
    }

    fn behavior(&mut self) -> CardBehavior {
        let behaviors = [
            CardBehavior::Ok,
            CardBehavior::Ok,
            CardBehavior::Ok,
            CardBehavior::Decline,
            CardBehavior::Fail,
            CardBehavior::FailTimes(self.rng.random_range(1..=4)),
            CardBehavior::Timeout,
            CardBehavior::TimeoutTimes(self.rng.random_range(1..=3)),
            CardBehavior::Pending(self.rng.random_range(1..=180) * MINUTE),
            CardBehavior::RequiresAction,
        ];
        *behaviors.choose(&mut self.rng).expect("behaviours")
    }

    fn random_command(&mut self) -> Result<(), Broken> {
        let roll = self.rng.random_range(0..100);
        let subject = self.pick_account();
        let id = subject.id.clone();
        match roll {
            0..=33 => self.usage(&id)?,
            34..=53 => {
                let by = match self.rng.random_range(0..10) {
                    0..=5 => self.rng.random_range(1..=120) * MINUTE,
                    6..=8 => self.rng.random_range(2..=12) * HOUR,
                    _ => self.rng.random_range(1..=3) * DAY,
                };
                self.advance(self.platform.now() + by)?;
            }
            54..=61 => {
                let card = *subject.cards.choose(&mut self.rng).expect("cards");
                let behavior = self.behavior();
                self.network
                    .set_behavior(&id, card, behavior)
                    .map_err(|error| self.broken(format!("the card network failed: {error}")))?;
            }
            62..=70 => {
                let actor = if self.rng.random_ratio(9, 10) {
                    id.clone()
                } else {
                    self.pick_account().id
                };
                let settings = self.settings(&subject);
                self.command(|platform| platform.save_auto_recharge(&actor, &id, settings))?;
            }
            71..=75 => {
                let amount = if self.rng.random_ratio(1, 10) {
                    self.money(100_000, 150_000)
                } else {
                    self.money(100, 20_000)
                };
                let card = *subject.cards.choose(&mut self.rng).expect("cards");
                self.command(|platform| platform.top_up(&id, &id, card, amount))?;
            }
            76..=81 => {
                if let Some(parent) = subject.parent.clone() {
                    let settings = AllocationSettings {
                        basic_minutes: self.rng.random_range(0..=300),
                        premium_minutes: self.rng.random_range(0..=100),
                        card: "visa".into(),
                    };
                    self.command(|platform| platform.save_allocation(&parent, &id, settings))?;
                }
            }
            82..=85 => {
                let card = *subject.cards.choose(&mut self.rng).expect("cards");
                self.command(|platform| platform.update_card(&id, card))?;
            }
            86..=88 => {
                let rates = Rates {
                    basic: self.money(5, 20),
                    premium: self.money(10, 30),
                };
                if self.platform.set_rates(rates).is_ok() {
                    self.rates = rates;
                }
            }
            89..=91 => {
                if subject.kind != AccountKind::SubAccount {
                    let (basic, premium) = (
                        self.rng.random_range(0..=200),
                        self.rng.random_range(0..=60),
                    );
                    match self.platform.include_minutes(&id, basic, premium) {
                        Ok(()) => {}
                        Err(error) => {
                            self.judge(error)?;
                            if self.store.hooks().crashed() {
                                self.restart()?;
                            }
                        }
                    }
                }
            }
            92..=94 => {
                // The process dies between two commands.
                self.stats.restarts_asked += 1;
                self.restart()?;
            }
            95..=97 => self.redeliver_late(),
            _ => {
                if !subject.cards.contains(&"amex") {
                    if self.platform.add_card(&id, "amex").is_ok() {
                        if let Some(known) = self.accounts.iter_mut().find(|known| known.id == id) {
                            known.cards.push("amex");
                        }
                    } else if self.store.hooks().crashed() {
                        self.restart()?;
                    }
                }
            }
        }
        self.retry_unrecorded()
    }

    fn settings(&mut self, subject: &Known) -> AutoRechargeSettings {
        let mode = if self.rng.random_ratio(1, 4) {
            Mode::Target
        } else {
            Mode::Fixed
        };
        let threshold = self.money(0, 5_000);
        let amount = match mode {
            Mode::Fixed if self.rng.random_ratio(1, 10) => self.money(40_000, 90_000),
            Mode::Fixed => self.money(500, 10_000),
            Mode::Target => threshold + self.money(100, 10_000),
        };
        AutoRechargeSettings {
            enabled: self.rng.random_ratio(6, 7),
            threshold,
            amount,
            card: (*subject.cards.choose(&mut self.rng).expect("cards")).to_owned(),
            mode,
            monthly_limit: self
                .rng
                .random_ratio(1, 4)
                .then(|| self.money(5_000, 50_000)),
        }
    }

    fn usage(&mut self, id: &AccountId) -> Result<(), Broken> {
        let call = if self.calls > 0 && self.rng.random_ratio(1, 10) {
            format!("c{}", self.rng.random_range(0..self.calls))
        } else {
            self.calls += 1;
            format!("c{}", self.calls - 1)
        };
        let seconds = if self.rng.random_ratio(1, 10) {
            self.rng.random_range(3_600..=30_000)
        } else {
            self.rng.random_range(1..=1_800)
        };
        let minute_type = if self.rng.random_ratio(1, 3) {
            MinuteType::Premium
        } else {
            MinuteType::Basic
        };
        self.record(id.clone(), call, seconds, minute_type)
    }

    /// Record a call; a host failure leaves it to send again with the same id.
    fn record(
        &mut self,
        id: AccountId,
        call: String,
        seconds: i64,
        minute_type: MinuteType,
    ) -> Result<(), Broken> {
        let ended =
            self.command(|platform| platform.record_usage(&id, &call, seconds, minute_type))?;
        if let Ended::HostFailed = ended {
            self.unrecorded.push((id, call, seconds, minute_type));
        }
        Ok(())
    }

    fn retry_unrecorded(&mut self) -> Result<(), Broken> {
        for (id, call, seconds, minute_type) in std::mem::take(&mut self.unrecorded) {
            self.record(id, call, seconds, minute_type)?;
        }
        Ok(())
    }

    /// Move time on to `at`: the host's work and the network's webhooks run in
    /// time order; webhooks travel with random delays and duplicates while
    /// faults are on (so they arrive late, twice, and out of order).
    fn advance(&mut self, at: Timestamp) -> Result<(), Broken> {
        for _ in 0..100_000 {
            let now = self.platform.now();
            let webhook = self.network.next_webhook().filter(|due| *due <= at);
            let arriving = self
                .transit
                .iter()
                .map(|hook| hook.at)
                .filter(|due| *due <= at)
                .min();
            let work = match self.platform.next_due(at) {
                Ok(work) => work,
                Err(error) => {
                    self.judge(error)?;
                    self.restart()?;
                    continue;
                }
            };
            let Some(step) = [webhook, arriving, work].into_iter().flatten().min() else {
                let target = at.max(now);
                return match self.command(|platform| platform.advance_to(target)) {
                    Ok(Ended::Answered) => Ok(()),
                    Ok(Ended::HostFailed) => continue,
                    Err(broken) => Err(broken),
                };
            };
            let step = step.max(now);
            if let Ended::HostFailed = self.command(|platform| platform.advance_to(step))? {
                continue;
            }
            let webhooks = self
                .network
                .take_webhooks(step)
                .map_err(|error| self.broken(format!("the card network failed: {error}")))?;
            for hook in webhooks {
                self.send_webhook(hook.at, hook.key, hook.settlement);
            }
            let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.transit)
                .into_iter()
                .partition(|hook| hook.at <= step);
            self.transit = later;
            for hook in due {
                self.stats.webhooks += 1;
                let answer = GatewayAnswer::Settled(hook.settlement.clone());
                match self.platform.deliver_outcome(&hook.key, answer) {
                    Ok(_) => {}
                    Err(error) => {
                        // Not taken: the gateway sends it again later.
                        self.judge(error)?;
                        self.transit.push(InTransit {
                            at: step + MINUTE,
                            ..hook
                        });
                        if self.store.hooks().crashed() {
                            self.restart()?;
                        }
                    }
                }
            }
        }
        Err(self.broken("time did not reach its target in 100,000 steps"))
    }

    /// A webhook leaves the network: at once while faults are off, else after a
    /// random delay, sometimes more than once.
    fn send_webhook(&mut self, at: Timestamp, key: String, settlement: Settlement) {
        let copies = if self.faults.enabled() {
            self.rng.random_range(1..=3)
        } else {
            1
        };
        for _ in 0..copies {
            let delay = if self.faults.enabled() {
                self.rng.random_range(0..=120) * MINUTE
            } else {
                0
            };
            self.transit.push(InTransit {
                at: at + delay,
                key: key.clone(),
                settlement: settlement.clone(),
            });
        }
    }

    /// A webhook of a charge settled long ago comes again.
    fn redeliver_late(&mut self) {
        let Ok(charges) = self.platform.charges() else {
            return;
        };
        let Some(record) = charges.choose(&mut self.rng) else {
            return;
        };
        let settlement = Settlement {
            outcome: record.outcome,
            reference: record.reference.clone(),
            reason: record.reason.clone(),
        };
        let now = self.platform.now();
        self.transit.push(InTransit {
            at: now,
            key: record.request.key.clone(),
            settlement,
        });
    }

    /// Faults stop; time runs on for 40 days, delivering everything in transit.
    fn settle_down(&mut self) -> Result<(), Broken> {
        self.step += 1;
        self.faults.set_enabled(false);
        self.restart()?;
        self.retry_unrecorded()?;
        for hook in &mut self.transit {
            hook.at = hook.at.min(self.platform.now());
        }
        let end = self.platform.now() + 40 * DAY;
        while self.platform.now() < end {
            let next = (self.platform.now() + 6 * HOUR).min(end);
            self.advance(next)?;
        }
        Ok(())
    }

    /// Nothing stuck in flight: every account on the default policy with
    /// auto-recharge on, no monthly limit and a working card recharges when a
    /// call takes it below its threshold and its card is updated.
    fn probe_auto_recharge(&mut self) -> Result<(), Broken> {
        self.step += 1;
        let families: Vec<AccountId> = self.tenants.clone();
        let mut probed = BTreeMap::new();
        for known in &self.accounts {
            let owner = known.parent.clone().unwrap_or_else(|| known.id.clone());
            if families.contains(&owner) {
                continue;
            }
            let view = self
                .platform
                .describe(&known.id)
                .map_err(|err| (self.step, format!("describe {}: {err}", known.id)))?;
            if let Some(settings) = view.auto_recharge
                && settings.enabled
                && settings.monthly_limit.is_none()
            {
                probed.insert(known.id.clone(), settings);
            }
        }
        for (id, settings) in probed {
            self.network
                .set_behavior(&id, &settings.card, CardBehavior::Ok)
                .map_err(|error| self.broken(format!("the card network failed: {error}")))?;
            let account = self
                .platform
                .account(&id)
                .map_err(|err| self.broken(err.to_string()))?;
            // A call that takes the balance just below the threshold, after
            // the minutes it would use first.
            let gap = account.balance - settings.threshold + Decimal::ONE;
            let seconds_of_wallet = (gap * Decimal::from(60) / self.rates.premium).ceil();
            let seconds = i64::try_from(seconds_of_wallet)
                .unwrap_or(i64::MAX)
                .max(1)
                .saturating_add(account.included_premium_seconds.max(0))
                .saturating_add(account.premium_seconds.max(0));
            if seconds > 7 * 24 * 3_600 {
                continue;
            }
            self.calls += 1;
            let call = format!("probe{}", self.calls);
            let mut asked = self
                .platform
                .record_usage(&id, &call, seconds, MinuteType::Premium)
                .map_err(|err| self.broken(format!("probe call of {id}: {err}")))?;
            let updated = self
                .platform
                .update_card(&id, &settings.card)
                .map_err(|err| self.broken(format!("probe card update of {id}: {err}")))?;
            asked.add(updated);
            let deferred = asked
                .notices
                .iter()
                .any(|notice| notice.kind == "recharge_deferred");
            if asked.charges.is_empty() && !deferred {
                return Err(self.broken(format!(
                    "{id} is below its threshold with auto-recharge on and asked for no charge: a recharge stuck in flight"
                )));
            }
            self.stats.probes += 1;
        }
        let end = self.platform.now() + DAY;
        self.advance(end)?;
        self.drain()
    }

    /// Time runs on, six hours at a time for up to a week, until nothing is in
    /// flight: a monthly run that came due just now may still be pending at
    /// the gateway, but nothing may stay so.
    fn drain(&mut self) -> Result<(), Broken> {
        for _ in 0..28 {
            let quiet = self.transit.is_empty()
                && self
                    .platform
                    .outbox()
                    .map_err(|err| self.broken(err.to_string()))?
                    .is_empty()
                && self
                    .platform
                    .inbox()
                    .map_err(|err| self.broken(err.to_string()))?
                    .is_empty();
            if quiet {
                return Ok(());
            }
            let next = self.platform.now() + 6 * HOUR;
            self.advance(next)?;
        }
        Ok(())
    }
}

/// A host over the world's store and gateway, at `now`.
fn build(
    shared: &Shared,
    store: &Arc<FaultyStore>,
    gateway: &Arc<FaultyGateway>,
    rates: Rates,
    now: Timestamp,
) -> Result<Platform, String> {
    Platform::builder()
        .engine(shared.engine.clone())
        .default_policy(Arc::clone(&shared.default))
        .store(Arc::clone(store) as _)
        .gateway(Arc::clone(gateway) as _)
        .rates(rates)
        .simulated_clock(now)
        .build()
        .map_err(|err| format!("building the host: {err}"))
}
