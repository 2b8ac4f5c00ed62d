//! How many durable usage events a second SQLite itself takes on this
//! machine, with no host and no policy: the SQLite bench's baseline row
//! writes ([`Baseline`]), G events a transaction, with `synchronous = FULL`
//! (each commit flushed, as the store does) and `OFF` (never flushed: no disk
//! wait at all), on a file the store filled, walked with the bench's stride.
//! It is the ceiling the store's group commit could reach with G events a
//! group.

use std::path::Path;
use std::time::Instant;

use recharge_host::PlatformBuilder;
use serde::Serialize;

use super::sqlite::Baseline;
use super::{DbBenchError, DbBenchOptions, Walk, account_id, fill, sqlite_store, template};

/// Events a transaction, one row of the ceiling each.
pub const CEILING_GROUPS: [u64; 4] = [1, 10, 100, 1_000];

/// Events per second with `group` events a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CeilingRow {
    /// Events a transaction.
    pub group: u64,
    /// Each commit flushed to disk (`synchronous = FULL`).
    pub flushed_per_second: f64,
    /// No commit flushed (`synchronous = OFF`).
    pub unflushed_per_second: f64,
}

/// Fill a new file at `path` with `options.accounts` accounts through the
/// store, then time `options.events` baseline events for each of
/// [`CEILING_GROUPS`], flushed and not, each run walking on from where the
/// one before stopped. `builder` makes the platform that makes the accounts'
/// template; `progress` hears what the probe is doing.
pub fn sqlite_ceiling(
    path: &Path,
    options: DbBenchOptions,
    builder: &dyn Fn() -> PlatformBuilder,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<CeilingRow>, DbBenchError> {
    options.check()?;
    if path.exists() {
        return Err(DbBenchError::Exists(path.to_owned()));
    }
    let count = options.accounts;
    progress(&format!("filling {} with {count} accounts", path.display()));
    fill(&*sqlite_store(path)?, &template(builder())?, count)?;
    let mut baseline = Baseline::open(path)?;
    let walk = Walk::new(0, count);
    let mut next = 0;
    let mut rows = Vec::with_capacity(CEILING_GROUPS.len());
    for group in CEILING_GROUPS {
        let mut per_second = [0.0; 2];
        for (cell, mode) in per_second.iter_mut().zip(["FULL", "OFF"]) {
            baseline.synchronous(mode)?;
            let started = Instant::now();
            let end = next + options.events;
            while next < end {
                let last = (next + group).min(end);
                baseline.record_group(
                    (next..last).map(|n| (account_id(walk.account(n), count), format!("c{n}"), n)),
                )?;
                next = last;
            }
            *cell = options.events as f64 / started.elapsed().as_secs_f64();
            progress(&format!(
                "{group} a transaction, synchronous = {mode}: {cell:.0} events/s"
            ));
        }
        rows.push(CeilingRow {
            group,
            flushed_per_second: per_second[0],
            unflushed_per_second: per_second[1],
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use recharge_host::Platform;

    /// Nothing lost: every event of every cell lands once, on the file the
    /// store filled.
    #[test]
    fn the_ceiling_writes_every_event_of_every_cell() {
        let dir = std::env::temp_dir().join(format!("recharge-ceiling-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ceiling.db");
        let options = DbBenchOptions {
            accounts: 2_000,
            events: 30,
            threads: 1,
        };
        let native = || Platform::builder().native_default_policy();
        let rows = sqlite_ceiling(&path, options, &native, &mut |_| {}).unwrap();
        assert_eq!(
            rows.iter().map(|row| row.group).collect::<Vec<_>>(),
            CEILING_GROUPS
        );
        assert!(
            rows.iter()
                .all(|row| row.flushed_per_second > 0.0 && row.unflushed_per_second > 0.0)
        );
        let file = rusqlite::Connection::open(&path).unwrap();
        let count = |sql: &str| -> i64 { file.query_row(sql, [], |row| row.get(0)).unwrap() };
        assert_eq!(count("SELECT COUNT(*) FROM rated_calls"), 30 * 4 * 2);
        assert_eq!(count("SELECT COUNT(*) FROM ledger"), 30 * 4 * 2);
        assert_eq!(
            count(
                "SELECT COUNT(*) FROM accounts WHERE version > (SELECT MIN(version) FROM accounts)"
            ),
            30 * 4 * 2
        );
        let again = sqlite_ceiling(&path, options, &native, &mut |_| {}).unwrap_err();
        assert!(matches!(again, DbBenchError::Exists(_)), "{again}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
