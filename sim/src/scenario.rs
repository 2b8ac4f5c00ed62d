//! Simulation scenarios: a TOML file describing the population, its traffic and
//! its card troubles. Every field has a default, unknown fields are errors, and
//! every error names the file, the line, and the field.
//!
//! A scenario file is at most [`MAX_SCENARIO_BYTES`] and read no further; it is
//! UTF-8 (a byte that is not is named with its line), and a UTF-8 byte-order
//! mark at the start is accepted and skipped. Money is strict plain notation
//! (`"10.00"`), as in scripts; sizes (accounts, days, minutes, calls) are
//! range-checked, each error naming the line of the field that breaks it.

use std::path::Path;

use chrono::{DateTime, NaiveDate};
use recharge_host::input::{self, BadInput};
use recharge_policy_sdk::model::{Mode, Rates, Timestamp};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use thiserror::Error;

use recharge_host::CardBehavior;
use recharge_host::default_rates;
use toml::de::{DeTable, DeValue};

use crate::files::{ReadError, Size, read_capped};
use crate::workload::DAY;

/// The scenario run when no file is given.
pub const DEFAULT_SCENARIO: &str = include_str!("default_scenario.toml");

/// How the embedded default scenario is named in errors and reports.
pub const DEFAULT_SCENARIO_NAME: &str = "default scenario (embedded)";

/// A scenario that could not be read.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{file}{}: {message}", line.map(|line| format!(":{line}")).unwrap_or_default())]
pub struct ScenarioError {
    /// The scenario file.
    pub file: String,
    /// The line, when the error has one.
    pub line: Option<usize>,
    /// What is wrong, naming the field.
    pub message: String,
}

/// A whole scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// A label for reports.
    pub name: String,
    /// When the simulation starts: a UTC date (`2026-01-05`) or an RFC 3339 time.
    #[serde(deserialize_with = "start_time")]
    pub start: Timestamp,
    /// How many days it runs.
    pub days: u32,
    /// The seed: the same seed gives the same traffic and the same report.
    pub seed: u64,
    /// The rates at start.
    pub rates: RatesSpec,
    /// A change of rates during the run.
    pub rate_change: Option<RateChange>,
    /// How accounts call.
    pub calls: Calls,
    /// Agencies and their sub-accounts.
    pub agencies: Vec<Agencies>,
    /// Users on auto-recharge.
    pub users: Vec<Users>,
    /// Cards that start misbehaving on a given day.
    pub card_incidents: Vec<CardIncident>,
    /// What holders do after a refused call.
    pub response: Response,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: "scenario".into(),
            start: 1_767_571_200_000, // 2026-01-05T00:00:00Z, a Monday
            days: 90,
            seed: 0,
            rates: RatesSpec::default(),
            rate_change: None,
            calls: Calls::default(),
            agencies: Vec::new(),
            users: Vec::new(),
            card_incidents: Vec::new(),
            response: Response::default(),
        }
    }
}

/// Rates in USD per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatesSpec {
    /// Basic, USD per minute.
    #[serde(deserialize_with = "money")]
    pub basic: Decimal,
    /// Premium, USD per minute.
    #[serde(deserialize_with = "money")]
    pub premium: Decimal,
}

impl Default for RatesSpec {
    fn default() -> Self {
        let rates = default_rates();
        RatesSpec {
            basic: rates.basic,
            premium: rates.premium,
        }
    }
}

impl RatesSpec {
    /// As the platform takes them.
    pub fn rates(&self) -> Rates {
        Rates {
            basic: self.basic,
            premium: self.premium,
        }
    }
}

/// New rates from a given day on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateChange {
    /// The day (from 0) at whose start the rates change; half-way when omitted.
    pub day: Option<u32>,
    /// Basic, USD per minute.
    #[serde(deserialize_with = "money")]
    pub basic: Decimal,
    /// Premium, USD per minute.
    #[serde(deserialize_with = "money")]
    pub premium: Decimal,
}

