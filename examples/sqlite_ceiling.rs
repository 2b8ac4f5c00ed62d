//! How many durable usage events a second SQLite itself takes on this
//! machine, with no host and no policy: the row writes of `recharge bench
//! --db sqlite:`'s rusqlite baseline (read the account's row, write it back
//! with its version bumped, insert the rated call and a ledger row), **G
//! events a transaction**, with `synchronous = FULL` (each commit flushed, as
//! the store does) and `OFF` (never flushed: no disk wait at all), on a file
//! of N accounts walked with the bench's stride (about 0.618 of N, so that
//! consecutive events land far apart). It is the ceiling the store's group
//! commit could reach with G events a group, and what SQLite alone makes of
//! a 50,000 events/s goal here.
//!
//! ```sh
//! cargo run --release --example sqlite_ceiling -- --accounts 1000000 --events 20000
//! ```
//!
//! The file is made under `target/sqlite_ceiling/` through `SqliteStore` (its
//! schema and pragmas), filled with 426-byte account records (the bench's
//! record size) and removed at the end. Each cell runs `--events` events on
//! from where the cell before stopped; the figures are printed as a markdown
//! table of events per second.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use recharge_host::SqliteStore;
use rusqlite::{Connection, TransactionBehavior, params};

/// Events a transaction, one row of the table each.
const GROUPS: [u64; 4] = [1, 10, 100, 1_000];
/// The size of a filled account's record, as the bench's.
const RECORD_BYTES: usize = 426;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sqlite_ceiling: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `--accounts N --events E`, both positive.
fn options() -> Result<(u64, u64), String> {
    let (mut accounts, mut events) = (1_000_000, 20_000);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag}: a value is missing"))?;
        let number: u64 = value
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or(format!("{flag}: {value} is not a positive number"))?;
        match flag.as_str() {
            "--accounts" => accounts = number,
            "--events" => events = number,
            _ => return Err(format!("{flag}: unknown; use --accounts N --events E")),
        }
    }
    Ok((accounts, events))
}

fn run() -> Result<(), String> {
    let (accounts, events) = options()?;
    let dir = PathBuf::from("target/sqlite_ceiling");
    std::fs::create_dir_all(&dir).map_err(|err| err.to_string())?;
    let path = dir.join("ceiling.db");
    remove(&path);
    drop(SqliteStore::open(&path).map_err(|err| err.to_string())?);
    let mut connection = Connection::open(&path).map_err(|err| err.to_string())?;
    connection
        .pragma_update(None, "journal_mode", "WAL")
        .map_err(|err| err.to_string())?;
    eprintln!("filling {} with {accounts} accounts", path.display());
    fill(&mut connection, accounts).map_err(|err| err.to_string())?;
    let stride = stride(accounts);
    let mut next = 0;
    let mut table = String::from(
        "| events a transaction | `synchronous = FULL` events/s | `synchronous = OFF` events/s |\n\
         | --- | --- | --- |\n",
    );
    for group in GROUPS {
        let mut cells = Vec::new();
        for synchronous in ["FULL", "OFF"] {
            connection
                .pragma_update(None, "synchronous", synchronous)
                .map_err(|err| err.to_string())?;
            let started = Instant::now();
            let mut done = 0;
            while done < events {
                let count = group.min(events - done);
                let tx = connection
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(|err| err.to_string())?;
                for _ in 0..count {
                    let account = account_id(next * stride % accounts, accounts);
                    usage(&tx, &account, &format!("c{next}")).map_err(|err| err.to_string())?;
                    next += 1;
                }
                tx.commit().map_err(|err| err.to_string())?;
                done += count;
            }
            let per_second = events as f64 / started.elapsed().as_secs_f64();
            eprintln!("{group} a transaction, synchronous = {synchronous}: {per_second:.0}/s");
            cells.push(format!("{per_second:.0}"));
        }
        table += &format!("| {group} | {} | {} |\n", cells[0], cells[1]);
    }
    print!("{table}");
    drop(connection);
    remove(&path);
    Ok(())
}

/// The file and its WAL files, gone.
fn remove(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// `count` accounts of a record of [`RECORD_BYTES`], in one transaction.
fn fill(connection: &mut Connection, count: u64) -> rusqlite::Result<()> {
    let tx = connection.transaction()?;
    {
        let mut insert =
            tx.prepare("INSERT INTO accounts (id, version, record) VALUES (?1, 0, ?2)")?;
        for number in 0..count {
            let id = account_id(number, count);
            let frame = format!("{{\"id\":\"{id}\",\"pad\":\"\"}}");
            let pad = "x".repeat(RECORD_BYTES.saturating_sub(frame.len()));
            let record = format!("{{\"id\":\"{id}\",\"pad\":\"{pad}\"}}");
            insert.execute(params![id, record])?;
        }
    }
    tx.commit()
}

/// One usage event's row writes, as the bench's baseline makes them.
fn usage(tx: &Connection, account: &str, call: &str) -> rusqlite::Result<()> {
    let (version, record): (i64, String) = tx
        .prepare_cached("SELECT version, record FROM accounts WHERE id = ?1")?
        .query_row([account], |row| Ok((row.get(0)?, row.get(1)?)))?;
    tx.prepare_cached("UPDATE accounts SET version = ?2, record = ?3 WHERE id = ?1")?
        .execute(params![account, version + 1, record])?;
    tx.prepare_cached("INSERT OR IGNORE INTO rated_calls (account, call, at) VALUES (?1, ?2, 0)")?
        .execute(params![account, call])?;
    let entry = format!(
        "{{\"at\":0,\"account\":\"{account}\",\"cause\":{{\"call\":\"{call}\"}},\
         \"wallet\":\"-0.4000\",\"included_basic_seconds\":0,\"included_premium_seconds\":0,\
         \"basic_seconds\":0,\"premium_seconds\":0}}"
    );
    tx.prepare_cached("INSERT INTO ledger (account, record) VALUES (?1, ?2)")?
        .execute(params![account, entry])?;
    Ok(())
}

/// Account `number` of `count`, zero-padded so that ids sort in number order.
fn account_id(number: u64, count: u64) -> String {
    let width = (count.max(2) - 1).to_string().len();
    format!("bench-{number:0width$}")
}

/// A step through `count` accounts that visits each once before any twice:
/// about 0.618 of them, coprime with their number.
fn stride(count: u64) -> u64 {
    let gcd = |mut a: u64, mut b: u64| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let mut step = (count as f64 * 0.618) as u64;
    while step > 1 && gcd(step, count) != 1 {
        step -= 1;
    }
    step.max(1)
}
