//! `recharge bench [--policy FILE] [--events N] [--fresh-instances] [--json]`,
//! in memory; with `--db sqlite:PATH | postgres://URL [--accounts N]
//! [--processes K[,K…]] [--threads T]`, durable usage events on a database holding many
//! accounts, against the rusqlite or pgbench baseline in the same run.

use std::path::PathBuf;

use anyhow::Context;
use recharge_host::{Database, Limits};
use recharge_sim::bench::{BenchOptions, BenchReport, MAX_EVENTS, SpeedReport, bench};
use recharge_sim::bench_db::{
    DEFAULT_ACCOUNTS, DEFAULT_EVENTS, DbBenchError, DbBenchOptions, DbBenchReport, Figures,
    PgbenchOptions, ROUNDS, Speed, Worker, bench_postgres, bench_sqlite, run_worker,
};

use super::output;
use super::simulate::{Progress, read_policy};

/// `recharge bench` options.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Measure this policy component instead of the default policy.
    #[arg(long, value_name = "FILE.wasm", conflicts_with = "db")]
    policy: Option<PathBuf>,
    /// Usage events to time [default: 100000; with --db, 20000].
    #[arg(long, value_name = "N")]
    events: Option<u64>,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Instantiate a fresh sandbox for every call instead of reusing warm
    /// instances (the difference is what an instantiation costs).
    #[arg(long, conflicts_with = "db")]
    fresh_instances: bool,
    /// Time durable events on this database instead of in memory: a new
    /// SQLite file (and PATH.baseline beside it for the rusqlite baseline), or
    /// the schema recharge_bench of a PostgreSQL database (dropped first;
    /// pgbench gets the database DB_pgbench on the same server).
    #[arg(long, value_name = "sqlite:PATH|postgres://URL")]
    db: Option<Database>,
    /// Accounts to fill the database with.
    #[arg(long, value_name = "N", requires = "db", default_value_t = DEFAULT_ACCOUNTS)]
    accounts: u64,
    /// Host processes on PostgreSQL, one run each (against pgbench with as
    /// many clients): 1,4 runs one process, then four.
    #[arg(
        long,
        value_name = "K[,K...]",
        requires = "db",
        value_delimiter = ',',
        default_value = "1"
    )]
    processes: Vec<u64>,
    /// Threads running the host's events side by side on SQLite, one store
    /// (their commits share flushes); the rusqlite baseline stays one writer.
    #[arg(long, value_name = "T", requires = "db", default_value_t = 1)]
    threads: u64,
    /// The pgbench program [default: on PATH, else /usr/lib/postgresql/*/bin].
    #[arg(long, value_name = "PATH", requires = "db")]
    pgbench: Option<PathBuf>,
    /// How long pgbench runs with each number of processes, in all (in
    /// turns with the host's events).
    #[arg(long, value_name = "S", requires = "db", default_value_t = PgbenchOptions::default().seconds)]
    pgbench_seconds: u32,
    /// pgbench's scale factor (100,000 pgbench accounts a unit).
    #[arg(long, value_name = "N", requires = "db", default_value_t = PgbenchOptions::default().scale)]
    pgbench_scale: u32,
    /// Run as host process INDEX of a PostgreSQL bench (started by the bench
    /// itself; RUN numbers the bench's runs).
    #[arg(long, value_name = "INDEX", requires = "db", hide = true)]
    worker: Option<u64>,
    /// The run a host process belongs to.
    #[arg(
        long,
        value_name = "RUN",
        requires = "worker",
        hide = true,
        default_value_t = 0
    )]
    run: u64,
}

