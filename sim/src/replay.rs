//! Replaying a scenario script against a platform with a simulated clock and
//! gateway, in memory or on a database (`--db`, SPEC §7): on a database a run
//! continues from what the store holds, the simulated gateway keeps what it
//! charged in the same store, and the clock where the run stopped is kept in
//! the journal stream [`CLOCK_STREAM`].

use std::path::Path;
use std::sync::Arc;

use recharge_policy_sdk::model::{PolicyError, Rates, Timestamp};
use thiserror::Error;

use crate::files::{ReadError, read_capped};
use crate::network;
use crate::report::{self, AnswerOut, Document, Rejection};
use crate::script::{Command, Line, Malformed, read_script};
use recharge_host::AccountId;
use recharge_host::SimulatedGateway;
use recharge_host::{HostError, Platform, PlatformBuilder, Store, StoreError};

/// Why a replay stopped.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// A line is malformed, or names a file that cannot be used.
    #[error(transparent)]
    Malformed(#[from] Malformed),
    /// The host itself failed (storage, engine).
    #[error("{file}:{line}: {source}")]
    Host {
        /// The script.
        file: String,
        /// The line.
        line: usize,
        /// The failure.
        source: HostError,
    },
}

/// The journal stream where a replay on a database keeps its clock: one entry
/// per run, the time it stopped at (milliseconds since the epoch).
pub const CLOCK_STREAM: &str = "replay-clock";

/// Read, parse and replay a script file (read line by line, within the bounds
/// of [`read_script`]).
pub fn replay_file(path: &Path, builder: PlatformBuilder) -> Result<Document, ReplayError> {
    let lines = read_script(path)?;
    replay(path, &lines, builder)
}

/// [`replay_file`] on a database: the run continues from what `store` holds.
pub fn replay_file_in(
    path: &Path,
    builder: PlatformBuilder,
    store: Arc<dyn Store>,
) -> Result<Document, ReplayError> {
    let lines = read_script(path)?;
    replay_in(path, &lines, builder, store)
}

/// Replay parsed lines on a fresh platform in memory (simulated clock from the
/// first line).
pub fn replay(
    path: &Path,
    lines: &[Line],
    builder: PlatformBuilder,
) -> Result<Document, ReplayError> {
    let start = lines.first().map(|line| line.at).unwrap_or_default();
    let gateway = Arc::new(SimulatedGateway::new());
    run_lines(path, lines, builder, gateway, start).map(|(document, _)| document)
}

/// Replay parsed lines on the platform `store` holds: the clock goes on from
/// where the last run on it stopped (a line earlier than that is malformed),
/// and the simulated gateway is the one kept in the store.
pub fn replay_in(
    path: &Path,
    lines: &[Line],
    builder: PlatformBuilder,
    store: Arc<dyn Store>,
) -> Result<Document, ReplayError> {
    let file = path.display().to_string();
    let host_error = |source: StoreError| ReplayError::Host {
        file: file.clone(),
        line: 0,
        source: source.into(),
    };
    let clocks = store.journal(CLOCK_STREAM, 0).map_err(host_error)?;
    let stopped = match clocks.last() {
        Some((seq, entry)) => Some(entry.parse::<Timestamp>().map_err(|_| {
            host_error(StoreError::Backend(format!(
                "{CLOCK_STREAM} journal entry {seq} is not a time: {entry:?}"
            )))
        })?),
        None => None,
    };
    if let (Some(stopped), Some(first)) = (stopped, lines.first())
        && first.at < stopped
    {
        return Err(Malformed {
            file,
            line: first.number,
            message: format!(
                "\"at\" {} is earlier than the database's clock, {}",
                report::time(first.at),
                report::time(stopped)
            ),
        }
        .into());
    }
    let start = stopped
        .or_else(|| lines.first().map(|line| line.at))
        .unwrap_or_default();
    let gateway = Arc::new(SimulatedGateway::in_store(Arc::clone(&store)).map_err(host_error)?);
    let outcome = run_lines(
        path,
        lines,
        builder.store(Arc::clone(&store)),
        gateway,
        start,
    );
    // Where the run stopped, kept even when a line stopped it: what it
    // committed stays committed.
    let now = match &outcome {
        Ok((_, now)) => *now,
        Err(_) => lines.last().map_or(start, |line| line.at.max(start)),
    };
    let mut after = clocks.len() as u64;
    loop {
        match store.append(CLOCK_STREAM, after, &[now.to_string()]) {
            Ok(()) => break,
            Err(StoreError::Behind(_)) => after += 1,
            Err(other) => return Err(host_error(other)),
        }
    }
    outcome.map(|(document, _)| document)
}

/// Run the lines on a platform built with `gateway` and a simulated clock
/// starting at `start`; the document, and the clock where the run ended.
fn run_lines(
    path: &Path,
    lines: &[Line],
    builder: PlatformBuilder,
    gateway: Arc<SimulatedGateway>,
    start: Timestamp,
) -> Result<(Document, Timestamp), ReplayError> {
    let file = path.display().to_string();
    let platform = builder
        .gateway(gateway.clone())
        .simulated_clock(start)
        .build()
        .map_err(|source| ReplayError::Host {
            file: file.clone(),
            line: 0,
            source,
        })?;
    let mut rejections = Vec::new();
    let mut answers = Vec::new();
    for line in lines {
        let host_error = |source| ReplayError::Host {
            file: file.clone(),
            line: line.number,
            source,
        };
        network::advance(&platform, &gateway, line.at).map_err(host_error)?;
        match run(&platform, &gateway, line, &file) {
            Ok(Some(answer)) => answers.push(AnswerOut {
                line: line.number,
                answer,
            }),
            Ok(None) => {}
            Err(Step::Rejected(error, message)) => rejections.push(Rejection {
                line: line.number,
                error,
                message,
            }),
            Err(Step::Malformed(malformed)) => return Err(malformed.into()),
            Err(Step::Host(source)) => return Err(host_error(source)),
        }
    }
    let mut document = document(&platform, &gateway).map_err(|source| ReplayError::Host {
        file,
        line: 0,
        source,
    })?;
    document.rejections = rejections;
    document.answers = answers;
    Ok((document, platform.now()))
}

