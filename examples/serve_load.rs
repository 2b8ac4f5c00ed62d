//! A load generator for `recharge serve`: usage records per second and p50/p99
//! latency per request, over HTTP on loopback, from a second process.
//!
//! It starts the service as a child process on a database (`--db`), with
//! `RECHARGE_API_KEY` set and its log in `target/serve_load.log`; sets the
//! rates (basic 0.10, premium 0.20 a minute) and one account per client
//! thread, with a card and twice the credit its records will spend (top-ups
//! of 1000.00, the host's per-charge cap), so no record ever recharges. Then
//! it measures three modes one after the other, in the same run, each with
//! `--clients` threads that each keep one connection alive (their own `ureq`
//! agent):
//!
//! 1. **baseline**: `GET /healthz`, which touches neither the database nor
//!    the policy: the floor of loopback, axum and this client, as many
//!    requests as mode 2;
//! 2. **single records**: `POST /v1/usage` with one record a request,
//!    `--records` requests in all;
//! 3. **batches**: `POST /v1/usage` with `{"records": [...]}` of `--batch`
//!    records a request, `--records` records in all.
//!
//! Each mode starts with a few untimed requests per client, then all clients
//! start together; every request is timed from just before it is sent (its
//! body already made) until its answer has been read in full. Every answer
//! must be 200, and every record of a batch answered without an error:
//! failures are counted, and any failure makes the run exit 1. The figures
//! are printed as a markdown table, with the CPU time the service process,
//! this process and the whole machine spent per request, and the share of
//! the machine's time the hypervisor stole (a shared virtual machine's
//! neighbours show there). At the end the
//! service gets SIGTERM and is waited for.
//!
//! ```sh
//! cargo build --release --bin recharge --example serve_load
//! rm -f target/serve_load.db*
//! target/release/examples/serve_load --db sqlite:target/serve_load.db \
//!     --records 50000 --clients 8 --batch 100
//! target/release/examples/serve_load --db "$(bash scripts/postgres.sh)" \
//!     --records 50000 --clients 8 --batch 100
//! ```
//!
//! On PostgreSQL the service runs in a fresh schema `serve_load` (dropped and
//! made again at each run). A SQLite file must not exist yet.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The API key the service is started with and every request carries.
const KEY: &str = "serve-load-key-0123456789";
/// The PostgreSQL schema the service runs in.
const SCHEMA: &str = "serve_load";
/// Untimed records (requests, for the baseline) each client sends before a
/// mode is timed: at least one request.
const WARM_UP: usize = 20;
/// Failures whose message is printed.
const SHOWN_FAILURES: usize = 5;

/// What to run, from the command line.
struct Options {
    /// The database as `recharge serve --db` takes it.
    db: String,
    /// Usage records per mode (and baseline requests).
    records: usize,
    /// Concurrent client threads.
    clients: usize,
    /// Records per batch request.
    batch: usize,
    /// The `recharge` binary.
    bin: PathBuf,
}

const USAGE: &str = "usage: serve_load --db sqlite:PATH|postgres://URL [--records N] \
[--clients C] [--batch B] [--bin PATH]";

