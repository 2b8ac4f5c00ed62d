//! What every node shares through the store beside the accounts: the rates
//! and their history, which tenant component (by SHA-256) governs whom, and
//! each tenant policy's run of faults towards quarantine (H6). They are one
//! journal stream, [`CONFIG_STREAM`]: a node replays it at start and catches
//! up on it before each event, so a rate change or an uploaded policy on one
//! node governs the next event on every node, and a restart loses none of it.
//!
//! Policies given as objects ([`Platform::set_policy_object`]) live in one
//! process only: there is nothing to keep of them but the object itself.

use std::collections::HashMap;
use std::sync::Arc;

use recharge_policy_sdk::model::{Rates, Timestamp};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use super::Platform;
use crate::account::AccountId;
use crate::error::HostError;
use crate::store::StoreError;

/// The journal stream of the shared configuration.
pub const CONFIG_STREAM: &str = "config";

/// One change to the shared configuration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Change {
    /// New rates, in force from `at`.
    Rates {
        at: Timestamp,
        basic: Decimal,
        premium: Decimal,
    },
    /// `owner` and its sub-accounts get the component with this SHA-256.
    Policy {
        at: Timestamp,
        owner: AccountId,
        sha256: String,
    },
    /// A committed fault of `owner`'s policy `sha256`.
    Fault { owner: AccountId, sha256: String },
    /// A call of `owner`'s policy `sha256` ended well after faults.
    Recovered { owner: AccountId, sha256: String },
}

/// A tenant's shared state, folded from the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Assigned {
    sha256: String,
    faults: u32,
}

/// The shared configuration as this node last read it.
#[derive(Debug, Default)]
pub(super) struct SharedState {
    applied: u64,
    rates: Vec<(Timestamp, Rates)>,
    assigned: HashMap<AccountId, Assigned>,
}

/// The SHA-256 of a component, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn decode(seq: u64, entry: &str) -> Result<Change, StoreError> {
    serde_json::from_str(entry)
        .map_err(|err| StoreError::Backend(format!("{CONFIG_STREAM} journal entry {seq}: {err}")))
}

fn encode(change: &Change) -> Result<String, StoreError> {
    serde_json::to_string(change)
        .map_err(|err| StoreError::Backend(format!("{CONFIG_STREAM} journal entry: {err}")))
}

impl SharedState {
    /// Fold one change in; `true` if it was a fault that reached quarantine.
    fn fold(&mut self, change: Change) -> bool {
        match change {
            Change::Rates { at, basic, premium } => {
                self.rates.push((at, Rates { basic, premium }));
                false
            }
            Change::Policy { owner, sha256, .. } => {
                self.assigned.insert(owner, Assigned { sha256, faults: 0 });
                false
            }
            Change::Fault { owner, sha256 } => match self.assigned.get_mut(&owner) {
                Some(assigned) if assigned.sha256 == sha256 => {
                    assigned.faults = assigned.faults.saturating_add(1);
                    assigned.faults == crate::tenants::QUARANTINE_AFTER
                }
                _ => false,
            },
            Change::Recovered { owner, sha256 } => {
                if let Some(assigned) = self.assigned.get_mut(&owner)
                    && assigned.sha256 == sha256
                    && assigned.faults < crate::tenants::QUARANTINE_AFTER
                {
                    assigned.faults = 0;
                }
                false
            }
        }
    }
}

impl Platform {
    /// Take in the shared configuration's changes since this node last read
    /// it: rates, and the tenants whose component or fault count changed.
    pub(super) fn catch_up(&self) -> Result<(), HostError> {
        let mut shared = self.shared_state();
        self.catch_up_locked(&mut shared)
    }

