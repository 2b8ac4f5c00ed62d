//! The command line: one module per subcommand, errors surfaced as one line and
//! exit code 2 by `main`.

mod bench;
mod check;
pub mod output;
mod replay;
mod serve;
mod simulate;
mod soak;
mod vopr;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use recharge_host::{Database, Limits, Platform, PlatformBuilder};
use recharge_sim::files::{ReadError, read_capped};

/// Billing policy plugin: prepaid auto-recharge and sub-account minute allocation
/// as a sandboxed WebAssembly component.
#[derive(Debug, Parser)]
#[command(name = "recharge", version, about)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario script (JSON Lines) and print one JSON document.
    Replay {
        /// The script.
        script: PathBuf,
        /// Continue from what this database holds (`sqlite:PATH` or
        /// `postgres://USER:PASSWORD@HOST/DB`) and keep the run's state in it.
        #[arg(long)]
        db: Option<Database>,
    },
    /// Validate a policy component against the contract and the limits.
    Check {
        /// The component (.wasm).
        file: PathBuf,
    },
    /// Simulate months of generated traffic: print a report and write a chart.
    Simulate(simulate::SimulateArgs),
    /// Measure decision speed: usage events through a policy, each one timed.
    Bench(bench::BenchArgs),
    /// Simulate the whole host under injected faults (lost answers, late and
    /// repeated webhooks, store failures, crashes) for many seeds, checking
    /// that nothing is charged twice, lost or stuck.
    Vopr(vopr::VoprArgs),
    /// Run a long workload on a database, one node of many, resuming after a
    /// kill at any point (the crash and many-node tests run it).
    Soak(soak::SoakArgs),
    /// Run the host as an HTTP service: the script commands as a JSON API with
    /// API keys, timers and the outbox on the system clock (SPEC §8).
    Serve(serve::ServeArgs),
    /// Manage the service's API keys.
    #[command(name = "api-key", subcommand)]
    ApiKey(serve::ApiKeyCommand),
}

/// Run a parsed command line.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Replay { script, db } => replay::run(&script, db.as_ref()),
        Command::Check { file } => check::run(&file),
        Command::Simulate(args) => simulate::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Vopr(args) => vopr::run(&args),
        Command::Soak(args) => soak::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::ApiKey(command) => serve::api_key(&command),
    }
}

/// Where compiled components are cached between runs: `RECHARGE_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/recharge`, else `~/.cache/recharge`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("RECHARGE_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("recharge"))
}

/// Read a policy component, no further than a component may be long: a FIFO
/// or `/dev/zero` ends in a one-line error, not in memory filling up.
pub fn read_component(file: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    let limit = Limits::default().largest_component() as u64;
    read_capped(file, limit).or_else(|err| match err {
        ReadError::Io(err) => {
            Err(err).with_context(|| format!("{}: cannot read {what}", file.display()))
        }
        too_large => anyhow::bail!("{}: {what} is {too_large}", file.display()),
    })
}

/// A platform builder with the component cache set up.
pub fn platform() -> PlatformBuilder {
    let builder = Platform::builder();
    match cache_dir() {
        Some(dir) => builder.cache_dir(dir),
        None => builder,
    }
}
