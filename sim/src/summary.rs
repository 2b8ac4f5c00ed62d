//! The simulation report: what each policy cost and how often service stopped,
//! as a serialisable document and as a plain text table. Money is exact
//! (decimal strings); only timings are floats.

use std::collections::BTreeMap;

use recharge_policy_sdk::model::{ChargeOutcome, Purpose, Timestamp};
use recharge_policy_sdk::money::display;
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

use recharge_host::{ChargeRecord, Notification};

/// The report of a simulation: the scenario, then one run per policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimulationReport {
    /// What was simulated.
    pub scenario: ScenarioSummary,
    /// One run per policy, on the same traffic.
    pub runs: Vec<RunReport>,
    /// Where the chart was written, once it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
}

/// What was simulated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScenarioSummary {
    /// The scenario's name.
    pub name: String,
    /// Its seed.
    pub seed: u64,
    /// Its first moment (RFC 3339).
    pub start: String,
    /// Its end (RFC 3339).
    pub end: String,
    /// How many days.
    pub days: u32,
    /// Agencies opened.
    pub agencies: u64,
    /// Sub-accounts opened.
    pub sub_accounts: u64,
    /// Users opened.
    pub users: u64,
    /// Calls, rate changes and card incidents planned.
    pub planned_events: u64,
}

/// What one policy did with the traffic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// The policy's label.
    pub policy: String,
    /// Succeeded charges by purpose, and all together.
    pub charges: Charges,
    /// Charge attempts declined (final).
    pub declines: u64,
    /// Charge attempts that failed transiently.
    pub transient_failures: u64,
    /// Times an account was paused.
    pub pauses: u64,
    /// Hours accounts spent paused, added up (from the pause and resume notices).
    pub paused_hours: f64,
    /// Accounts still paused at the end.
    pub paused_at_end: u64,
    /// `recharge_limit_reached` notices.
    pub limit_reached: u64,
    /// Calls recorded.
    pub calls: u64,
    /// Calls refused because the account could not take calls.
    pub calls_refused: u64,
    /// The accounts whose balance went lowest, lowest first.
    pub lowest_balances: Vec<LowBalance>,
    /// Minutes bought by monthly allocations.
    pub minutes_bought: Minutes,
    /// Policy decisions (events and queries handled).
    pub decisions: u64,
    /// Policy faults (the event changed nothing; H5).
    pub policy_faults: u64,
    /// Requests the policy rejected (settings, allocations, top-ups, answers).
    pub rejections: u64,
    /// Fuel per decision, over the events that made decisions (0 for native code).
    pub fuel_per_decision: Quantiles,
    /// How fast it ran.
    pub speed: Speed,
}

/// Succeeded charges by purpose.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Charges {
    /// Auto-recharges.
    pub auto_recharge: Tally,
    /// Monthly allocation purchases.
    pub allocation: Tally,
    /// Manual top-ups.
    pub top_up: Tally,
    /// Everything.
    pub all: Tally,
}

/// A count of charges and their total.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// How many.
    pub count: u64,
    /// Their total, USD.
    #[serde(serialize_with = "money")]
    pub total: Decimal,
}

impl Tally {
    fn add(&mut self, amount: Decimal) {
        self.count += 1;
        self.total += amount;
    }
}

/// An account and the lowest balance it was seen at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LowBalance {
    /// The account.
    pub account: String,
    /// Its lowest balance after an event, USD.
    #[serde(serialize_with = "money")]
    pub balance: Decimal,
}

/// Whole minutes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Minutes {
    /// Basic minutes.
    pub basic: i64,
    /// Premium minutes.
    pub premium: i64,
}

/// The median and 99th percentile of a sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Quantiles {
    /// The median.
    pub median: u64,
    /// The 99th percentile.
    pub p99: u64,
}

impl Quantiles {
    /// The quantiles of a sample (sorted here); zeros for an empty one.
    pub fn of(mut sample: Vec<u64>) -> Quantiles {
        sample.sort_unstable();
        Quantiles {
            median: nearest_rank(&sample, 0.5),
            p99: nearest_rank(&sample, 0.99),
        }
    }
}

