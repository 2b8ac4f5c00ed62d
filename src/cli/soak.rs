//! `recharge soak --db URL`: a long workload on a database that a kill at any
//! point does not harm (see `recharge_sim::soak`); the crash and many-node
//! tests run it as child processes.

use anyhow::Context;
use clap::Args;
use recharge_host::Database;
use recharge_sim::soak::{Soak, SoakOptions};

/// Options of `recharge soak`.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// The database (`sqlite:PATH` or `postgres://...`).
    #[arg(long)]
    db: Database,
    /// This node's name: its progress and its claims on due work are kept
    /// under it. Nodes sharing a database need different names.
    #[arg(long, default_value = "node")]
    node: String,
    /// The seed of what the steps do.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Steps in all (a restarted node runs those left).
    #[arg(long, default_value_t = 200)]
    steps: u64,
    /// Users the steps share out.
    #[arg(long, default_value_t = 6)]
    users: usize,
    /// After the steps, let every card work and time run on three days, so
    /// that everything in flight settles.
    #[arg(long)]
    settle: bool,
}

/// Run the node's steps left (and settle, if asked), printing each step done.
pub fn run(args: &SoakArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=1_000).contains(&args.users),
        "--users must be 1 to 1,000, got {}",
        args.users
    );
    anyhow::ensure!(
        args.steps <= 1_000_000,
        "--steps must be at most 1,000,000, got {}",
        args.steps
    );
    recharge_host::input::check_id("node", &args.node)
        .map_err(|err| anyhow::anyhow!("--node: {err}"))?;
    let store = args
        .db
        .open()
        .with_context(|| format!("cannot open {}", args.db))?;
    let options = SoakOptions {
        node: args.node.clone(),
        seed: args.seed,
        steps: args.steps,
        users: args.users,
    };
    let stdout = std::io::stdout().lock();
    let mut soak = Soak::new(&options, store, super::platform(), stdout)?;
    soak.run()?;
    if args.settle {
        soak.settle()?;
    }
    Ok(())
}
