//! Replaying a scenario script against a platform with a simulated clock and
//! gateway.

use std::path::Path;
use std::sync::Arc;

use recharge_policy_sdk::model::{PolicyError, Rates};
use thiserror::Error;

use crate::files::{ReadError, read_capped};
use crate::network;
use crate::report::{self, AnswerOut, Document, Rejection};
use crate::script::{Command, Line, Malformed, read_script};
use recharge_host::AccountId;
use recharge_host::SimulatedGateway;
use recharge_host::{HostError, Platform, PlatformBuilder};

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

/// Read, parse and replay a script file (read line by line, within the bounds
/// of [`read_script`]).
pub fn replay_file(path: &Path, builder: PlatformBuilder) -> Result<Document, ReplayError> {
    let lines = read_script(path)?;
    replay(path, &lines, builder)
}

/// Replay parsed lines on a fresh platform (simulated clock from the first line).
pub fn replay(
    path: &Path,
    lines: &[Line],
    builder: PlatformBuilder,
) -> Result<Document, ReplayError> {
    let file = path.display().to_string();
    let start = lines.first().map(|line| line.at).unwrap_or_default();
    let gateway = Arc::new(SimulatedGateway::new());
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
    Ok(document)
}

/// How a line went wrong.
enum Step {
    Rejected(&'static str, String),
    Malformed(Malformed),
    Host(HostError),
}

impl From<HostError> for Step {
    fn from(error: HostError) -> Self {
        let message = error.to_string();
        match error {
            HostError::UnknownAccount(_) => Step::Rejected("unknown_account", message),
            HostError::Rejected(PolicyError::Forbidden(_)) => Step::Rejected("forbidden", message),
            HostError::Rejected(PolicyError::InvalidSettings(_)) | HostError::Invalid(_) => {
                Step::Rejected("invalid_settings", message)
            }
            HostError::Rejected(PolicyError::PaymentMethodRequired(_)) => {
                Step::Rejected("payment_method_required", message)
            }
            HostError::Rejected(PolicyError::Refused(_)) | HostError::Fault(_) => {
                Step::Rejected("policy_fault", message)
            }
            other => Step::Host(other),
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
            gateway.set_behavior(&id(account), card, *behavior);
        }
        Command::UpdateCard {
            account,
            card,
            behavior,
        } => {
            platform.account(&id(account))?;
            if let Some(behavior) = behavior {
                gateway.set_behavior(&id(account), card, *behavior);
            }
            platform.update_card(&id(account), card)?;
        }
        Command::SetCardBehavior {
            account,
            card,
            behavior,
        } => {
            platform.account(&id(account))?;
            gateway.set_behavior(&id(account), card, *behavior);
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
