//! The faults the simulation injects, each drawn from the seed's own stream so a
//! seed replays exactly: a store that conflicts, fails or crashes (before or
//! after applying a batch), a gateway whose answers are lost (before the card
//! is charged or after), and a tenant policy that faults.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use recharge_host::model::{AccountView, Answer, Event, QueryKind};
use recharge_host::{
    AccountId, Batch, EventContext, Gateway, GatewayAnswer, GatewayCharge, HookedStore, Policy,
    PolicyFault, SimulatedGateway, Store, StoreError, StoreHooks, StoreRead, Unknown, Verdict,
};

/// How often each fault strikes, per million chances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// A commit refused as a conflict.
    pub conflict: u32,
    /// A commit failing without applying (a reset connection).
    pub backend: u32,
    /// The host crashing before a commit applies.
    pub crash_before: u32,
    /// The host crashing after a commit applied, before it learnt so.
    pub crash_after: u32,
    /// A gateway request lost before it reached the card network.
    pub lost_before: u32,
    /// A gateway answer lost after the card was charged.
    pub lost_after: u32,
    /// A tenant policy faulting on an event.
    pub policy: u32,
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            conflict: 20_000,
            backend: 10_000,
            crash_before: 8_000,
            crash_after: 8_000,
            lost_before: 40_000,
            lost_after: 40_000,
            policy: 150_000,
        }
    }
}

/// What was injected, for the run's report.
#[derive(Debug, Default)]
pub struct Counts {
    /// Commits refused as conflicts.
    pub conflicts: AtomicU64,
    /// Commits failed without a crash.
    pub backend: AtomicU64,
    /// Host crashes.
    pub crashes: AtomicU64,
    /// Gateway answers lost (before or after charging).
    pub lost_answers: AtomicU64,
    /// Tenant policy faults.
    pub policy_faults: AtomicU64,
}

/// The seed's fault source, shared by the faulty parts.
#[derive(Debug)]
pub struct Faults {
    enabled: AtomicBool,
    rates: Rates,
    rng: Mutex<ChaCha8Rng>,
    /// What was injected so far.
    pub counts: Counts,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Faults {
    /// Faults at `rates`, drawn from a stream of their own seeded by `seed`.
    pub fn new(seed: u64, rates: Rates) -> Self {
        Faults {
            enabled: AtomicBool::new(true),
            rates,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_fa17)),
            counts: Counts::default(),
        }
    }

    /// Inject faults or not (off for setting up a world, and for good in the
    /// liveness phase).
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::SeqCst);
    }

    /// Whether faults are being injected.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    /// Whether a fault striking `per_million` times in a million strikes now.
    fn strikes(&self, per_million: u32) -> bool {
        if !self.enabled() || per_million == 0 {
            return false;
        }
        let mut rng = self
            .rng
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        rng.random_range(0..1_000_000) < per_million
    }
}

/// Hooks that make a store fail as a real one does, and die with the host:
/// after a crash every call fails (reports aside) until the world restarts the
/// host.
#[derive(Debug)]
pub struct Crashing {
    faults: Arc<Faults>,
    crashed: AtomicBool,
}

/// A memory store with the failures of [`Crashing`].
pub type FaultyStore = HookedStore<Crashing>;

/// `inner` (an empty store) failing with `faults`.
pub fn faulty_store(inner: Arc<dyn Store>, faults: Arc<Faults>) -> FaultyStore {
    let hooks = Crashing {
        faults,
        crashed: AtomicBool::new(false),
    };
    HookedStore::new(inner, hooks)
}

impl Crashing {
    /// Whether the host crashed since it last started.
    pub fn crashed(&self) -> bool {
        self.crashed.load(Ordering::SeqCst)
    }

    /// The host starts again.
    pub fn restart(&self) {
        self.crashed.store(false, Ordering::SeqCst);
    }

    fn alive(&self) -> Result<(), StoreError> {
        if self.crashed() {
            return Err(StoreError::Backend("the host crashed".into()));
        }
        Ok(())
    }

    fn crash(&self, when: &str) -> StoreError {
        self.crashed.store(true, Ordering::SeqCst);
        bump(&self.faults.counts.crashes);
        StoreError::Backend(format!("the host crashed {when} a commit"))
    }
}

impl StoreHooks for Crashing {
    fn before_read(&self, read: StoreRead) -> Result<(), StoreError> {
        // The checker reads reports whatever became of the host.
        if read == StoreRead::Reports {
            return Ok(());
        }
        self.alive()
    }

    fn before_commit(&self, batch: &Batch) -> Result<(), StoreError> {
        self.alive()?;
        let faults = &self.faults;
        if faults.strikes(faults.rates.conflict) {
            bump(&faults.counts.conflicts);
            let id = batch
                .updated
                .first()
                .map(|account| account.id.clone())
                .unwrap_or_else(|| AccountId::from("-"));
            return Err(StoreError::Conflict(id));
        }
        if faults.strikes(faults.rates.backend) {
            bump(&faults.counts.backend);
            return Err(StoreError::Backend("connection reset".into()));
        }
        if faults.strikes(faults.rates.crash_before) {
            return Err(self.crash("before"));
        }
        Ok(())
    }

    fn after_commit(&self, _batch: &Batch) -> Result<(), StoreError> {
        if self.faults.strikes(self.faults.rates.crash_after) {
            return Err(self.crash("after"));
        }
        Ok(())
    }
}

/// A gateway whose answers get lost on the way: before the request reached the
/// card network (nothing was charged) or after (the card was charged).
#[derive(Debug)]
pub struct FaultyGateway {
    network: Arc<SimulatedGateway>,
    faults: Arc<Faults>,
}

impl FaultyGateway {
    /// The card network behind a faulty connection.
    pub fn new(network: Arc<SimulatedGateway>, faults: Arc<Faults>) -> Self {
        FaultyGateway { network, faults }
    }
}

impl Gateway for FaultyGateway {
    fn submit(&self, charge: &GatewayCharge<'_>) -> Result<GatewayAnswer, Unknown> {
        let faults = &self.faults;
        if faults.strikes(faults.rates.lost_before) {
            bump(&faults.counts.lost_answers);
            return Err(Unknown(
                "connection reset before the request arrived".into(),
            ));
        }
        let answer = self.network.submit(charge);
        if faults.strikes(faults.rates.lost_after) {
            bump(&faults.counts.lost_answers);
            return Err(Unknown("timeout after the request arrived".into()));
        }
        answer
    }
}

/// A tenant's policy: the default policy's rules, with faults of its own.
pub struct FlakyPolicy {
    inner: Arc<dyn Policy>,
    faults: Arc<Faults>,
}

impl FlakyPolicy {
    /// `inner`, faulting now and then.
    pub fn new(inner: Arc<dyn Policy>, faults: Arc<Faults>) -> Self {
        FlakyPolicy { inner, faults }
    }
}

impl Policy for FlakyPolicy {
    fn name(&self) -> &str {
        "flaky"
    }

    fn handle(&self, event: &Event, ctx: &mut EventContext) -> Verdict<()> {
        if self.faults.strikes(self.faults.rates.policy) {
            bump(&self.faults.counts.policy_faults);
            return Err(PolicyFault::Trap("an injected fault".into()));
        }
        self.inner.handle(event, ctx)
    }

    fn query(&self, actor: &str, what: QueryKind, ctx: &mut EventContext) -> Verdict<Answer> {
        self.inner.query(actor, what, ctx)
    }

    fn describe(&self, ctx: &mut EventContext) -> Result<AccountView, PolicyFault> {
        self.inner.describe(ctx)
    }
}
