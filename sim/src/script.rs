//! Scenario scripts (SPEC §7): JSON Lines, one command a line, each with `at`
//! (RFC 3339) and `do`. Parsing checks everything it can before anything runs:
//! strict money syntax and ranges, ids, call lengths, minutes and times by the
//! host's own input rules ([`recharge_host::input`]), so no policy ever sees a
//! value the host would not accept; a line that breaks one is malformed.
//!
//! Reading is bounded: a line is at most [`MAX_LINE_BYTES`] and a script at most
//! [`MAX_SCRIPT_BYTES`], read line by line, so an endless stream (`/dev/zero`, a
//! FIFO that never closes) ends quickly in a malformed line instead of filling
//! memory. Scripts are UTF-8: a UTF-8 byte-order mark at the very start is
//! accepted and skipped (some editors write one); any byte that is not UTF-8 is
//! a malformed line, named with its place in the line.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::DateTime;
use recharge_policy_sdk::model::{
    AccountKind, AllocationSettings, AutoRechargeSettings, MinuteType, Mode, QueryKind, Timestamp,
};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use thiserror::Error;

use crate::files::Size;
use recharge_host::CardBehavior;
use recharge_host::input;

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
        kind: AccountKind,
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
        settings: AutoRechargeSettings,
    },
    /// Save a monthly allocation.
    Allocate {
        /// Who asks.
        actor: String,
        /// The sub-account.
        account: String,
        /// The allocation.
        settings: AllocationSettings,
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

/// The longest line a script may have, bytes (its newline not counted).
pub const MAX_LINE_BYTES: usize = 64 << 10;
/// The largest script, bytes.
pub const MAX_SCRIPT_BYTES: u64 = 64 << 20;

/// The byte-order mark some editors put at the start of a UTF-8 file.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Read and parse a script file, line by line within the bounds above.
pub fn read_script(path: &Path) -> Result<Vec<Line>, Malformed> {
    let whole_file = |message: String| Malformed {
        file: path.display().to_string(),
        line: 0,
        message,
    };
    let file =
        File::open(path).map_err(|err| whole_file(format!("cannot read the script: {err}")))?;
    if file.metadata().is_ok_and(|meta| meta.is_dir()) {
        return Err(whole_file(
            "cannot read the script: it is a directory".into(),
        ));
    }
    parse_script_from(path, BufReader::new(file))
}

/// Parse a whole script held in memory. `path` names the file in errors and
/// anchors `policy` files.
pub fn parse_script(path: &Path, text: &str) -> Result<Vec<Line>, Malformed> {
    parse_script_from(path, text.as_bytes())
}

/// Parse a script from a reader, one line at a time: no line is held beyond
/// [`MAX_LINE_BYTES`] (and a byte), and no more than [`MAX_SCRIPT_BYTES`] are read.
pub fn parse_script_from(path: &Path, mut reader: impl BufRead) -> Result<Vec<Line>, Malformed> {
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    let file = path.display().to_string();
    let mut lines = Vec::new();
    let mut last_at = Timestamp::MIN;
    let mut total: u64 = 0;
    let mut buffer = Vec::new();
    for number in 1.. {
        let malformed = |message: String| Malformed {
            file: file.clone(),
            line: number,
            message,
        };
        buffer.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buffer)
            .map_err(|err| malformed(format!("cannot read the script: {err}")))?;
        if read == 0 {
            break;
        }
        total += read as u64;
        if total > MAX_SCRIPT_BYTES {
            return Err(malformed(format!(
                "the script is larger than the {} limit",
                Size(MAX_SCRIPT_BYTES)
            )));
        }
        let ended = buffer.last() == Some(&b'\n');
        if !ended && buffer.len() > MAX_LINE_BYTES {
            return Err(malformed(format!(
                "the line is longer than the {} limit",
                Size(MAX_LINE_BYTES as u64)
            )));
        }
        let mut bytes = buffer.strip_suffix(b"\n").unwrap_or(&buffer);
        bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if number == 1 {
            bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
        }
        let text = utf8(bytes, number).map_err(malformed)?;
        if text.trim().is_empty() {
            continue;
        }
        let (at, command) = parse_line(text, base).map_err(malformed)?;
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

/// A line's text, or where its first byte that is not UTF-8 stands.
fn utf8(bytes: &[u8], number: usize) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|err| {
        if number == 1 && (bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF")) {
            "the script starts with a UTF-16 byte-order mark: save it as UTF-8".to_owned()
        } else {
            format!(
                "not UTF-8: byte {} of the line (0x{:02X}) is not valid UTF-8",
                err.valid_up_to() + 1,
                bytes[err.valid_up_to()]
            )
        }
    })
}