/// Time the events and print the figures.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if let Some(db) = &args.db {
        return run_on(db, args);
    }
    let events = args.events.unwrap_or(BenchOptions::default().events);
    if !(1..=MAX_EVENTS).contains(&events) {
        anyhow::bail!("--events: {events} is not between 1 and {MAX_EVENTS}");
    }
    let policy = read_policy(args.policy.as_deref())?;
    let options = BenchOptions {
        events,
        ..BenchOptions::default()
    };
    let mut progress = Progress::new("benchmarking");
    let fresh = args.fresh_instances;
    let builder = move || {
        super::platform().limits(Limits {
            fresh_instance_per_call: fresh,
            ..Limits::default()
        })
    };
    let report = bench(&policy, options, &builder, &mut |done, total| {
        progress.update(done, total)
    })?;
    progress.finish();
    if args.json {
        output::print_json(&report)
    } else {
        output::print_text(&text(&report))
    }
}

/// The durable bench on `db`, or one host process of it.
fn run_on(db: &Database, args: &BenchArgs) -> anyhow::Result<()> {
    let options = DbBenchOptions {
        accounts: args.accounts,
        events: args.events.unwrap_or(DEFAULT_EVENTS),
        threads: args.threads,
    };
    // A count out of range names its flag.
    let flag = |err: DbBenchError| match err {
        DbBenchError::Count {
            what,
            value,
            min,
            max,
        } => anyhow::anyhow!("--{what}: {value} is not between {min} and {max}"),
        other => other.into(),
    };
    options.check().map_err(flag)?;
    let builder = super::platform;
    let report = match db {
        Database::Sqlite(path) => {
            if args.processes != [1] {
                anyhow::bail!("--processes: more than one host process is for postgres:// only");
            }
            if args.worker.is_some() {
                anyhow::bail!("--worker: host processes are for postgres:// only");
            }
            bench_sqlite(path, options, &builder, &mut say)?
        }
        Database::Postgres(url) => {
            if args.threads != 1 {
                anyhow::bail!(
                    "--threads: host threads are for sqlite: only (on postgres://, --processes)"
                );
            }
            if let Some(index) = args.worker {
                let [processes] = args.processes[..] else {
                    anyhow::bail!("--worker: give one --processes");
                };
                let worker = Worker {
                    accounts: options.accounts,
                    events: options.events,
                    processes,
                    index,
                    run: args.run,
                };
                let stdin = std::io::stdin();
                let mut input = stdin.lock();
                let mut output = std::io::stdout().lock();
                return Ok(run_worker(url, worker, builder(), &mut input, &mut output)?);
            }
            let pgbench = PgbenchOptions {
                program: args.pgbench.clone(),
                scale: args.pgbench_scale,
                seconds: args.pgbench_seconds,
            };
            anyhow::ensure!(
                (1..=100_000).contains(&pgbench.scale),
                "--pgbench-scale: {} is not between 1 and 100000",
                pgbench.scale
            );
            let least = ROUNDS as u32;
            anyhow::ensure!(
                (least..=3_600).contains(&pgbench.seconds),
                "--pgbench-seconds: {} is not between {least} and 3600",
                pgbench.seconds
            );
            let program = std::env::current_exe().context("cannot find this program")?;
            let spawn = |worker: &Worker| {
                let mut command = std::process::Command::new(&program);
                command
                    .arg("bench")
                    .arg("--db")
                    .arg(url)
                    .args(["--accounts", &worker.accounts.to_string()])
                    .args(["--events", &worker.events.to_string()])
                    .args(["--processes", &worker.processes.to_string()])
                    .args(["--worker", &worker.index.to_string()])
                    .args(["--run", &worker.run.to_string()]);
                command
            };
            bench_postgres(
                url,
                options,
                &args.processes,
                &pgbench,
                &spawn,
                &builder,
                &mut say,
            )
            .map_err(flag)?
        }
    };
    if args.json {
        output::print_json(&report)
    } else {
        output::print_text(&db_text(&report))
    }
}

/// What the bench is doing, on stderr: it takes minutes.
fn say(what: &str) {
    eprintln!("recharge bench: {what}");
}