impl Options {
    /// Read the options from the command line.
    fn parse() -> Result<Options, String> {
        let mut options = Options {
            db: String::new(),
            records: 20_000,
            clients: 8,
            batch: 100,
            bin: PathBuf::from("target/release/recharge"),
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            let number = |text: String| -> Result<usize, String> {
                match text.parse::<usize>() {
                    Ok(number) if number > 0 => Ok(number),
                    _ => Err(format!("{flag}: {text:?} is not a positive whole number")),
                }
            };
            match flag.as_str() {
                "--db" => options.db = value()?,
                "--records" => options.records = number(value()?)?,
                "--clients" => options.clients = number(value()?)?,
                "--batch" => options.batch = number(value()?)?,
                "--bin" => options.bin = PathBuf::from(value()?),
                "-h" | "--help" => return Err(USAGE.into()),
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        if options.db.is_empty() {
            return Err(format!("--db is required\n{USAGE}"));
        }
        if options.batch > options.records {
            return Err("--batch is larger than --records".into());
        }
        Ok(options)
    }
}

/// The database URL the service is given: a SQLite file that does not exist
/// yet, or a fresh schema on PostgreSQL.
fn prepare_database(db: &str) -> Result<String, String> {
    if let Some(path) = db.strip_prefix("sqlite:") {
        if std::path::Path::new(path).exists() {
            return Err(format!(
                "{path} exists: delete it, a fresh file is measured"
            ));
        }
        return Ok(db.to_owned());
    }
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        recharge_host::PostgresStore::open_empty_schema(db, SCHEMA, 1)
            .map_err(|err| format!("cannot make the schema {SCHEMA}: {err}"))?;
        let sep = if db.contains('?') { '&' } else { '?' };
        return Ok(format!("{db}{sep}options=-csearch_path%3D{SCHEMA}"));
    }
    Err(format!(
        "--db {db:?}: expected sqlite:PATH or postgres://..."
    ))
}

/// The running service, a child process.
struct Server {
    child: Child,
    /// `http://ADDR`.
    base: String,
    /// Where its log goes.
    log: PathBuf,
}

impl Server {
    /// Start `bin serve` on `db`; its log goes to `log`.
    fn start(bin: &std::path::Path, db: &str, log: PathBuf) -> Result<Server, String> {
        let stderr = File::create(&log).map_err(|err| format!("{}: {err}", log.display()))?;
        let mut child = Command::new(bin)
            .args(["serve", "--db", db, "--listen", "127.0.0.1:0"])
            .env("RECHARGE_API_KEY", KEY)
            .env("RECHARGE_CACHE_DIR", "target/recharge-cache")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", bin.display()))?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        let Some(address) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "no address on the service's first line ({line:?}); log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        };
        Ok(Server {
            base: format!("http://{address}"),
            child,
            log,
        })
    }

    /// SIGTERM the service and wait for it to end.
    fn stop(mut self) -> Result<(), String> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        if !sent.is_ok_and(|status| status.success()) {
            let _ = self.child.kill();
        }
        let status = self.child.wait().map_err(|err| err.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "the service ended with {status}; log: {}",
                self.log.display()
            ))
        }
    }
}

/// One client: its own agent, so its own kept-alive connection.
struct Client {
    agent: ureq::Agent,
    base: String,
}

/// An answer's status and body.
struct Answer {
    status: u16,
    text: String,
}

impl Client {
    fn new(base: &str) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Client {
            agent,
            base: base.to_owned(),
        }
    }

    /// `GET path`.
    fn get(&self, path: &str) -> Result<Answer, String> {
        let sent = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {KEY}"))
            .call();
        Self::answer(sent)
    }

    /// `method path` with a JSON body.
    fn send(&self, method: &str, path: &str, body: &[u8]) -> Result<Answer, String> {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "PUT" => self.agent.put(url),
            _ => self.agent.post(url),
        };
        let sent = request
            .header("Authorization", format!("Bearer {KEY}"))
            .content_type("application/json")
            .send(body);
        Self::answer(sent)
    }

    fn answer(
        sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Answer, String> {
        let mut response = sent.map_err(|err| err.to_string())?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|err| err.to_string())?;
        Ok(Answer { status, text })
    }

    /// `method path body`, which must answer `status`.
    fn expect(&self, status: u16, method: &str, path: &str, body: &Value) -> Result<Value, String> {
        let answer = self.send(method, path, body.to_string().as_bytes())?;
        if answer.status != status {
            return Err(format!(
                "{method} {path}: {} (expected {status}): {}",
                answer.status, answer.text
            ));
        }
        serde_json::from_str(&answer.text).map_err(|err| format!("{method} {path}: {err}"))
    }
}

/// The account of client `index`.
fn account(index: usize) -> String {
    format!("load-{index}")
}

/// The largest top-up the host allows (its per-charge cap), in cents.
const TOP_UP_CENTS: u64 = 100_000;
/// What one usage record costs at the rates set (60 basic seconds at 0.10 a
/// minute), in cents.
const RECORD_CENTS: u64 = 10;

