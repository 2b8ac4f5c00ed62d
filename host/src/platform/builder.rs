//! Building a [`Platform`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use recharge_policy_sdk::model::{Rates, Timestamp};

use super::{Clock, Platform, default_rates};
use crate::capabilities::Guardrails;
use crate::error::HostError;
use crate::gateway::Gateway;
use crate::policy::{NativePolicy, Policy};
use crate::sandbox::{Limits, PolicyEngine};
use crate::store::{MemoryStore, Store};
use crate::tenants::Tenants;

/// Builds a [`Platform`].
pub struct PlatformBuilder {
    store: Option<Arc<dyn Store>>,
    gateway: Option<Arc<dyn Gateway>>,
    limits: Limits,
    guardrails: Guardrails,
    cache_dir: Option<PathBuf>,
    rates: Rates,
    clock: Clock,
    native_default: bool,
    engine: Option<PolicyEngine>,
    default_policy: Option<Arc<dyn Policy>>,
    node: String,
    lease: Duration,
    retention: Duration,
}

/// The node name of a platform not given one.
pub const DEFAULT_NODE: &str = "node";
/// How long a claim on due work lasts unless the work is done first.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// How long rated call ids and used idempotency keys are kept: 35 days, longer
/// than a month, so a usage record repeated within it rates nothing again.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(35 * 24 * 60 * 60);

impl PlatformBuilder {
    pub(super) fn new() -> Self {
        PlatformBuilder {
            store: None,
            gateway: None,
            limits: Limits::default(),
            guardrails: Guardrails::default(),
            cache_dir: None,
            rates: default_rates(),
            clock: Clock::System,
            native_default: false,
            engine: None,
            default_policy: None,
            node: DEFAULT_NODE.to_owned(),
            lease: DEFAULT_LEASE,
            retention: DEFAULT_RETENTION,
        }
    }

    /// Share an existing engine (its limits and cache win over [`Self::limits`]).
    pub fn engine(mut self, engine: PolicyEngine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Use this default policy instead of loading the embedded component.
    pub fn default_policy(mut self, policy: Arc<dyn Policy>) -> Self {
        self.default_policy = Some(policy);
        self
    }

    /// Keep accounts in this store (default: a new [`MemoryStore`]).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Charge cards through this gateway (required).
    pub fn gateway(mut self, gateway: Arc<dyn Gateway>) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// Sandbox limits (H5).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Charge guardrails (H3).
    pub fn guardrails(mut self, guardrails: Guardrails) -> Self {
        self.guardrails = guardrails;
        self
    }

    /// Cache compiled components in this directory.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// The rates in force at start.
    pub fn rates(mut self, rates: Rates) -> Self {
        self.rates = rates;
        self
    }

    /// Run on a simulated clock starting at `start` instead of the system clock.
    pub fn simulated_clock(mut self, start: Timestamp) -> Self {
        self.clock = Clock::Simulated(AtomicI64::new(start));
        self
    }

    /// Name this node (default [`DEFAULT_NODE`]). Nodes sharing a store must
    /// have different names; a node restarted under its old name takes back
    /// its own claims on due work at once instead of waiting for them to lapse.
    pub fn node(mut self, name: impl Into<String>) -> Self {
        self.node = name.into();
        self
    }

    /// How long a claim on due work lasts (default [`DEFAULT_LEASE`]): a
    /// crashed node's claims lapse after it and other nodes take the work.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How long rated call ids and used idempotency keys are kept (default
    /// [`DEFAULT_RETENTION`], 35 days) before [`Platform::apply_retention`]
    /// forgets them: a usage record repeated later than this rates again.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Run the default policy natively instead of sandboxed (the speed baseline).
    pub fn native_default_policy(mut self) -> Self {
        self.native_default = true;
        self
    }

    /// Build the platform; the default policy is the embedded component.
    pub fn build(self) -> Result<Platform, HostError> {
        let gateway = self.gateway.ok_or(HostError::Configuration(
            "a platform needs a payment gateway",
        ))?;
        let engine = match self.engine {
            Some(engine) => engine,
            None => PolicyEngine::new(self.limits, self.cache_dir)?,
        };
        let default: Arc<dyn Policy> = match (self.default_policy, self.native_default) {
            (Some(policy), _) => policy,
            (None, true) => Arc::new(NativePolicy),
            (None, false) => Arc::new(engine.load(crate::DEFAULT_POLICY)?),
        };
        let platform = Platform {
            store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
            gateway,
            engine,
            tenants: Tenants::new(default),
            guardrails: Arc::new(self.guardrails),
            rates: RwLock::new(self.rates),
            clock: self.clock,
            families: Mutex::new(HashMap::new()),
            node: self.node,
            lease_ms: i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX),
            retention_ms: i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX),
            pruned_day: AtomicI64::new(i64::MIN),
            shared: Mutex::new(Default::default()),
            compiled: Mutex::new(HashMap::new()),
        };
        // What the store holds already (rates, tenants' policies) wins over
        // the builder's start.
        platform.catch_up()?;
        Ok(platform)
    }
}
