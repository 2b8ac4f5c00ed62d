//! The host's own failures are the host's: a store that fails while a policy
//! runs makes the event a host error, never a policy fault, never a notice to
//! the account, never a step towards quarantine.

use std::sync::atomic::{AtomicBool, Ordering};

use recharge_host::model::{AccountKind, MinuteType};
use recharge_host::{HostError, QUARANTINE_AFTER, StoreError};

use recharge_host::{HookedStore, MemoryStore, StoreHooks, StoreRead};

use super::*;

/// Hooks failing the look-ups a policy's requests make while it decides (keys,
/// daily counts, pending wake-ups) while `down` is set.
#[derive(Default)]
struct Flaky {
    down: AtomicBool,
}

impl StoreHooks for Flaky {
    fn before_read(&self, read: StoreRead) -> Result<(), StoreError> {
        let asked_by_a_policy = matches!(
            read,
            StoreRead::KeyUsed | StoreRead::AutoRecharges | StoreRead::Timers
        );
        if asked_by_a_policy && self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("connection reset".into()));
        }
        Ok(())
    }
}

#[test]
fn h5_a_store_failure_is_a_host_error_never_a_policy_fault() {
    // Nothing lost, no policy blamed: a top-up whose key check fails in the
    // store is the host's error, charges nothing and sends no `policy_fault`,
    // however often it happens; once the store is back the same top-up goes
    // through.
    let (engine, default) = shared();
    let store = Arc::new(HookedStore::new(
        Arc::new(MemoryStore::new()),
        Flaky::default(),
    ));
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
    store.hooks().down.store(true, Ordering::SeqCst);
    for _ in 0..=QUARANTINE_AFTER {
        let result = platform.top_up(&alice, &alice, "visa", d("10.00"));
        assert!(
            matches!(result, Err(HostError::Store(StoreError::Backend(_)))),
            "{result:?}"
        );
    }
    assert!(platform.notifications().unwrap().is_empty());
    assert!(platform.charges().unwrap().is_empty());
    store.hooks().down.store(false, Ordering::SeqCst);
    platform.top_up(&alice, &alice, "visa", d("10.00")).unwrap();
    platform
        .record_usage(&alice, "call-1", 60, MinuteType::Basic)
        .unwrap();
    assert_eq!(platform.account(&alice).unwrap().balance, d("9.91"));
}
