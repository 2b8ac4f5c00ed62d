//! Decision speed: usage events through a policy on an in-memory platform, each
//! one timed, with the native build of the default core as the baseline.

use std::sync::Arc;
use std::time::Instant;

use recharge_policy_sdk::model::{AccountKind, AutoRechargeSettings, MinuteType, Mode, Timestamp};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::report::time;
use crate::simulate::{PolicyUnderTest, SimulationError};
use crate::summary::{Quantiles, nearest_rank};
use crate::workload::MAIN_CARD;
use recharge_host::AccountId;
use recharge_host::Policy;
use recharge_host::SimulatedGateway;
use recharge_host::{HostError, Platform, PlatformBuilder};

/// When the bench's clock stands: 2026-01-05T00:00:00Z.
const START: Timestamp = 1_767_571_200_000;
/// Events run before timing starts, at most.
const WARM_UP: u64 = 1_000;
/// Events a policy runs in a row before the other one takes its turn.
const BLOCK: u64 = 4096;

/// The most events a bench times per policy: each costs 16 bytes of figures
/// per policy, and ten million take minutes.
pub const MAX_EVENTS: u64 = 10_000_000;
/// The most users a bench opens.
pub const MAX_USERS: u64 = 100_000;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchOptions {
    /// Usage events timed: 1 to [`MAX_EVENTS`].
    pub events: u64,
    /// Users on auto-recharge the events are spread over: 1 to [`MAX_USERS`].
    pub users: u64,
}

impl BenchOptions {
    /// Check the counts are within what a bench runs.
    pub fn check(&self) -> Result<(), SimulationError> {
        for (what, value, max) in [
            ("events", self.events, MAX_EVENTS),
            ("users", self.users, MAX_USERS),
        ] {
            if !(1..=max).contains(&value) {
                return Err(SimulationError::Count {
                    what,
                    value,
                    min: 1,
                    max,
                });
            }
        }
        Ok(())
    }
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            events: 100_000,
            users: 1_000,
        }
    }
}

/// The bench's findings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// Usage events timed per policy.
    pub events: u64,
    /// Users the events were spread over.
    pub users: u64,
    /// The policy under test.
    pub policy: SpeedReport,
    /// The native build of the default core, when the default policy is tested.
    pub native: Option<SpeedReport>,
    /// The policy's median time per event over the native one's.
    pub wasm_over_native: Option<f64>,
    /// Settings saves through the policy under test, after the usage events:
    /// each user saves its auto-recharge settings again, twice.
    pub saves: SpeedReport,
}

/// One policy's speed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpeedReport {
    /// The policy's label.
    pub policy: String,
    /// Events per second over the timed loop.
    pub events_per_second: f64,
    /// Median time per event, nanoseconds.
    pub median_ns: u64,
    /// 99th percentile time per event, nanoseconds.
    pub p99_ns: u64,
    /// Fuel per event (0 for native code).
    pub fuel_per_event: Quantiles,
    /// Policy decisions made by the timed events (a usage that recharges is two).
    pub decisions: u64,
}

