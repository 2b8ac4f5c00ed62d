//! A deterministic simulation of the whole host, in the manner of TigerBeetle's
//! VOPR and FoundationDB's simulation testing.
//!
//! One seed drives everything: random accounts, settings, usage, top-ups,
//! allocations, rate changes and card behaviours, through a platform with the
//! simulated gateway and clock, the real default policy component, and a
//! tenant policy with faults of its own. Faults are injected as it runs: lost
//! gateway answers (before the card was charged and after), pending outcomes
//! whose webhooks arrive late, twice and out of order, requires_action and
//! declines, store conflicts and failures, policy faults, and host crashes at
//! random points (the platform is dropped mid-step and rebuilt from the same
//! store and card network). Safety is checked as it goes; once faults stop and
//! time runs on, liveness too (see [`check`]). The same seed replays exactly.

pub mod check;
mod faults;
mod world;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use recharge_host::{DEFAULT_POLICY, HostError, Limits, MemoryStore, Policy, PolicyEngine, Store};

use self::world::World;

/// Commands a seed runs before faults stop, unless told otherwise.
pub const DEFAULT_STEPS: usize = 60;

/// What every seed shares: the engine and the compiled default policy.
pub struct Shared {
    engine: PolicyEngine,
    default: Arc<dyn Policy>,
}

impl Shared {
    /// The engine with the default limits and the embedded default policy,
    /// compiled once (through `cache_dir` when given).
    pub fn new(cache_dir: Option<std::path::PathBuf>) -> Result<Self, HostError> {
        let engine = PolicyEngine::new(Limits::default(), cache_dir)?;
        let default: Arc<dyn Policy> = Arc::new(engine.load(DEFAULT_POLICY)?);
        Ok(Shared { engine, default })
    }

    /// An engine and a default policy already built (by a test harness, say).
    pub fn from_parts(engine: PolicyEngine, default: Arc<dyn Policy>) -> Self {
        Shared { engine, default }
    }
}

/// What happened in the seeds run, added up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Policy decisions made.
    pub decisions: u64,
    /// Host restarts (after crashes, and asked for between commands).
    pub restarts: u64,
    /// Restarts asked for between commands.
    pub restarts_asked: u64,
    /// Webhooks delivered (duplicates and late ones included).
    pub webhooks: u64,
    /// Accounts probed for a recharge stuck in flight.
    pub probes: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Store conflicts and failures injected.
    pub store_faults: u64,
    /// Gateway answers lost.
    pub lost_answers: u64,
    /// Tenant policy faults injected.
    pub policy_faults: u64,
    /// Money the card network took (cents).
    pub charged_cents: u64,
    /// Card charges made.
    pub card_charges: u64,
}

impl Stats {
    fn add(&mut self, other: &Stats) {
        self.decisions += other.decisions;
        self.restarts += other.restarts;
        self.restarts_asked += other.restarts_asked;
        self.webhooks += other.webhooks;
        self.probes += other.probes;
        self.crashes += other.crashes;
        self.store_faults += other.store_faults;
        self.lost_answers += other.lost_answers;
        self.policy_faults += other.policy_faults;
        self.charged_cents += other.charged_cents;
        self.card_charges += other.card_charges;
    }
}

/// A seed whose run broke an invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The seed.
    pub seed: u64,
    /// The step it broke at (commands run; the liveness phase comes after).
    pub step: usize,
    /// Commands the seed ran.
    pub steps: usize,
    /// What broke.
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} step {}: {} (reproduce: cargo run --release -- vopr --seed {} --steps {}, with --sqlite DIR if it ran on SQLite)",
            self.seed, self.step, self.what, self.seed, self.steps
        )
    }
}

/// Run one seed for `steps` commands, then its liveness phase, on a memory
/// store.
pub fn run_seed(shared: &Shared, seed: u64, steps: usize) -> Result<Stats, Violation> {
    run_seed_on(shared, seed, steps, Arc::new(MemoryStore::new()))
}

