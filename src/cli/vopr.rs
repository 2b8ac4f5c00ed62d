//! `recharge vopr`: the deterministic simulation of the whole host with faults
//! injected, over many seeds (see `recharge_sim::vopr`).

use std::time::Instant;

use anyhow::Context;
use clap::Args;
use recharge_sim::vopr::{self, Backing, DEFAULT_STEPS, Shared};

use super::output;

/// Options of `recharge vopr`.
#[derive(Debug, Args)]
pub struct VoprArgs {
    /// How many seeds to run, from `--from`.
    #[arg(long, default_value_t = 1_000)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Run this one seed only (the command a failing seed prints).
    #[arg(long, conflicts_with_all = ["seeds", "from"])]
    seed: Option<u64>,
    /// Commands per seed before faults stop and liveness is checked.
    #[arg(long, default_value_t = DEFAULT_STEPS)]
    steps: usize,
    /// Threads (each runs whole seeds); the machine's cores by default.
    #[arg(long)]
    threads: Option<usize>,
    /// Keep each seed's state in a SQLite file in this folder instead of
    /// memory (removed once the seed passed).
    #[arg(long, value_name = "DIR", conflicts_with = "postgres")]
    sqlite: Option<std::path::PathBuf>,
    /// Keep each seed's state in a schema of its own (`seed_N`, dropped once
    /// the seed passed) in the PostgreSQL database at this URL.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
}

/// Run the seeds; fail (exit 2) if any broke an invariant, printing each with
/// the command that reproduces it.
pub fn run(args: &VoprArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.steps >= 1, "--steps must be at least 1");
    anyhow::ensure!(
        args.steps <= 100_000,
        "--steps must be at most 100,000, got {}",
        args.steps
    );
    let (first, count) = match args.seed {
        Some(seed) => (seed, 1),
        None => (args.from, args.seeds),
    };
    let end = first
        .checked_add(count)
        .context("--from plus --seeds overflows")?;
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let shared = Shared::new(super::cache_dir()).context("starting the engine")?;
    let started = Instant::now();
    let progress = |done: u64| eprintln!("vopr: {done} of {count} seeds");
    let backing = match (&args.sqlite, &args.postgres) {
        (Some(dir), _) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot create the folder", dir.display()))?;
            Backing::Sqlite(dir.clone())
        }
        (None, Some(url)) => Backing::Postgres(url.clone()),
        (None, None) => Backing::Memory,
    };
    let summary = vopr::run_seeds_on(
        &shared,
        &backing,
        first..end,
        args.steps,
        threads,
        &progress,
    );
    let took = started.elapsed().as_secs_f64();
    let stats = &summary.stats;
    output::print_text(&format!(
        "vopr: {} seeds ({}..{}) on {}, {} commands each, {} threads, {:.1} s\n  violations     {}\n  decisions      {}\n  restarts       {} ({} crashes injected, {} between commands)\n  store faults   {}\n  lost answers   {}\n  policy faults  {}\n  webhooks       {}\n  card charges   {} ({}.{:02} USD)\n  probes         {}\n",
        summary.seeds,
        first,
        end,
        match backing {
            Backing::Memory => "memory",
            Backing::Sqlite(_) => "SQLite files",
            Backing::Postgres(_) => "PostgreSQL schemas",
        },
        args.steps,
        threads,
        took,
        summary.violations.len(),
        stats.decisions,
        stats.restarts,
        stats.crashes,
        stats.restarts_asked,
        stats.store_faults,
        stats.lost_answers,
        stats.policy_faults,
        stats.webhooks,
        stats.card_charges,
        stats.charged_cents / 100,
        stats.charged_cents % 100,
        stats.probes,
    ))?;
    for violation in &summary.violations {
        eprintln!("{violation}");
    }
    anyhow::ensure!(
        summary.violations.is_empty(),
        "{} of {} seeds broke an invariant",
        summary.violations.len(),
        summary.seeds
    );
    Ok(())
}