/// Per client an account with a card and credit for `records` records and
/// as much again, in top-ups of 1000.00, so nothing ever recharges.
fn set_up(client: &Client, index: usize, records: usize) -> Result<(), String> {
    let account = account(index);
    client.expect(
        201,
        "POST",
        "/v1/accounts",
        &json!({"account": account, "kind": "user"}),
    )?;
    client.expect(
        201,
        "POST",
        &format!("/v1/accounts/{account}/cards"),
        &json!({"card": "visa"}),
    )?;
    let needed = 2 * records as u64 * RECORD_CENTS;
    let top_ups = needed.div_ceil(TOP_UP_CENTS);
    for _ in 0..top_ups {
        client.expect(
            200,
            "POST",
            &format!("/v1/accounts/{account}/top-ups"),
            &json!({"card": "visa", "amount": "1000.00"}),
        )?;
    }
    let expected = format!("{}.00", top_ups * TOP_UP_CENTS / 100);
    let balance = client.get(&format!("/v1/accounts/{account}/balance?actor={account}"))?;
    let balance: Value = serde_json::from_str(&balance.text).map_err(|err| err.to_string())?;
    if balance["balance"] != expected.as_str() {
        return Err(format!(
            "{account}: the top-ups did not settle to {expected}: {balance}"
        ));
    }
    Ok(())
}

/// What is measured.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// `GET /healthz`.
    Baseline,
    /// `POST /v1/usage`, one record.
    Single,
    /// `POST /v1/usage`, `batch` records.
    Batch(usize),
}

impl Mode {
    fn name(self) -> String {
        match self {
            Mode::Baseline => "baseline: `GET /healthz`".into(),
            Mode::Single => "single records: `POST /v1/usage`".into(),
            Mode::Batch(batch) => format!("batches of {batch}: `POST /v1/usage`"),
        }
    }

    /// Records per request.
    fn records(self) -> usize {
        match self {
            Mode::Baseline => 0,
            Mode::Single => 1,
            Mode::Batch(batch) => batch,
        }
    }

    /// Untimed requests each client makes before this mode is timed.
    fn warm_up(self) -> usize {
        match self {
            Mode::Batch(batch) => (WARM_UP / batch).max(1),
            Mode::Baseline | Mode::Single => WARM_UP,
        }
    }

    /// One usage record of client `index`, with a call id of its own.
    fn record(index: usize, call: &str) -> Value {
        json!({"account": account(index), "call": call, "seconds": 60, "type": "basic"})
    }

    /// The body of request `number` of client `index` (`tag` sets warm-up
    /// calls apart), with call ids of its own; none for the baseline.
    fn body(self, index: usize, tag: &str, number: usize) -> Option<String> {
        match self {
            Mode::Baseline => None,
            Mode::Single => {
                Some(Mode::record(index, &format!("{tag}s{index}-{number}")).to_string())
            }
            Mode::Batch(batch) => {
                let records: Vec<Value> = (0..batch)
                    .map(|item| Mode::record(index, &format!("{tag}b{index}-{number}-{item}")))
                    .collect();
                Some(json!({ "records": records }).to_string())
            }
        }
    }

    /// Send a request with `body` (made by [`Mode::body`]).
    fn send(self, client: &Client, body: Option<&str>) -> Result<Answer, String> {
        match body {
            None => client.get("/healthz"),
            Some(body) => client.send("POST", "/v1/usage", body.as_bytes()),
        }
    }

    /// `Err` with why unless `answer` is 200 and, for a batch, answers each
    /// of its records without an error.
    fn check(self, answer: Result<Answer, String>) -> Result<(), String> {
        let answer = answer?;
        if answer.status != 200 {
            return Err(format!("{}: {}", answer.status, answer.text));
        }
        if let Mode::Batch(batch) = self {
            let body: Value = serde_json::from_str(&answer.text).map_err(|err| err.to_string())?;
            let records = body["records"].as_array().map_or(&[][..], Vec::as_slice);
            if records.len() != batch {
                return Err(format!("{} records answered of {batch}", records.len()));
            }
            if let Some(failed) = records.iter().find(|record| record.get("error").is_some()) {
                return Err(format!("a record failed: {failed}"));
            }
        }
        Ok(())
    }
}

/// CPU time so far, in clock ticks: of a process (`/proc/PID/stat`, user
/// and system, threads that ended included) and of the whole machine
/// (`/proc/stat`'s first line).
#[derive(Clone, Copy)]
struct Cpu {
    /// The service process.
    service: u64,
    /// This process, the clients.
    this: u64,
    /// Every CPU's busy time: user, nice, system, irq, softirq.
    busy: u64,
    /// Time the hypervisor gave to others while this machine wanted to run.
    steal: u64,
    /// Every CPU's time: busy, idle, iowait and steal.
    total: u64,
}

