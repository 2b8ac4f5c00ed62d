//! The host on PostgreSQL against pgbench on the same server.
//!
//! The parent fills the store (schema [`SCHEMA`] of the database named), then
//! for each number of processes `K` asked for, [`ROUNDS`] times in turn: runs
//! pgbench's TPC-B for its share of the time with `K` clients on a database
//! of its own (`DB_pgbench`, made if missing, initialised afresh for each
//! `K`), then starts `K` host processes ([`run_worker`], the binary itself
//! through `spawn`), each on its own slice of the accounts, for their share
//! of the events.
//! They talk over their standard input and output: a worker says `ready` once
//! its platform is up and warm, waits for `go` (sent to all at once), runs its
//! events and prints its timings as one JSON line.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use postgres::config::Host;
use postgres::{Client, NoTls};
use recharge_host::{Account, PlatformBuilder, PostgresStore, Store};
use serde::Serialize;

use super::{
    DbBenchError, DbBenchOptions, DbBenchReport, Figures, FillReport, Machine, Speed, Timings,
    WARM_UP, Walk, check_count, copy, platform, record, template,
};
use crate::summary::nearest_rank;

/// The schema of the bench's database the store's tables live in; whatever
/// it held is dropped when a bench starts.
pub const SCHEMA: &str = "recharge_bench";
/// Connections each host process keeps (its events run one at a time).
const WORKER_POOL: u32 = 2;
/// Turns pgbench and the host take with each number of processes, each with
/// its share of the seconds and the events: drift of the machine or its disk
/// over the run weighs on both alike.
pub const ROUNDS: u64 = 2;

/// Round `round`'s share of `total` over [`ROUNDS`] (the first rounds take
/// what does not divide).
fn share(total: u64, round: u64) -> u64 {
    total / ROUNDS + u64::from(round < total % ROUNDS)
}

/// How to run pgbench.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgbenchOptions {
    /// The program; found on `PATH`, else under `/usr/lib/postgresql/*/bin`,
    /// when not given.
    pub program: Option<PathBuf>,
    /// `pgbench -i -s SCALE`: 100,000 pgbench accounts a unit.
    pub scale: u32,
    /// `pgbench -T SECONDS`.
    pub seconds: u32,
}

impl Default for PgbenchOptions {
    fn default() -> Self {
        PgbenchOptions {
            program: None,
            scale: 10,
            seconds: 20,
        }
    }
}

/// What pgbench measured over its rounds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PgbenchRun {
    /// The command of each round (each lasts its share of the seconds),
    /// without its connection settings (given in `PG*` variables).
    pub commands: Vec<String>,
    /// Transactions done.
    pub transactions: u64,
    /// Transactions per second: all rounds' transactions over the time
    /// their rounds took by the tps each printed (without the initial
    /// connection time).
    pub tps: f64,
    /// Mean latency per transaction, as pgbench prints it, milliseconds
    /// (each round's weighted by its transactions).
    pub latency_average_ms: f64,
    /// Median latency per transaction, from its per-transaction log,
    /// nanoseconds (microsecond resolution).
    pub p50_ns: u64,
    /// 99th percentile latency per transaction, from its log, nanoseconds.
    pub p99_ns: u64,
}

/// One round of pgbench: its summary, and every transaction's latency from
/// its log, nanoseconds.
struct PgbenchRound {
    command: String,
    transactions: u64,
    tps: f64,
    latency_average_ms: f64,
    latencies: Vec<u64>,
}

impl PgbenchRun {
    /// The rounds' figures as one run's.
    fn of(rounds: Vec<PgbenchRound>) -> PgbenchRun {
        let transactions: u64 = rounds.iter().map(|round| round.transactions).sum();
        let seconds: f64 = rounds
            .iter()
            .filter(|round| round.tps > 0.0)
            .map(|round| round.transactions as f64 / round.tps)
            .sum();
        let latency: f64 = rounds
            .iter()
            .map(|round| round.latency_average_ms * round.transactions as f64)
            .sum();
        let mut latencies: Vec<u64> = rounds
            .iter()
            .flat_map(|round| round.latencies.iter().copied())
            .collect();
        latencies.sort_unstable();
        PgbenchRun {
            commands: rounds.into_iter().map(|round| round.command).collect(),
            transactions,
            tps: if seconds > 0.0 {
                transactions as f64 / seconds
            } else {
                0.0
            },
            latency_average_ms: if transactions > 0 {
                latency / transactions as f64
            } else {
                0.0
            },
            p50_ns: nearest_rank(&latencies, 0.5),
            p99_ns: nearest_rank(&latencies, 0.99),
        }
    }
}

