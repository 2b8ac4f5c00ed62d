//! Simulation scenarios: a TOML file describing the population, its traffic and
//! its card troubles. Every field has a default, unknown fields are errors, and
//! every error names the file, the line when known, and the field.

use std::path::Path;

use chrono::{DateTime, NaiveDate};
use recharge_policy_sdk::model::{Mode, Rates, Timestamp};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use thiserror::Error;

use recharge_host::CardBehavior;
use recharge_host::default_rates;

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

    /// Read and check a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| ScenarioError {
            file: file.clone(),
            line: None,
            message: format!("cannot read the scenario: {err}"),
        })?;
        Scenario::parse(&file, &text)
    }

    /// Parse and check a scenario; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let error = |err: &toml::de::Error, path: Option<String>| ScenarioError {
            file: file.to_owned(),
            line: err.span().map(|span| line_of(text, span.start)),
            message: match path {
                Some(path) => format!("`{path}`: {}", err.message().trim_end()),
                None => err.message().trim_end().to_owned(),
            },
        };
        let deserializer = toml::Deserializer::parse(text).map_err(|err| error(&err, None))?;
        let scenario: Scenario = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let path = err.path().to_string();
            error(err.inner(), (path != ".").then_some(path))
        })?;
        scenario.check().map_err(|message| ScenarioError {
            file: file.to_owned(),
            line: None,
            message,
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
    fn check(&self) -> Result<(), String> {
        if !(1..=MAX_DAYS).contains(&self.days) {
            return Err(format!(
                "`days`: {} is not between 1 and {MAX_DAYS}",
                self.days
            ));
        }
        check_rates("rates", self.rates.basic, self.rates.premium)?;
        if let Some(change) = &self.rate_change {
            check_rates("rate_change", change.basic, change.premium)?;
            if let Some(day) = change.day
                && day >= self.days
            {
                return Err(format!(
                    "`rate_change.day`: {day} is not before the last day ({})",
                    self.days
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
            return Err(format!(
                "the scenario opens {} accounts, over {MAX_ACCOUNTS}",
                self.account_count()
            ));
        }
        let calls = self.most_calls();
        if calls > MAX_CALLS {
            return Err(format!(
                "the scenario could make about {calls:.0} calls, over {MAX_CALLS}"
            ));
        }
        for (index, incident) in self.card_incidents.iter().enumerate() {
            if incident.day >= self.days {
                return Err(format!(
                    "`card_incidents[{index}].day`: {} is not before `days` ({})",
                    incident.day, self.days
                ));
            }
        }
        self.response.check()
    }
}

/// The longest run: ten years.
const MAX_DAYS: u32 = 3660;
/// The most accounts a scenario may open.
const MAX_ACCOUNTS: u64 = 100_000;
/// The most calls a scenario may make (each is kept in memory until it runs).
const MAX_CALLS: f64 = 10_000_000.0;
/// The most calls an account may make on a working day.
const MAX_CALLS_PER_DAY: f64 = 10_000.0;

impl Calls {
    fn check(&self) -> Result<(), String> {
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
            return Err(format!(
                "`calls.working_hours`: [{from}, {to}] is not a range of hours within 0..24"
            ));
        }
        check_range("calls.mean_seconds", self.mean_seconds, 1.0, 86_400.0)?;
        if self.min_seconds < 1 || self.min_seconds > self.max_seconds || self.max_seconds > 86_400
        {
            return Err(format!(
                "`calls.min_seconds`, `calls.max_seconds`: {} and {} need 1 <= min <= max <= 86400",
                self.min_seconds, self.max_seconds
            ));
        }
        let [low, high] = self.volume_spread;
        check_range("calls.volume_spread", low, 0.0, high)?;
        check_range("calls.volume_spread", high, low, 100.0)
    }
}

impl Agencies {
    fn check(&self, at: &str) -> Result<(), String> {
        if self.basic_minutes < 0 || self.premium_minutes < 0 {
            return Err(format!(
                "`{at}.basic_minutes`, `{at}.premium_minutes`: minutes must not be negative"
            ));
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
    fn check(&self, at: &str) -> Result<(), String> {
        if self.threshold < Decimal::ZERO {
            return Err(format!(
                "`{at}.threshold`: {} must not be negative",
                self.threshold
            ));
        }
        if self.amount <= Decimal::ZERO {
            return Err(format!(
                "`{at}.amount`: {} must be more than 0",
                self.amount
            ));
        }
        if let Some(limit) = self.monthly_limit
            && limit <= Decimal::ZERO
        {
            return Err(format!("`{at}.monthly_limit`: {limit} must be more than 0"));
        }
        Ok(())
    }
}

impl Response {
    fn check(&self) -> Result<(), String> {
        let [from, to] = self.after_hours;
        check_range("response.after_hours", from, 0.0, to)?;
        check_range("response.after_hours", to, from, 24.0 * 366.0)?;
        if self.top_up <= Decimal::ZERO {
            return Err(format!(
                "`response.top_up`: {} must be more than 0",
                self.top_up
            ));
        }
        check_share("response.update_card_share", self.update_card_share)
    }
}

fn check_rates(at: &str, basic: Decimal, premium: Decimal) -> Result<(), String> {
    if basic < Decimal::ZERO || premium < Decimal::ZERO {
        return Err(format!("`{at}`: rates must not be negative"));
    }
    Ok(())
}

fn check_share(field: &str, value: f64) -> Result<(), String> {
    check_range(field, value, 0.0, 1.0)
}

fn check_range(field: &str, value: f64, low: f64, high: f64) -> Result<(), String> {
    if value.is_finite() && (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "`{field}`: {value} is not between {low} and {high}"
        ))
    }
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
            text.trim()
                .parse()
                .map_err(|_| E::custom(format!("{text:?} is not a decimal number")))
        }

        fn visit_i64<E: de::Error>(self, whole: i64) -> Result<Decimal, E> {
            Ok(Decimal::from(whole))
        }

        fn visit_u64<E: de::Error>(self, whole: u64) -> Result<Decimal, E> {
            Ok(Decimal::from(whole))
        }

        fn visit_f64<E: de::Error>(self, value: f64) -> Result<Decimal, E> {
            Err(E::custom(format!(
                "write amounts as strings (\"{value}\"): floats are not exact"
            )))
        }
    }

    deserializer.deserialize_any(MoneyVisitor)
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
            "`users[0].threshold`: \"ten\" is not a decimal number"
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

    #[test]
    fn a_missing_file_is_named() {
        let err = Scenario::load(Path::new("/nonexistent/s.toml")).unwrap_err();
        assert_eq!(err.file, "/nonexistent/s.toml");
        assert!(err.message.contains("cannot read"), "{err}");
    }
}