impl Cpu {
    fn now(service: u32) -> Cpu {
        let process = |pid: &str| -> u64 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // After the command's name in parentheses: field 3 onwards;
            // utime and stime are fields 14 and 15.
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let fields: Vec<u64> = after
                .split_whitespace()
                .map(|field| field.parse().unwrap_or(0))
                .collect();
            fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0)
        };
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let all: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .map(|field| field.parse().unwrap_or(0))
            .collect();
        let field = |index: usize| all.get(index).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal
        Cpu {
            service: process(&service.to_string()),
            this: process("self"),
            busy: field(0) + field(1) + field(2) + field(5) + field(6),
            steal: field(7),
            total: (0..8).map(field).sum(),
        }
    }

    /// What was spent from `before` to `self`.
    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            service: self.service - before.service,
            this: self.this - before.this,
            busy: self.busy - before.busy,
            steal: self.steal - before.steal,
            total: self.total - before.total,
        }
    }
}

/// Clock ticks a second (`getconf CLK_TCK`; 100 on Linux).
fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The figures of one mode.
struct Figures {
    mode: Mode,
    requests: usize,
    failures: usize,
    /// The first few failures' messages.
    shown: Vec<String>,
    wall: Duration,
    /// Every request's latency, sorted.
    latencies: Vec<Duration>,
    /// CPU ticks spent during the mode.
    cpu: Cpu,
}

impl Figures {
    fn records(&self) -> usize {
        self.requests * self.mode.records()
    }

    fn per_second(&self, count: usize) -> f64 {
        count as f64 / self.wall.as_secs_f64()
    }

    /// The `p`-quantile latency in ms (nearest rank).
    fn quantile(&self, p: f64) -> f64 {
        let count = self.latencies.len();
        if count == 0 {
            return 0.0;
        }
        let rank = ((p * count as f64).ceil() as usize).clamp(1, count);
        self.latencies[rank - 1].as_secs_f64() * 1e3
    }
}

/// Run `requests` requests of `mode` over the clients (as evenly as they
/// divide), all starting together after their warm-up.
fn measure(clients: &[Arc<Client>], mode: Mode, requests: usize, service: u32) -> Figures {
    let count = clients.len();
    let start = Arc::new(Barrier::new(count + 1));
    let threads: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(index, client)| {
            let client = Arc::clone(client);
            let start = Arc::clone(&start);
            let share = requests / count + usize::from(index < requests % count);
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                for number in 0..mode.warm_up() {
                    let body = mode.body(index, "w", number);
                    if let Err(err) = mode.check(mode.send(&client, body.as_deref())) {
                        failures.push(format!("warm-up: {err}"));
                    }
                }
                let mut latencies = Vec::with_capacity(share);
                start.wait();
                for number in 0..share {
                    let body = mode.body(index, "", number);
                    let sent = Instant::now();
                    let answer = mode.send(&client, body.as_deref());
                    latencies.push(sent.elapsed());
                    if let Err(err) = mode.check(answer) {
                        failures.push(err);
                    }
                }
                (latencies, failures)
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let cpu_before = Cpu::now(service);
    let mut latencies = Vec::with_capacity(requests);
    let mut failures = Vec::new();
    for thread in threads {
        let (mine, failed) = thread.join().expect("a client thread panicked");
        latencies.extend(mine);
        failures.extend(failed);
    }
    let wall = began.elapsed();
    let cpu_after = Cpu::now(service);
    latencies.sort_unstable();
    Figures {
        mode,
        requests: latencies.len(),
        failures: failures.len(),
        shown: failures.into_iter().take(SHOWN_FAILURES).collect(),
        wall,
        latencies,
        cpu: cpu_after.since(cpu_before),
    }
}

/// The figures as markdown: the throughput and latency table, then the CPU
/// table.
fn table(all: &[Figures]) -> String {
    let baseline = all.iter().find(|figures| figures.mode == Mode::Baseline);
    let baseline_rps = baseline.map_or(0.0, |figures| figures.per_second(figures.requests));
    let mut out = String::from(
        "| mode | requests | records | failures | wall s | requests/s | records/s | \
         p50 ms | p99 ms | requests/s over baseline |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for figures in all {
        let rps = figures.per_second(figures.requests);
        let records = if figures.mode == Mode::Baseline {
            "–".to_owned()
        } else {
            format!("{:.0}", figures.per_second(figures.records()))
        };
        out += &format!(
            "| {} | {} | {} | {} | {:.2} | {:.0} | {} | {:.3} | {:.3} | {:.3} |\n",
            figures.mode.name(),
            figures.requests,
            figures.records(),
            figures.failures,
            figures.wall.as_secs_f64(),
            rps,
            records,
            figures.quantile(0.50),
            figures.quantile(0.99),
            rps / baseline_rps,
        );
    }
    let hz = ticks_per_second();
    out += "\n| mode | service CPU µs/request | client CPU µs/request | \
            machine busy CPU µs/request | machine busy | steal |\n\
            | --- | --- | --- | --- | --- | --- |\n";
    for figures in all {
        let cpu = figures.cpu;
        let per_request = |ticks: u64| ticks as f64 / hz * 1e6 / figures.requests as f64;
        let share = |ticks: u64| ticks as f64 * 100.0 / cpu.total.max(1) as f64;
        out += &format!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0}% | {:.0}% |\n",
            figures.mode.name(),
            per_request(cpu.service),
            per_request(cpu.this),
            per_request(cpu.busy),
            share(cpu.busy),
            share(cpu.steal),
        );
    }
    out
}