/// How accounts call.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Calls {
    /// Mean calls per account on a working day.
    pub per_working_day: f64,
    /// A weekend day sees this share of a working day's calls.
    pub weekend_share: f64,
    /// The working day, in UTC hours `[from, to)`.
    pub working_hours: [u32; 2],
    /// The share of calls outside working hours.
    pub after_hours_share: f64,
    /// The share of premium calls.
    pub premium_share: f64,
    /// Mean call length in seconds (exponential, clamped).
    pub mean_seconds: f64,
    /// The shortest call.
    pub min_seconds: i64,
    /// The longest call.
    pub max_seconds: i64,
    /// Each account's volume is scaled by a factor drawn uniformly from this range.
    pub volume_spread: [f64; 2],
}

impl Default for Calls {
    fn default() -> Self {
        Calls {
            per_working_day: 10.0,
            weekend_share: 0.15,
            working_hours: [8, 18],
            after_hours_share: 0.05,
            premium_share: 0.3,
            mean_seconds: 150.0,
            min_seconds: 5,
            max_seconds: 3600,
            volume_spread: [1.0, 1.0],
        }
    }
}

/// A group of agencies, each with sub-accounts on monthly allocations.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agencies {
    /// How many agencies.
    pub count: u32,
    /// Sub-accounts per agency.
    pub sub_accounts: u32,
    /// Basic minutes each sub-account gets a month.
    pub basic_minutes: i64,
    /// Premium minutes each sub-account gets a month.
    pub premium_minutes: i64,
    /// Mean calls per sub-account on a working day (default: `calls.per_working_day`).
    pub calls_per_working_day: Option<f64>,
}

/// A group of users on auto-recharge.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Users {
    /// How many users.
    pub count: u32,
    /// Recharge when the balance falls below this.
    #[serde(deserialize_with = "money")]
    pub threshold: Decimal,
    /// Fixed mode: the unit of a charge; target mode: the balance to refill to.
    #[serde(deserialize_with = "money")]
    pub amount: Decimal,
    /// `fixed` (default) or `target`.
    #[serde(default, deserialize_with = "mode")]
    pub mode: Mode,
    /// The most auto-recharge may charge in a calendar month.
    #[serde(default, deserialize_with = "optional_money")]
    pub monthly_limit: Option<Decimal>,
}

/// Whose cards an incident hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Users' cards.
    #[default]
    Users,
    /// Agencies' cards.
    Agencies,
}

/// Cards that start misbehaving on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardIncident {
    /// The day (from 0); the cards change at 06:00 UTC.
    pub day: u32,
    /// Whose cards: `users` (default) or `agencies`.
    #[serde(default)]
    pub target: Target,
    /// How many accounts, picked by the seed (distinct across incidents while
    /// there are enough).
    pub accounts: u32,
    /// `ok`, `decline`, `fail` or `fail:N`.
    #[serde(deserialize_with = "behavior")]
    pub behavior: CardBehavior,
}

/// What a holder does after a refused call: after a delay, it updates a broken
/// card, or tops up by hand (with a spare card when its own is broken).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Response {
    /// The delay in hours, drawn uniformly from `[from, to]`.
    pub after_hours: [f64; 2],
    /// The manual top-up.
    #[serde(deserialize_with = "money")]
    pub top_up: Decimal,
    /// With a broken card: the share of holders who update it rather than top up.
    pub update_card_share: f64,
}

impl Default for Response {
    fn default() -> Self {
        Response {
            after_hours: [1.0, 24.0],
            top_up: Decimal::new(40_00, 2),
            update_card_share: 0.7,
        }
    }
}

impl Scenario {
    /// The embedded default scenario.
    pub fn embedded() -> Result<Scenario, ScenarioError> {
        Scenario::parse(DEFAULT_SCENARIO_NAME, DEFAULT_SCENARIO)
    }