/// Time `options.events` usage events through the policy; for the default policy
/// also through its native build, on a second platform, event for event. The
/// two take turns in blocks of 4,096 events: within a block a policy runs
/// alone, with its own data in the caches, and across blocks whatever else the
/// machine does weighs on both alike, so the ratio of their medians holds still
/// from run to run. `progress` hears `(done, total)`.
pub fn bench(
    policy: &PolicyUnderTest,
    options: BenchOptions,
    builder: &dyn Fn() -> PlatformBuilder,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<BenchReport, SimulationError> {
    options.check()?;
    let with_native = *policy == PolicyUnderTest::Default;
    let total = options.events * if with_native { 2 } else { 1 };
    let mut tested = Run::new(policy, policy.label(), builder(), options)?;
    let mut native = if with_native {
        let builder = builder().native_default_policy();
        Some(Run::new(policy, "native", builder, options)?)
    } else {
        None
    };
    let warm_up = WARM_UP.min(options.events / 10);
    for run in std::iter::once(&mut tested).chain(native.as_mut()) {
        for event in 0..warm_up {
            run.record(u64::MAX - event, false)?;
        }
    }
    let mut done = 0;
    let mut first = 0;
    while first < options.events {
        let last = (first + BLOCK).min(options.events);
        for run in std::iter::once(&mut tested).chain(native.as_mut()) {
            for event in first..last {
                run.record(event, true)?;
            }
            done += last - first;
            progress(done, total);
        }
        first = last;
    }
    progress(total, total);
    let saves = tested.time_saves()?;
    let tested = tested.report();
    let native = native.map(Run::report);
    let wasm_over_native = native
        .as_ref()
        .filter(|native| native.median_ns > 0)
        .map(|native| tested.median_ns as f64 / native.median_ns as f64);
    Ok(BenchReport {
        events: options.events,
        users: options.users,
        policy: tested,
        native,
        wasm_over_native,
        saves,
    })
}

fn host_error(error: HostError) -> SimulationError {
    SimulationError::Host {
        at: time(START),
        error,
    }
}

/// One policy's platform, its users, and what its timed events measured.
struct Run {
    platform: Platform,
    users: Vec<AccountId>,
    timings: Timings,
}

/// What timed events measured.
struct Timings {
    label: String,
    nanos: Vec<u64>,
    fuel: Vec<u64>,
    decisions: u64,
}

impl Run {
    /// A platform with the users set up.
    fn new(
        policy: &PolicyUnderTest,
        label: &str,
        builder: PlatformBuilder,
        options: BenchOptions,
    ) -> Result<Run, SimulationError> {
        let platform = builder
            .gateway(Arc::new(SimulatedGateway::new()))
            .simulated_clock(START)
            .build()
            .map_err(host_error)?;
        let users = set_up(&platform, policy, options.users)?;
        Ok(Run {
            platform,
            users,
            timings: Timings {
                label: label.to_owned(),
                nanos: Vec::with_capacity(options.events as usize),
                fuel: Vec::with_capacity(options.events as usize),
                decisions: 0,
            },
        })
    }

    /// Record the `event`-th usage, timed and counted unless warming up.
    fn record(&mut self, event: u64, timed: bool) -> Result<(), SimulationError> {
        let (user, call, seconds, minute_type) = usage(&self.users, event);
        let timer = Instant::now();
        let report = self
            .platform
            .record_usage(user, &call, seconds, minute_type)
            .map_err(host_error)?;
        let elapsed = timer.elapsed().as_nanos() as u64;
        if timed {
            self.timings.nanos.push(elapsed);
            self.timings.fuel.push(report.fuel);
            self.timings.decisions += report.decisions;
        }
        Ok(())
    }

    /// Time two settings saves per user (thresholds that never trigger a
    /// charge, so a save is the decision alone).
    fn time_saves(&self) -> Result<SpeedReport, SimulationError> {
        let mut saves = Timings {
            label: format!("{} saves", self.timings.label),
            nanos: Vec::new(),
            fuel: Vec::new(),
            decisions: 0,
        };
        for round in 0..2 {
            for user in &self.users {
                let settings = AutoRechargeSettings {
                    enabled: true,
                    threshold: Decimal::new(1_00 + round, 2),
                    amount: Decimal::new(10_00, 2),
                    card: MAIN_CARD.into(),
                    mode: Mode::Fixed,
                    monthly_limit: None,
                };
                let timer = Instant::now();
                let report = self
                    .platform
                    .save_auto_recharge(user, user, settings)
                    .map_err(host_error)?;
                saves.nanos.push(timer.elapsed().as_nanos() as u64);
                saves.fuel.push(report.fuel);
                saves.decisions += report.decisions;
            }
        }
        Ok(saves.report())
    }

    /// The run's figures.
    fn report(self) -> SpeedReport {
        self.timings.report()
    }
}

impl Timings {
    /// The figures; events per second over the time the events took.
    fn report(mut self) -> SpeedReport {
        let busy: u64 = self.nanos.iter().sum();
        let events = self.nanos.len() as f64;
        self.nanos.sort_unstable();
        SpeedReport {
            policy: self.label,
            events_per_second: if busy > 0 {
                events * 1e9 / busy as f64
            } else {
                0.0
            },
            median_ns: nearest_rank(&self.nanos, 0.5),
            p99_ns: nearest_rank(&self.nanos, 0.99),
            fuel_per_event: Quantiles::of(self.fuel),
            decisions: self.decisions,
        }
    }
}

/// Open the users with a card, the policy and auto-recharge (10.00 below 5.00).
fn set_up(
    platform: &Platform,
    policy: &PolicyUnderTest,
    count: u64,
) -> Result<Vec<AccountId>, SimulationError> {
    let tenant: Option<Arc<dyn Policy>> = match policy {
        PolicyUnderTest::Default => None,
        PolicyUnderTest::Component { label, bytes } => {
            let loaded =
                platform
                    .engine()
                    .load(bytes)
                    .map_err(|error| SimulationError::Policy {
                        label: label.clone(),
                        error,
                    })?;
            Some(Arc::new(loaded))
        }
    };
    let width = count.to_string().len();
    let mut users = Vec::new();
    for number in 0..count {
        let user = AccountId(format!("bench-{number:0width$}"));
        let setup = |error| SimulationError::Setup {
            account: user.0.clone(),
            error,
        };
        platform
            .open_account(user.clone(), AccountKind::User, None)
            .map_err(setup)?;
        platform.add_card(&user, MAIN_CARD).map_err(setup)?;
        if let Some(tenant) = &tenant {
            platform
                .set_policy_object(&user, Arc::clone(tenant))
                .map_err(setup)?;
        }
        let settings = AutoRechargeSettings {
            enabled: true,
            threshold: Decimal::new(5_00, 2),
            amount: Decimal::new(10_00, 2),
            card: MAIN_CARD.into(),
            mode: Mode::Fixed,
            monthly_limit: None,
        };
        platform
            .save_auto_recharge(&user, &user, settings)
            .map_err(setup)?;
        users.push(user);
    }
    Ok(users)
}

/// The `event`-th usage record: users in turn, lengths and types varied.
fn usage(users: &[AccountId], event: u64) -> (&AccountId, String, i64, MinuteType) {
    let user = &users[(event % users.len() as u64) as usize];
    let seconds = 20 + (event.wrapping_mul(7_919) % 280) as i64;
    let minute_type = if event.is_multiple_of(4) {
        MinuteType::Premium
    } else {
        MinuteType::Basic
    };
    (user, format!("call-{event}"), seconds, minute_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_times_every_event_and_compares_with_native() {
        let native = || Platform::builder().native_default_policy();
        let options = BenchOptions {
            events: 2_000,
            users: 20,
        };
        let mut last = (0, 0);
        let report = bench(
            &PolicyUnderTest::Default,
            options,
            &native,
            &mut |done, total| last = (done, total),
        )
        .unwrap();
        assert_eq!(last, (4_000, 4_000));
        assert_eq!(report.events, 2_000);
        assert!(
            report.policy.decisions > 2_000,
            "some usage recharges: {}",
            report.policy.decisions
        );
        assert!(report.policy.median_ns > 0 && report.policy.median_ns <= report.policy.p99_ns);
        assert!(report.native.is_some());
        assert!(report.wasm_over_native.is_some_and(|ratio| ratio > 0.0));
    }

    // Bad input never panics: counts beyond what a bench runs are refused first.
    #[test]
    fn bad_input_bench_counts_out_of_range_are_refused_before_anything_runs() {
        let native = || Platform::builder().native_default_policy();
        for options in [
            BenchOptions {
                events: u64::MAX,
                users: 1,
            },
            BenchOptions {
                events: 0,
                users: 1,
            },
            BenchOptions {
                events: 1,
                users: MAX_USERS + 1,
            },
        ] {
            let err =
                bench(&PolicyUnderTest::Default, options, &native, &mut |_, _| {}).unwrap_err();
            assert!(matches!(err, SimulationError::Count { .. }), "{err}");
        }
        let err = BenchOptions {
            events: u64::MAX,
            users: 1,
        }
        .check()
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "events: 18446744073709551615 is not between 1 and 10000000"
        );
    }

    #[test]
    fn a_component_has_no_native_baseline() {
        let policy = PolicyUnderTest::Component {
            label: "bad.wasm".into(),
            bytes: Vec::new(),
        };
        let native = || Platform::builder().native_default_policy();
        let err = bench(&policy, BenchOptions::default(), &native, &mut |_, _| {}).unwrap_err();
        assert!(err.to_string().starts_with("policy bad.wasm"), "{err}");
    }
}