fn db_text(report: &DbBenchReport) -> String {
    let mut out = format!(
        "recharge bench --db {}: {} accounts ({} CPUs, {})\n\
         filled in {:.1} s ({})\n\n",
        report.database,
        report.accounts,
        report.machine.cpus,
        report.machine.cpu_model,
        report.fill.seconds,
        report.fill.method,
    );
    out.push_str(&format!(
        "{:<34} {:>8} {:>12} {:>10} {:>10} {:>10} {:>10}\n",
        "", "events", "events/s", "p50 µs", "p99 µs", "max µs", "CPU µs"
    ));
    let micros = |nanos: u64| nanos as f64 / 1_000.0;
    let speed_row = |label: &str, speed: &Speed| {
        let cpu = speed
            .cpu_ns_per_event
            .map_or_else(|| "-".to_owned(), |cpu| format!("{:.1}", micros(cpu)));
        format!(
            "{label:<34} {:>8} {:>12.0} {:>10.1} {:>10.1} {:>10.1} {cpu:>10}\n",
            speed.events,
            speed.events_per_second,
            micros(speed.p50_ns),
            micros(speed.p99_ns),
            micros(speed.max_ns)
        )
    };
    match &report.figures {
        Figures::Sqlite(figures) => {
            out.push_str(&speed_row("host, default policy (wasm)", &figures.host));
            out.push_str(&speed_row("rusqlite, same row writes", &figures.baseline));
            out.push_str(&format!(
                "\nhost over baseline {:.2} (events per second); CPU µs: the event thread's \
                 time on a CPU per event\n",
                figures.host_over_baseline
            ));
        }
        Figures::Postgres(runs) => {
            for run in runs {
                let label = format!(
                    "host, {} process{}",
                    run.processes,
                    if run.processes > 1 { "es" } else { "" }
                );
                out.push_str(&speed_row(&label, &run.host));
                let pgbench = &run.pgbench;
                let command = match &pgbench.commands[..] {
                    [first, rest @ ..] if rest.iter().all(|other| other == first) => {
                        format!("{first} ×{}", pgbench.commands.len())
                    }
                    commands => commands.join(", "),
                };
                out.push_str(&format!(
                    "{:<34} {:>8} {:>12.0} {:>10.1} {:>10.1}\n",
                    command,
                    pgbench.transactions,
                    pgbench.tps,
                    micros(pgbench.p50_ns),
                    micros(pgbench.p99_ns),
                ));
                out.push_str(&format!(
                    "host over pgbench {:.2} (events per second over tps); CPU µs: the host \
                     processes' own, not the server's\n\n",
                    run.host_over_pgbench
                ));
            }
        }
    }
    out
}

fn text(report: &BenchReport) -> String {
    let mut out = format!(
        "recharge bench: {} usage events over {} users on auto-recharge, one at a time\n\n",
        report.events, report.users
    );
    out.push_str(&format!(
        "{:<16} {:>12} {:>12} {:>12} {:>12} {:>12}\n",
        "policy", "events/s", "median µs", "p99 µs", "fuel median", "fuel p99"
    ));
    for speed in std::iter::once(&report.policy).chain(&report.native) {
        out.push_str(&row(speed));
    }
    out.push_str(&row(&report.saves));
    if let Some(ratio) = report.wasm_over_native {
        out.push_str(&format!(
            "\nwasm_over_native {ratio:.2} (median time per event, sandboxed over native)\n"
        ));
    }
    out
}

fn row(speed: &SpeedReport) -> String {
    let micros = |nanos: u64| nanos as f64 / 1_000.0;
    format!(
        "{:<16} {:>12.0} {:>12.2} {:>12.2} {:>12} {:>12}\n",
        speed.policy,
        speed.events_per_second,
        micros(speed.median_ns),
        micros(speed.p99_ns),
        speed.fuel_per_event.median,
        speed.fuel_per_event.p99
    )
}