    /// Read and check a scenario file, reading no more than
    /// [`MAX_SCENARIO_BYTES`] whatever the path names.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let whole_file = |message: String| ScenarioError {
            file: file.clone(),
            line: None,
            message,
        };
        let bytes = read_capped(path, MAX_SCENARIO_BYTES).map_err(|err| {
            whole_file(match err {
                ReadError::Io(err) => format!("cannot read the scenario: {err}"),
                ReadError::TooLarge { limit } => {
                    format!("the scenario is larger than the {} limit", Size(limit))
                }
            })
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|err| {
            let bad = err.valid_up_to();
            let line_start = bytes[..bad]
                .iter()
                .rposition(|&byte| byte == b'\n')
                .map_or(0, |newline| newline + 1);
            ScenarioError {
                file: file.clone(),
                line: Some(bytes[..bad].iter().filter(|&&byte| byte == b'\n').count() + 1),
                message: format!(
                    "not UTF-8: byte {} of the line (0x{:02X}) is not valid UTF-8",
                    bad - line_start + 1,
                    bytes[bad]
                ),
            }
        })?;
        Scenario::parse(&file, text)
    }

    /// Parse and check a scenario; `file` names it in errors. A UTF-8
    /// byte-order mark at the start is skipped.
    pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let error = |err: &toml::de::Error, path: Option<String>| {
            let message = in_plain_words(err.message().trim_end());
            ScenarioError {
                file: file.to_owned(),
                line: err.span().map(|span| line_of(text, span.start)),
                message: match path {
                    Some(path) => format!("`{path}`: {message}"),
                    None => message,
                },
            }
        };
        let deserializer = toml::Deserializer::parse(text).map_err(|err| error(&err, None))?;
        let scenario: Scenario = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let path = err.path().to_string();
            error(err.inner(), (path != ".").then_some(path))
        })?;
        scenario.check().map_err(|invalid| ScenarioError {
            file: file.to_owned(),
            line: invalid.line(text),
            message: invalid.message,
        })?;
        Ok(scenario)
    }

    /// The day the rates change, if they do.
    pub fn rate_change_day(&self) -> Option<u32> {
        self.rate_change
            .map(|change| change.day.unwrap_or(self.days / 2))
    }

    /// Every account the scenario opens.
    pub fn account_count(&self) -> u64 {
        let agencies: u64 = self
            .agencies
            .iter()
            .map(|group| u64::from(group.count) * (1 + u64::from(group.sub_accounts)))
            .sum();
        agencies
            + self
                .users
                .iter()
                .map(|group| u64::from(group.count))
                .sum::<u64>()
    }

    /// An upper estimate of the calls the scenario makes (every account at the top
    /// of the volume spread, every day a working day).
    fn most_calls(&self) -> f64 {
        let users: f64 = self.users.iter().map(|group| f64::from(group.count)).sum();
        let mut per_day = users * self.calls.per_working_day;
        for group in &self.agencies {
            let subs = f64::from(group.count) * f64::from(group.sub_accounts);
            per_day += subs
                * group
                    .calls_per_working_day
                    .unwrap_or(self.calls.per_working_day);
        }
        per_day * self.calls.volume_spread[1] * f64::from(self.days)
    }

    /// Check what serde cannot: ranges and relations between fields.
    fn check(&self) -> Result<(), Invalid> {
        if !(1..=MAX_DAYS).contains(&self.days) {
            return Err(invalid(
                "days",
                format!("{} is not between 1 and {MAX_DAYS}", self.days),
            ));
        }
        input::check_time("start", self.start)
            .map_err(|_| invalid("start", "is outside 1970-01-01 to 9999-12-31".into()))?;
        let end = self.start + Timestamp::from(self.days) * DAY;
        if input::check_time("start", end).is_err() {
            return Err(invalid(
                "days",
                format!("{} days from `start` end after 9999-12-31", self.days),
            ));
        }
        check_rates("rates", self.rates.basic, self.rates.premium)?;
        if let Some(change) = &self.rate_change {
            check_rates("rate_change", change.basic, change.premium)?;
            if let Some(day) = change.day
                && day >= self.days
            {
                return Err(invalid(
                    "rate_change.day",
                    format!("{day} is not before the last day ({})", self.days),
                ));
            }
        }
        self.calls.check()?;
        for (index, group) in self.agencies.iter().enumerate() {
            group.check(&format!("agencies[{index}]"))?;
        }
        for (index, group) in self.users.iter().enumerate() {
            group.check(&format!("users[{index}]"))?;
        }
        if self.account_count() > MAX_ACCOUNTS {
            return Err(invalid(
                self.largest_group(),
                format!(
                    "the scenario opens {} accounts, over {MAX_ACCOUNTS}",
                    self.account_count()
                ),
            ));
        }
        let calls = self.most_calls();
        if calls > MAX_CALLS {
            return Err(invalid(
                "calls.per_working_day",
                format!("the scenario could make about {calls:.0} calls, over {MAX_CALLS}"),
            ));
        }
        for (index, incident) in self.card_incidents.iter().enumerate() {
            if incident.day >= self.days {
                return Err(invalid(
                    format!("card_incidents[{index}].day"),
                    format!("{} is not before `days` ({})", incident.day, self.days),
                ));
            }
            check_count(
                &format!("card_incidents[{index}].accounts"),
                incident.accounts,
            )?;
        }
        self.response.check()
    }

    /// The `count` of the group that opens the most accounts: where to point
    /// when the scenario opens too many.
    fn largest_group(&self) -> String {
        let agencies = self.agencies.iter().enumerate().map(|(index, group)| {
            (
                u64::from(group.count) * (1 + u64::from(group.sub_accounts)),
                format!("agencies[{index}].count"),
            )
        });
        let users = self
            .users
            .iter()
            .enumerate()
            .map(|(index, group)| (u64::from(group.count), format!("users[{index}].count")));
        agencies
            .chain(users)
            .max_by_key(|(accounts, _)| *accounts)
            .map(|(_, field)| field)
            .unwrap_or_default()
    }
}

