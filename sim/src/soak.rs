//! A long workload on a durable store, for crash tests and many-node tests:
//! `recharge soak --db URL --node NAME`.
//!
//! One node runs numbered steps on a shared set of accounts (users on
//! auto-recharge, an agency whose sub-accounts get monthly allocations), each
//! step at its own time on a schedule every node shares: the clock moves on
//! (timers fire, the outbox asks again, the simulated gateway's webhooks come),
//! then one command runs (usage, a card incident, a top-up, new settings, an
//! updated card). What each step does is drawn from the seed, the node's name
//! and the step's number alone, so a restarted node runs the same step again.
//!
//! Everything lasting is in the store: the accounts and the platform's state,
//! the simulated gateway's journal, and the node's progress (journal stream
//! `soak:NODE`, one entry per step done). A node killed at any point and
//! started again goes on from the step after the last one it recorded; the
//! step it was in may have committed in part, and runs again: usage under the
//! same call id changes nothing, and every charge keeps its key.
//!
//! Each step done is printed as a line (`step N`, `usage ACCOUNT CALL` once
//! the call is recorded, `fired TIMER` for each timer this node fired), so a
//! parent process knows what was committed before it killed the node.

use std::io::Write;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use recharge_host::model::{
    AccountKind, AllocationSettings, AutoRechargeSettings, MinuteType, Mode,
};
use recharge_host::{
    AccountId, CardBehavior, EventReport, HostError, Platform, PlatformBuilder, SimulatedGateway,
    Store, StoreError,
};
use recharge_policy_sdk::model::Timestamp;
use rust_decimal::Decimal;
use thiserror::Error;

use crate::network;

/// When step 0 runs: 2026-01-31T12:00:00Z.
pub const START: Timestamp = 1_769_860_800_000;
/// Time between two steps, on every node: half a day, so a run of more than
/// 56 steps reaches the allocations' next monthly run (2026-02-28T12:00:00Z)
/// and their timers fire.
pub const STEP_MS: i64 = 12 * 3_600_000;
/// How long the settling run lets time go on after the last step.
pub const SETTLE_MS: i64 = 3 * 86_400_000;
/// The users' card.
const USER_CARD: &str = "visa";
/// The agency's card.
const AGENCY_CARD: &str = "amex";
/// The agency.
const AGENCY: &str = "agency";
/// Its sub-accounts.
const SUBS: usize = 6;

/// What a soak run does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoakOptions {
    /// The node's name: its progress is kept under it, and its claims on due
    /// work.
    pub node: String,
    /// The seed of what the steps do.
    pub seed: u64,
    /// Steps to run, in all (a restarted node runs only those left).
    pub steps: u64,
    /// Users the steps share out.
    pub users: usize,
}

/// Why a soak run stopped.
#[derive(Debug, Error)]
pub enum SoakError {
    /// The host failed (the store, mostly).
    #[error("step {step}: {source}")]
    Host {
        /// The step.
        step: u64,
        /// The failure.
        source: HostError,
    },
    /// The progress record in the store cannot be read.
    #[error("progress of node {node}: {message}")]
    Progress {
        /// The node.
        node: String,
        /// What is wrong.
        message: String,
    },
    /// Printing what was done failed (the parent went away).
    #[error("cannot report progress: {0}")]
    Output(#[from] std::io::Error),
}

/// One node's run on `store`.
pub struct Soak<'a, W: Write> {
    options: &'a SoakOptions,
    store: Arc<dyn Store>,
    platform: Platform,
    gateway: Arc<SimulatedGateway>,
    out: W,
    stream: String,
    recorded: u64,
}

fn user(index: usize) -> AccountId {
    AccountId::from(format!("user-{index}").as_str())
}

fn sub_account(index: usize) -> AccountId {
    AccountId::from(format!("{AGENCY}-sub-{index}").as_str())
}

/// The time step `step` runs at.
pub fn step_at(step: u64) -> Timestamp {
    START.saturating_add(STEP_MS.saturating_mul(i64::try_from(step).unwrap_or(i64::MAX)))
}

