//! Scenario scripts (SPEC §7): JSON Lines, one command a line, each with `at`
//! (RFC 3339) and `do`. Parsing checks everything it can before anything runs.

use std::path::{Path, PathBuf};

use chrono::DateTime;
use recharge_policy_sdk::model::{MinuteType, Mode, QueryKind, Timestamp};
use rust_decimal::Decimal;
use serde::Deserialize;
use thiserror::Error;

use recharge_host::CardBehavior;

/// A line that could not be read: the run stops, naming it.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{}", self.place())]
pub struct Malformed {
    /// The script.
    pub file: String,
    /// The line, from 1, blank lines counted.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl Malformed {
    /// `FILE:LINE: message`, or `FILE: message` for the file as a whole (line 0).
    fn place(&self) -> String {
        match self.line {
            0 => format!("{}: {}", self.file, self.message),
            line => format!("{}:{line}: {}", self.file, self.message),
        }
    }
}

/// One script line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Its number, from 1.
    pub number: usize,
    /// When it runs.
    pub at: Timestamp,
    /// What it does.
    pub command: Command,
}

/// What a script line does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Open an account.
    Open {
        /// Its id.
        account: String,
        /// What it is.
        kind: recharge_policy_sdk::model::AccountKind,
        /// Its parent agency (sub-accounts).
        parent: Option<String>,
    },
    /// Save a card.
    AddCard {
        /// The holder.
        account: String,
        /// The card.
        card: String,
        /// How the gateway treats it.
        behavior: CardBehavior,
    },
    /// The account updates a card's payment details (R6).
    UpdateCard {
        /// The holder.
        account: String,
        /// The card.
        card: String,
        /// How the gateway treats it from now on, if given.
        behavior: Option<CardBehavior>,
    },
    /// The gateway starts treating a card so.
    SetCardBehavior {
        /// The holder.
        account: String,
        /// The card.
        card: String,
        /// The behaviour.
        behavior: CardBehavior,
    },
    /// New rates.
    Rates {
        /// Basic, USD per minute.
        basic: Decimal,
        /// Premium, USD per minute.
        premium: Decimal,
    },
    /// Plan-included minutes, added.
    Include {
        /// The user or agency.
        account: String,
        /// Basic minutes.
        basic: i64,
        /// Premium minutes.
        premium: i64,
    },
    /// A manual top-up by the account itself.
    TopUp {
        /// The account.
        account: String,
        /// Its card.
        card: String,
        /// The amount.
        amount: Decimal,
    },
    /// Save auto-recharge settings.
    AutoRecharge {
        /// Who asks.
        actor: String,
        /// Whose settings.
        account: String,
        /// The settings.
        settings: recharge_policy_sdk::model::AutoRechargeSettings,
    },
    /// Save a monthly allocation.
    Allocate {
        /// Who asks.
        actor: String,
        /// The sub-account.
        account: String,
        /// The allocation.
        settings: recharge_policy_sdk::model::AllocationSettings,
    },
    /// A finished call.
    Usage {
        /// The account.
        account: String,
        /// The call id.
        call: String,
        /// Its length.
        seconds: i64,
        /// Basic or premium.
        minute_type: MinuteType,
    },
    /// Give an account its own policy component.
    Policy {
        /// The user or agency.
        account: String,
        /// The component file, resolved against the script's folder.
        file: PathBuf,
    },
    /// Only move the clock.
    Advance,
    /// Ask something.
    Query {
        /// Who asks.
        actor: String,
        /// About whom.
        account: String,
        /// What.
        what: QueryKind,
    },
}

/// The raw shape of a line, as serde reads it.
#[derive(Deserialize)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
enum Raw {
    Open {
        at: String,
        account: String,
        kind: String,
        parent: Option<String>,
    },
    AddCard {
        at: String,
        account: String,
        card: String,
        behavior: Option<String>,
    },
    UpdateCard {
        at: String,
        account: String,
        card: String,
        behavior: Option<String>,
    },
    SetCardBehavior {
        at: String,
        account: String,
        card: String,
        behavior: String,
    },
    Rates {
        at: String,
        basic: String,
        premium: String,
    },
    Include {
        at: String,
        account: String,
        basic: i64,
        premium: i64,
    },
    TopUp {
        at: String,
        account: String,
        card: String,
        amount: String,
    },
    AutoRecharge {
        at: String,
        actor: String,
        account: String,
        enabled: bool,
        threshold: String,
        amount: String,
        card: String,
        mode: Option<String>,
        monthly_limit: Option<String>,
    },
    Allocate {
        at: String,
        actor: String,
        account: String,
        basic: i64,
        premium: i64,
        card: Option<String>,
    },
    Usage {
        at: String,
        account: String,
        call: String,
        seconds: i64,
        #[serde(rename = "type")]
        minute_type: String,
    },
    Policy {
        at: String,
        account: String,
        file: String,
    },
    Advance {
        at: String,
    },
    Query {
        at: String,
        actor: String,
        account: String,
        what: String,
    },
}

