//! Durable speed: usage events through the default policy on a database that
//! holds many accounts, every event committed before the next starts and each
//! one timed, against a baseline measured in the same run.
//!
//! - [`bench_sqlite`]: a [`SqliteStore`] file against the same row writes
//!   made directly with rusqlite, with no policy, on a second file holding
//!   the same accounts.
//! - [`bench_postgres`]: one or more host processes ([`run_worker`], each on
//!   its own slice of the accounts) on one PostgreSQL database, against
//!   pgbench's TPC-B transactions on the same server with as many clients.
//!
//! Both fill the store first with `accounts` users, each as the platform
//! leaves a user it opened, gave a card and put on auto-recharge: on SQLite
//! through [`Store::commit`] in batches of [`FILL_BATCH`]; on PostgreSQL,
//! where each of the store's statements is a round trip, with `COPY` of the
//! same records, read back through the store to check they are its own.
//!
//! Both sides of a comparison take turns, so that whatever else the machine
//! (and its disk) does weighs on both alike: on SQLite the host's events and
//! the baseline's in blocks of [`BLOCK`] events, as `recharge bench` runs
//! wasm and native; on PostgreSQL pgbench and the host processes in
//! [`ROUNDS`] rounds, each with its share of the seconds and the events.

mod ceiling;
mod postgres;
mod sqlite;

use std::sync::Arc;
use std::time::{Duration, Instant};

use recharge_host::{
    Account, AccountId, Batch, HostError, Platform, PlatformBuilder, SimulatedGateway, SqliteStore,
    Store, StoreError,
};
use recharge_policy_sdk::model::{AccountKind, AutoRechargeSettings, MinuteType, Mode, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::bench::MAX_EVENTS;
use crate::summary::nearest_rank;
use crate::workload::MAIN_CARD;

pub use self::ceiling::{CEILING_GROUPS, CeilingRow, sqlite_ceiling};
pub use self::postgres::{
    PgbenchOptions, PgbenchRun, PostgresRun, ROUNDS, SCHEMA, Worker, bench_postgres, run_worker,
};
pub use self::sqlite::{SqliteFigures, baseline_path, bench_sqlite};

/// When the bench's clock stands: 2026-01-05T00:00:00Z.
const START: Timestamp = 1_767_571_200_000;
/// Events each side runs before timing starts, at most.
const WARM_UP: u64 = 500;
/// Events one side runs in a row before the other takes its turn (SQLite).
pub const BLOCK: u64 = 1_000;
/// Accounts created by one commit of the fill.
pub const FILL_BATCH: usize = 10_000;

/// Accounts a bench fills the store with unless told otherwise.
pub const DEFAULT_ACCOUNTS: u64 = 1_000_000;
/// Usage events a bench times unless told otherwise (per side on SQLite, in
/// all on PostgreSQL): each costs a commit to disk, so far fewer than in
/// memory.
pub const DEFAULT_EVENTS: u64 = 20_000;
/// The most accounts a bench fills a store with.
pub const MAX_ACCOUNTS: u64 = 10_000_000;
/// The most host processes a bench starts at once.
pub const MAX_PROCESSES: u64 = 64;
/// The most threads a SQLite bench runs the host's events on.
pub const MAX_THREADS: u64 = 64;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbBenchOptions {
    /// Accounts in the store: 1 to [`MAX_ACCOUNTS`].
    pub accounts: u64,
    /// Usage events timed: 1 to [`MAX_EVENTS`].
    pub events: u64,
    /// Threads running the host's events side by side on one SQLite store
    /// (its commits then share flushes): 1 to [`MAX_THREADS`].
    pub threads: u64,
}

impl Default for DbBenchOptions {
    fn default() -> Self {
        DbBenchOptions {
            accounts: DEFAULT_ACCOUNTS,
            events: DEFAULT_EVENTS,
            threads: 1,
        }
    }
}

impl DbBenchOptions {
    /// Check the counts are within what a bench runs.
    pub fn check(&self) -> Result<(), DbBenchError> {
        check_count("accounts", self.accounts, MAX_ACCOUNTS)?;
        check_count("events", self.events, MAX_EVENTS)?;
        check_count("threads", self.threads, MAX_THREADS)
    }
}

fn check_count(what: &'static str, value: u64, max: u64) -> Result<(), DbBenchError> {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(DbBenchError::Count {
            what,
            value,
            min: 1,
            max,
        })
    }
}

