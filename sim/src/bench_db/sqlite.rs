//! The host on a SQLite file against its baseline: the same row writes a
//! usage event makes (read the account row, update it, insert a rated call
//! and a ledger row, in one immediate transaction, WAL and `synchronous =
//! FULL`), made directly with rusqlite and no policy, on a second file
//! holding the same accounts. The statements are the store's own, kept in
//! step with `SqliteStore` by hand: the baseline's file is made and filled
//! by the store, so a column it lacks fails the bench rather than slipping
//! by.

use std::path::{Path, PathBuf};

use recharge_host::model::Rates;
use recharge_host::{AccountId, Cause, LedgerEntry, PlatformBuilder, default_rates};
use recharge_policy_sdk::money::usage_cost;
use rusqlite::{Connection, TransactionBehavior, params};
use serde::Serialize;

use super::{
    BLOCK, DbBenchError, DbBenchOptions, DbBenchReport, Figures, Machine, START, Speed, Timings,
    WARM_UP, Walk, account_id, fill, platform, record, sqlite_store, template, usage,
};

/// The host's and the baseline's figures, event for event on the same
/// accounts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SqliteFigures {
    /// The baseline's file.
    pub baseline_file: String,
    /// Threads running the host's events side by side (the baseline is one
    /// writer).
    pub threads: u64,
    /// Usage events through the platform and the default policy.
    pub host: Speed,
    /// The same row writes, made directly.
    pub baseline: Speed,
    /// The host's events per second over the baseline's.
    pub host_over_baseline: f64,
}

/// Where the baseline of a bench on `path` keeps its accounts: beside it,
/// named `PATH.baseline`.
pub fn baseline_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".baseline");
    PathBuf::from(name)
}

/// Fill a new file at `path` and another at [`baseline_path`] with
/// `options.accounts` users, then time `options.events` usage events on each,
/// in turns of [`BLOCK`](super::BLOCK): through a platform with the default
/// policy on the first (its events spread over `options.threads` threads, one
/// store), as direct row writes, one at a time, on the second. `builder` makes
/// the platform's builder (engine, cache); `progress` hears what the bench is
/// doing.
pub fn bench_sqlite(
    path: &Path,
    options: DbBenchOptions,
    builder: &dyn Fn() -> PlatformBuilder,
    progress: &mut dyn FnMut(&str),
) -> Result<DbBenchReport, DbBenchError> {
    options.check()?;
    let baseline_file = baseline_path(path);
    for file in [path, &baseline_file] {
        if file.exists() {
            return Err(DbBenchError::Exists(file.to_owned()));
        }
    }
    let template = template(builder())?;
    let count = options.accounts;
    progress(&format!("filling {} with {count} accounts", path.display()));
    let store = sqlite_store(path)?;
    let filled = fill(&*store, &template, count)?;
    progress(&format!(
        "filling {} with {count} accounts",
        baseline_file.display()
    ));
    fill(&*sqlite_store(&baseline_file)?, &template, count)?;

    let platform = platform(builder(), store, "bench")?;
    let mut baseline = Baseline::open(&baseline_file)?;
    let walk = Walk::new(0, count);
    let events = options.events;
    let warm_up = WARM_UP.min(events);
    progress("warming up");
    for n in events..events + warm_up {
        let call = format!("w{n}");
        record(&platform, walk.account(n), count, &call, n)?;
        baseline.record(&account_id(walk.account(n), count), &call, n)?;
    }
    let threads = options.threads;
    progress(&format!(
        "timing {events} usage events through the host ({threads} thread{}) \
         and as many direct writes",
        if threads > 1 { "s" } else { "" }
    ));
    let mut host = Timings::with_capacity(events);
    let mut direct = Timings::with_capacity(events);
    let mut first = 0;
    while first < events {
        let last = (first + BLOCK).min(events);
        let event = |n| record(&platform, walk.account(n), count, &format!("c{n}"), n);
        if threads == 1 {
            host.run(first..last, event)?;
        } else {
            host.then(side_by_side(first..last, threads, &event)?);
        }
        direct.run(first..last, |n| {
            baseline.record(&account_id(walk.account(n), count), &format!("c{n}"), n)
        })?;
        first = last;
    }
    let host = host.speed();
    let baseline = direct.speed();
    Ok(DbBenchReport {
        database: format!("sqlite:{}", path.display()),
        accounts: count,
        machine: Machine::this(),
        fill: filled,
        figures: Figures::Sqlite(SqliteFigures {
            baseline_file: baseline_file.display().to_string(),
            threads,
            host_over_baseline: if baseline.events_per_second > 0.0 {
                host.events_per_second / baseline.events_per_second
            } else {
                0.0
            },
            host,
            baseline,
        }),
    })
}