/// One line's JSON object, its fields by name; a repeated field is an error.
struct Object(BTreeMap<String, Value>);

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = Object;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("one JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
                let mut fields = BTreeMap::new();
                while let Some((name, value)) = map.next_entry::<String, Value>()? {
                    if fields.contains_key(&name) {
                        return Err(de::Error::custom(format!("duplicate field `{name}`")));
                    }
                    fields.insert(name, value);
                }
                Ok(Object(fields))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// A line's fields, taken one by one by name: what is left at the end is unknown.
struct Fields(BTreeMap<String, Value>);

impl Fields {
    /// A field, `null` counting as absent.
    fn take(&mut self, name: &str) -> Option<Value> {
        self.0.remove(name).filter(|value| !value.is_null())
    }

    fn required(&mut self, name: &str) -> Result<Value, String> {
        self.take(name)
            .ok_or_else(|| format!("missing field `{name}`"))
    }

    fn string(&mut self, name: &str) -> Result<String, String> {
        let value = self.required(name)?;
        as_string(name, value)
    }

    fn optional_string(&mut self, name: &str) -> Result<Option<String>, String> {
        self.take(name)
            .map(|value| as_string(name, value))
            .transpose()
    }

    /// An account, card, call or actor id (1 to 64 bytes, no control characters).
    fn id(&mut self, name: &'static str) -> Result<String, String> {
        let id = self.string(name)?;
        input::check_id(name, &id).map_err(|err| err.to_string())?;
        Ok(id)
    }

    fn optional_id(&mut self, name: &'static str) -> Result<Option<String>, String> {
        let id = self.optional_string(name)?;
        if let Some(id) = &id {
            input::check_id(name, id).map_err(|err| err.to_string())?;
        }
        Ok(id)
    }

    /// The card of saved settings: empty when none is named (the policy judges
    /// whether one is needed), else an id.
    fn settings_card(&mut self, name: &'static str) -> Result<String, String> {
        let card = self.optional_string(name)?.unwrap_or_default();
        if !card.is_empty() {
            input::check_id(name, &card).map_err(|err| err.to_string())?;
        }
        Ok(card)
    }

    /// Money as a JSON string in strict plain notation (`"10.00"`).
    fn money(&mut self, name: &'static str) -> Result<Decimal, String> {
        let value = self.required(name)?;
        as_money(name, value)
    }

    fn optional_money(&mut self, name: &'static str) -> Result<Option<Decimal>, String> {
        self.take(name)
            .map(|value| as_money(name, value))
            .transpose()
    }

    /// A whole JSON number that fits the host's integers.
    fn whole(&mut self, name: &str) -> Result<i64, String> {
        match self.required(name)? {
            Value::Number(number) => match number.as_i64() {
                Some(whole) => Ok(whole),
                None if number.is_u64() => Err(format!("`{name}`: {number} is out of range")),
                None => Err(format!("`{name}`: {number} is not a whole number")),
            },
            other => Err(format!(
                "`{name}`: expected a whole number, got {}",
                describe(&other)
            )),
        }
    }

    fn boolean(&mut self, name: &str) -> Result<bool, String> {
        match self.required(name)? {
            Value::Bool(flag) => Ok(flag),
            other => Err(format!(
                "`{name}`: expected true or false, got {}",
                describe(&other)
            )),
        }
    }

    /// Refuse whatever field the command does not take.
    fn finish(self, command: &str) -> Result<(), String> {
        match self.0.keys().next() {
            Some(name) => Err(format!("unknown field `{name}` for `{command}`")),
            None => Ok(()),
        }
    }
}

fn as_string(name: &str, value: Value) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text),
        other => Err(format!(
            "`{name}`: expected a string, got {}",
            describe(&other)
        )),
    }
}