/// Why a durable bench stopped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DbBenchError {
    /// A count asked for is outside what a bench runs.
    #[error("{what}: {value} is not between {min} and {max}")]
    Count {
        /// What is counted.
        what: &'static str,
        /// What was asked for.
        value: u64,
        /// The least allowed.
        min: u64,
        /// The most allowed.
        max: u64,
    },
    /// A file the bench would fill exists already.
    #[error("{0}: the file exists; the bench fills new files (remove it, or name another)")]
    Exists(std::path::PathBuf),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The host refused or failed a command.
    #[error("{what}: {error}")]
    Host {
        /// What the bench was doing.
        what: String,
        /// Why it failed.
        error: HostError,
    },
    /// The SQLite baseline failed.
    #[error("the rusqlite baseline: {0}")]
    Baseline(String),
    /// PostgreSQL failed outside the store (making pgbench's database).
    #[error("postgres: {0}")]
    Postgres(String),
    /// pgbench could not run, failed, or printed no figures.
    #[error("pgbench: {0}")]
    Pgbench(String),
    /// A host process failed or broke the protocol.
    #[error("host process {index} of {of}: {reason}")]
    Worker {
        /// Which process (from 0).
        index: u64,
        /// How many ran.
        of: u64,
        /// What went wrong.
        reason: String,
    },
}

fn host(what: impl Into<String>) -> impl FnOnce(HostError) -> DbBenchError {
    let what = what.into();
    move |error| DbBenchError::Host { what, error }
}

/// The bench's findings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DbBenchReport {
    /// The database, as named on the command line (a URL's password hidden).
    pub database: String,
    /// Accounts in the store while the events ran.
    pub accounts: u64,
    /// The machine the figures come from.
    pub machine: Machine,
    /// How the store was filled.
    pub fill: FillReport,
    /// The figures of the backend.
    pub figures: Figures,
}

/// The figures of one backend.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Figures {
    /// The host on SQLite and the rusqlite baseline.
    Sqlite(SqliteFigures),
    /// The host on PostgreSQL and pgbench, per number of processes.
    Postgres(Vec<PostgresRun>),
}

/// Where the figures were measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Machine {
    /// Cores the process may use.
    pub cpus: usize,
    /// The CPU's model name, from `/proc/cpuinfo` (empty if not found).
    pub cpu_model: String,
}

impl Machine {
    /// This machine.
    pub fn this() -> Machine {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|line| line.strip_prefix("model name"))
                    .and_then(|rest| rest.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_default();
        Machine { cpus, cpu_model }
    }
}

/// How the store was filled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FillReport {
    /// How: the store's own commits, or what else.
    pub method: String,
    /// Accounts created.
    pub accounts: u64,
    /// Wall time of the fill, seconds (of one file, for SQLite).
    pub seconds: f64,
}

/// The speed of a run of events.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Speed {
    /// Events timed.
    pub events: u64,
    /// Wall time they took, seconds (the longest process's, with several).
    pub seconds: f64,
    /// Events over that time.
    pub events_per_second: f64,
    /// Median time per event, nanoseconds.
    pub p50_ns: u64,
    /// 99th percentile time per event, nanoseconds.
    pub p99_ns: u64,
    /// The longest event, nanoseconds.
    pub max_ns: u64,
    /// Time the thread running the events spent on a CPU, per event,
    /// nanoseconds (of every process together, with several; the rest of an
    /// event's time it waited, on the disk or the server): `None` where
    /// Linux's `/proc/thread-self/schedstat` cannot be read.
    pub cpu_ns_per_event: Option<u64>,
}

/// Every event's time, and the wall time and CPU time of the loops that ran
/// them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Timings {
    nanos: Vec<u64>,
    wall_ns: u64,
    /// `None` once a reading of the thread's CPU time failed.
    cpu_ns: Option<u64>,
}

impl Timings {
    fn with_capacity(events: u64) -> Self {
        Timings {
            nanos: Vec::with_capacity(usize::try_from(events).unwrap_or(0)),
            wall_ns: 0,
            cpu_ns: Some(0),
        }
    }

    /// Time `run` over `events`, each one on its own, and the loop as a whole.
    fn run<E>(
        &mut self,
        events: impl IntoIterator<Item = u64>,
        mut run: impl FnMut(u64) -> Result<(), E>,
    ) -> Result<(), E> {
        let cpu = thread_cpu_ns();
        let started = Instant::now();
        for event in events {
            let timer = Instant::now();
            run(event)?;
            self.nanos.push(nanos(timer.elapsed()));
        }
        self.wall_ns += nanos(started.elapsed());
        self.cpu_ns = match (self.cpu_ns, cpu, thread_cpu_ns()) {
            (Some(total), Some(before), Some(after)) => Some(total + after.saturating_sub(before)),
            _ => None,
        };
        Ok(())
    }

