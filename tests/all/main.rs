//! End-to-end tests: the host with the real compiled components.
//!
//! One test binary (one engine, one compiled default policy, guests built once),
//! a file per topic; shared helpers live here.

mod cache;
mod cli;
mod contract;
mod durable_replay;
mod fuzz_smoke;
mod guardrails;
mod host_failure;
mod hostile;
mod invariants;
mod lifecycle;
mod outbox;
mod platform_input;
mod refusals;
mod replay_properties;
mod rules;
mod scenarios;
mod serve;
mod serve_nodes;
mod serve_outbound;
mod soak;
mod stores;
mod tenant;
mod vopr;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use recharge_host::model::{
    AccountKind, AllocationSettings, AutoRechargeSettings, Mode, Timestamp,
};
use recharge_host::{
    AccountId, Limits, MemoryStore, Notification, Platform, Policy, PolicyEngine, SimulatedGateway,
};
use rust_decimal::Decimal;

/// One engine and one compiled default policy for the whole test binary.
fn shared() -> &'static (PolicyEngine, Arc<dyn Policy>) {
    static SHARED: OnceLock<(PolicyEngine, Arc<dyn Policy>)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let cache = workspace().join("target").join("test-cache");
        let engine = PolicyEngine::new(Limits::default(), Some(cache)).expect("engine");
        let default = engine
            .load(recharge_host::DEFAULT_POLICY)
            .expect("default policy loads");
        (engine, Arc::new(default))
    })
}

/// The test PostgreSQL database (`RECHARGE_TEST_POSTGRES`, by default the one
/// `scripts/postgres.sh` makes), or `None` when it is left out on purpose with
/// `RECHARGE_SKIP_POSTGRES=1`. A database that cannot be reached fails the
/// test; with `CI=true` leaving it out fails too: CI never skips.
pub fn postgres_url() -> Option<String> {
    static URL: OnceLock<Option<String>> = OnceLock::new();
    URL.get_or_init(|| {
        let ci = std::env::var("CI").is_ok_and(|value| value == "true");
        if std::env::var("RECHARGE_SKIP_POSTGRES").is_ok_and(|value| value == "1") {
            assert!(
                !ci,
                "RECHARGE_SKIP_POSTGRES=1 with CI=true: CI runs every PostgreSQL test"
            );
            eprintln!("RECHARGE_SKIP_POSTGRES=1: the PostgreSQL cases are left out");
            return None;
        }
        let url = std::env::var("RECHARGE_TEST_POSTGRES").unwrap_or_else(|_| {
            "postgres://recharge:recharge@127.0.0.1:5432/recharge_test".to_owned()
        });
        if let Err(err) = recharge_host::PostgresStore::open_in_schema(&url, "reachable", 1) {
            panic!(
                "PostgreSQL at {url} cannot be reached ({err}); start it with \
                 `bash scripts/postgres.sh` (the README's test command does), or \
                 set RECHARGE_SKIP_POSTGRES=1 to leave it out locally"
            );
        }
        Some(url)
    })
    .clone()
}

/// A fresh, empty PostgreSQL store in the schema `schema`, if PostgreSQL is in.
pub fn postgres_store(schema: &str) -> Option<recharge_host::PostgresStore> {
    let url = postgres_url()?;
    Some(recharge_host::PostgresStore::open_empty_schema(&url, schema, 4).unwrap())
}