/// The nearest-rank quantile of a sorted sample (0 when empty).
pub(crate) fn nearest_rank<T: Copy + Default>(sorted: &[T], quantile: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Wall-clock speed of a run: the only part of a report that varies between runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Speed {
    /// Workload events driven (calls, including refused ones, rate changes, card
    /// incidents and holders' responses).
    pub events: u64,
    /// Seconds the run took.
    pub wall_seconds: f64,
    /// Events per second.
    pub events_per_second: f64,
}

fn money<S: Serializer>(amount: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&display(*amount))
}

/// Charge totals from the executed charges.
pub fn charges(records: &[ChargeRecord]) -> (Charges, u64, u64, Minutes) {
    let mut charges = Charges::default();
    let (mut declines, mut failures) = (0, 0);
    let mut minutes = Minutes::default();
    for record in records {
        match record.outcome {
            // A card that needs its holder's authentication pays nothing,
            // like a declined one.
            ChargeOutcome::Declined | ChargeOutcome::RequiresAction => declines += 1,
            ChargeOutcome::Failed => failures += 1,
            ChargeOutcome::Succeeded => {
                let amount = record.request.amount;
                charges.all.add(amount);
                match &record.request.purpose {
                    Purpose::AutoRecharge => charges.auto_recharge.add(amount),
                    Purpose::TopUp => charges.top_up.add(amount),
                    Purpose::Allocation(purchase) => {
                        charges.allocation.add(amount);
                        minutes.basic += purchase.basic_minutes;
                        minutes.premium += purchase.premium_minutes;
                    }
                }
            }
        }
    }
    (charges, declines, failures, minutes)
}

/// A time an account spent paused, from its `account_paused` notice to its
/// `account_resumed` one (`None`: still paused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    /// The account.
    pub account: String,
    /// When it was paused.
    pub from: Timestamp,
    /// When it resumed.
    pub to: Option<Timestamp>,
}

/// Every pause, from the notices, in the order they began.
pub fn pauses(notices: &[Notification]) -> Vec<Pause> {
    let mut pauses: Vec<Pause> = Vec::new();
    let mut open: BTreeMap<&str, usize> = BTreeMap::new();
    for notice in notices {
        let account = notice.account.as_str();
        match notice.kind.as_str() {
            "account_paused" if !open.contains_key(account) => {
                open.insert(account, pauses.len());
                pauses.push(Pause {
                    account: account.to_owned(),
                    from: notice.at,
                    to: None,
                });
            }
            "account_resumed" => {
                if let Some(index) = open.remove(account) {
                    pauses[index].to = Some(notice.at);
                }
            }
            _ => {}
        }
    }
    pauses
}

/// Milliseconds spent paused, added up, counting open pauses until `end`.
pub fn paused_time(pauses: &[Pause], end: Timestamp) -> Timestamp {
    pauses
        .iter()
        .map(|pause| pause.to.unwrap_or(end) - pause.from)
        .sum()
}

