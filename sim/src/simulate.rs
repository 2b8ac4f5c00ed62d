//! Simulating a scenario: one run per policy on the same generated traffic, each
//! on a fresh platform with a simulated clock and gateway (see the driver for
//! what a run does), then the report and the chart of a few balances.

use recharge_policy_sdk::model::Timestamp;
use rust_decimal::Decimal;
use thiserror::Error;

use crate::chart::{Chart, Series};
use crate::driver::Driver;
use crate::report::time;
use crate::scenario::Scenario;
use crate::summary::{ScenarioSummary, SimulationReport};
use crate::workload::{self, Action, Role, Workload};
use recharge_host::LoadError;
use recharge_host::{HostError, PlatformBuilder};

/// Accounts followed on the chart.
const CHARTED: usize = 4;

/// Which policy a run uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyUnderTest {
    /// The platform's default policy.
    Default,
    /// A tenant component, given to every user and agency.
    Component {
        /// How reports name it (its file name, say).
        label: String,
        /// The component's bytes.
        bytes: Vec<u8>,
    },
}

impl PolicyUnderTest {
    /// How reports name the policy.
    pub fn label(&self) -> &str {
        match self {
            PolicyUnderTest::Default => "default",
            PolicyUnderTest::Component { label, .. } => label,
        }
    }
}

/// Why a simulation stopped.
#[derive(Debug, Error)]
pub enum SimulationError {
    /// A policy component could not be loaded.
    #[error("policy {label}: {error}")]
    Policy {
        /// The policy's label.
        label: String,
        /// Why.
        error: LoadError,
    },
    /// An account could not be set up as the scenario says.
    #[error("setting up {account}: {error}")]
    Setup {
        /// The account.
        account: String,
        /// Why.
        error: HostError,
    },
    /// A count asked for is outside what a run takes.
    #[error("{what}: {value} is not between {min} and {max}")]
    Count {
        /// What is counted (`events`, say).
        what: &'static str,
        /// What was asked for.
        value: u64,
        /// The least allowed.
        min: u64,
        /// The most allowed.
        max: u64,
    },
    /// The host itself failed.
    #[error("at {at}: {error}")]
    Host {
        /// When (RFC 3339).
        at: String,
        /// The failure.
        error: HostError,
    },
}

/// A finished simulation: the report, and the balances the chart follows.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulation {
    /// The report.
    pub report: SimulationReport,
    /// The followed accounts of each run, in the order of the runs.
    pub traces: Vec<RunTraces>,
}

/// The followed accounts of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunTraces {
    /// The policy's label.
    pub policy: String,
    /// One trace per followed account.
    pub accounts: Vec<Trace>,
}

/// One account's balance over a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The account.
    pub account: String,
    /// The balance after each event that changed it.
    pub balance: Vec<(Timestamp, Decimal)>,
    /// Succeeded recharges and top-ups: when, and the balance then.
    pub recharges: Vec<(Timestamp, Decimal)>,
    /// When the account was paused, to when it resumed (or the end).
    pub paused: Vec<(Timestamp, Timestamp)>,
}

impl Trace {
    /// The first balance seen at or after `at` (a charge's credit shows there).
    pub(super) fn balance_after(&self, at: Timestamp) -> Decimal {
        let first = self.balance.partition_point(|(time, _)| *time < at);
        self.balance
            .get(first)
            .or(self.balance.last())
            .map(|(_, balance)| *balance)
            .unwrap_or_default()
    }
}