    /// Runs that went on side by side (several processes) as one: every
    /// event and all their CPU time, over the longest run's wall time.
    fn side_by_side(runs: &[Timings]) -> Timings {
        Timings {
            nanos: runs
                .iter()
                .flat_map(|run| run.nanos.iter().copied())
                .collect(),
            wall_ns: runs.iter().map(|run| run.wall_ns).max().unwrap_or(0),
            cpu_ns: runs
                .iter()
                .map(|run| run.cpu_ns)
                .try_fold(0, |total, cpu| Some(total + cpu?)),
        }
    }

    /// Add a run that came after this one.
    fn then(&mut self, next: Timings) {
        self.nanos.extend(next.nanos);
        self.wall_ns += next.wall_ns;
        self.cpu_ns = self.cpu_ns.zip(next.cpu_ns).map(|(mine, next)| mine + next);
    }

    fn speed(mut self) -> Speed {
        self.nanos.sort_unstable();
        let events = self.nanos.len() as u64;
        let seconds = self.wall_ns as f64 / 1e9;
        Speed {
            events,
            seconds,
            events_per_second: if self.wall_ns > 0 {
                events as f64 / seconds
            } else {
                0.0
            },
            p50_ns: nearest_rank(&self.nanos, 0.5),
            p99_ns: nearest_rank(&self.nanos, 0.99),
            max_ns: self.nanos.last().copied().unwrap_or(0),
            cpu_ns_per_event: self.cpu_ns.filter(|_| events > 0).map(|cpu| cpu / events),
        }
    }
}

/// Nanoseconds this thread has spent on a CPU, as Linux counts them.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

fn nanos(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

/// The id of the `number`-th of `count` accounts.
fn account_id(number: u64, count: u64) -> AccountId {
    let width = count.saturating_sub(1).max(1).to_string().len();
    AccountId(format!("bench-{number:0width$}"))
}

/// A walk over a slice of the accounts: the `n`-th event goes to the account
/// `first + n × stride mod len`, the stride prime to the slice's length and
/// about 0.618 of it, so consecutive events land far apart in the table and
/// every account of the slice gets an event before any gets a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Walk {
    first: u64,
    len: u64,
    stride: u64,
}

impl Walk {
    fn new(first: u64, len: u64) -> Walk {
        let len = len.max(1);
        let mut stride = (len.saturating_mul(618) / 1000).max(1);
        while gcd(stride, len) != 1 {
            stride += 1;
        }
        Walk { first, len, stride }
    }