/// The host with some number of processes, and pgbench with as many clients.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostgresRun {
    /// Host processes, each running events one at a time.
    pub processes: u64,
    /// Their events, all together: events per second over the longest
    /// process's wall time, percentiles over every event.
    pub host: Speed,
    /// Each process's events per second over its own wall time.
    pub per_process: Vec<f64>,
    /// pgbench with as many clients.
    pub pgbench: PgbenchRun,
    /// The host's events per second over pgbench's transactions per second.
    pub host_over_pgbench: f64,
}

/// One host process of a bench: which slice of the accounts it runs events
/// on, and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Worker {
    /// Accounts in the store.
    pub accounts: u64,
    /// Events of all processes together.
    pub events: u64,
    /// Processes running at once.
    pub processes: u64,
    /// This one, from 0.
    pub index: u64,
    /// Which run of the bench it belongs to, from 0 (call ids differ by run).
    pub run: u64,
}

impl Worker {
    /// Check the counts are within what a bench runs and that every process
    /// gets accounts of its own.
    pub fn check(&self) -> Result<(), DbBenchError> {
        DbBenchOptions {
            accounts: self.accounts,
            events: self.events,
            threads: 1,
        }
        .check()?;
        check_processes(self.processes, self.accounts)?;
        check_count("worker", self.index + 1, self.processes)
    }

    /// Its accounts: the first, and how many.
    fn slice(&self) -> (u64, u64) {
        let begin = |index: u64| {
            (u128::from(index) * u128::from(self.accounts) / u128::from(self.processes)) as u64
        };
        let first = begin(self.index);
        (first, begin(self.index + 1) - first)
    }

    /// Its share of the events.
    fn share(&self) -> u64 {
        self.events / self.processes + u64::from(self.index < self.events % self.processes)
    }
}

fn check_processes(processes: u64, accounts: u64) -> Result<(), DbBenchError> {
    check_count("processes", processes, super::MAX_PROCESSES.min(accounts))
}

/// Fill the store in [`SCHEMA`] of the database at `url` with
/// `options.accounts` users; then for each count in `processes`, run pgbench
/// with that many clients and time `options.events` usage events through as
/// many host processes, each started by `spawn` (which must run
/// [`run_worker`] for the worker it is given). `builder` makes the template
/// account's platform; `progress` hears what the bench is doing.
pub fn bench_postgres(
    url: &str,
    options: DbBenchOptions,
    processes: &[u64],
    pgbench: &PgbenchOptions,
    spawn: &dyn Fn(&Worker) -> Command,
    builder: &dyn Fn() -> PlatformBuilder,
    progress: &mut dyn FnMut(&str),
) -> Result<DbBenchReport, DbBenchError> {
    options.check()?;
    if processes.is_empty() {
        return Err(DbBenchError::Count {
            what: "runs",
            value: 0,
            min: 1,
            max: super::MAX_PROCESSES,
        });
    }
    for &count in processes {
        check_processes(count, options.accounts)?;
    }
    let program = pgbench_program(pgbench.program.as_deref())?;
    let server = Server::new(url)?;
    let template = template(builder())?;
    progress(&format!(
        "filling the schema {SCHEMA} with {} accounts",
        options.accounts
    ));
    let filled = fill_schema(url, SCHEMA, &template, options.accounts)?;
    progress("making pgbench's database");
    let pgbench_db = server.pgbench_database()?;
    let env = server.env(&pgbench_db);
    let mut runs = Vec::new();
    for (run, &count) in processes.iter().enumerate() {
        progress(&format!("pgbench -i -s {} on {pgbench_db}", pgbench.scale));
        pgbench_init(&program, &env, pgbench.scale)?;
        let mut measured = Vec::new();
        let mut together = Timings::with_capacity(options.events);
        let mut per_process = vec![Timings::with_capacity(0); count as usize];
        for round in 0..ROUNDS {
            let seconds = share(u64::from(pgbench.seconds), round);
            progress(&format!(
                "round {} of {ROUNDS}: pgbench -c {count} for {seconds} s",
                round + 1
            ));
            measured.push(pgbench_run(&program, &env, count, seconds)?);
            let events = share(options.events, round);
            progress(&format!(
                "round {} of {ROUNDS}: {events} usage events through {count} host process{}",
                round + 1,
                if count > 1 { "es" } else { "" }
            ));
            let workers: Vec<Worker> = (0..count)
                .map(|index| Worker {
                    accounts: options.accounts,
                    events,
                    processes: count,
                    index,
                    run: run as u64 * ROUNDS + round,
                })
                .collect();
            let timings = run_processes(spawn, &workers)?;
            together.then(Timings::side_by_side(&timings));
            for (mine, round) in per_process.iter_mut().zip(timings) {
                mine.then(round);
            }
        }
        let host = together.speed();
        let pgbench = PgbenchRun::of(measured);
        runs.push(PostgresRun {
            processes: count,
            host_over_pgbench: if pgbench.tps > 0.0 {
                host.events_per_second / pgbench.tps
            } else {
                0.0
            },
            host,
            per_process: per_process
                .into_iter()
                .map(|timings| timings.speed().events_per_second)
                .collect(),
            pgbench,
        });
    }
    Ok(DbBenchReport {
        database: recharge_host::Database::Postgres(url.to_owned()).to_string(),
        accounts: options.accounts,
        machine: Machine::this(),
        fill: filled,
        figures: Figures::Postgres(runs),
    })
}