impl<'a, W: Write> Soak<'a, W> {
    /// A node on `store`, its platform built from `builder` (engine, cache,
    /// default policy) with the store's simulated gateway, resuming where its
    /// progress stops.
    pub fn new(
        options: &'a SoakOptions,
        store: Arc<dyn Store>,
        builder: PlatformBuilder,
        out: W,
    ) -> Result<Self, SoakError> {
        let stream = format!("soak:{}", options.node);
        let host = |source: StoreError| SoakError::Host {
            step: 0,
            source: source.into(),
        };
        let recorded = store.journal(&stream, 0).map_err(host)?.len() as u64;
        let gateway = Arc::new(SimulatedGateway::in_store(Arc::clone(&store)).map_err(host)?);
        let platform = builder
            .store(Arc::clone(&store))
            .gateway(Arc::clone(&gateway) as Arc<dyn recharge_host::Gateway>)
            .node(options.node.clone())
            .simulated_clock(step_at(recorded))
            .build()
            .map_err(|source| SoakError::Host { step: 0, source })?;
        Ok(Soak {
            options,
            store,
            platform,
            gateway,
            out,
            stream,
            recorded,
        })
    }

    /// The platform (to check what it holds).
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// The simulated gateway kept in the store.
    pub fn gateway(&self) -> &SimulatedGateway {
        &self.gateway
    }

    /// Run the steps not done yet; returns how many ran.
    pub fn run(&mut self) -> Result<u64, SoakError> {
        let first = self.recorded;
        for step in first..self.options.steps {
            self.step(step)?;
            self.record(step)?;
            writeln!(self.out, "step {step}")?;
            self.out.flush()?;
        }
        Ok(self.options.steps.saturating_sub(first))
    }

    /// After the steps: every card works again and time runs on, so every
    /// charge settles, every webhook arrives and every due timer fires.
    pub fn settle(&mut self) -> Result<(), SoakError> {
        let step = self.options.steps;
        let host = |source: HostError| SoakError::Host { step, source };
        for index in 0..self.options.users {
            self.gateway
                .set_behavior(&user(index), USER_CARD, CardBehavior::Ok)
                .map_err(|error| host(error.into()))?;
        }
        self.gateway
            .set_behavior(&AccountId::from(AGENCY), AGENCY_CARD, CardBehavior::Ok)
            .map_err(|error| host(error.into()))?;
        let end = step_at(step).saturating_add(SETTLE_MS);
        let mut at = self.platform.now();
        while at < end {
            at = at.saturating_add(3_600_000).min(end);
            let report = network::advance(&self.platform, &self.gateway, at).map_err(host)?;
            self.report(&report)?;
        }
        writeln!(self.out, "settled")?;
        self.out.flush()?;
        Ok(())
    }

    fn record(&mut self, step: u64) -> Result<(), SoakError> {
        let entry = step.to_string();
        match self.store.append(&self.stream, step, &[entry]) {
            Ok(()) => {
                self.recorded = step + 1;
                Ok(())
            }
            Err(StoreError::Behind(_)) => Err(SoakError::Progress {
                node: self.options.node.clone(),
                message: "another process runs under this node's name".into(),
            }),
            Err(other) => Err(SoakError::Host {
                step,
                source: other.into(),
            }),
        }
    }

    fn report(&mut self, report: &EventReport) -> Result<(), SoakError> {
        for id in &report.fired {
            writeln!(self.out, "fired {id}")?;
        }
        Ok(())
    }

    /// The accounts every node shares, opened by whichever node comes first.
    fn set_up(&mut self) -> Result<(), HostError> {
        let agency = AccountId::from(AGENCY);
        let accounts = (0..self.options.users)
            .map(|index| (user(index), AccountKind::User, None))
            .chain(std::iter::once((agency.clone(), AccountKind::Agency, None)))
            .chain((0..SUBS).map(|index| {
                (
                    sub_account(index),
                    AccountKind::SubAccount,
                    Some(agency.clone()),
                )
            }));
        for (id, kind, parent) in accounts {
            match self.platform.open_account(id, kind, parent) {
                Ok(()) | Err(HostError::AlreadyExists(_)) => {}
                Err(other) => return Err(other),
            }
        }
        for index in 0..self.options.users {
            let id = user(index);
            self.platform.add_card(&id, USER_CARD)?;
            let settings = auto_recharge(Decimal::new(500, 2), Decimal::new(2000, 2), USER_CARD);
            tolerate(self.platform.save_auto_recharge(&id, &id, settings))?;
        }
        self.platform.add_card(&agency, AGENCY_CARD)?;
        let settings = auto_recharge(Decimal::new(1000, 2), Decimal::new(5000, 2), AGENCY_CARD);
        tolerate(self.platform.save_auto_recharge(&agency, &agency, settings))?;
        for index in 0..SUBS {
            let allocation = AllocationSettings {
                basic_minutes: 120,
                premium_minutes: 30,
                card: AGENCY_CARD.into(),
            };
            tolerate(
                self.platform
                    .save_allocation(&agency, &sub_account(index), allocation),
            )?;
        }
        Ok(())
    }