/// Run the scenario once per policy. `builder` makes each run's platform;
/// `progress` hears `(done, total)` planned events as the runs go.
pub fn simulate(
    scenario: &Scenario,
    policies: &[PolicyUnderTest],
    builder: &dyn Fn() -> PlatformBuilder,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Simulation, SimulationError> {
    let workload = workload::generate(scenario);
    let planned = workload.planned.len() as u64;
    let total = planned * policies.len() as u64;
    let followed = followed(&workload);
    let mut runs = Vec::new();
    let mut traces = Vec::new();
    for (index, policy) in policies.iter().enumerate() {
        let before = index as u64 * planned;
        let driver = Driver::new(scenario, &workload, builder(), &followed)?;
        let (report, run_traces) =
            driver.run(policy, &mut |done| progress(before + done, total))?;
        runs.push(report);
        traces.push(run_traces);
    }
    let count = |wanted: fn(&Role) -> bool| {
        workload
            .members
            .iter()
            .filter(|member| wanted(&member.role))
            .count() as u64
    };
    let summary = ScenarioSummary {
        name: scenario.name.clone(),
        seed: scenario.seed,
        start: time(workload.start),
        end: time(workload.end),
        days: scenario.days,
        agencies: count(|role| matches!(role, Role::Agency)),
        sub_accounts: count(|role| matches!(role, Role::SubAccount { .. })),
        users: count(|role| matches!(role, Role::User { .. })),
        planned_events: planned,
    };
    Ok(Simulation {
        report: SimulationReport {
            scenario: summary,
            runs,
            chart: None,
        },
        traces,
    })
}

impl Simulation {
    /// The chart of the followed balances: one colour per account, dashed for
    /// the second policy.
    pub fn chart(&self) -> Chart {
        let compare = self.traces.len() > 1;
        let mut series = Vec::new();
        for (run, traces) in self.traces.iter().enumerate() {
            for (color, trace) in traces.accounts.iter().enumerate() {
                let label = if compare {
                    format!("{} ({})", trace.account, traces.policy)
                } else {
                    trace.account.clone()
                };
                series.push(Series {
                    label,
                    color,
                    dashed: run > 0,
                    points: trace.balance.clone(),
                    marks: trace.recharges.clone(),
                    paused: trace.paused.clone(),
                });
            }
        }
        let scenario = &self.report.scenario;
        Chart {
            title: format!(
                "Balances over time: scenario {}, seed {}",
                scenario.name, scenario.seed
            ),
            series,
        }
    }
}

/// The accounts the chart follows: one hit by each card incident first, then
/// untroubled users, then sub-accounts.
fn followed(workload: &Workload) -> Vec<usize> {
    let mut followed: Vec<usize> = Vec::new();
    let mut seen_behaviors = Vec::new();
    let mut troubled = Vec::new();
    for planned in &workload.planned {
        if let Action::CardIncident { member, behavior } = planned.action
            && matches!(workload.members[member].role, Role::User { .. })
        {
            troubled.push(member);
            if !seen_behaviors.contains(&behavior) && !followed.contains(&member) {
                seen_behaviors.push(behavior);
                followed.push(member);
            }
        }
    }
    followed.truncate(CHARTED - 1);
    let users = workload
        .members
        .iter()
        .enumerate()
        .filter(|(_, member)| matches!(member.role, Role::User { .. }));
    let subs = workload
        .members
        .iter()
        .enumerate()
        .filter(|(_, member)| matches!(member.role, Role::SubAccount { .. }));
    let calm = users.clone().filter(|(index, _)| !troubled.contains(index));
    for (index, _) in calm.chain(users).chain(subs) {
        if followed.len() == CHARTED {
            break;
        }
        if !followed.contains(&index) {
            followed.push(index);
        }
    }
    followed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{Quantiles, Speed};
    use recharge_host::Platform;

    fn native() -> PlatformBuilder {
        Platform::builder().native_default_policy()
    }

    fn small() -> Scenario {
        let mut scenario = Scenario::embedded().unwrap();
        scenario.days = 40;
        scenario.rate_change = None;
        scenario.users[0].count = 4;
        scenario.users[1].count = 2;
        scenario.agencies[0].sub_accounts = 2;
        scenario.card_incidents.retain(|incident| incident.day < 40);
        scenario
    }

    fn run(scenario: &Scenario, policies: &[PolicyUnderTest]) -> Simulation {
        simulate(scenario, policies, &native, &mut |_, _| {}).unwrap()
    }

    fn without_speed(mut report: SimulationReport) -> SimulationReport {
        for run in &mut report.runs {
            run.speed = Speed::default();
        }
        report
    }

    #[test]
    fn the_same_seed_gives_the_same_report() {
        let scenario = small();
        let first = run(&scenario, &[PolicyUnderTest::Default]);
        let second = run(&scenario, &[PolicyUnderTest::Default]);
        assert_eq!(
            without_speed(first.report.clone()),
            without_speed(second.report)
        );
        assert_eq!(first.traces, second.traces);

        let other = run(
            &Scenario {
                seed: scenario.seed + 1,
                ..scenario
            },
            &[PolicyUnderTest::Default],
        );
        assert_ne!(first.report.runs[0].calls, other.report.runs[0].calls);
    }

    #[test]
    fn the_default_scenario_charges_pauses_and_resumes() {
        let simulation = run(&Scenario::embedded().unwrap(), &[PolicyUnderTest::Default]);
        let report = &simulation.report.runs[0];
        assert_eq!(simulation.report.scenario.users, 20);
        assert!(report.charges.auto_recharge.count > 20, "{report:?}");
        assert_eq!(
            report.charges.allocation.count, 15,
            "five sub-accounts, three months"
        );
        assert!(
            report.declines > 0 && report.transient_failures > 0,
            "{report:?}"
        );
        assert!(report.pauses > 0 && report.paused_hours > 0.0, "{report:?}");
        assert!(report.calls_refused > 0, "{report:?}");
        assert!(report.charges.top_up.count + report.pauses > 0);
        assert_eq!((report.policy_faults, report.rejections), (0, 0));
        assert_eq!(
            report.fuel_per_decision,
            Quantiles::default(),
            "native policies burn no fuel"
        );
        let all = &report.charges;
        assert_eq!(
            all.all.total,
            all.auto_recharge.total + all.allocation.total + all.top_up.total
        );
    }

    #[test]
    fn the_sandboxed_default_policy_agrees_with_its_native_build() {
        let scenario = small();
        let sandboxed = simulate(
            &scenario,
            &[PolicyUnderTest::Default],
            &Platform::builder,
            &mut |_, _| {},
        )
        .unwrap();
        let native = run(&scenario, &[PolicyUnderTest::Default]);
        assert!(sandboxed.report.runs[0].fuel_per_decision.median > 0);
        let decided = |mut report: SimulationReport| {
            for run in &mut report.runs {
                run.fuel_per_decision = Quantiles::default();
            }
            without_speed(report)
        };
        assert_eq!(decided(sandboxed.report), decided(native.report));
        assert_eq!(sandboxed.traces, native.traces);
    }

    #[test]
    fn a_comparison_runs_the_same_calls_twice() {
        let simulation = run(
            &small(),
            &[PolicyUnderTest::Default, PolicyUnderTest::Default],
        );
        let [first, second] = &simulation.report.runs[..] else {
            panic!("two runs")
        };
        assert_eq!(
            first.calls + first.calls_refused,
            second.calls + second.calls_refused
        );
        assert_eq!(simulation.chart().series.len(), 2 * CHARTED);
    }

    #[test]
    fn a_bad_component_is_named() {
        let policy = PolicyUnderTest::Component {
            label: "bad.wasm".into(),
            bytes: b"nope".to_vec(),
        };
        let err = simulate(&small(), &[policy], &native, &mut |_, _| {}).unwrap_err();
        assert!(err.to_string().starts_with("policy bad.wasm: "), "{err}");
    }

    #[test]
    fn progress_reaches_the_total() {
        let mut last = (0, 0);
        simulate(
            &small(),
            &[PolicyUnderTest::Default],
            &native,
            &mut |done, total| last = (done, total),
        )
        .unwrap();
        assert!(last.1 > 0);
        assert_eq!(last.0, last.1);
    }
}
