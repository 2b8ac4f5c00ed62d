//! `recharge serve [--db URL] [--listen ADDR]` and `recharge api-key create
//! --db URL`.

use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand};
use recharge_host::Database;

/// Where the service keeps its state unless told otherwise.
const DEFAULT_DB: &str = "sqlite:recharge.db";

/// The options of `recharge serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The database: `sqlite:PATH` (one file) or `postgres://USER:PASSWORD@HOST/DB`
    /// (many nodes).
    #[arg(long, default_value = DEFAULT_DB)]
    db: Database,
    /// The address to listen on (port 0: any free port; the first line printed
    /// says which).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// This node's name: nodes sharing a database need different names.
    #[arg(long, default_value = recharge_host::DEFAULT_NODE)]
    node: String,
}

/// `recharge api-key ...`.
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Mint a new API key, print it once, keep only its hash in the database.
    Create {
        /// The service's database.
        #[arg(long, default_value = DEFAULT_DB)]
        db: Database,
    },
}

/// Serve until SIGTERM or SIGINT; the first line on stdout is
/// `listening on ADDR`, logs go to stderr.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    // Only fails when a logger is set already: that one logs instead.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let options = recharge_serve::Options {
        database: args.db.clone(),
        listen: args.listen.clone(),
        api_key: std::env::var("RECHARGE_API_KEY").ok(),
        platform: super::platform().node(args.node.clone()),
    };
    recharge_serve::run(options, |address| {
        let mut stdout = std::io::stdout();
        // Whoever started the service reads the address here; a closed stdout
        // does not stop the service.
        let _ = writeln!(stdout, "listening on {address}");
        let _ = stdout.flush();
    })?;
    Ok(())
}

/// Carry out an `api-key` command.
pub fn api_key(command: &ApiKeyCommand) -> anyhow::Result<()> {
    match command {
        ApiKeyCommand::Create { db } => {
            let store = db.open().with_context(|| format!("cannot open {db}"))?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| {
                    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
                });
            let key = recharge_serve::mint_key(store.as_ref(), now)
                .with_context(|| format!("cannot keep a new key in {db}"))?;
            super::output::print_text(&format!("{key}\n"))
        }
    }
}