/// Run `event` over `events` on `threads` threads at once, the events dealt
/// out in turn, each thread timing its own: their timings as one run.
fn side_by_side(
    events: std::ops::Range<u64>,
    threads: u64,
    event: &(dyn Fn(u64) -> Result<(), DbBenchError> + Sync),
) -> Result<Timings, DbBenchError> {
    let runs = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let mine = (events.start + thread..events.end).step_by(threads as usize);
                scope.spawn(move || {
                    let mut timings =
                        Timings::with_capacity((events.end - events.start) / threads + 1);
                    timings.run(mine, event).map(|()| timings)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle.join().unwrap_or_else(|_| {
                    Err(DbBenchError::Host {
                        what: "a thread of host events".into(),
                        error: recharge_host::HostError::Internal("it panicked"),
                    })
                })
            })
            .collect::<Result<Vec<_>, _>>()
    })?;
    Ok(Timings::side_by_side(&runs))
}

fn failed(error: impl std::fmt::Display) -> DbBenchError {
    DbBenchError::Baseline(error.to_string())
}

/// A usage event's row writes, made directly on a file the store filled.
pub(super) struct Baseline {
    connection: Connection,
    rates: Rates,
}

impl Baseline {
    /// Open the file as the store does: WAL, every commit synchronous to disk.
    pub(super) fn open(path: &Path) -> Result<Baseline, DbBenchError> {
        let connection = Connection::open(path).map_err(failed)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(failed)?;
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(failed)?;
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(failed)?;
        Ok(Baseline {
            connection,
            rates: default_rates(),
        })
    }

    /// The `n`-th usage as `call` on `account`: the account row read and
    /// written back (its record as read, the version bumped), the call and a
    /// ledger entry of the same shape as the host's inserted, in one
    /// transaction.
    fn record(&mut self, account: &AccountId, call: &str, n: u64) -> Result<(), DbBenchError> {
        let entry = ledger_entry(&self.rates, account, call, n)?;
        let tx = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed)?;
        rows(&tx, account, call, &entry)?;
        tx.commit().map_err(failed)
    }

    /// Flush every commit to disk (`FULL`, as the store does) or never (`OFF`).
    pub(super) fn synchronous(&self, mode: &str) -> Result<(), DbBenchError> {
        self.connection
            .pragma_update(None, "synchronous", mode)
            .map_err(failed)
    }

    /// Usage events (account, call, `n`) as [`Baseline::record`] makes them,
    /// all in one transaction.
    pub(super) fn record_group(
        &mut self,
        events: impl IntoIterator<Item = (AccountId, String, u64)>,
    ) -> Result<(), DbBenchError> {
        let tx = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed)?;
        for (account, call, n) in events {
            let entry = ledger_entry(&self.rates, &account, &call, n)?;
            rows(&tx, &account, &call, &entry)?;
        }
        tx.commit().map_err(failed)
    }
}

/// The ledger entry of the `n`-th usage, as the host writes it.
fn ledger_entry(
    rates: &Rates,
    account: &AccountId,
    call: &str,
    n: u64,
) -> Result<String, DbBenchError> {
    let (seconds, minute_type) = usage(n);
    let cost = usage_cost(seconds, rates.of(minute_type))
        .ok_or_else(|| failed("the usage cost overflows"))?;
    let entry = LedgerEntry {
        at: START,
        account: account.clone(),
        cause: Cause::Call(call.to_owned()),
        wallet: -cost,
        included_basic_seconds: 0,
        included_premium_seconds: 0,
        basic_seconds: 0,
        premium_seconds: 0,
    };
    serde_json::to_string(&entry).map_err(failed)
}