/// The report as a plain text table, one column per run.
pub fn render_text(report: &SimulationReport) -> String {
    let scenario = &report.scenario;
    let mut out = format!(
        "recharge simulate: {}, seed {}, {} days from {} to {}\n{}, {}, {}; {}\n\n",
        scenario.name,
        scenario.seed,
        scenario.days,
        scenario.start,
        scenario.end,
        counted(scenario.agencies, "agency", "agencies"),
        counted(scenario.sub_accounts, "sub-account", "sub-accounts"),
        counted(scenario.users, "user", "users"),
        counted(scenario.planned_events, "planned event", "planned events"),
    );
    let mut rows: Vec<(String, Vec<String>)> = vec![(
        "".into(),
        report.runs.iter().map(|run| run.policy.clone()).collect(),
    )];
    let mut row = |label: &str, cell: &dyn Fn(&RunReport) -> String| {
        rows.push((label.to_owned(), report.runs.iter().map(cell).collect()));
    };
    let tally = |tally: &Tally| format!("{} / {}", tally.count, display(tally.total));
    row("auto-recharges (count / USD)", &|run| {
        tally(&run.charges.auto_recharge)
    });
    row("allocations (count / USD)", &|run| {
        tally(&run.charges.allocation)
    });
    row("top-ups (count / USD)", &|run| tally(&run.charges.top_up));
    row("all charges (count / USD)", &|run| tally(&run.charges.all));
    row("declined attempts", &|run| run.declines.to_string());
    row("transient failures", &|run| {
        run.transient_failures.to_string()
    });
    row("pauses", &|run| run.pauses.to_string());
    row("paused hours", &|run| format!("{:.1}", run.paused_hours));
    row("paused at end", &|run| run.paused_at_end.to_string());
    row("monthly limit reached", &|run| {
        run.limit_reached.to_string()
    });
    row("calls recorded", &|run| run.calls.to_string());
    row("calls refused (no service)", &|run| {
        run.calls_refused.to_string()
    });
    row("minutes bought (basic / premium)", &|run| {
        format!(
            "{} / {}",
            run.minutes_bought.basic, run.minutes_bought.premium
        )
    });
    row("decisions", &|run| run.decisions.to_string());
    row("policy faults", &|run| run.policy_faults.to_string());
    row("rejected requests", &|run| run.rejections.to_string());
    row("fuel per decision (median / p99)", &|run| {
        format!(
            "{} / {}",
            run.fuel_per_decision.median, run.fuel_per_decision.p99
        )
    });
    row("events", &|run| run.speed.events.to_string());
    row("events per second", &|run| {
        format!("{:.0}", run.speed.events_per_second)
    });
    row("wall time (s)", &|run| {
        format!("{:.2}", run.speed.wall_seconds)
    });
    let lowest = report
        .runs
        .iter()
        .map(|run| run.lowest_balances.len())
        .max()
        .unwrap_or(0);
    for rank in 0..lowest {
        let label = if rank == 0 { "lowest balances" } else { "" };
        row(label, &|run| {
            run.lowest_balances
                .get(rank)
                .map(|low| format!("{} {}", low.account, display(low.balance)))
                .unwrap_or_default()
        });
    }
    out.push_str(&table(&rows));
    if let Some(chart) = &report.chart {
        out.push_str(&format!("\nchart: {chart}\n"));
    }
    out
}

/// `1 agency`, `5 sub-accounts`.
fn counted(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// Left-aligned label column, right-aligned value columns.
fn table(rows: &[(String, Vec<String>)]) -> String {
    let label_width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    let columns = rows.iter().map(|(_, cells)| cells.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .filter_map(|(_, cells)| cells.get(column))
                .map(String::len)
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (label, cells) in rows {
        let mut line = format!("{label:<label_width$}");
        for (cell, width) in cells.iter().zip(&widths) {
            line.push_str(&format!("  {cell:>width$}"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        assert_eq!(Quantiles::of(vec![]), Quantiles::default());
        assert_eq!(Quantiles::of(vec![5]), Quantiles { median: 5, p99: 5 });
        let sample: Vec<u64> = (1..=200).rev().collect();
        assert_eq!(
            Quantiles::of(sample),
            Quantiles {
                median: 100,
                p99: 198
            }
        );
    }

    #[test]
    fn pauses_add_up_until_resumed_or_the_end() {
        let notice = |at, account: &str, kind: &str| Notification {
            at,
            account: account.into(),
            kind: kind.into(),
            message: String::new(),
        };
        let notices = [
            notice(10, "a", "account_paused"),
            notice(15, "b", "account_paused"),
            notice(20, "b", "account_paused"),
            notice(30, "a", "account_resumed"),
            notice(40, "a", "recharge_succeeded"),
        ];
        let found = pauses(&notices);
        assert_eq!(
            found,
            [
                Pause {
                    account: "a".into(),
                    from: 10,
                    to: Some(30)
                },
                Pause {
                    account: "b".into(),
                    from: 15,
                    to: None
                },
            ]
        );
        assert_eq!(paused_time(&found, 100), 20 + 85);
    }

    #[test]
    fn the_table_aligns_columns() {
        let rows = vec![
            ("".to_owned(), vec!["a".to_owned(), "bb".to_owned()]),
            ("label".to_owned(), vec!["100".to_owned(), "2".to_owned()]),
        ];
        assert_eq!(table(&rows), "         a  bb\nlabel  100   2\n");
    }
}