/// Parse a whole script. `path` names the file in errors and anchors `policy` files.
pub fn parse_script(path: &Path, text: &str) -> Result<Vec<Line>, Malformed> {
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    let mut lines = Vec::new();
    let mut last_at = Timestamp::MIN;
    for (index, text) in text.lines().enumerate() {
        let number = index + 1;
        if text.trim().is_empty() {
            continue;
        }
        let malformed = |message: String| Malformed {
            file: path.display().to_string(),
            line: number,
            message,
        };
        let raw: Raw = serde_json::from_str(text).map_err(|err| malformed(strip_position(&err)))?;
        let (at, command) = convert(raw, base).map_err(malformed)?;
        if at < last_at {
            return Err(malformed("`at` is earlier than the line before".into()));
        }
        last_at = at;
        lines.push(Line {
            number,
            at,
            command,
        });
    }
    Ok(lines)
}

/// serde_json's message without its "at line 1 column N" (the line is ours to name).
fn strip_position(err: &serde_json::Error) -> String {
    let message = err.to_string();
    match message.rfind(" at line ") {
        Some(cut) => message[..cut].to_owned(),
        None => message,
    }
}

/// Parse an RFC 3339 time into milliseconds since the epoch (UTC).
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.timestamp_millis())
        .map_err(|err| format!("`at`: {text:?} is not an RFC 3339 time ({err})"))
}

/// Parse money or a rate given as a JSON string (`"10.00"`).
pub fn parse_money(field: &str, text: &str) -> Result<Decimal, String> {
    text.trim()
        .parse::<Decimal>()
        .map_err(|_| format!("`{field}`: {text:?} is not a decimal number"))
}

fn parse_behavior(text: &str) -> Result<CardBehavior, String> {
    text.parse()
        .map_err(|err: recharge_host::BadBehavior| format!("`behavior`: {err}"))
}

fn parse_kind(text: &str) -> Result<recharge_policy_sdk::model::AccountKind, String> {
    use recharge_policy_sdk::model::AccountKind;
    match text {
        "user" => Ok(AccountKind::User),
        "agency" => Ok(AccountKind::Agency),
        "sub-account" => Ok(AccountKind::SubAccount),
        other => Err(format!(
            "`kind`: {other:?} is not user, agency or sub-account"
        )),
    }
}

fn parse_mode(text: Option<&str>) -> Result<Mode, String> {
    match text {
        None | Some("fixed") => Ok(Mode::Fixed),
        Some("target") => Ok(Mode::Target),
        Some(other) => Err(format!("`mode`: {other:?} is not fixed or target")),
    }
}

fn parse_query(text: &str) -> Result<QueryKind, String> {
    match text {
        "auto_recharge" => Ok(QueryKind::AutoRecharge),
        "estimate" => Ok(QueryKind::Estimate),
        "service" => Ok(QueryKind::Service),
        "balance" => Ok(QueryKind::Balance),
        other => Err(format!(
            "`what`: {other:?} is not auto_recharge, estimate, service or balance"
        )),
    }
}

fn parse_minute_type(text: &str) -> Result<MinuteType, String> {
    match text {
        "basic" => Ok(MinuteType::Basic),
        "premium" => Ok(MinuteType::Premium),
        other => Err(format!("`type`: {other:?} is not basic or premium")),
    }
}