/// A usage event's row writes inside an open transaction: the account's row
/// read and written back with its version bumped, the rated call and the
/// ledger row inserted.
fn rows(tx: &Connection, account: &AccountId, call: &str, entry: &str) -> Result<(), DbBenchError> {
    let (version, record): (i64, String) = tx
        .prepare_cached("SELECT version, record FROM accounts WHERE id = ?1")
        .and_then(|mut statement| {
            statement.query_row([account.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))
        })
        .map_err(failed)?;
    tx.prepare_cached("UPDATE accounts SET version = ?2, record = ?3 WHERE id = ?1")
        .and_then(|mut statement| statement.execute(params![account.as_str(), version + 1, record]))
        .map_err(failed)?;
    tx.prepare_cached("INSERT OR IGNORE INTO rated_calls (account, call, at) VALUES (?1, ?2, ?3)")
        .and_then(|mut statement| statement.execute(params![account.as_str(), call, START]))
        .map_err(failed)?;
    tx.prepare_cached("INSERT INTO ledger (account, record) VALUES (?1, ?2)")
        .and_then(|mut statement| statement.execute(params![account.as_str(), entry]))
        .map_err(failed)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use recharge_host::Platform;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("recharge-bench-db-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_sqlite_bench_times_host_and_baseline_event_for_event() {
        let dir = scratch("sqlite");
        let path = dir.join("host.db");
        let native = || Platform::builder().native_default_policy();
        let options = DbBenchOptions {
            accounts: 12_000,
            events: 1_200,
            threads: 1,
        };
        let mut said = Vec::new();
        let report = bench_sqlite(&path, options, &native, &mut |what| {
            said.push(what.to_owned())
        })
        .unwrap();
        assert_eq!(report.accounts, 12_000);
        assert_eq!(report.fill.accounts, 12_000);
        let Figures::Sqlite(figures) = &report.figures else {
            panic!("{:?}", report.figures)
        };
        for speed in [&figures.host, &figures.baseline] {
            assert_eq!(speed.events, 1_200);
            assert!(speed.p50_ns > 0 && speed.p50_ns <= speed.p99_ns);
            assert!(speed.p99_ns <= speed.max_ns);
        }
        assert!(figures.host_over_baseline > 0.0);
        assert!(said.iter().any(|what| what.starts_with("timing")));

        // Both files hold every account, and each timed event's rows.
        let host = rusqlite::Connection::open(&path).unwrap();
        let baseline = rusqlite::Connection::open(baseline_path(&path)).unwrap();
        for file in [&host, &baseline] {
            let count = |sql: &str| -> i64 { file.query_row(sql, [], |row| row.get(0)).unwrap() };
            assert_eq!(count("SELECT COUNT(*) FROM accounts"), 12_000);
            assert_eq!(count("SELECT COUNT(*) FROM rated_calls"), 1_700);
            assert_eq!(count("SELECT COUNT(*) FROM ledger"), 1_700);
        }
        let again = bench_sqlite(&path, options, &native, &mut |_| {}).unwrap_err();
        assert!(matches!(again, DbBenchError::Exists(_)), "{again}");

        // Nothing lost: the host's events spread over threads each land once.
        let threaded = dir.join("threads.db");
        let options = DbBenchOptions {
            accounts: 3_000,
            events: 900,
            threads: 3,
        };
        let report = bench_sqlite(&threaded, options, &native, &mut |_| {}).unwrap();
        let Figures::Sqlite(figures) = &report.figures else {
            panic!("{:?}", report.figures)
        };
        assert_eq!((figures.threads, figures.host.events), (3, 900));
        let host = rusqlite::Connection::open(&threaded).unwrap();
        let rated: i64 = host
            .query_row(
                "SELECT COUNT(DISTINCT account || call) FROM rated_calls",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(rated, 1_400);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