/// The largest scenario file.
pub const MAX_SCENARIO_BYTES: u64 = 1 << 20;
/// The longest run: ten years.
const MAX_DAYS: u32 = 3660;
/// The most accounts a scenario may open.
const MAX_ACCOUNTS: u64 = 100_000;
/// The most calls a scenario may make (each is kept in memory until it runs).
const MAX_CALLS: f64 = 10_000_000.0;
/// The most calls an account may make on a working day.
const MAX_CALLS_PER_DAY: f64 = 10_000.0;

/// A range or relation the scenario breaks: the fields whose line to name
/// (paths such as `users[0].count`; the first the file has), and what is wrong.
#[derive(Debug)]
struct Invalid {
    fields: Vec<String>,
    message: String,
}

impl Invalid {
    /// The line of the first field the file has, else of the nearest table or
    /// item enclosing the first field.
    fn line(&self, text: &str) -> Option<usize> {
        let places: Vec<_> = self
            .fields
            .iter()
            .filter_map(|field| place_of_field(text, field))
            .collect();
        places
            .iter()
            .find(|place| place.exact)
            .or(places.first())
            .map(|place| line_of(text, place.offset))
    }
}

/// `field` breaks a rule: the message is prefixed with the field's name.
fn invalid(field: impl Into<String>, what: String) -> Invalid {
    let field = field.into();
    Invalid {
        message: format!("`{field}`: {what}"),
        fields: vec![field],
    }
}

impl Calls {
    fn check(&self) -> Result<(), Invalid> {
        check_range(
            "calls.per_working_day",
            self.per_working_day,
            0.0,
            MAX_CALLS_PER_DAY,
        )?;
        check_share("calls.weekend_share", self.weekend_share)?;
        check_share("calls.after_hours_share", self.after_hours_share)?;
        check_share("calls.premium_share", self.premium_share)?;
        let [from, to] = self.working_hours;
        if from >= to || to > 24 {
            return Err(invalid(
                "calls.working_hours",
                format!("[{from}, {to}] is not a range of hours within 0..24"),
            ));
        }
        check_range("calls.mean_seconds", self.mean_seconds, 1.0, 86_400.0)?;
        if self.min_seconds < 1 || self.min_seconds > self.max_seconds || self.max_seconds > 86_400
        {
            return Err(Invalid {
                fields: vec!["calls.min_seconds".into(), "calls.max_seconds".into()],
                message: format!(
                    "`calls.min_seconds`, `calls.max_seconds`: {} and {} need 1 <= min <= max <= 86400",
                    self.min_seconds, self.max_seconds
                ),
            });
        }
        let [low, high] = self.volume_spread;
        check_range("calls.volume_spread", low, 0.0, high)?;
        check_range("calls.volume_spread", high, low, 100.0)
    }
}