/// Run one seed on `store` (empty): any backend, behind the injected faults.
pub fn run_seed_on(
    shared: &Shared,
    seed: u64,
    steps: usize,
    store: Arc<dyn Store>,
) -> Result<Stats, Violation> {
    let violation = |(step, what): (usize, String)| Violation {
        seed,
        step,
        what,
        steps,
    };
    let mut world = World::new(shared, seed, store).map_err(violation)?;
    world.run(steps).map_err(violation)?;
    Ok(world.stats())
}

/// What a run of many seeds found.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// What happened in them.
    pub stats: Stats,
    /// The seeds that broke an invariant.
    pub violations: Vec<Violation>,
}

/// Where each seed keeps its state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Backing {
    /// A memory store.
    #[default]
    Memory,
    /// A SQLite file per seed in this folder (`seed-N.db`, removed once the
    /// seed passed; a failing seed's file is kept to look at).
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL schema per seed (`seed_N`, dropped once the seed passed)
    /// in the database at this URL.
    Postgres(String),
}

impl Backing {
    /// A fresh store for `seed`.
    fn open(&self, seed: u64) -> Result<Arc<dyn Store>, String> {
        match self {
            Backing::Memory => Ok(Arc::new(MemoryStore::new())),
            Backing::Sqlite(dir) => {
                let path = self.path(dir, seed);
                self.remove(seed);
                let store = recharge_host::SqliteStore::open(&path)
                    .map_err(|err| format!("{}: {err}", path.display()))?;
                Ok(Arc::new(store))
            }
            Backing::Postgres(url) => {
                let schema = format!("seed_{seed}");
                let store = recharge_host::PostgresStore::open_empty_schema(url, &schema, 2)
                    .map_err(|err| format!("{schema}: {err}"))?;
                Ok(Arc::new(store))
            }
        }
    }

    fn path(&self, dir: &std::path::Path, seed: u64) -> std::path::PathBuf {
        dir.join(format!("seed-{seed}.db"))
    }

    /// Remove a seed's files, if it has any.
    fn remove(&self, seed: u64) {
        match self {
            Backing::Memory => {}
            Backing::Sqlite(dir) => {
                let path = self.path(dir, seed);
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Backing::Postgres(url) => {
                let _ = recharge_host::PostgresStore::drop_schema(url, &format!("seed_{seed}"));
            }
        }
    }
}

/// Run `seeds` on `threads` threads (each seed on one thread, alone), calling
/// `progress` with the number of seeds done now and then.
pub fn run_seeds(
    shared: &Shared,
    seeds: Range<u64>,
    steps: usize,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Summary {
    run_seeds_on(shared, &Backing::Memory, seeds, steps, threads, progress)
}

/// [`run_seeds`] with each seed's state in `backing`.
pub fn run_seeds_on(
    shared: &Shared,
    backing: &Backing,
    seeds: Range<u64>,
    steps: usize,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Summary {
    let next = AtomicU64::new(seeds.start);
    let done = AtomicU64::new(0);
    let threads = threads.max(1);
    let parts: Vec<Summary> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut summary = Summary::default();
                    loop {
                        let seed = next.fetch_add(1, Ordering::Relaxed);
                        if seed >= seeds.end {
                            break summary;
                        }
                        let ran = backing
                            .open(seed)
                            .map_err(|what| Violation {
                                seed,
                                step: 0,
                                steps,
                                what,
                            })
                            .and_then(|store| run_seed_on(shared, seed, steps, store));
                        match ran {
                            Ok(stats) => {
                                summary.stats.add(&stats);
                                backing.remove(seed);
                            }
                            Err(violation) => summary.violations.push(violation),
                        }
                        summary.seeds += 1;
                        let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if finished.is_multiple_of(1_000) {
                            progress(finished);
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap_or_default())
            .collect()
    });
    let mut summary = Summary::default();
    for part in parts {
        summary.seeds += part.seeds;
        summary.stats.add(&part.stats);
        summary.violations.extend(part.violations);
    }
    summary.violations.sort_by_key(|violation| violation.seed);
    summary
}
