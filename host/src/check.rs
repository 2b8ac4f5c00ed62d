//! Checking a policy component before it is uploaded: size, contract, compilation,
//! and a smoke workload under the sandbox limits.

use std::sync::Arc;

use recharge_policy_sdk::model::{
    AccountKind, AllocationSettings, AutoRechargeSettings, MinuteType, Mode, QueryKind, Timestamp,
};
use rust_decimal::Decimal;
use thiserror::Error;

use crate::account::AccountId;
use crate::error::HostError;
use crate::gateway::SimulatedGateway;
use crate::platform::PlatformBuilder;
use crate::policy::Policy;
use crate::sandbox::LoadError;

/// What a passing check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The component's size, bytes.
    pub size: usize,
    /// Its name (short hash).
    pub name: String,
    /// The interfaces it imports.
    pub imports: Vec<String>,
    /// The interfaces it exports.
    pub exports: Vec<String>,
    /// Policy calls made by the smoke workload.
    pub decisions: u64,
    /// The most fuel one call burnt.
    pub max_fuel: u64,
    /// The fuel limit per call.
    pub fuel_limit: u64,
    /// The profile it runs under: `compiled`, or `interpreted` for components
    /// over the compiled size limit (JavaScript, Python).
    pub profile: &'static str,
    /// How long compiling it (or fetching it from the cache) took.
    pub compile_time: std::time::Duration,
}

/// Why a component failed the check.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CheckError {
    /// It does not load (size, format, compilation, contract).
    #[error(transparent)]
    Load(#[from] LoadError),
    /// It faulted on the smoke workload.
    #[error("faulted on the smoke workload: {0}")]
    Faulted(String),
    /// The host failed while checking.
    #[error("the check itself failed: {0}")]
    Host(HostError),
}

const START: Timestamp = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const DAY: Timestamp = 86_400_000;

/// Check a component: load it, then run a smoke workload (auto-recharge, usage,
/// queries, an allocation over two months) with it as a tenant's policy.
pub fn check_component(bytes: &[u8], builder: PlatformBuilder) -> Result<CheckReport, CheckError> {
    let gateway = Arc::new(SimulatedGateway::new());
    let platform = builder
        .gateway(gateway)
        .simulated_clock(START)
        .build()
        .map_err(|err| match err {
            HostError::Load(load) => CheckError::Load(load),
            other => CheckError::Host(other),
        })?;
    let started = std::time::Instant::now();
    let component = platform.engine().compile(bytes)?;
    let compile_time = started.elapsed();
    let limits = platform.engine().limits();
    let profile = limits.profile_for(bytes.len());
    let profile_name = if bytes.len() <= limits.component_bytes {
        "compiled"
    } else {
        "interpreted"
    };
    let fuel_limit = profile.fuel;
    let policy = platform
        .engine()
        .link(&component, crate::sandbox::short_hash(bytes), profile)?;
    let engine = platform.engine().engine();
    let kind = component.component_type();
    let imports = kind
        .imports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let exports = kind
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let name = policy.name().to_owned();
    let policy: Arc<dyn Policy> = Arc::new(policy);

    let mut decisions = 0;
    let mut max_fuel = 0;
    let mut note = |result: Result<crate::EventReport, HostError>| -> Result<(), CheckError> {
        match result {
            Ok(report) => {
                decisions += report.decisions;
                max_fuel = max_fuel.max(report.fuel);
                Ok(())
            }
            Err(HostError::Fault(fault)) => Err(CheckError::Faulted(fault.to_string())),
            Err(HostError::Rejected(_)) => {
                decisions += 1;
                Ok(())
            }
            Err(other) => Err(CheckError::Host(other)),
        }
    };
    let host = |result: Result<(), HostError>| result.map_err(CheckError::Host);
    let (user, agency, sub) = (
        AccountId::from("check-user"),
        AccountId::from("check-agency"),
        AccountId::from("check-sub"),
    );
    host(platform.open_account(user.clone(), AccountKind::User, None))?;
    host(platform.open_account(agency.clone(), AccountKind::Agency, None))?;
    host(platform.open_account(sub.clone(), AccountKind::SubAccount, Some(agency.clone())))?;
    for account in [&user, &agency, &sub] {
        host(platform.add_card(account, "card"))?;
        host(
            platform
                .set_policy_object(account, Arc::clone(&policy))
                .map(|_| ()),
        )?;
    }
    let settings = AutoRechargeSettings {
        enabled: true,
        threshold: Decimal::new(10_00, 2),
        amount: Decimal::new(20_00, 2),
        card: "card".into(),
        mode: Mode::Fixed,
        monthly_limit: Some(Decimal::from(500)),
    };
    note(platform.save_auto_recharge(&user, &user, settings))?;
    for call in 0..20 {
        let minute_type = if call % 3 == 0 {
            MinuteType::Premium
        } else {
            MinuteType::Basic
        };
        note(platform.record_usage(&user, &format!("call-{call}"), 300, minute_type))?;
    }
    for what in [
        QueryKind::AutoRecharge,
        QueryKind::Estimate,
        QueryKind::Service,
        QueryKind::Balance,
    ] {
        note(
            platform
                .query(&user, &user, what)
                .map(|_| crate::EventReport {
                    decisions: 1,
                    ..crate::EventReport::default()
                }),
        )?;
    }
    let allocation = AllocationSettings {
        basic_minutes: 100,
        premium_minutes: 50,
        card: "card".into(),
    };
    note(platform.save_allocation(&agency, &sub, allocation))?;
    note(platform.advance_to(START + 62 * DAY))?;
    note(platform.describe(&sub).map(|_| crate::EventReport {
        decisions: 1,
        ..crate::EventReport::default()
    }))?;
    Ok(CheckReport {
        size: bytes.len(),
        name,
        imports,
        exports,
        decisions,
        max_fuel,
        fuel_limit,
        profile: profile_name,
        compile_time,
    })
}
