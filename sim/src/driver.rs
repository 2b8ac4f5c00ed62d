//! One simulation run: a platform driven through the workload in time order.
//!
//! Before each call the account's service is asked of the platform (R9); a call
//! refused for lack of service is counted, not recorded, and its holder responds
//! some hours later: it updates a broken card, or tops up by hand. Responses draw
//! from their own random stream, so the calls stay the same whatever the policy.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Instant;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use recharge_policy_sdk::model::{
    AccountKind, AllocationSettings, Answer, ChargeOutcome, MinuteType, Purpose, QueryKind, Status,
    Timestamp,
};
use rust_decimal::Decimal;

use crate::report::time;
use crate::scenario::Scenario;
use crate::simulate::{PolicyUnderTest, RunTraces, SimulationError, Trace};
use crate::summary::{self, LowBalance, Quantiles, RunReport, Speed};
use crate::workload::{self, Action, HOUR, MAIN_CARD, Member, Role, Workload};
use recharge_host::AccountId;
use recharge_host::Policy;
use recharge_host::{CardBehavior, SimulatedGateway};
use recharge_host::{EventReport, HostError, Platform, PlatformBuilder};

/// The card a holder tops up with when its own is broken.
const SPARE_CARD: &str = "spare";
/// Accounts listed under the lowest balances.
const LOWEST: usize = 5;
/// Planned events between two progress reports.
const PROGRESS_EVERY: usize = 1024;

/// What the driver keeps per member.
#[derive(Debug, Default)]
struct MemberState {
    /// How the gateway treats its main card now.
    card: CardBehavior,
    /// Its lowest balance after an event, once its wallet was used.
    lowest: Option<Decimal>,
    /// Whether a response is scheduled.
    responding: bool,
    /// Its trace, when followed.
    trace: Option<usize>,
}

#[derive(Debug, Default)]
struct Counts {
    events: u64,
    calls: u64,
    refused: u64,
    decisions: u64,
    faults: u64,
    rejections: u64,
}

/// One run: a platform, the workload, and what was seen.
pub(super) struct Driver<'a> {
    scenario: &'a Scenario,
    workload: &'a Workload,
    platform: Platform,
    gateway: Arc<SimulatedGateway>,
    states: Vec<MemberState>,
    /// Scheduled responses: when, a sequence number for ties, the member.
    responses: BinaryHeap<Reverse<(Timestamp, u64, usize)>>,
    scheduled: u64,
    rng: ChaCha8Rng,
    counts: Counts,
    fuel: Vec<u64>,
    traces: Vec<Trace>,
}

impl<'a> Driver<'a> {
    pub(super) fn new(
        scenario: &'a Scenario,
        workload: &'a Workload,
        builder: PlatformBuilder,
        followed: &[usize],
    ) -> Result<Self, SimulationError> {
        let gateway = Arc::new(SimulatedGateway::new());
        let platform = builder
            .gateway(gateway.clone())
            .simulated_clock(workload.start)
            .rates(scenario.rates.rates())
            .build()
            .map_err(|error| SimulationError::Host {
                at: time(workload.start),
                error,
            })?;
        let mut states: Vec<MemberState> = workload
            .members
            .iter()
            .map(|_| MemberState::default())
            .collect();
        let mut traces = Vec::new();
        for &member in followed {
            states[member].trace = Some(traces.len());
            let account = workload.members[member].id.0.clone();
            traces.push(Trace {
                account,
                balance: Vec::new(),
                recharges: Vec::new(),
                paused: Vec::new(),
            });
        }
        Ok(Driver {
            scenario,
            workload,
            platform,
            gateway,
            states,
            responses: BinaryHeap::new(),
            scheduled: 0,
            rng: workload::stream(scenario.seed, workload::RESPONSE_STREAM),
            counts: Counts::default(),
            fuel: Vec::new(),
            traces,
        })
    }