/// An empty store in `schema` filled with `count` copies of `template` by
/// `COPY` of the records the store keeps, checked by reading the last one
/// back through the store, then vacuumed and analysed, so that the events
/// find a settled table and autovacuum does not start on it while they run.
fn fill_schema(
    url: &str,
    schema: &str,
    template: &Account,
    count: u64,
) -> Result<FillReport, DbBenchError> {
    let started = Instant::now();
    let store = PostgresStore::open_empty_schema(url, schema, 1)?;
    let mut client = Client::connect(url, NoTls).map_err(pg)?;
    let mut copying = client
        .copy_in(&format!(
            "COPY {schema}.accounts (id, version, record) FROM STDIN"
        ))
        .map_err(pg)?;
    let mut rows = std::io::BufWriter::with_capacity(1 << 20, &mut copying);
    for number in 0..count {
        let account = copy(template, number, count);
        let record = serde_json::to_string(&account).map_err(pg)?;
        writeln!(
            rows,
            "{}\t{}\t{}",
            copy_text(account.id.as_str()),
            account.version(),
            copy_text(&record)
        )
        .map_err(pg)?;
    }
    rows.flush().map_err(pg)?;
    drop(rows);
    copying.finish().map_err(pg)?;
    let last = copy(template, count - 1, count);
    if store.account(&last.id)?.as_ref() != Some(&last) {
        return Err(pg(format!(
            "{}: the copied account does not read back through the store as it was",
            last.id
        )));
    }
    client
        .batch_execute(&format!("VACUUM (ANALYZE) {schema}.accounts"))
        .map_err(pg)?;
    Ok(FillReport {
        method: "COPY accounts FROM STDIN (the store's JSON records), then VACUUM (ANALYZE)".into(),
        accounts: count,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `text` as a field of `COPY`'s text format.
fn copy_text(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['\\', '\t', '\n', '\r']) {
        return text.into();
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\t' => escaped.push_str("\\t"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            c => escaped.push(c),
        }
    }
    escaped.into()
}

/// Run one host process of a bench on the store in [`SCHEMA`] of the
/// database at `url`: start a platform from `builder`, warm it up, say
/// `ready` on `output`, wait for `go` on `input`, time the worker's events
/// and print their timings as one JSON line.
pub fn run_worker(
    url: &str,
    worker: Worker,
    builder: PlatformBuilder,
    input: &mut dyn BufRead,
    output: &mut dyn Write,
) -> Result<(), DbBenchError> {
    work(url, SCHEMA, worker, builder, input, output)
}

fn work(
    url: &str,
    schema: &str,
    worker: Worker,
    builder: PlatformBuilder,
    input: &mut dyn BufRead,
    output: &mut dyn Write,
) -> Result<(), DbBenchError> {
    worker.check()?;
    let broken = |reason: String| DbBenchError::Worker {
        index: worker.index,
        of: worker.processes,
        reason,
    };
    let store: Arc<dyn Store> = Arc::new(PostgresStore::open_in_schema(url, schema, WORKER_POOL)?);
    let platform = platform(builder, store, &format!("bench-{}", worker.index))?;
    let (first, len) = worker.slice();
    let walk = Walk::new(first, len);
    let events = worker.share();
    let count = worker.accounts;
    let run = worker.run;
    // Each run walks on from where the run before it stopped, so its events
    // find accounts no earlier run touched (until the slice wraps around).
    let base = run.saturating_mul(worker.events / worker.processes + 1 + WARM_UP);
    for n in events..events + WARM_UP.min(events) {
        let account = walk.account(base.saturating_add(n));
        record(&platform, account, count, &format!("r{run}-w{n}"), n)?;
    }
    writeln!(output, "ready")
        .and_then(|()| output.flush())
        .map_err(|err| broken(format!("cannot say it is ready: {err}")))?;
    let mut line = String::new();
    input
        .read_line(&mut line)
        .map_err(|err| broken(format!("cannot read the start: {err}")))?;
    if line.trim() != "go" {
        return Err(broken("the bench stopped before the start".into()));
    }
    let mut timings = Timings::with_capacity(events);
    timings.run(0..events, |n| {
        let account = walk.account(base.saturating_add(n));
        record(&platform, account, count, &format!("r{run}-c{n}"), n)
    })?;
    serde_json::to_writer(&mut *output, &timings)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(output))
        .and_then(|()| output.flush())
        .map_err(|err| broken(format!("cannot print its timings: {err}")))
}