/// How a line went wrong.
enum Step {
    Rejected(&'static str, String),
    Malformed(Malformed),
    Host(HostError),
}

/// The error code (SPEC §7) of a command the host or the policy rejected:
/// `forbidden`, `invalid_settings`, `payment_method_required`,
/// `unknown_account` or `policy_fault`; `None` for the host's own failures.
pub fn rejection_code(error: &HostError) -> Option<&'static str> {
    Some(match error {
        HostError::UnknownAccount(_) => "unknown_account",
        HostError::Rejected(PolicyError::Forbidden(_)) => "forbidden",
        HostError::Rejected(PolicyError::InvalidSettings(_)) | HostError::Invalid(_) => {
            "invalid_settings"
        }
        HostError::Rejected(PolicyError::PaymentMethodRequired(_)) => "payment_method_required",
        HostError::Rejected(PolicyError::Refused(_)) | HostError::Fault(_) => "policy_fault",
        _ => return None,
    })
}

impl From<HostError> for Step {
    fn from(error: HostError) -> Self {
        match rejection_code(&error) {
            Some(code) => Step::Rejected(code, error.to_string()),
            None => Step::Host(error),
        }
    }
}

fn run(
    platform: &Platform,
    gateway: &SimulatedGateway,
    line: &Line,
    file: &str,
) -> Result<Option<serde_json::Value>, Step> {
    let id = |text: &str| AccountId::from(text);
    match &line.command {
        Command::Open {
            account,
            kind,
            parent,
        } => {
            platform.open_account(id(account), *kind, parent.as_deref().map(id))?;
        }
        Command::AddCard {
            account,
            card,
            behavior,
        } => {
            platform.add_card(&id(account), card)?;
            gateway
                .set_behavior(&id(account), card, *behavior)
                .map_err(HostError::from)?;
        }
        Command::UpdateCard {
            account,
            card,
            behavior,
        } => {
            platform.account(&id(account))?;
            if let Some(behavior) = behavior {
                gateway
                    .set_behavior(&id(account), card, *behavior)
                    .map_err(HostError::from)?;
            }
            platform.update_card(&id(account), card)?;
        }
        Command::SetCardBehavior {
            account,
            card,
            behavior,
        } => {
            platform.account(&id(account))?;
            gateway
                .set_behavior(&id(account), card, *behavior)
                .map_err(HostError::from)?;
        }
        Command::Rates { basic, premium } => platform.set_rates(Rates {
            basic: *basic,
            premium: *premium,
        })?,
        Command::Include {
            account,
            basic,
            premium,
        } => platform.include_minutes(&id(account), *basic, *premium)?,
        Command::TopUp {
            account,
            card,
            amount,
        } => {
            platform.top_up(&id(account), &id(account), card, *amount)?;
        }
        Command::AutoRecharge {
            actor,
            account,
            settings,
        } => {
            platform.save_auto_recharge(&id(actor), &id(account), settings.clone())?;
        }
        Command::Allocate {
            actor,
            account,
            settings,
        } => {
            platform.save_allocation(&id(actor), &id(account), settings.clone())?;
        }
        Command::Usage {
            account,
            call,
            seconds,
            minute_type,
        } => {
            platform.record_usage(&id(account), call, *seconds, *minute_type)?;
        }
        Command::Policy {
            account,
            file: component,
        } => {
            let malformed = |message: String| {
                Step::Malformed(Malformed {
                    file: file.to_owned(),
                    line: line.number,
                    message,
                })
            };
            // Read no further than a component may be long.
            let limit = platform.engine().limits().largest_component() as u64;
            let bytes = read_capped(component, limit).map_err(|err| {
                malformed(match err {
                    ReadError::Io(err) => {
                        format!("cannot read policy {}: {err}", component.display())
                    }
                    too_large => format!("policy {}: {too_large}", component.display()),
                })
            })?;
            match platform.set_policy(&id(account), &bytes) {
                Ok(_) => {}
                Err(HostError::Load(err)) => {
                    return Err(malformed(format!("policy {}: {err}", component.display())));
                }
                Err(other) => return Err(other.into()),
            }
        }
        Command::Advance => {}
        Command::Query {
            actor,
            account,
            what,
        } => {
            let answer = platform.query(&id(actor), &id(account), *what)?;
            return Ok(Some(report::answer_json(&answer)));
        }
    }
    Ok(None)
}

/// The output document of a platform's current state, with what the gateway
/// took from cards.
pub fn document(platform: &Platform, gateway: &SimulatedGateway) -> Result<Document, HostError> {
    let mut accounts = std::collections::BTreeMap::new();
    for id in platform.account_ids()? {
        let account = platform.account(&id)?;
        let view = platform.describe(&id).unwrap_or_default();
        accounts.insert(id.0.clone(), report::account_out(&account, &view));
    }
    Ok(Document {
        clock: report::time(platform.now()),
        accounts,
        charges: platform
            .charges()?
            .iter()
            .map(report::charge_out)
            .chain(platform.outbox()?.iter().map(report::pending_out))
            .collect(),
        card_charges: gateway
            .card_charges()
            .iter()
            .map(report::card_charge_out)
            .collect(),
        notifications: platform
            .notifications()?
            .iter()
            .map(report::notification_out)
            .collect(),
        rejections: Vec::new(),
        answers: Vec::new(),
    })
}