impl Agencies {
    fn check(&self, at: &str) -> Result<(), Invalid> {
        check_count(&format!("{at}.count"), self.count)?;
        check_count(&format!("{at}.sub_accounts"), self.sub_accounts)?;
        for (name, minutes) in [
            ("basic_minutes", self.basic_minutes),
            ("premium_minutes", self.premium_minutes),
        ] {
            let field = format!("{at}.{name}");
            input::check_minutes("minutes", minutes).map_err(|_| {
                invalid(
                    field,
                    format!("{minutes} is not between 0 and {}", input::MAX_MINUTES),
                )
            })?;
        }
        if let Some(calls) = self.calls_per_working_day {
            check_range(
                &format!("{at}.calls_per_working_day"),
                calls,
                0.0,
                MAX_CALLS_PER_DAY,
            )?;
        }
        Ok(())
    }
}

impl Users {
    fn check(&self, at: &str) -> Result<(), Invalid> {
        check_count(&format!("{at}.count"), self.count)?;
        let field = |name: &str| format!("{at}.{name}");
        if self.threshold < Decimal::ZERO {
            return Err(invalid(
                field("threshold"),
                format!("{} must not be negative", self.threshold),
            ));
        }
        check_cents(&field("threshold"), self.threshold)?;
        if self.amount <= Decimal::ZERO {
            return Err(invalid(
                field("amount"),
                format!("{} must be more than 0", self.amount),
            ));
        }
        check_cents(&field("amount"), self.amount)?;
        if let Some(limit) = self.monthly_limit {
            if limit <= Decimal::ZERO {
                return Err(invalid(
                    field("monthly_limit"),
                    format!("{limit} must be more than 0"),
                ));
            }
            check_cents(&field("monthly_limit"), limit)?;
        }
        Ok(())
    }
}

impl Response {
    fn check(&self) -> Result<(), Invalid> {
        let [from, to] = self.after_hours;
        check_range("response.after_hours", from, 0.0, to)?;
        check_range("response.after_hours", to, from, 24.0 * 366.0)?;
        if self.top_up <= Decimal::ZERO {
            return Err(invalid(
                "response.top_up",
                format!("{} must be more than 0", self.top_up),
            ));
        }
        check_cents("response.top_up", self.top_up)?;
        check_share("response.update_card_share", self.update_card_share)
    }
}

fn check_rates(at: &str, basic: Decimal, premium: Decimal) -> Result<(), Invalid> {
    for (name, rate) in [("basic", basic), ("premium", premium)] {
        if rate < Decimal::ZERO {
            return Err(invalid(
                format!("{at}.{name}"),
                "rates must not be negative".into(),
            ));
        }
    }
    Ok(())
}

/// A count of accounts: at most [`MAX_ACCOUNTS`].
fn check_count(field: &str, count: u32) -> Result<(), Invalid> {
    if u64::from(count) > MAX_ACCOUNTS {
        return Err(invalid(
            field,
            format!("{count} is over the most a scenario opens ({MAX_ACCOUNTS})"),
        ));
    }
    Ok(())
}

/// Money a card is charged or settings hold: whole cents.
fn check_cents(field: &str, amount: Decimal) -> Result<(), Invalid> {
    if amount.normalize().scale() > 2 {
        return Err(invalid(field, format!("{amount} is not whole cents")));
    }
    Ok(())
}

fn check_share(field: &str, value: f64) -> Result<(), Invalid> {
    check_range(field, value, 0.0, 1.0)
}

fn check_range(field: &str, value: f64, low: f64, high: f64) -> Result<(), Invalid> {
    if value.is_finite() && (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("{value} is not between {low} and {high}"),
        ))
    }
}

/// Where a field stands in the file.
struct Place {
    /// The byte offset of its key (or item).
    offset: usize,
    /// Whether the field itself is there, or only a table or item enclosing it.
    exact: bool,
}