/// Host processes started and not yet waited for: killed and reaped if the
/// bench stops early, so none is left waiting for a start that never comes.
struct Running {
    children: Vec<(Worker, Child, ChildStdin, BufReader<ChildStdout>)>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for (_, child, _, _) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Start a process per worker, start them together once all are ready, and
/// gather their timings.
fn run_processes(
    spawn: &dyn Fn(&Worker) -> Command,
    workers: &[Worker],
) -> Result<Vec<Timings>, DbBenchError> {
    let broken = |worker: &Worker, reason: String| DbBenchError::Worker {
        index: worker.index,
        of: worker.processes,
        reason,
    };
    let mut running = Running {
        children: Vec::new(),
    };
    for worker in workers {
        let mut child = spawn(worker)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|err| broken(worker, format!("cannot start: {err}")))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(broken(worker, "started without its pipes".into()));
        };
        running
            .children
            .push((*worker, child, stdin, BufReader::new(stdout)));
    }
    for (worker, child, _, stdout) in &mut running.children {
        let line = read_line(stdout).map_err(|err| broken(worker, err))?;
        if line.trim() != "ready" {
            let status = child
                .wait()
                .map_or_else(|err| err.to_string(), |status| status.to_string());
            return Err(broken(
                worker,
                format!("ended ({status}) before it was ready"),
            ));
        }
    }
    for (worker, _, stdin, _) in &mut running.children {
        writeln!(stdin, "go")
            .and_then(|()| stdin.flush())
            .map_err(|err| broken(worker, format!("cannot be started: {err}")))?;
    }
    let mut timings = Vec::new();
    for (worker, child, _, stdout) in &mut running.children {
        let line = read_line(stdout).map_err(|err| broken(worker, err))?;
        let status = child
            .wait()
            .map_err(|err| broken(worker, err.to_string()))?;
        if !status.success() {
            return Err(broken(worker, format!("failed ({status})")));
        }
        let measured: Timings = serde_json::from_str(&line)
            .map_err(|err| broken(worker, format!("printed no timings: {err}")))?;
        timings.push(measured);
    }
    running.children.clear();
    Ok(timings)
}

fn read_line(from: &mut impl BufRead) -> Result<String, String> {
    let mut line = String::new();
    from.read_line(&mut line)
        .map_err(|err| format!("cannot be read: {err}"))?;
    Ok(line)
}

fn pg(error: impl std::fmt::Display) -> DbBenchError {
    DbBenchError::Postgres(error.to_string())
}

