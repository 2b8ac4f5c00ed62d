//! `recharge serve [--db URL] [--listen ADDR] [--node NAME] [--gateway
//! simulated|webhook:URL] [--notify-url URL]` and `recharge api-key create
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
    /// Where charges go: `simulated` (the card network kept in the database,
    /// for trials) or `webhook:http://...` (the platform's own payment stack:
    /// each charge is POSTed there, its outcome answered at once or later
    /// through `POST /v1/payment-outcomes`).
    #[arg(long, default_value = "simulated", value_parser = gateway_choice)]
    gateway: recharge_serve::GatewayChoice,
    /// Send every notice to this URL, signed with HMAC-SHA256 under the
    /// secret in `RECHARGE_WEBHOOK_SECRET` (required with it).
    #[arg(long, value_name = "URL")]
    notify_url: Option<recharge_serve::Endpoint>,
}

/// `simulated` or `webhook:URL`.
fn gateway_choice(text: &str) -> Result<recharge_serve::GatewayChoice, String> {
    match text.strip_prefix("webhook:") {
        Some(url) => url
            .parse()
            .map(recharge_serve::GatewayChoice::Webhook)
            .map_err(|err| err.to_string()),
        None if text == "simulated" => Ok(recharge_serve::GatewayChoice::Simulated),
        None => Err(format!(
            "{text:?}: expected `simulated` or `webhook:http://HOST/PATH`"
        )),
    }
}

/// The environment variable holding the notice webhook's secret.
const WEBHOOK_SECRET: &str = "RECHARGE_WEBHOOK_SECRET";

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
    let notify = match &args.notify_url {
        None => None,
        Some(endpoint) => {
            let secret = std::env::var(WEBHOOK_SECRET)
                .ok()
                .filter(|secret| !secret.is_empty())
                .with_context(|| {
                    format!("--notify-url needs the signing secret in {WEBHOOK_SECRET}")
                })?;
            Some(recharge_serve::webhooks::NoticeWebhook {
                endpoint: endpoint.clone(),
                secret,
            })
        }
    };
    let options = recharge_serve::Options {
        database: args.db.clone(),
        listen: args.listen.clone(),
        api_key: std::env::var("RECHARGE_API_KEY").ok(),
        platform: super::platform().node(args.node.clone()),
        gateway: args.gateway.clone(),
        notify,
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