fn convert(raw: Raw, base: &Path) -> Result<(Timestamp, Command), String> {
    use recharge_policy_sdk::model::{AllocationSettings, AutoRechargeSettings};
    Ok(match raw {
        Raw::Open {
            at,
            account,
            kind,
            parent,
        } => (
            parse_time(&at)?,
            Command::Open {
                account,
                kind: parse_kind(&kind)?,
                parent,
            },
        ),
        Raw::AddCard {
            at,
            account,
            card,
            behavior,
        } => {
            let behavior = behavior
                .as_deref()
                .map(parse_behavior)
                .transpose()?
                .unwrap_or_default();
            (
                parse_time(&at)?,
                Command::AddCard {
                    account,
                    card,
                    behavior,
                },
            )
        }
        Raw::UpdateCard {
            at,
            account,
            card,
            behavior,
        } => {
            let behavior = behavior.as_deref().map(parse_behavior).transpose()?;
            (
                parse_time(&at)?,
                Command::UpdateCard {
                    account,
                    card,
                    behavior,
                },
            )
        }
        Raw::SetCardBehavior {
            at,
            account,
            card,
            behavior,
        } => {
            let behavior = parse_behavior(&behavior)?;
            (
                parse_time(&at)?,
                Command::SetCardBehavior {
                    account,
                    card,
                    behavior,
                },
            )
        }
        Raw::Rates { at, basic, premium } => (
            parse_time(&at)?,
            Command::Rates {
                basic: parse_money("basic", &basic)?,
                premium: parse_money("premium", &premium)?,
            },
        ),
        Raw::Include {
            at,
            account,
            basic,
            premium,
        } => (
            parse_time(&at)?,
            Command::Include {
                account,
                basic,
                premium,
            },
        ),
        Raw::TopUp {
            at,
            account,
            card,
            amount,
        } => (
            parse_time(&at)?,
            Command::TopUp {
                account,
                card,
                amount: parse_money("amount", &amount)?,
            },
        ),
        Raw::AutoRecharge {
            at,
            actor,
            account,
            enabled,
            threshold,
            amount,
            card,
            mode,
            monthly_limit,
        } => {
            let settings = AutoRechargeSettings {
                enabled,
                threshold: parse_money("threshold", &threshold)?,
                amount: parse_money("amount", &amount)?,
                card,
                mode: parse_mode(mode.as_deref())?,
                monthly_limit: monthly_limit
                    .as_deref()
                    .map(|limit| parse_money("monthly_limit", limit))
                    .transpose()?,
            };
            (
                parse_time(&at)?,
                Command::AutoRecharge {
                    actor,
                    account,
                    settings,
                },
            )
        }
        Raw::Allocate {
            at,
            actor,
            account,
            basic,
            premium,
            card,
        } => {
            let settings = AllocationSettings {
                basic_minutes: basic,
                premium_minutes: premium,
                card: card.unwrap_or_default(),
            };
            (
                parse_time(&at)?,
                Command::Allocate {
                    actor,
                    account,
                    settings,
                },
            )
        }
        Raw::Usage {
            at,
            account,
            call,
            seconds,
            minute_type,
        } => {
            if seconds < 1 {
                return Err(format!("`seconds`: {seconds} is not an integer >= 1"));
            }
            let minute_type = parse_minute_type(&minute_type)?;
            (
                parse_time(&at)?,
                Command::Usage {
                    account,
                    call,
                    seconds,
                    minute_type,
                },
            )
        }
        Raw::Policy { at, account, file } => (
            parse_time(&at)?,
            Command::Policy {
                account,
                file: base.join(file),
            },
        ),
        Raw::Advance { at } => (parse_time(&at)?, Command::Advance),
        Raw::Query {
            at,
            actor,
            account,
            what,
        } => (
            parse_time(&at)?,
            Command::Query {
                actor,
                account,
                what: parse_query(&what)?,
            },
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Line>, Malformed> {
        parse_script(Path::new("s.jsonl"), text)
    }

    #[test]
    fn blank_lines_are_skipped_but_counted() {
        let lines = parse("\n{\"at\":\"2026-01-01T00:00:00Z\",\"do\":\"advance\"}\n").unwrap();
        assert_eq!(lines[0].number, 2);
        assert_eq!(lines[0].command, Command::Advance);
    }

    #[test]
    fn money_must_be_a_decimal_string() {
        let err = parse(r#"{"at":"2026-01-01T00:00:00Z","do":"top_up","account":"u","card":"c","amount":"ten"}"#).unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("amount"), "{}", err.message);
        let err = parse(
            r#"{"at":"2026-01-01T00:00:00Z","do":"top_up","account":"u","card":"c","amount":10}"#,
        )
        .unwrap_err();
        assert!(err.message.contains("invalid type"), "{}", err.message);
    }

    #[test]
    fn time_never_goes_back() {
        let text = "{\"at\":\"2026-01-02T00:00:00Z\",\"do\":\"advance\"}\n{\"at\":\"2026-01-01T00:00:00Z\",\"do\":\"advance\"}";
        assert_eq!(parse(text).unwrap_err().line, 2);
    }

    #[test]
    fn unknown_commands_and_fields_are_malformed() {
        assert!(parse(r#"{"at":"2026-01-01T00:00:00Z","do":"dance"}"#).is_err());
        assert!(parse(r#"{"at":"2026-01-01T00:00:00Z","do":"advance","extra":1}"#).is_err());
        assert!(parse(r#"{"do":"advance"}"#).is_err());
        assert!(parse("not json").is_err());
    }

    #[test]
    fn usage_needs_positive_whole_seconds() {
        let line = r#"{"at":"2026-01-01T00:00:00Z","do":"usage","account":"u","call":"c","seconds":0,"type":"basic"}"#;
        assert!(parse(line).unwrap_err().message.contains("seconds"));
        let line = r#"{"at":"2026-01-01T00:00:00Z","do":"usage","account":"u","call":"c","seconds":1.5,"type":"basic"}"#;
        assert!(parse(line).is_err());
    }
}