    fn account(&self, n: u64) -> u64 {
        let offset = (u128::from(n) * u128::from(self.stride)) % u128::from(self.len);
        self.first + offset as u64
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The `n`-th usage record's length and type: lengths and types varied, as
/// `recharge bench` varies them.
fn usage(n: u64) -> (i64, MinuteType) {
    let seconds = 20 + (n.wrapping_mul(7_919) % 280) as i64;
    let minute_type = if n.is_multiple_of(4) {
        MinuteType::Premium
    } else {
        MinuteType::Basic
    };
    (seconds, minute_type)
}

/// A platform on `store` with the simulated gateway and clock.
fn platform(
    builder: PlatformBuilder,
    store: Arc<dyn Store>,
    node: &str,
) -> Result<Platform, DbBenchError> {
    builder
        .store(store)
        .gateway(Arc::new(SimulatedGateway::new()))
        .simulated_clock(START)
        .node(node)
        .build()
        .map_err(host("starting the platform"))
}

/// Record the `n`-th usage event as `call` on account `number` of `count`.
fn record(
    platform: &Platform,
    number: u64,
    count: u64,
    call: &str,
    n: u64,
) -> Result<(), DbBenchError> {
    let account = account_id(number, count);
    let (seconds, minute_type) = usage(n);
    let what = || format!("usage {call} of {account}");
    let report = platform
        .record_usage(&account, call, seconds, minute_type)
        .map_err(host(what()))?;
    // A call rated before changes nothing: timing it would flatter the host.
    if report.decisions == 0 {
        return Err(DbBenchError::Host {
            what: what(),
            error: HostError::Internal("the call was rated already"),
        });
    }
    Ok(())
}

/// A user as the platform leaves it after opening it, saving a card and
/// putting it on auto-recharge (10.00 below 5.00, which charges 10.00 at
/// once): the account every filled account copies, in memory.
fn template(builder: PlatformBuilder) -> Result<Account, DbBenchError> {
    let platform = builder
        .gateway(Arc::new(SimulatedGateway::new()))
        .simulated_clock(START)
        .build()
        .map_err(host("starting the template's platform"))?;
    let user = AccountId("template".into());
    let setup = host("setting up the template account");
    let settings = AutoRechargeSettings {
        enabled: true,
        threshold: Decimal::new(5_00, 2),
        amount: Decimal::new(10_00, 2),
        card: MAIN_CARD.into(),
        mode: Mode::Fixed,
        monthly_limit: None,
    };
    platform
        .open_account(user.clone(), AccountKind::User, None)
        .and_then(|()| platform.add_card(&user, MAIN_CARD))
        .and_then(|()| platform.save_auto_recharge(&user, &user, settings))
        .and_then(|_| platform.account(&user))
        .map_err(setup)
}

/// Create `count` copies of `template` (ids [`account_id`]) through
/// [`Store::commit`], [`FILL_BATCH`] a commit.
fn fill(store: &dyn Store, template: &Account, count: u64) -> Result<FillReport, DbBenchError> {
    let started = Instant::now();
    let mut first = 0;
    while first < count {
        let last = (first + FILL_BATCH as u64).min(count);
        store.commit(Batch {
            created: (first..last)
                .map(|number| copy(template, number, count))
                .collect(),
            ..Batch::default()
        })?;
        first = last;
    }
    Ok(FillReport {
        method: format!("Store::commit, {FILL_BATCH} created accounts a batch"),
        accounts: count,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The `number`-th of `count` filled accounts: `template` under its id.
fn copy(template: &Account, number: u64, count: u64) -> Account {
    let mut account = template.clone();
    account.id = account_id(number, count);
    account
}

/// Open (or create) a SQLite store, typed for the platform.
fn sqlite_store(path: &std::path::Path) -> Result<Arc<dyn Store>, DbBenchError> {
    Ok(Arc::new(SqliteStore::open(path)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_visits_every_account_of_its_slice_once_before_any_twice() {
        for len in [1, 2, 7, 10, 1000, 7919] {
            let walk = Walk::new(100, len);
            let mut seen: Vec<u64> = (0..len).map(|n| walk.account(n)).collect();
            seen.sort_unstable();
            assert_eq!(seen, (100..100 + len).collect::<Vec<_>>(), "{len}");
            assert_eq!(walk.account(len), walk.account(0));
        }
    }

    #[test]
    fn account_ids_sort_in_number_order() {
        assert_eq!(account_id(7, 1_000_000).0, "bench-000007");
        assert_eq!(account_id(999_999, 1_000_000).0, "bench-999999");
        assert_eq!(account_id(0, 1).0, "bench-0");
    }

    #[test]
    fn bad_input_counts_out_of_range_are_refused() {
        for options in [
            DbBenchOptions {
                accounts: 0,
                ..DbBenchOptions::default()
            },
            DbBenchOptions {
                accounts: MAX_ACCOUNTS + 1,
                ..DbBenchOptions::default()
            },
            DbBenchOptions {
                events: MAX_EVENTS + 1,
                ..DbBenchOptions::default()
            },
            DbBenchOptions {
                threads: 0,
                ..DbBenchOptions::default()
            },
            DbBenchOptions {
                threads: MAX_THREADS + 1,
                ..DbBenchOptions::default()
            },
        ] {
            assert!(matches!(options.check(), Err(DbBenchError::Count { .. })));
        }
    }

    #[test]
    fn concurrent_runs_count_every_event_over_the_longest_wall_time() {
        let mut together = Timings::side_by_side(&[
            Timings {
                nanos: vec![1, 2, 3],
                wall_ns: 2_000_000_000,
                cpu_ns: Some(30),
            },
            Timings {
                nanos: vec![4],
                wall_ns: 1_000_000_000,
                cpu_ns: Some(10),
            },
        ]);
        let speed = together.clone().speed();
        assert_eq!(speed.events, 4);
        assert_eq!(speed.events_per_second, 2.0);
        assert_eq!((speed.p50_ns, speed.p99_ns, speed.max_ns), (2, 4, 4));
        assert_eq!(speed.cpu_ns_per_event, Some(10));
        together.then(Timings {
            nanos: vec![5, 6, 7, 8],
            wall_ns: 2_000_000_000,
            cpu_ns: Some(40),
        });
        let speed = together.speed();
        assert_eq!((speed.events, speed.events_per_second), (8, 2.0));
        assert_eq!(speed.cpu_ns_per_event, Some(10));
    }
}