    /// One step: time moves on to the step's time, then one command runs.
    fn step(&mut self, step: u64) -> Result<(), SoakError> {
        let host = |source: HostError| SoakError::Host { step, source };
        if step == 0 {
            self.set_up().map_err(host)?;
            return Ok(());
        }
        let report =
            network::advance(&self.platform, &self.gateway, step_at(step)).map_err(host)?;
        self.report(&report)?;
        let mut rng = ChaCha8Rng::seed_from_u64(
            self.options.seed
                ^ fnv(self.options.node.as_bytes())
                ^ step.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        );
        let users = self.options.users.max(1);
        let pick = rng.random_range(0..100u32);
        let report = match pick {
            0..=64 => {
                let account = if rng.random_ratio(1, 5) {
                    sub_account(rng.random_range(0..SUBS))
                } else {
                    user(rng.random_range(0..users))
                };
                let call = format!("{}-{step}", self.options.node);
                let seconds = rng.random_range(30..=900);
                let minute_type = if rng.random_ratio(1, 5) {
                    MinuteType::Premium
                } else {
                    MinuteType::Basic
                };
                let done = self
                    .platform
                    .record_usage(&account, &call, seconds, minute_type);
                // Recorded whatever the policy made of it.
                let recorded = matches!(
                    done,
                    Ok(_) | Err(HostError::Rejected(_) | HostError::Fault(_))
                );
                let done = tolerate(done).map_err(host)?;
                if recorded {
                    writeln!(self.out, "usage {account} {call}")?;
                }
                done
            }
            65..=76 => {
                let behavior = match rng.random_range(0..8u32) {
                    0..=2 => CardBehavior::Ok,
                    3 => CardBehavior::FailTimes(1),
                    4 => CardBehavior::TimeoutTimes(1),
                    5 => CardBehavior::Pending(20 * 60_000),
                    6 => CardBehavior::Decline,
                    _ => CardBehavior::RequiresAction,
                };
                let (payer, card) = if rng.random_ratio(1, 6) {
                    (AccountId::from(AGENCY), AGENCY_CARD)
                } else {
                    (user(rng.random_range(0..users)), USER_CARD)
                };
                self.gateway
                    .set_behavior(&payer, card, behavior)
                    .map_err(|error| host(error.into()))?;
                None
            }
            77..=84 => {
                let id = user(rng.random_range(0..users));
                tolerate(
                    self.platform
                        .top_up(&id, &id, USER_CARD, Decimal::new(1000, 2)),
                )
                .map_err(host)?
            }
            85..=92 => {
                let id = user(rng.random_range(0..users));
                let threshold = Decimal::new(rng.random_range(200..=1000), 2);
                let amount = Decimal::new(rng.random_range(1000..=3000), 2);
                tolerate(self.platform.save_auto_recharge(
                    &id,
                    &id,
                    auto_recharge(threshold, amount, USER_CARD),
                ))
                .map_err(host)?
            }
            _ => {
                let (id, card) = if rng.random_ratio(1, 4) {
                    (AccountId::from(AGENCY), AGENCY_CARD)
                } else {
                    (user(rng.random_range(0..users)), USER_CARD)
                };
                self.gateway
                    .set_behavior(&id, card, CardBehavior::Ok)
                    .map_err(|error| host(error.into()))?;
                tolerate(self.platform.update_card(&id, card)).map_err(host)?
            }
        };
        if let Some(report) = report {
            self.report(&report)?;
        }
        Ok(())
    }
}

fn auto_recharge(threshold: Decimal, amount: Decimal, card: &str) -> AutoRechargeSettings {
    AutoRechargeSettings {
        enabled: true,
        threshold,
        amount,
        card: card.to_owned(),
        mode: Mode::Fixed,
        monthly_limit: None,
    }
}

/// A command's report, or `None` when the policy or the host refused it for
/// the account's sake (a paused account, a card it lacks): the run goes on.
/// The host's own failures stop it.
fn tolerate(result: Result<EventReport, HostError>) -> Result<Option<EventReport>, HostError> {
    match result {
        Ok(report) => Ok(Some(report)),
        Err(HostError::Store(error)) => Err(HostError::Store(error)),
        Err(
            error @ (HostError::Configuration(_) | HostError::Internal(_) | HostError::Load(_)),
        ) => Err(error),
        Err(_) => Ok(None),
    }
}

/// FNV-1a: a node name's share of the seed.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