/// Set up, measure the three modes, print the tables.
fn run(options: &Options, server: &Server) -> Result<(), String> {
    let clients: Vec<Arc<Client>> = (0..options.clients)
        .map(|_| Arc::new(Client::new(&server.base)))
        .collect();
    clients[0].expect(
        200,
        "PUT",
        "/v1/rates",
        &json!({"basic": "0.10", "premium": "0.20"}),
    )?;
    // The most records one client sends over the three modes and warm-ups.
    let per_client = options.records.div_ceil(options.clients)
        + options
            .records
            .div_ceil(options.batch)
            .div_ceil(options.clients)
            * options.batch
        + WARM_UP
        + Mode::Batch(options.batch).warm_up() * options.batch;
    for (index, client) in clients.iter().enumerate() {
        set_up(client, index, per_client)?;
    }
    let service = server.child.id();
    let modes = [
        (Mode::Baseline, options.records),
        (Mode::Single, options.records),
        (
            Mode::Batch(options.batch),
            options.records.div_ceil(options.batch),
        ),
    ];
    let mut all = Vec::new();
    for (mode, requests) in modes {
        eprintln!("{}: {requests} requests ...", mode.name());
        let figures = measure(&clients, mode, requests, service);
        eprintln!(
            "  {:.1} s, {:.0} requests/s, {} failures",
            figures.wall.as_secs_f64(),
            figures.per_second(figures.requests),
            figures.failures
        );
        all.push(figures);
    }
    println!("{}", table(&all));
    let failures: usize = all.iter().map(|figures| figures.failures).sum();
    if failures > 0 {
        for figures in &all {
            for shown in &figures.shown {
                eprintln!("{}: {shown}", figures.mode.name());
            }
        }
        return Err(format!("{failures} requests failed"));
    }
    Ok(())
}

fn main() -> ExitCode {
    let options = match Options::parse() {
        Ok(options) => options,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };
    let db = match prepare_database(&options.db) {
        Ok(db) => db,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };
    let log = PathBuf::from("target/serve_load.log");
    let server = match Server::start(&options.bin, &db, log) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "service on {} (log {}), {} clients, {} records a mode, batches of {}",
        server.base,
        server.log.display(),
        options.clients,
        options.records,
        options.batch
    );
    let ran = run(&options, &server);
    let stopped = server.stop();
    match (ran, stopped) {
        (Ok(()), Ok(())) => ExitCode::SUCCESS,
        (ran, stopped) => {
            for err in [ran.err(), stopped.err()].into_iter().flatten() {
                eprintln!("FAILED: {err}");
            }
            ExitCode::FAILURE
        }
    }
}