fn bad_pgbench(error: impl std::fmt::Display) -> DbBenchError {
    DbBenchError::Pgbench(error.to_string())
}

/// The server of the bench's database, as its URL gives it.
struct Server {
    url: String,
    config: postgres::Config,
}

impl Server {
    fn new(url: &str) -> Result<Server, DbBenchError> {
        Ok(Server {
            url: url.to_owned(),
            config: url.parse().map_err(pg)?,
        })
    }

    /// pgbench's database on the same server, `DB_pgbench`, made if missing.
    fn pgbench_database(&self) -> Result<String, DbBenchError> {
        let base = self
            .config
            .get_dbname()
            .or(self.config.get_user())
            .unwrap_or("postgres");
        let name = format!("{base}_pgbench");
        let plain = name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_');
        if !plain {
            return Err(pg(format!(
                "the database {base:?} does not give pgbench's a plain name ({name:?})"
            )));
        }
        let mut client = Client::connect(&self.url, NoTls).map_err(pg)?;
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .map_err(pg)?
            .is_some();
        if !exists {
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .map_err(pg)?;
        }
        Ok(name)
    }

    /// The `PG*` variables that point pgbench at `database` on this server
    /// (a password stays out of the command line).
    fn env(&self, database: &str) -> Vec<(&'static str, OsString)> {
        let mut env = vec![("PGDATABASE", OsString::from(database))];
        let hosts: Vec<OsString> = self
            .config
            .get_hosts()
            .iter()
            .map(|host| match host {
                Host::Tcp(name) => OsString::from(name),
                Host::Unix(path) => path.as_os_str().to_owned(),
            })
            .collect();
        if !hosts.is_empty() {
            env.push(("PGHOST", hosts.join(std::ffi::OsStr::new(","))));
        }
        let ports: Vec<String> = self.config.get_ports().iter().map(u16::to_string).collect();
        if !ports.is_empty() {
            env.push(("PGPORT", OsString::from(ports.join(","))));
        }
        if let Some(user) = self.config.get_user() {
            env.push(("PGUSER", OsString::from(user)));
        }
        if let Some(password) = self.config.get_password() {
            use std::os::unix::ffi::OsStringExt;
            env.push(("PGPASSWORD", OsString::from_vec(password.to_vec())));
        }
        env
    }
}

/// The pgbench program: `given`, else `pgbench` on `PATH`, else the newest
/// under `/usr/lib/postgresql/*/bin`.
fn pgbench_program(given: Option<&Path>) -> Result<PathBuf, DbBenchError> {
    if let Some(given) = given {
        return if given.is_file() {
            Ok(given.to_owned())
        } else {
            Err(bad_pgbench(format!("{}: no such program", given.display())))
        };
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("pgbench"))
        .find(|candidate| candidate.is_file());
    if let Some(found) = on_path {
        return Ok(found);
    }
    let mut installed: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let program = entry.path().join("bin").join("pgbench");
            program.is_file().then_some((version, program))
        })
        .collect();
    installed.sort();
    installed
        .pop()
        .map(|(_, program)| program)
        .ok_or_else(|| bad_pgbench("not found on PATH nor in /usr/lib/postgresql: give --pgbench"))
}