    fn shared_state(&self) -> std::sync::MutexGuard<'_, SharedState> {
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn catch_up_locked(&self, shared: &mut SharedState) -> Result<(), HostError> {
        let entries = self.store.journal(CONFIG_STREAM, shared.applied)?;
        if entries.is_empty() {
            return Ok(());
        }
        let changes = entries
            .into_iter()
            .map(|(seq, entry)| Ok((seq, decode(seq, &entry)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.fold_in(shared, changes)?;
        Ok(())
    }

    /// Fold changes in, then put in place what they changed: the rates, and
    /// each tenant whose component or fault count moved. `true` if the last
    /// change was a fault that reached quarantine.
    fn fold_in(
        &self,
        shared: &mut SharedState,
        changes: Vec<(u64, Change)>,
    ) -> Result<bool, HostError> {
        let before = shared.assigned.clone();
        let rates_before = shared.rates.len();
        let mut quarantined = false;
        for (seq, change) in changes {
            quarantined = shared.fold(change);
            shared.applied = seq;
        }
        if shared.rates.len() > rates_before
            && let Some((_, rates)) = shared.rates.last()
        {
            self.put_rates(*rates);
        }
        for (owner, assigned) in &shared.assigned {
            if before.get(owner) == Some(assigned) {
                continue;
            }
            match self.tenants.shared_tenant(owner, &assigned.sha256) {
                Some(tenant) => tenant.restore(assigned.faults),
                None => self.load_shared(owner, assigned)?,
            }
        }
        Ok(quarantined)
    }

    /// Load a tenant's component from the store and put it in place.
    fn load_shared(&self, owner: &AccountId, assigned: &Assigned) -> Result<(), HostError> {
        let bytes = self.store.component(&assigned.sha256)?.ok_or_else(|| {
            StoreError::Backend(format!(
                "the component {} of {owner}'s policy is not in the store",
                assigned.sha256
            ))
        })?;
        let policy = self.policy_for(&assigned.sha256, &bytes)?;
        self.tenants.assign_shared(
            owner.clone(),
            assigned.sha256.clone(),
            policy,
            assigned.faults,
        );
        Ok(())
    }

    /// Append a change to the shared configuration once this node has read
    /// all of it, and fold it in; `true` if it was a fault that reached
    /// quarantine.
    fn record(&self, change: Change) -> Result<bool, HostError> {
        let entry = encode(&change)?;
        let mut shared = self.shared_state();
        loop {
            self.catch_up_locked(&mut shared)?;
            match self
                .store
                .append(CONFIG_STREAM, shared.applied, std::slice::from_ref(&entry))
            {
                Ok(()) => break,
                Err(StoreError::Behind(_)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        let seq = shared.applied + 1;
        self.fold_in(&mut shared, vec![(seq, change)])
    }

    /// Shared: new rates from now on.
    pub(super) fn record_rates(&self, rates: Rates) -> Result<(), HostError> {
        self.record(Change::Rates {
            at: self.now(),
            basic: rates.basic,
            premium: rates.premium,
        })
        .map(|_| ())
    }

    /// Shared: `owner`'s policy is the component `bytes` (kept in the store).
    pub(super) fn record_policy(&self, owner: &AccountId, bytes: &[u8]) -> Result<(), HostError> {
        let sha256 = sha256_hex(bytes);
        self.store.put_component(&sha256, bytes)?;
        self.record(Change::Policy {
            at: self.now(),
            owner: owner.clone(),
            sha256,
        })
        .map(|_| ())
    }

    /// Shared: a committed fault of a tenant's shared policy; `true` when it
    /// quarantines the policy.
    pub(super) fn record_shared_fault(
        &self,
        owner: &AccountId,
        sha256: &str,
    ) -> Result<bool, HostError> {
        self.record(Change::Fault {
            owner: owner.clone(),
            sha256: sha256.to_owned(),
        })
    }

    /// Shared: a tenant's shared policy ended a call well after faults.
    pub(super) fn record_shared_recovery(
        &self,
        owner: &AccountId,
        sha256: &str,
    ) -> Result<(), HostError> {
        self.record(Change::Recovered {
            owner: owner.clone(),
            sha256: sha256.to_owned(),
        })
        .map(|_| ())
    }

    /// Every rate change kept in the store, oldest first, with when it came
    /// into force.
    pub fn rates_history(&self) -> Result<Vec<(Timestamp, Rates)>, HostError> {
        let mut shared = self.shared_state();
        self.catch_up_locked(&mut shared)?;
        Ok(shared.rates.clone())
    }

    /// The compiled policy of a component, compiled once per SHA-256.
    fn policy_for(
        &self,
        sha256: &str,
        bytes: &[u8],
    ) -> Result<Arc<dyn crate::policy::Policy>, HostError> {
        let mut compiled = self
            .compiled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(policy) = compiled.get(sha256) {
            return Ok(Arc::clone(policy));
        }
        let policy: Arc<dyn crate::policy::Policy> = Arc::new(self.engine.load(bytes)?);
        compiled.insert(sha256.to_owned(), Arc::clone(&policy));
        Ok(policy)
    }

    /// A component's SHA-256 and compiled policy (compiled once per SHA-256;
    /// a component that does not load is refused here).
    pub(super) fn compile(
        &self,
        bytes: &[u8],
    ) -> Result<(String, Arc<dyn crate::policy::Policy>), HostError> {
        let sha256 = sha256_hex(bytes);
        let policy = self.policy_for(&sha256, bytes)?;
        Ok((sha256, policy))
    }
}