    pub(super) fn run(
        mut self,
        policy: &PolicyUnderTest,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(RunReport, RunTraces), SimulationError> {
        let tenant = self.load(policy)?;
        let started = Instant::now();
        self.set_up(tenant)?;
        let mut planned = self.workload.planned.iter().enumerate().peekable();
        loop {
            let response = self
                .responses
                .peek()
                .map(|Reverse((at, _, member))| (*at, *member));
            let next_planned = planned.peek().map(|(_, planned)| planned.at);
            match (next_planned, response) {
                (Some(at), Some((due, member))) if due < at => self.respond_at(due, member)?,
                (Some(_), _) => {
                    if let Some((index, next)) = planned.next() {
                        self.advance(next.at)?;
                        self.act(next.action)?;
                        if index.is_multiple_of(PROGRESS_EVERY) {
                            progress(index as u64);
                        }
                    }
                }
                (None, Some((due, member))) if due < self.workload.end => {
                    self.respond_at(due, member)?
                }
                (None, _) => break,
            }
            self.counts.events += 1;
        }
        // The run covers [start, end): what falls due at `end` is the next period's.
        self.advance(self.workload.end - 1)?;
        progress(self.workload.planned.len() as u64);
        let wall_seconds = started.elapsed().as_secs_f64();
        self.finish(policy, wall_seconds)
    }

    /// Load a tenant component before the clock starts (compiling is not the
    /// policy's speed).
    fn load(&self, policy: &PolicyUnderTest) -> Result<Option<Arc<dyn Policy>>, SimulationError> {
        match policy {
            PolicyUnderTest::Default => Ok(None),
            PolicyUnderTest::Component { label, bytes } => {
                let loaded = self.platform.engine().load(bytes).map_err(|error| {
                    SimulationError::Policy {
                        label: label.clone(),
                        error,
                    }
                })?;
                Ok(Some(Arc::new(loaded)))
            }
        }
    }

    /// Open every account, save cards and policies, then auto-recharge settings
    /// and allocations (which buy at once).
    fn set_up(&mut self, tenant: Option<Arc<dyn Policy>>) -> Result<(), SimulationError> {
        let workload = self.workload;
        let members = &workload.members;
        for member in members {
            let setup = |error| SimulationError::Setup {
                account: member.id.0.clone(),
                error,
            };
            let (kind, parent) = match &member.role {
                Role::Agency => (AccountKind::Agency, None),
                Role::User { .. } => (AccountKind::User, None),
                Role::SubAccount { agency, .. } => {
                    (AccountKind::SubAccount, Some(members[*agency].id.clone()))
                }
            };
            self.platform
                .open_account(member.id.clone(), kind, parent)
                .map_err(setup)?;
            if kind != AccountKind::SubAccount {
                self.platform
                    .add_card(&member.id, MAIN_CARD)
                    .map_err(setup)?;
                if let Some(policy) = &tenant {
                    self.platform
                        .set_policy_object(&member.id, Arc::clone(policy))
                        .map_err(setup)?;
                }
            }
        }
        for (index, member) in members.iter().enumerate() {
            let setup = |error| SimulationError::Setup {
                account: member.id.0.clone(),
                error,
            };
            let saved = match &member.role {
                Role::Agency => continue,
                Role::User { settings } => {
                    self.platform
                        .save_auto_recharge(&member.id, &member.id, settings.clone())
                }
                Role::SubAccount {
                    agency,
                    basic_minutes,
                    premium_minutes,
                } => {
                    let settings = AllocationSettings {
                        basic_minutes: *basic_minutes,
                        premium_minutes: *premium_minutes,
                        card: MAIN_CARD.into(),
                    };
                    self.platform
                        .save_allocation(&members[*agency].id, &member.id, settings)
                }
            };
            match saved {
                Ok(report) => self.note(report),
                Err(HostError::Fault(_)) => self.counts.faults += 1,
                // A policy may refuse what the scenario asks (a tenant selling no
                // allocations, say): that is a finding, not a failure.
                Err(HostError::Rejected(_)) => self.counts.rejections += 1,
                Err(other) => return Err(setup(other)),
            }
            self.observe(index)?;
        }
        Ok(())
    }

    fn host_error(&self, error: HostError) -> SimulationError {
        SimulationError::Host {
            at: time(self.platform.now()),
            error,
        }
    }

    /// Count a policy's work.
    fn note(&mut self, report: EventReport) {
        self.counts.decisions += report.decisions;
        if let Some(per_decision) = report.fuel.checked_div(report.decisions) {
            self.fuel.push(per_decision);
        }
    }

    /// Count what a command did; a fault or rejection is the policy's, anything
    /// else stops the run.
    fn absorb(&mut self, result: Result<EventReport, HostError>) -> Result<(), SimulationError> {
        match result {
            Ok(report) => {
                self.note(report);
                Ok(())
            }
            Err(HostError::Fault(_)) => {
                self.counts.faults += 1;
                Ok(())
            }
            Err(HostError::Rejected(_)) => {
                self.counts.rejections += 1;
                Ok(())
            }
            Err(other) => Err(self.host_error(other)),
        }
    }

    /// Move the clock, firing the timers due by then.
    fn advance(&mut self, at: Timestamp) -> Result<(), SimulationError> {
        let fired = self
            .platform
            .advance_to(at)
            .map_err(|error| self.host_error(error))?;
        let decided = fired.decisions > 0;
        self.note(fired);
        if decided {
            for member in 0..self.states.len() {
                if self.states[member].trace.is_some() {
                    self.observe(member)?;
                }
            }
        }
        Ok(())
    }

    fn act(&mut self, action: Action) -> Result<(), SimulationError> {
        match action {
            Action::Call {
                member,
                number,
                seconds,
                minute_type,
            } => self.call(member, number, seconds, minute_type),
            Action::Rates(rates) => self
                .platform
                .set_rates(rates)
                .map_err(|error| self.host_error(error)),
            Action::CardIncident { member, behavior } => {
                let workload = self.workload;
                self.gateway
                    .set_behavior(&workload.members[member].id, MAIN_CARD, behavior)
                    .map_err(|error| self.host_error(error.into()))?;
                self.states[member].card = behavior;
                Ok(())
            }
        }
    }

    fn call(
        &mut self,
        member: usize,
        number: u32,
        seconds: i64,
        minute_type: MinuteType,
    ) -> Result<(), SimulationError> {
        if !self.can_call(member)? {
            self.counts.refused += 1;
            self.schedule_response(member);
            return Ok(());
        }
        let workload = self.workload;
        let id = &workload.members[member].id;
        let recorded =
            self.platform
                .record_usage(id, &format!("call-{number}"), seconds, minute_type);
        self.absorb(recorded)?;
        self.counts.calls += 1;
        self.observe(member)
    }

    /// Ask the account's policy whether it can take calls (R9); if the policy
    /// cannot answer, the host's own view decides.
    fn can_call(&mut self, member: usize) -> Result<bool, SimulationError> {
        let workload = self.workload;
        let id = &workload.members[member].id;
        match self.platform.query(id, id, QueryKind::Service) {
            Ok(Answer::Service(can_call)) => {
                self.counts.decisions += 1;
                return Ok(can_call);
            }
            Ok(_) | Err(HostError::Rejected(_)) => self.counts.rejections += 1,
            Err(HostError::Fault(_)) => self.counts.faults += 1,
            Err(other) => return Err(self.host_error(other)),
        }
        let account = self
            .platform
            .account(id)
            .map_err(|error| self.host_error(error))?;
        Ok(account.status == Status::Active
            && (account.balance > Decimal::ZERO || account.snapshot().has_minutes()))
    }

    /// Record the member's balance (lowest, and its trace when followed).
    fn observe(&mut self, member: usize) -> Result<(), SimulationError> {
        let workload = self.workload;
        let id = &workload.members[member].id;
        let balance = self
            .platform
            .account(id)
            .map_err(|error| self.host_error(error))?
            .balance;
        let state = &mut self.states[member];
        // A wallet never used (a sub-account living on its minutes) is not listed.
        if balance != Decimal::ZERO || state.lowest.is_some() {
            state.lowest = Some(state.lowest.map_or(balance, |lowest| lowest.min(balance)));
        }
        if let Some(trace) = state.trace {
            let points = &mut self.traces[trace].balance;
            if points.last().is_none_or(|(_, last)| *last != balance) {
                points.push((self.platform.now(), balance));
            }
        }
        Ok(())
    }

    /// A refused call: the one who can fix it responds after a while. A user
    /// fixes its own account; a sub-account's agency fixes a broken card.
    fn schedule_response(&mut self, member: usize) {
        let workload = self.workload;
        let responder = match &workload.members[member].role {
            Role::User { .. } => member,
            Role::SubAccount { agency, .. } if self.states[*agency].card != CardBehavior::Ok => {
                *agency
            }
            _ => return,
        };
        if self.states[responder].responding {
            return;
        }
        self.states[responder].responding = true;
        let [from, to] = self.scenario.response.after_hours;
        let hours = if to > from {
            self.rng.random_range(from..=to)
        } else {
            from
        };
        let due = self.platform.now() + (hours * HOUR as f64) as Timestamp;
        self.responses
            .push(Reverse((due, self.scheduled, responder)));
        self.scheduled += 1;
    }

    fn respond_at(&mut self, due: Timestamp, member: usize) -> Result<(), SimulationError> {
        self.responses.pop();
        self.advance(due)?;
        self.states[member].responding = false;
        let card_broken = self.states[member].card != CardBehavior::Ok;
        let workload = self.workload;
        let Member { id, role } = &workload.members[member];
        match role {
            Role::Agency => self.update_card(member)?,
            Role::User { .. } if self.can_call(member)? => {}
            Role::User { .. } => {
                let update = self.rng.random::<f64>() < self.scenario.response.update_card_share;
                let amount = self.scenario.response.top_up;
                if card_broken && update {
                    self.update_card(member)?;
                } else if card_broken {
                    self.platform
                        .add_card(id, SPARE_CARD)
                        .map_err(|error| self.host_error(error))?;
                    let topped = self.platform.top_up(id, id, SPARE_CARD, amount);
                    self.absorb(topped)?;
                } else {
                    let topped = self.platform.top_up(id, id, MAIN_CARD, amount);
                    self.absorb(topped)?;
                }
            }
            Role::SubAccount { .. } => {}
        }
        self.observe(member)
    }

    /// The holder gets its main card working again and tells the platform (R6).
    fn update_card(&mut self, member: usize) -> Result<(), SimulationError> {
        let workload = self.workload;
        let id = &workload.members[member].id;
        self.gateway
            .set_behavior(id, MAIN_CARD, CardBehavior::Ok)
            .map_err(|error| self.host_error(error.into()))?;
        self.states[member].card = CardBehavior::Ok;
        let updated = self.platform.update_card(id, MAIN_CARD);
        self.absorb(updated)
    }

    /// The run's report, from the platform's charges and notices.
    fn finish(
        mut self,
        policy: &PolicyUnderTest,
        wall_seconds: f64,
    ) -> Result<(RunReport, RunTraces), SimulationError> {
        let end = self.workload.end;
        let records = self
            .platform
            .charges()
            .map_err(|error| self.host_error(error))?;
        let notices = self
            .platform
            .notifications()
            .map_err(|error| self.host_error(error))?;
        let (charges, declines, transient_failures, minutes_bought) = summary::charges(&records);
        let pauses = summary::pauses(&notices);
        let limit_reached = notices
            .iter()
            .filter(|notice| notice.kind == "recharge_limit_reached")
            .count() as u64;

        let mut lowest: Vec<LowBalance> = self
            .states
            .iter()
            .zip(&self.workload.members)
            .filter_map(|(state, member)| {
                state.lowest.map(|balance| LowBalance {
                    account: member.id.0.clone(),
                    balance,
                })
            })
            .collect();
        lowest.sort_by(|a, b| {
            a.balance
                .cmp(&b.balance)
                .then_with(|| a.account.cmp(&b.account))
        });
        lowest.truncate(LOWEST);

        for trace in &mut self.traces {
            if let Some(&(_, last)) = trace.balance.last() {
                trace.balance.push((end, last));
            }
            let account = AccountId(trace.account.clone());
            trace.recharges = records
                .iter()
                .filter(|record| {
                    record.outcome == ChargeOutcome::Succeeded
                        && matches!(
                            record.request.purpose,
                            Purpose::AutoRecharge | Purpose::TopUp
                        )
                        && record.request.beneficiary() == account
                })
                .map(|record| (record.at, trace.balance_after(record.at)))
                .collect();
            trace.paused = pauses
                .iter()
                .filter(|pause| pause.account == trace.account)
                .map(|pause| (pause.from, pause.to.unwrap_or(end)))
                .collect();
        }

        let events = self.counts.events;
        let report = RunReport {
            policy: policy.label().to_owned(),
            charges,
            declines,
            transient_failures,
            pauses: pauses.len() as u64,
            paused_hours: (summary::paused_time(&pauses, end) as f64 / HOUR as f64 * 10.0).round()
                / 10.0,
            paused_at_end: pauses.iter().filter(|pause| pause.to.is_none()).count() as u64,
            limit_reached,
            calls: self.counts.calls,
            calls_refused: self.counts.refused,
            lowest_balances: lowest,
            minutes_bought,
            decisions: self.counts.decisions,
            policy_faults: self.counts.faults,
            rejections: self.counts.rejections,
            fuel_per_decision: Quantiles::of(self.fuel),
            speed: Speed {
                events,
                wall_seconds,
                events_per_second: if wall_seconds > 0.0 {
                    events as f64 / wall_seconds
                } else {
                    0.0
                },
            },
        };
        Ok((
            report,
            RunTraces {
                policy: policy.label().to_owned(),
                accounts: self.traces,
            },
        ))
    }
}