fn as_money(name: &'static str, value: Value) -> Result<Decimal, String> {
    match value {
        Value::String(text) => input::parse_money(name, &text).map_err(|err| err.to_string()),
        Value::Number(number) => Err(format!(
            "`{name}`: write money as a string (\"{number}\"), not a number"
        )),
        other => Err(format!(
            "`{name}`: expected money as a string (\"10.00\"), got {}",
            describe(&other)
        )),
    }
}

/// What a JSON value is, in words.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => format!("the number {number}"),
        Value::String(text) => {
            format!("the string {:?}", text.chars().take(40).collect::<String>())
        }
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// serde_json's message without its "at line 1 column N" (the line is ours to name).
fn strip_position(err: &serde_json::Error) -> String {
    let message = err.to_string();
    match message.rfind(" at line ") {
        Some(cut) => message[..cut].to_owned(),
        None => message,
    }
}

/// Parse an RFC 3339 time into milliseconds since the epoch (UTC), within
/// 1970–9999.
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    let shown = || text.chars().take(40).collect::<String>();
    let at = DateTime::parse_from_rfc3339(text)
        .map(|time| time.timestamp_millis())
        .map_err(|err| format!("`at`: {:?} is not an RFC 3339 time ({err})", shown()))?;
    input::check_time("at", at)
        .map_err(|_| format!("`at`: {:?} is outside 1970-01-01 to 9999-12-31", shown()))?;
    Ok(at)
}

fn parse_behavior(text: &str) -> Result<CardBehavior, String> {
    text.parse()
        .map_err(|err: recharge_host::BadBehavior| format!("`behavior`: {err}"))
}