/// A claim on due work for tests that read timers directly: at the end of
/// time every other lease has lapsed, so this one sees every due timer.
pub fn test_lease() -> recharge_host::Lease {
    recharge_host::Lease {
        holder: "test".into(),
        now: i64::MAX,
        until: i64::MAX,
    }
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A platform on the shared engine, its clock at `start`, and its gateway.
pub struct Harness {
    pub platform: Platform,
    pub gateway: Arc<SimulatedGateway>,
    /// The platform's store, kept by the test to look inside.
    pub store: Arc<MemoryStore>,
}

/// 2026-01-01T00:00:00Z.
pub const JAN_1: Timestamp = 1_767_225_600_000;
pub const MINUTE: Timestamp = 60_000;
pub const HOUR: Timestamp = 60 * MINUTE;
pub const DAY: Timestamp = 24 * HOUR;

pub fn harness() -> Harness {
    harness_at(JAN_1)
}

pub fn harness_at(start: Timestamp) -> Harness {
    harness_on(start, recharge_host::Guardrails::default())
}

/// A platform on the shared engine whose host enforces `guardrails`.
pub fn harness_on(start: Timestamp, guardrails: recharge_host::Guardrails) -> Harness {
    let (engine, default) = shared();
    let gateway = Arc::new(SimulatedGateway::new());
    let store = Arc::new(MemoryStore::new());
    let platform = Platform::builder()
        .engine(engine.clone())
        .default_policy(Arc::clone(default))
        .gateway(gateway.clone())
        .store(store.clone())
        .guardrails(guardrails)
        .simulated_clock(start)
        .build()
        .expect("platform builds");
    Harness {
        platform,
        gateway,
        store,
    }
}

/// Parse a decimal literal.
pub fn d(text: &str) -> Decimal {
    Decimal::from_str(text).expect("decimal literal")
}

/// Parse an RFC 3339 time.
pub fn at(text: &str) -> Timestamp {
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("time literal")
        .timestamp_millis()
}

pub fn id(text: &str) -> AccountId {
    AccountId::from(text)
}

impl Harness {
    /// Open a user with a saved `ok` card named "visa".
    pub fn user(&self, name: &str) -> AccountId {
        let account = id(name);
        self.platform
            .open_account(account.clone(), AccountKind::User, None)
            .unwrap();
        self.platform.add_card(&account, "visa").unwrap();
        account
    }

    /// Open an agency with a card "amex" and one sub-account.
    pub fn agency_with_sub(&self, agency: &str, sub: &str) -> (AccountId, AccountId) {
        let (agency, sub) = (id(agency), id(sub));
        self.platform
            .open_account(agency.clone(), AccountKind::Agency, None)
            .unwrap();
        self.platform.add_card(&agency, "amex").unwrap();
        self.platform
            .open_account(sub.clone(), AccountKind::SubAccount, Some(agency.clone()))
            .unwrap();
        (agency, sub)
    }

    pub fn balance(&self, account: &AccountId) -> Decimal {
        self.platform.account(account).unwrap().balance
    }

    /// The notices of one kind sent to an account.
    pub fn notices(&self, account: &AccountId, kind: &str) -> Vec<Notification> {
        self.platform
            .notifications()
            .unwrap()
            .into_iter()
            .filter(|notice| &notice.account == account && notice.kind == kind)
            .collect()
    }

    /// Amounts of every charge attempt, in order.
    pub fn charge_amounts(&self) -> Vec<Decimal> {
        self.platform
            .charges()
            .unwrap()
            .iter()
            .map(|charge| charge.request.amount)
            .collect()
    }
}

/// Enabled fixed-mode settings on card "visa".
pub fn fixed(threshold: &str, amount: &str) -> AutoRechargeSettings {
    AutoRechargeSettings {
        enabled: true,
        threshold: d(threshold),
        amount: d(amount),
        card: "visa".into(),
        mode: Mode::Fixed,
        monthly_limit: None,
    }
}

pub fn allocation(basic: i64, premium: i64) -> AllocationSettings {
    AllocationSettings {
        basic_minutes: basic,
        premium_minutes: premium,
        card: "amex".into(),
    }
}

/// Build a guest crate under `tests/guests/` for wasm32-wasip2, once per test binary
/// run, and return the component's bytes.
pub fn build_guest(name: &str) -> Vec<u8> {
    let manifest = workspace()
        .join("tests")
        .join("guests")
        .join(name)
        .join("Cargo.toml");
    build_component(&manifest, &name.replace('-', "_"))
}

/// Build a component crate (release, wasm32-wasip2) in `target/test-guests`.
pub fn build_component(manifest: &Path, lib_name: &str) -> Vec<u8> {
    let target_dir = workspace().join("target").join("test-guests");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building {} failed", manifest.display());
    let wasm = target_dir
        .join("wasm32-wasip2")
        .join("release")
        .join(format!("{lib_name}.wasm"));
    std::fs::read(&wasm).unwrap_or_else(|err| panic!("{}: {err}", wasm.display()))
}
