//! How many durable usage events a second SQLite itself takes on this
//! machine, with no host and no policy: `recharge bench --db sqlite:`'s
//! rusqlite baseline row writes, **G events a transaction**, with
//! `synchronous = FULL` (each commit flushed, as the store does) and `OFF`
//! (never flushed), on a file of N accounts the store filled
//! (`recharge_sim::bench_db::sqlite_ceiling`). It is the ceiling the store's
//! group commit could reach with G events a group, and what SQLite alone
//! makes of a 50,000 events/s goal here.
//!
//! ```sh
//! cargo run --release --example sqlite_ceiling -- --accounts 1000000 --events 20000
//! ```
//!
//! The file is made under `target/sqlite_ceiling/` and removed at the end.
//! The figures are printed as a markdown table of events per second.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use recharge_host::Platform;
use recharge_sim::bench_db::{DbBenchOptions, sqlite_ceiling};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sqlite_ceiling: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `--accounts N --events E`.
fn options() -> Result<DbBenchOptions, String> {
    let mut options = DbBenchOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag}: a value is missing"))?;
        let number: u64 = value
            .parse()
            .map_err(|_| format!("{flag}: {value} is not a number"))?;
        match flag.as_str() {
            "--accounts" => options.accounts = number,
            "--events" => options.events = number,
            _ => return Err(format!("{flag}: unknown; use --accounts N --events E")),
        }
    }
    Ok(options)
}

fn run() -> Result<(), String> {
    let options = options()?;
    let dir = PathBuf::from("target/sqlite_ceiling");
    std::fs::create_dir_all(&dir).map_err(|err| err.to_string())?;
    let path = dir.join("ceiling.db");
    remove(&path);
    let native = || Platform::builder().native_default_policy();
    let rows = sqlite_ceiling(&path, options, &native, &mut |what| eprintln!("{what}"));
    remove(&path);
    let rows = rows.map_err(|err| err.to_string())?;
    println!(
        "| events a transaction | `synchronous = FULL` events/s | `synchronous = OFF` events/s |"
    );
    println!("| --- | --- | --- |");
    for row in rows {
        println!(
            "| {} | {:.0} | {:.0} |",
            row.group, row.flushed_per_second, row.unflushed_per_second
        );
    }
    Ok(())
}

/// The file and its WAL files, gone.
fn remove(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
