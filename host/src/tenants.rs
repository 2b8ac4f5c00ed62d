//! Tenancy: which policy decides for which account, and quarantine after repeated
//! faults (H6).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

use crate::account::{Account, AccountId, PolicyId};
use crate::policy::Policy;

/// Consecutive faults after which a tenant's policy is quarantined.
pub const QUARANTINE_AFTER: u32 = 3;

/// The state id of the default policy.
pub const DEFAULT_POLICY_ID: &str = "default";

/// A tenant's own policy, assigned to an agency or user and its sub-accounts.
pub struct Tenant {
    owner: AccountId,
    sha256: Option<String>,
    state_id: PolicyId,
    policy: Arc<dyn Policy>,
    consecutive_faults: AtomicU32,
    quarantined: AtomicBool,
}

impl Tenant {
    /// The agency or user the policy was uploaded for.
    pub fn owner(&self) -> &AccountId {
        &self.owner
    }

    /// Whether the policy was quarantined.
    pub fn is_quarantined(&self) -> bool {
        self.quarantined.load(Ordering::SeqCst)
    }

    /// The id its per-account state is kept under.
    pub fn state_id(&self) -> &PolicyId {
        &self.state_id
    }

    /// The SHA-256 of its component, when it is shared through the store.
    pub fn sha256(&self) -> Option<&str> {
        self.sha256.as_deref()
    }

    /// Its faults in a row so far.
    pub fn faults(&self) -> u32 {
        self.consecutive_faults.load(Ordering::SeqCst)
    }

    /// Take the fault count the shared configuration holds: quarantined at
    /// [`QUARANTINE_AFTER`] faults in a row, and not before (the same
    /// component assigned again starts afresh).
    pub fn restore(&self, faults: u32) {
        self.consecutive_faults.store(faults, Ordering::SeqCst);
        self.quarantined
            .store(faults >= QUARANTINE_AFTER, Ordering::SeqCst);
    }

    /// A call ended without a fault.
    pub fn record_success(&self) {
        self.consecutive_faults.store(0, Ordering::SeqCst);
    }

    /// A call faulted; true when this fault quarantines the policy.
    pub fn record_fault(&self) -> bool {
        let faults = self.consecutive_faults.fetch_add(1, Ordering::SeqCst) + 1;
        faults >= QUARANTINE_AFTER && !self.quarantined.swap(true, Ordering::SeqCst)
    }
}

/// The policy chosen for one account.
#[derive(Clone)]
pub struct Selected {
    /// The policy to run.
    pub policy: Arc<dyn Policy>,
    /// Whose state it reads and writes.
    pub state_id: PolicyId,
    /// The tenant, when it is a tenant's policy.
    pub tenant: Option<Arc<Tenant>>,
}

/// The default policy and every tenant's.
pub struct Tenants {
    default: Arc<dyn Policy>,
    default_id: PolicyId,
    assigned: RwLock<HashMap<AccountId, Arc<Tenant>>>,
}

impl Tenants {
    /// Everyone on the default policy.
    pub fn new(default: Arc<dyn Policy>) -> Self {
        Tenants {
            default,
            default_id: PolicyId::from(DEFAULT_POLICY_ID),
            assigned: RwLock::new(HashMap::new()),
        }
    }

    /// Give `owner` (and its sub-accounts) its own policy, replacing any
    /// earlier one; in this process only.
    pub fn assign(&self, owner: AccountId, policy: Arc<dyn Policy>) {
        self.put(owner, None, policy, 0);
    }

    /// Give `owner` the shared component `sha256`, compiled as `policy`, with
    /// the faults in a row the shared configuration counts.
    pub fn assign_shared(
        &self,
        owner: AccountId,
        sha256: String,
        policy: Arc<dyn Policy>,
        faults: u32,
    ) {
        self.put(owner, Some(sha256), policy, faults);
    }

    fn put(&self, owner: AccountId, sha256: Option<String>, policy: Arc<dyn Policy>, faults: u32) {
        let tenant = Arc::new(Tenant {
            state_id: PolicyId::from(format!("tenant:{owner}")),
            owner: owner.clone(),
            sha256,
            policy,
            consecutive_faults: AtomicU32::new(0),
            quarantined: AtomicBool::new(false),
        });
        tenant.restore(faults);
        if let Ok(mut assigned) = self.assigned.write() {
            assigned.insert(owner, tenant);
        }
    }

    /// `owner`'s tenant, if it runs the shared component `sha256`.
    pub fn shared_tenant(&self, owner: &AccountId, sha256: &str) -> Option<Arc<Tenant>> {
        let assigned = self.assigned.read().ok()?;
        assigned
            .get(owner)
            .filter(|tenant| tenant.sha256() == Some(sha256))
            .cloned()
    }

    /// The tenant whose policy covers the account, quarantined or not.
    pub fn tenant_of(&self, account: &Account) -> Option<Arc<Tenant>> {
        let assigned = self.assigned.read().ok()?;
        assigned
            .get(&account.id)
            .or_else(|| {
                account
                    .parent
                    .as_ref()
                    .and_then(|parent| assigned.get(parent))
            })
            .cloned()
    }

    /// The policy deciding for the account: its tenant's, unless quarantined.
    pub fn select(&self, account: &Account) -> Selected {
        match self
            .tenant_of(account)
            .filter(|tenant| !tenant.is_quarantined())
        {
            Some(tenant) => Selected {
                policy: Arc::clone(&tenant.policy),
                state_id: Arc::clone(tenant.state_id()),
                tenant: Some(tenant),
            },
            None => Selected {
                policy: Arc::clone(&self.default),
                state_id: Arc::clone(&self.default_id),
                tenant: None,
            },
        }
    }
}
