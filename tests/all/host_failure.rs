//! The host's own failures are the host's: a store that fails while a policy
//! runs makes the event a host error, never a policy fault, never a notice to
//! the account, never a step towards quarantine.

use std::sync::atomic::{AtomicBool, Ordering};

use recharge_host::model::{AccountKind, MinuteType};
use recharge_host::{
    Account, Batch, ChargeRecord, HostError, OutboxEntry, QUARANTINE_AFTER, Store, StoreError,
    StoredInbox, StoredTimer,
};

use super::*;

/// A memory store whose look-ups made while a policy decides (keys, daily
/// counts, pending wake-ups) fail while `down` is set.
#[derive(Default)]
struct FlakyStore {
    inner: MemoryStore,
    down: AtomicBool,
}

impl FlakyStore {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("connection reset".into()));
        }
        Ok(())
    }
}

impl Store for FlakyStore {
    fn account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        self.inner.account(id)
    }
    fn account_ids(&self) -> Result<Vec<AccountId>, StoreError> {
        self.inner.account_ids()
    }
    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        self.inner.commit(batch)
    }
    fn key_used(&self, key: &str) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.key_used(key)
    }
    fn call_rated(&self, account: &AccountId, call: &str) -> Result<bool, StoreError> {
        self.inner.call_rated(account, call)
    }
    fn pending_timers(&self, account: &AccountId) -> Result<usize, StoreError> {
        self.check()?;
        self.inner.pending_timers(account)
    }
    fn timer_pending(&self, account: &AccountId, tag: u64) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.timer_pending(account, tag)
    }
    fn auto_recharges_on(&self, payer: &AccountId, day: i64) -> Result<u32, StoreError> {
        self.check()?;
        self.inner.auto_recharges_on(payer, day)
    }
    fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        self.inner.outbox()
    }
    fn outbox_entry(&self, key: &str) -> Result<Option<OutboxEntry>, StoreError> {
        self.inner.outbox_entry(key)
    }
    fn next_outbox(&self, until: Timestamp) -> Result<Option<OutboxEntry>, StoreError> {
        self.inner.next_outbox(until)
    }
    fn inbox(&self) -> Result<Vec<StoredInbox>, StoreError> {
        self.inner.inbox()
    }
    fn next_inbox(&self, until: Timestamp) -> Result<Option<StoredInbox>, StoreError> {
        self.inner.next_inbox(until)
    }
    fn next_timer(&self, until: Timestamp) -> Result<Option<StoredTimer>, StoreError> {
        self.inner.next_timer(until)
    }
    fn charges(&self) -> Result<Vec<ChargeRecord>, StoreError> {
        self.inner.charges()
    }
    fn notifications(&self) -> Result<Vec<Notification>, StoreError> {
        self.inner.notifications()
    }
}

#[test]
fn h5_a_store_failure_is_a_host_error_never_a_policy_fault() {
    // Nothing lost, no policy blamed: a top-up whose key check fails in the
    // store is the host's error, charges nothing and sends no `policy_fault`,
    // however often it happens; once the store is back the same top-up goes
    // through.
    let (engine, default) = shared();
    let store = Arc::new(FlakyStore::default());
    let platform = Platform::builder()
        .engine(engine.clone())
        .default_policy(Arc::clone(default))
        .gateway(Arc::new(SimulatedGateway::new()))
        .store(store.clone())
        .simulated_clock(JAN_1)
        .build()
        .unwrap();
    let alice = id("alice");
    platform
        .open_account(alice.clone(), AccountKind::User, None)
        .unwrap();
    platform.add_card(&alice, "visa").unwrap();
    store.down.store(true, Ordering::SeqCst);
    for _ in 0..=QUARANTINE_AFTER {
        let result = platform.top_up(&alice, &alice, "visa", d("10.00"));
        assert!(
            matches!(result, Err(HostError::Store(StoreError::Backend(_)))),
            "{result:?}"
        );
    }
    assert!(platform.notifications().unwrap().is_empty());
    assert!(platform.charges().unwrap().is_empty());
    store.down.store(false, Ordering::SeqCst);
    platform.top_up(&alice, &alice, "visa", d("10.00")).unwrap();
    platform
        .record_usage(&alice, "call-1", 60, MinuteType::Basic)
        .unwrap();
    assert_eq!(platform.account(&alice).unwrap().balance, d("9.91"));
}