/// Where a field given as a path (`users[0].count`, `calls`) is: its key, or
/// the nearest enclosing table or item the file has.
fn place_of_field(text: &str, field: &str) -> Option<Place> {
    let document = DeTable::parse(text).ok()?;
    let mut table = Some(document.get_ref());
    let mut found = None;
    let mut exact = true;
    for segment in field.split('.') {
        let (key, indexes) = match segment.find('[') {
            Some(open) => (&segment[..open], &segment[open..]),
            None => (segment, ""),
        };
        let Some((name, value)) = table.and_then(|table| {
            table
                .iter()
                .find(|(name, _)| name.get_ref().as_ref() == key)
        }) else {
            exact = false;
            break;
        };
        found = Some(name.span().start);
        let mut current = value;
        let mut complete = true;
        for index in indexes
            .split(['[', ']'])
            .filter(|part| !part.is_empty())
            .map(|part| part.parse::<usize>().ok())
        {
            match (current.get_ref(), index) {
                (DeValue::Array(items), Some(index)) if index < items.len() => {
                    current = &items[index];
                    found = Some(current.span().start);
                }
                _ => {
                    complete = false;
                    break;
                }
            }
        }
        if !complete {
            exact = false;
            break;
        }
        table = match current.get_ref() {
            DeValue::Table(inner) => Some(inner),
            _ => None,
        };
    }
    found.map(|offset| Place { offset, exact })
}

/// serde's words for types in its messages, as a scenario's author would say
/// them.
fn in_plain_words(message: &str) -> String {
    let mut plain = message
        .replace(
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        )
        .replace(
            "expected u64",
            "expected a whole number from 0 to 18446744073709551615",
        )
        .replace("expected i64", "expected a whole number")
        .replace("expected f64", "expected a number")
        .replace("expected a sequence", "expected an array");
    for (prefix, words) in [
        ("expected struct ", "expected a table"),
        ("expected enum ", "expected a string"),
    ] {
        while let Some(at) = plain.find(prefix) {
            let rest = &plain[at + prefix.len()..];
            let name = rest
                .find(|c: char| !c.is_alphanumeric() && c != '_')
                .unwrap_or(rest.len());
            plain.replace_range(at..at + prefix.len() + name, words);
        }
    }
    plain
}

/// The line (from 1) of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// Money and rates are strings (`"0.16"`) or whole numbers, never floats.
fn money<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    struct MoneyVisitor;

    impl Visitor<'_> for MoneyVisitor {
        type Value = Decimal;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an amount as a string, such as \"0.16\"")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Decimal, E> {
            input::parse_money("money", text).map_err(|err| E::custom(money_error(&err)))
        }

        fn visit_i64<E: de::Error>(self, whole: i64) -> Result<Decimal, E> {
            input::check_money("money", Decimal::from(whole))
                .map_err(|err| E::custom(money_error(&err)))
        }

        fn visit_u64<E: de::Error>(self, whole: u64) -> Result<Decimal, E> {
            input::check_money("money", Decimal::from(whole))
                .map_err(|err| E::custom(money_error(&err)))
        }

        fn visit_f64<E: de::Error>(self, value: f64) -> Result<Decimal, E> {
            Err(E::custom(format!(
                "write amounts as strings (\"{value}\"): floats are not exact"
            )))
        }
    }

    deserializer.deserialize_any(MoneyVisitor)
}

/// What is wrong with an amount, without the field (serde's path names it).
fn money_error(err: &BadInput) -> String {
    match err {
        BadInput::NotDecimal { text, .. } => {
            format!("{text:?} is not a decimal number (digits, an optional minus and fraction)")
        }
        BadInput::MoneyOutOfRange { value, .. } => {
            format!("{value} is out of range (at most 1000000000000 in magnitude)")
        }
        BadInput::TooPrecise { value, .. } => {
            format!(
                "{value} has more than {} decimal places",
                input::MAX_MONEY_SCALE
            )
        }
        other => other.to_string(),
    }
}

fn optional_money<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Decimal>, D::Error> {
    money(deserializer).map(Some)
}

fn start_time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
    let text = String::deserialize(deserializer)?;
    if let Ok(date) = text.parse::<NaiveDate>() {
        return date
            .and_hms_opt(0, 0, 0)
            .map(|midnight| midnight.and_utc().timestamp_millis())
            .ok_or_else(|| de::Error::custom(format!("{text:?} is out of range")));
    }
    DateTime::parse_from_rfc3339(&text)
        .map(|time| time.timestamp_millis())
        .map_err(|_| {
            de::Error::custom(format!(
                "{text:?} is not a date (2026-01-05) or an RFC 3339 time"
            ))
        })
}

fn mode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Mode, D::Error> {
    match String::deserialize(deserializer)?.as_str() {
        "fixed" => Ok(Mode::Fixed),
        "target" => Ok(Mode::Target),
        other => Err(de::Error::custom(format!(
            "{other:?} is not fixed or target"
        ))),
    }
}