fn parse_kind(text: &str) -> Result<AccountKind, String> {
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

/// Included minutes: 0 to the host's maximum.
fn included_minutes(fields: &mut Fields, name: &'static str) -> Result<i64, String> {
    let minutes = fields.whole(name)?;
    input::check_minutes(name, minutes).map_err(|err| err.to_string())?;
    Ok(minutes)
}

/// Allocated minutes: a negative count is a settings error the policy rejects
/// (R7, after authorization, R1), so only its size is checked here.
fn allocated_minutes(fields: &mut Fields, name: &'static str) -> Result<i64, String> {
    let minutes = fields.whole(name)?;
    input::check_minutes(name, minutes.saturating_abs()).map_err(|err| err.to_string())?;
    Ok(minutes)
}

/// The commands a line may name in `do`.
const COMMANDS: &str = "open, add_card, update_card, set_card_behavior, rates, include, top_up, \
                        auto_recharge, allocate, usage, policy, advance or query";

/// Parse one line's JSON into its time and command.
fn parse_line(text: &str, base: &Path) -> Result<(Timestamp, Command), String> {
    let Object(map) = serde_json::from_str(text).map_err(|err| strip_position(&err))?;
    let mut fields = Fields(map);
    let at = parse_time(&fields.string("at")?)?;
    let name = fields.string("do")?;
    let command = match name.as_str() {
        "open" => Command::Open {
            account: fields.id("account")?,
            kind: parse_kind(&fields.string("kind")?)?,
            parent: fields.optional_id("parent")?,
        },
        "add_card" => Command::AddCard {
            account: fields.id("account")?,
            card: fields.id("card")?,
            behavior: fields
                .optional_string("behavior")?
                .as_deref()
                .map(parse_behavior)
                .transpose()?
                .unwrap_or_default(),
        },
        "update_card" => Command::UpdateCard {
            account: fields.id("account")?,
            card: fields.id("card")?,
            behavior: fields
                .optional_string("behavior")?
                .as_deref()
                .map(parse_behavior)
                .transpose()?,
        },
        "set_card_behavior" => Command::SetCardBehavior {
            account: fields.id("account")?,
            card: fields.id("card")?,
            behavior: parse_behavior(&fields.string("behavior")?)?,
        },
        "rates" => Command::Rates {
            basic: fields.money("basic")?,
            premium: fields.money("premium")?,
        },
        "include" => Command::Include {
            account: fields.id("account")?,
            basic: included_minutes(&mut fields, "basic")?,
            premium: included_minutes(&mut fields, "premium")?,
        },
        "top_up" => Command::TopUp {
            account: fields.id("account")?,
            card: fields.id("card")?,
            amount: fields.money("amount")?,
        },
        "auto_recharge" => Command::AutoRecharge {
            actor: fields.id("actor")?,
            account: fields.id("account")?,
            settings: AutoRechargeSettings {
                enabled: fields.boolean("enabled")?,
                threshold: fields.money("threshold")?,
                amount: fields.money("amount")?,
                card: fields.settings_card("card")?,
                mode: parse_mode(fields.optional_string("mode")?.as_deref())?,
                monthly_limit: fields.optional_money("monthly_limit")?,
            },
        },
        "allocate" => Command::Allocate {
            actor: fields.id("actor")?,
            account: fields.id("account")?,
            settings: AllocationSettings {
                basic_minutes: allocated_minutes(&mut fields, "basic")?,
                premium_minutes: allocated_minutes(&mut fields, "premium")?,
                card: fields.settings_card("card")?,
            },
        },
        "usage" => {
            let account = fields.id("account")?;
            let call = fields.id("call")?;
            let seconds = fields.whole("seconds")?;
            input::check_seconds(seconds).map_err(|err| err.to_string())?;
            Command::Usage {
                account,
                call,
                seconds,
                minute_type: parse_minute_type(&fields.string("type")?)?,
            }
        }
        "policy" => Command::Policy {
            account: fields.id("account")?,
            file: base.join(fields.string("file")?),
        },
        "advance" => Command::Advance,
        "query" => Command::Query {
            actor: fields.id("actor")?,
            account: fields.id("account")?,
            what: parse_query(&fields.string("what")?)?,
        },
        other => {
            let shown: String = other.chars().take(40).collect();
            return Err(format!("`do`: {shown:?} is not one of {COMMANDS}"));
        }
    };
    fields.finish(&name)?;
    Ok((at, command))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Line>, Malformed> {
        parse_script(Path::new("s.jsonl"), text)
    }

    /// The message of the one malformed line of a script.
    fn refused(text: &str) -> String {
        parse(text).unwrap_err().message
    }

    const AT: &str = r#""at":"2026-01-01T00:00:00Z""#;

    fn top_up(amount: &str) -> String {
        format!(r#"{{{AT},"do":"top_up","account":"u","card":"c","amount":{amount}}}"#)
    }

    fn usage(account: &str, seconds: &str) -> String {
        format!(
            r#"{{{AT},"do":"usage","account":"{account}","call":"c1","seconds":{seconds},"type":"basic"}}"#
        )
    }

    #[test]
    fn blank_lines_are_skipped_but_counted() {
        let lines = parse("\n{\"at\":\"2026-01-01T00:00:00Z\",\"do\":\"advance\"}\n").unwrap();
        assert_eq!(lines[0].number, 2);
        assert_eq!(lines[0].command, Command::Advance);
    }

    #[test]
    fn money_must_be_a_decimal_string() {
        let err = parse(&top_up(r#""ten""#)).unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("`amount`"), "{}", err.message);
        let message = refused(&top_up("10"));
        assert!(
            message.contains("`amount`: write money as a string"),
            "{message}"
        );
    }

    // Bad input is rejected before any policy sees it: strict plain notation only.
    #[test]
    fn bad_input_money_in_any_but_plain_notation_is_a_malformed_line() {
        for bad in [
            "1_000", "1e2", "+10.00", " 10.00", "10.", ".50", "0x10", "10,00",
        ] {
            let message = refused(&top_up(&format!("{bad:?}")));
            assert!(
                message.starts_with("`amount`: ") && message.contains("not a decimal number"),
                "{bad:?}: {message}"
            );
        }
        assert!(parse(&top_up(r#""-10.00""#)).is_ok());
    }

    // Out-of-range and over-precise money is named as such, never passed on.
    #[test]
    fn bad_input_money_out_of_range_or_too_precise_is_named_as_such() {
        let message = refused(&top_up(r#""9999999999999999999999999999""#));
        assert!(message.contains("out of range"), "{message}");
        let message = refused(&top_up(r#""10.0000000000000000001""#));
        assert!(message.contains("decimal places"), "{message}");
        let line = format!(
            r#"{{{AT},"do":"auto_recharge","actor":"u","account":"u","enabled":true,"threshold":"5","amount":"10","card":"c","monthly_limit":"1e3"}}"#
        );
        assert!(refused(&line).starts_with("`monthly_limit`: "));
    }

    // Ids are short enough for the keys derived from them.
    #[test]
    fn bad_input_an_id_over_64_bytes_is_a_malformed_line() {
        let message = refused(&usage(&"a".repeat(300), "60"));
        assert_eq!(message, "`account` is 300 bytes long (at most 64)");
        let line = format!(r#"{{{AT},"do":"open","account":"u","kind":"user","parent":""}}"#);
        assert_eq!(refused(&line), "`parent` must not be empty");
        let line = format!(r#"{{{AT},"do":"add_card","account":"u","card":"vi\u0000sa"}}"#);
        assert!(refused(&line).contains("control characters"));
    }

    // A call of an absurd length never reaches the rating or a policy.
    #[test]
    fn bad_input_usage_seconds_beyond_seven_days_are_a_malformed_line() {
        for seconds in ["0", "-5", "604801", "9223372036854775807"] {
            let message = refused(&usage("u", seconds));
            assert!(message.starts_with("`seconds`: "), "{seconds}: {message}");
        }
        assert!(refused(&usage("u", "18446744073709551615")).contains("out of range"));
        assert!(refused(&usage("u", "1.5")).contains("not a whole number"));
        assert!(refused(&usage("u", r#""60""#)).contains("expected a whole number"));
        assert!(parse(&usage("u", "604800")).is_ok());
    }

    #[test]
    fn bad_input_minutes_beyond_the_maximum_are_a_malformed_line() {
        let include = |basic: &str| {
            format!(r#"{{{AT},"do":"include","account":"u","basic":{basic},"premium":0}}"#)
        };
        assert!(refused(&include("-1")).starts_with("`basic`: "));
        assert!(refused(&include("100000001")).starts_with("`basic`: "));
        let allocate = |premium: &str| {
            format!(
                r#"{{{AT},"do":"allocate","actor":"a","account":"s","basic":1,"premium":{premium},"card":"c"}}"#
            )
        };
        // A negative allocation is the policy's to reject (after authorization).
        assert!(parse(&allocate("-1")).is_ok());
        assert!(refused(&allocate("-9223372036854775808")).starts_with("`premium`: "));
        assert!(refused(&allocate("100000001")).starts_with("`premium`: "));
    }

    #[test]
    fn bad_input_times_outside_1970_to_9999_are_a_malformed_line() {
        for at in [
            "1969-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59-01:00",
        ] {
            let message = refused(&format!(r#"{{"at":"{at}","do":"advance"}}"#));
            assert!(
                message.contains("outside 1970-01-01 to 9999-12-31"),
                "{message}"
            );
        }
        assert!(parse(r#"{"at":"9999-12-31T23:59:59Z","do":"advance"}"#).is_ok());
        assert!(parse(r#"{"at":"1970-01-01T00:00:00Z","do":"advance"}"#).is_ok());
    }

    #[test]
    fn time_never_goes_back() {
        let text = "{\"at\":\"2026-01-02T00:00:00Z\",\"do\":\"advance\"}\n{\"at\":\"2026-01-01T00:00:00Z\",\"do\":\"advance\"}";
        assert_eq!(parse(text).unwrap_err().line, 2);
    }

    #[test]
    fn unknown_commands_and_fields_are_malformed() {
        assert!(refused(r#"{"at":"2026-01-01T00:00:00Z","do":"dance"}"#).contains("`do`"));
        assert_eq!(
            refused(r#"{"at":"2026-01-01T00:00:00Z","do":"advance","extra":1}"#),
            "unknown field `extra` for `advance`"
        );
        assert_eq!(refused(r#"{"do":"advance"}"#), "missing field `at`");
        assert_eq!(
            refused(r#"{"at":"2026-01-01T00:00:00Z","at":"2026-01-01T00:00:00Z","do":"advance"}"#),
            "duplicate field `at`"
        );
        assert!(parse("not json").is_err());
        assert!(refused("[1, 2]").contains("expected one JSON object"));
    }

    // Messages speak of the script's own terms, never of the parser's types.
    #[test]
    fn bad_input_messages_name_no_internal_types() {
        let lines = [
            usage("u", "1.5"),
            usage("u", "true"),
            usage("u", "18446744073709551616"),
            top_up("10"),
            top_up("[]"),
            top_up(r#""1e2""#),
            format!(
                r#"{{{AT},"do":"auto_recharge","actor":"u","account":"u","enabled":"yes","threshold":"5","amount":"10","card":"c"}}"#
            ),
            "{\"at\":1}".into(),
            "[]".into(),
        ];
        for line in lines {
            let message = refused(&line);
            for internal in [
                "i64", "u64", "f64", "Decimal", "serde", "Raw", "struct", "enum",
            ] {
                assert!(!message.contains(internal), "{internal} in {message:?}");
            }
        }
    }

    #[test]
    fn usage_needs_positive_whole_seconds() {
        assert!(refused(&usage("u", "0")).contains("seconds"));
        assert!(parse(&usage("u", "1.5")).is_err());
    }

    // Bad input loses nothing and never panics: an endless line ends at the cap.
    #[test]
    fn bad_input_a_line_over_the_cap_is_malformed_without_reading_it_whole() {
        let endless = std::io::BufReader::new(std::io::repeat(b' '));
        let err = parse_script_from(Path::new("s.jsonl"), endless).unwrap_err();
        assert_eq!(err.line, 1);
        assert_eq!(err.message, "the line is longer than the 64 KiB limit");
        let long = format!("{}\n", " ".repeat(MAX_LINE_BYTES + 1));
        assert_eq!(parse(&long).unwrap_err().line, 1);
        let just_fits = format!("{}\n", " ".repeat(MAX_LINE_BYTES));
        assert!(parse(&just_fits).unwrap().is_empty());
    }

    #[test]
    fn bad_input_an_endless_stream_of_lines_ends_at_the_script_cap() {
        let endless = std::io::BufReader::new(std::io::repeat(b'\n'));
        let err = parse_script_from(Path::new("s.jsonl"), endless).unwrap_err();
        assert_eq!(err.line as u64, MAX_SCRIPT_BYTES + 1);
        assert_eq!(err.message, "the script is larger than the 64 MiB limit");
    }

    // Every input error names the line, non-UTF-8 bytes included.
    #[test]
    fn bad_input_bytes_that_are_not_utf8_are_named_with_their_line() {
        let bytes = b"{\"at\":\"2026-01-01T00:00:00Z\",\"do\":\"advance\"}\n\n{\"at\":\xFF}\n";
        let err = parse_script_from(Path::new("s.jsonl"), &bytes[..]).unwrap_err();
        assert_eq!(err.line, 3);
        assert_eq!(
            err.to_string(),
            "s.jsonl:3: not UTF-8: byte 7 of the line (0xFF) is not valid UTF-8"
        );
        let utf16 = b"\xFF\xFE{\0}\0";
        let err = parse_script_from(Path::new("s.jsonl"), &utf16[..]).unwrap_err();
        assert!(err.message.contains("UTF-16 byte-order mark"), "{err}");
    }

    // A UTF-8 byte-order mark at the start is accepted and skipped.
    #[test]
    fn bad_input_a_utf8_byte_order_mark_at_the_start_is_skipped() {
        let lines =
            parse("\u{feff}{\"at\":\"2026-01-01T00:00:00Z\",\"do\":\"advance\"}\r\n").unwrap();
        assert_eq!(lines[0].command, Command::Advance);
        let later = "{\"at\":\"2026-01-01T00:00:00Z\",\"do\":\"advance\"}\n\u{feff}{}";
        assert_eq!(parse(later).unwrap_err().line, 2);
    }
}