/// Run `program` with `args` and `env`; its standard output if it succeeded.
fn pgbench(
    program: &Path,
    env: &[(&'static str, OsString)],
    args: &[String],
) -> Result<String, DbBenchError> {
    let output = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .output()
        .map_err(|err| bad_pgbench(format!("{}: cannot run: {err}", program.display())))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rev().find(|line| !line.trim().is_empty());
        return Err(bad_pgbench(format!(
            "pgbench {} failed ({}): {}",
            args.join(" "),
            output.status,
            last.unwrap_or("no message")
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `pgbench -i -q -s SCALE`: its tables made afresh.
fn pgbench_init(
    program: &Path,
    env: &[(&'static str, OsString)],
    scale: u32,
) -> Result<(), DbBenchError> {
    let args = ["-i", "-q", "-s", &scale.to_string()].map(str::to_owned);
    pgbench(program, env, &args).map(drop)
}

/// `pgbench -c CLIENTS -j THREADS -T SECONDS`, threads as many as clients up
/// to the machine's cores, every transaction logged for its percentiles.
fn pgbench_run(
    program: &Path,
    env: &[(&'static str, OsString)],
    clients: u64,
    seconds: u64,
) -> Result<PgbenchRound, DbBenchError> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let threads = clients.min(cores as u64).max(1);
    let logs = std::env::temp_dir().join(format!("recharge-bench-pgbench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs)
        .map_err(|err| bad_pgbench(format!("{}: cannot make: {err}", logs.display())))?;
    let command = format!("pgbench -c {clients} -j {threads} -T {seconds}");
    let mut args: Vec<String> = command.split(' ').skip(1).map(str::to_owned).collect();
    args.push("-l".into());
    args.push(format!("--log-prefix={}", logs.join("tx").display()));
    let printed = pgbench(program, env, &args);
    let latencies = printed.as_ref().ok().map(|_| logged_latencies(&logs));
    let _ = std::fs::remove_dir_all(&logs);
    let (transactions, tps, latency_average_ms) = parse_summary(&printed?)?;
    Ok(PgbenchRound {
        command,
        transactions,
        tps,
        latency_average_ms,
        latencies: latencies.unwrap_or_else(|| Ok(Vec::new()))?,
    })
}

/// The latency of every transaction in pgbench's logs in `dir` (the third
/// field of a line, in microseconds), in nanoseconds.
fn logged_latencies(dir: &Path) -> Result<Vec<u64>, DbBenchError> {
    let mut latencies = Vec::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|err| bad_pgbench(format!("{}: cannot read: {err}", dir.display())))?;
    for entry in entries.flatten() {
        let text = std::fs::read_to_string(entry.path())
            .map_err(|err| bad_pgbench(format!("{}: {err}", entry.path().display())))?;
        for line in text.lines() {
            let micros = line
                .split_whitespace()
                .nth(2)
                .and_then(|field| field.parse::<u64>().ok())
                .ok_or_else(|| bad_pgbench(format!("a log line without a latency: {line:?}")))?;
            latencies.push(micros.saturating_mul(1_000));
        }
    }
    Ok(latencies)
}

/// pgbench's summary: transactions, tps and latency average (ms).
fn parse_summary(printed: &str) -> Result<(u64, f64, f64), DbBenchError> {
    let field = |prefix: &str| {
        printed
            .lines()
            .find_map(|line| line.trim().strip_prefix(prefix))
            .map(str::trim)
            .ok_or_else(|| bad_pgbench(format!("printed no {prefix:?} line")))
    };
    let number = |text: &str, what: &str| {
        text.split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .and_then(|number| number.parse::<f64>().ok())
            .filter(|number| number.is_finite())
            .ok_or_else(|| bad_pgbench(format!("{what}: cannot read {text:?}")))
    };
    let transactions = field("number of transactions actually processed:")?;
    let transactions = transactions
        .split('/')
        .next()
        .and_then(|count| count.trim().parse().ok())
        .ok_or_else(|| bad_pgbench(format!("transactions: cannot read {transactions:?}")))?;
    Ok((
        transactions,
        number(field("tps =")?, "tps")?,
        number(field("latency average =")?, "latency")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUMMARY: &str = "pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: <builtin: TPC-B (sort of)>
scaling factor: 10
query mode: simple
number of clients: 4
number of threads: 2
maximum number of tries: 1
duration: 20 s
number of transactions actually processed: 31337
number of failed transactions: 0 (0.000%)
latency average = 2.553 ms
initial connection time = 7.118 ms
tps = 1566.774829 (without initial connection time)
";

    #[test]
    fn pgbench_s_summary_reads_back() {
        assert_eq!(
            parse_summary(SUMMARY).unwrap(),
            (31_337, 1566.774829, 2.553)
        );
        let err = parse_summary("tps = lots\n").unwrap_err();
        assert!(err.to_string().contains("number of transactions"), "{err}");
    }

    #[test]
    fn pgbench_s_rounds_add_up_to_one_run() {
        let round = |transactions, tps, latency_average_ms, latencies: &[u64]| PgbenchRound {
            command: "pgbench -c 1 -j 1 -T 10".into(),
            transactions,
            tps,
            latency_average_ms,
            latencies: latencies.to_vec(),
        };
        let run = PgbenchRun::of(vec![
            round(1_000, 100.0, 1.0, &[1, 2]),
            round(3_000, 300.0, 3.0, &[3, 4]),
        ]);
        assert_eq!(run.transactions, 4_000);
        assert_eq!(run.tps, 200.0);
        assert_eq!(run.latency_average_ms, 2.5);
        assert_eq!((run.p50_ns, run.p99_ns), (2, 4));
        assert_eq!(run.commands.len(), 2);
        assert_eq!((share(21, 0), share(21, 1)), (11, 10));
    }

    #[test]
    fn copy_fields_escape_what_the_text_format_reads_as_syntax() {
        assert_eq!(copy_text(r#"{"a":"b"}"#), r#"{"a":"b"}"#);
        assert_eq!(copy_text("a\\b\tc\nd\re"), r"a\\b\tc\nd\re");
    }

    #[test]
    fn workers_share_accounts_and_events_without_overlap() {
        let worker = |index| Worker {
            accounts: 10,
            events: 7,
            processes: 3,
            index,
            run: 0,
        };
        let slices: Vec<_> = (0..3).map(|index| worker(index).slice()).collect();
        assert_eq!(slices, [(0, 3), (3, 3), (6, 4)]);
        let shares: Vec<_> = (0..3).map(|index| worker(index).share()).collect();
        assert_eq!(shares, [3, 2, 2]);
        assert!(worker(2).check().is_ok());
        assert!(matches!(
            worker(3).check(),
            Err(DbBenchError::Count { what: "worker", .. })
        ));
        let crowded = Worker {
            processes: 11,
            ..worker(0)
        };
        assert!(matches!(
            crowded.check(),
            Err(DbBenchError::Count {
                what: "processes",
                ..
            })
        ));
    }

    #[test]
    fn the_server_s_settings_reach_pgbench_in_its_variables() {
        let server = Server::new("postgres://u:secret@db.example:6543/billing").unwrap();
        let env = server.env("billing_pgbench");
        let get = |name: &str| {
            env.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string_lossy().into_owned())
        };
        assert_eq!(get("PGDATABASE").as_deref(), Some("billing_pgbench"));
        assert_eq!(get("PGHOST").as_deref(), Some("db.example"));
        assert_eq!(get("PGPORT").as_deref(), Some("6543"));
        assert_eq!(get("PGUSER").as_deref(), Some("u"));
        assert_eq!(get("PGPASSWORD").as_deref(), Some("secret"));
    }

    /// The test database, unless PostgreSQL is left out on purpose (as the
    /// integration tests decide).
    fn postgres_url() -> Option<String> {
        if std::env::var("RECHARGE_SKIP_POSTGRES").is_ok_and(|value| value == "1") {
            return None;
        }
        Some(std::env::var("RECHARGE_TEST_POSTGRES").unwrap_or_else(|_| {
            "postgres://recharge:recharge@127.0.0.1:5432/recharge_test".to_owned()
        }))
    }

    #[test]
    fn a_worker_waits_for_the_start_then_prints_every_event_s_time() {
        let Some(url) = postgres_url() else { return };
        let schema = "bench_db_worker";
        let native = || recharge_host::Platform::builder().native_default_policy();
        let template = template(native()).unwrap();
        let filled = fill_schema(&url, schema, &template, 12_000).unwrap();
        assert_eq!(filled.accounts, 12_000);
        let worker = Worker {
            accounts: 12_000,
            events: 100,
            processes: 2,
            index: 1,
            run: 0,
        };
        let mut printed = Vec::new();
        work(
            &url,
            schema,
            worker,
            native(),
            &mut "go\n".as_bytes(),
            &mut printed,
        )
        .unwrap();
        let printed = String::from_utf8(printed).unwrap();
        let (ready, timings) = printed.split_once('\n').unwrap();
        assert_eq!(ready, "ready");
        let timings: Timings = serde_json::from_str(timings.trim()).unwrap();
        assert_eq!(timings.nanos.len(), 50);
        assert!(timings.wall_ns >= timings.nanos.iter().sum::<u64>());

        let mut printed = Vec::new();
        let err = work(
            &url,
            schema,
            Worker { run: 1, ..worker },
            native(),
            &mut "".as_bytes(),
            &mut printed,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("stopped before the start"),
            "{err}"
        );
        PostgresStore::drop_schema(&url, schema).unwrap();
    }
}