fn behavior<'de, D: Deserializer<'de>>(deserializer: D) -> Result<CardBehavior, D::Error> {
    String::deserialize(deserializer)?
        .parse()
        .map_err(de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse("s.toml", text)
    }

    #[test]
    fn the_embedded_default_parses() {
        let scenario = Scenario::embedded().unwrap();
        assert_eq!(scenario.days, 90);
        assert_eq!(scenario.account_count(), 26);
        assert_eq!(scenario.rate_change_day(), Some(45));
        assert_eq!(scenario.rate_change.unwrap().premium, Decimal::new(18, 2));
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        assert_eq!(parse("").unwrap(), Scenario::default());
    }

    #[test]
    fn an_unknown_field_is_named_with_its_line() {
        let err = parse("days = 10\n[calls]\nper_workday = 3\n").unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(err.message.contains("per_workday"), "{err}");
        assert!(err.to_string().starts_with("s.toml:3: "), "{err}");
    }

    #[test]
    fn a_bad_value_is_named() {
        let err = parse("[[users]]\ncount = 2\nthreshold = \"ten\"\namount = \"5\"\n").unwrap_err();
        assert_eq!(err.line, Some(3));
        assert_eq!(
            err.message,
            "`users[0].threshold`: \"ten\" is not a decimal number (digits, an optional minus and fraction)"
        );

        let err = parse("[rates]\nbasic = 0.09\npremium = \"0.16\"\n").unwrap_err();
        assert!(err.message.contains("floats are not exact"), "{err}");

        let err =
            parse("[[card_incidents]]\nday = 1\naccounts = 1\nbehavior = \"flaky\"\n").unwrap_err();
        assert!(err.message.contains("flaky"), "{err}");
    }

    #[test]
    fn a_missing_field_is_named() {
        let err = parse("[[users]]\ncount = 2\nthreshold = \"1\"\n").unwrap_err();
        assert!(err.message.contains("`amount`"), "{err}");
    }

    #[test]
    fn ranges_are_checked_and_named() {
        let err = parse("[calls]\npremium_share = 1.5\n").unwrap_err();
        assert!(err.message.contains("`calls.premium_share`"), "{err}");
        let err = parse("days = 10\n[rate_change]\nday = 10\nbasic = \"1\"\npremium = \"1\"\n")
            .unwrap_err();
        assert!(err.message.contains("`rate_change.day`"), "{err}");
        let err = parse("[[users]]\ncount = 1\nthreshold = \"1\"\namount = \"0\"\n").unwrap_err();
        assert!(err.message.contains("`users[0].amount`"), "{err}");
        assert!(parse("days = 0").unwrap_err().message.contains("`days`"));
    }

    #[test]
    fn start_takes_a_date_or_a_time() {
        assert_eq!(
            parse("start = \"2026-01-01\"").unwrap().start,
            1_767_225_600_000
        );
        assert_eq!(
            parse("start = \"2026-01-01T01:00:00Z\"").unwrap().start,
            1_767_229_200_000
        );
        assert!(
            parse("start = \"soon\"")
                .unwrap_err()
                .message
                .contains("soon")
        );
    }

    // Bad input is rejected before anything runs: money in plain notation only.
    #[test]
    fn bad_input_scenario_money_in_any_but_plain_notation_is_named_with_its_line() {
        for bad in ["1_000", "1e2", "+10.00", " 10.00", "10.", ".50"] {
            let text = format!("[[users]]\ncount = 1\nthreshold = \"5\"\namount = {bad:?}\n");
            let err = parse(&text).unwrap_err();
            assert_eq!(err.line, Some(4), "{bad:?}: {err}");
            assert!(
                err.message.starts_with("`users[0].amount`: ")
                    && err.message.contains("not a decimal number"),
                "{bad:?}: {err}"
            );
        }
        let err = parse("[response]\ntop_up = \"9999999999999999999999999999\"\n").unwrap_err();
        assert!(err.message.contains("out of range"), "{err}");
        let err =
            parse("[rates]\nbasic = \"0.0000000000000000001\"\npremium = \"1\"\n").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("decimal places"), "{err}");
        let err = parse("[response]\ntop_up = 9223372036854775807\n").unwrap_err();
        assert!(err.message.contains("out of range"), "{err}");
    }

    // Every input error names the line, range errors included.
    #[test]
    fn bad_input_scenario_range_errors_name_the_line_of_the_field() {
        let err = parse("name = \"x\"\ndays = 0\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "s.toml:2: `days`: 0 is not between 1 and 3660"
        );
        let err = parse("[calls]\nweekend_share = 0.5\npremium_share = 1.5\n").unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        let users = "[[users]]\ncount = 1\nthreshold = \"1\"\namount = \"1\"\n";
        let err = parse(&format!(
            "{users}[[users]]\ncount = 4000000000\nthreshold = \"1\"\namount = \"1\"\n"
        ))
        .unwrap_err();
        assert_eq!(err.line, Some(6), "{err}");
        assert!(
            err.message.contains("over the most a scenario opens"),
            "{err}"
        );
        let err = parse(&format!(
            "{users}[[users]]\ncount = 200000\nthreshold = \"1\"\namount = \"1\"\n"
        ))
        .unwrap_err();
        assert_eq!(err.line, Some(6), "{err}");
        assert!(err.message.starts_with("`users[1].count`: "), "{err}");
        let agencies = "[[agencies]]\ncount = 1\nsub_accounts = 1\nbasic_minutes = 100000001\npremium_minutes = 0\n";
        let err = parse(agencies).unwrap_err();
        assert_eq!(err.line, Some(4), "{err}");
        assert!(
            err.message.starts_with("`agencies[0].basic_minutes`"),
            "{err}"
        );
        let err =
            parse("[[users]]\ncount = 1\nthreshold = \"1.005\"\namount = \"1\"\n").unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        assert!(err.message.contains("whole cents"), "{err}");
        // A field left to its default is named by its table's line.
        let err = parse("days = 5\n\n[calls]\nmax_seconds = 3\n").unwrap_err();
        assert_eq!(err.line, Some(4), "{err}");
        let err = parse("days = 5\n\n[calls]\nmin_seconds = 4000\n").unwrap_err();
        assert_eq!(err.line, Some(4), "{err}");
        let err = parse("start = \"9999-12-01\"\ndays = 90\n").unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
    }

    // Messages speak the scenario's terms, never the parser's types.
    #[test]
    fn bad_input_scenario_messages_name_no_internal_types() {
        for text in [
            "days = 5000000000",
            "days = \"ten\"",
            "days = -1",
            "seed = -1",
            "calls = 5",
            "rates = \"cheap\"",
            "agencies = 5",
            "[calls]\nmean_seconds = \"long\"",
            "[calls]\nmin_seconds = 1.5",
            "[[card_incidents]]\nday = 0\naccounts = 1\nbehavior = \"ok\"\ntarget = 1",
            "[rates]\nbasic = 0.09\npremium = \"0.16\"",
        ] {
            let err = parse(text).unwrap_err();
            for internal in [
                "u32", "u64", "i64", "f64", "Decimal", "serde", "struct", "enum", "sequence",
            ] {
                assert!(!err.message.contains(internal), "{internal} in {err}");
            }
        }
    }

    // A byte-order mark is accepted; bytes that are not UTF-8 are named with their line.
    #[test]
    fn bad_input_scenario_encoding_errors_name_the_line() {
        assert_eq!(parse("\u{feff}days = 3\n").unwrap().days, 3);
        let dir = std::env::temp_dir().join(format!("recharge-scenario-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("latin1.toml");
        std::fs::write(&file, b"days = 3\nname = \"caf\xE9\"\n").unwrap();
        let err = Scenario::load(&file).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(err.line, Some(2), "{err}");
        assert!(err.message.contains("not UTF-8"), "{err}");
    }

    // Bad input never grows memory: an endless file ends at the cap.
    #[test]
    fn bad_input_an_endless_scenario_ends_at_the_size_limit() {
        let err = Scenario::load(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/dev/zero: the scenario is larger than the 1 MiB limit"
        );
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = Scenario::load(Path::new("/nonexistent/s.toml")).unwrap_err();
        assert_eq!(err.file, "/nonexistent/s.toml");
        assert!(err.message.contains("cannot read"), "{err}");
    }
}
