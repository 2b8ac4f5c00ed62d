//! The outbox (H4): charges run only after commit, with idempotency keys, so a
//! repeated outcome or a restart never charges or credits twice.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use recharge_host::model::{ChargeOutcome, Status};
use recharge_host::{
    Gateway, GatewayAnswer, GatewayCharge, MemoryStore, Platform, Settlement, SimulatedGateway,
    Store, Unknown,
};

use super::*;

/// A gateway's webhook with a final outcome.
fn webhook(outcome: ChargeOutcome) -> GatewayAnswer {
    GatewayAnswer::Settled(Settlement {
        outcome,
        reference: None,
        reason: None,
    })
}

#[test]
fn delivering_one_outcome_twice_credits_once() {
    let h = harness();
    let user = h.user("u");
    h.platform.top_up(&user, &user, "visa", d("10.00")).unwrap();
    let key = h.platform.charges().unwrap()[0].request.key.clone();
    assert!(
        !h.platform
            .deliver_outcome(&key, webhook(ChargeOutcome::Succeeded))
            .unwrap()
    );
    assert!(
        !h.platform
            .deliver_outcome(&key, webhook(ChargeOutcome::Declined))
            .unwrap()
    );
    assert_eq!(h.balance(&user), d("10.00"));
    assert_eq!(h.platform.charges().unwrap().len(), 1);
}

/// A gateway that charges through the real one, then "crashes" the host once:
/// the money moved but the host never learnt the outcome.
struct CrashAfterCharging {
    inner: Arc<SimulatedGateway>,
    crashed: AtomicBool,
}

impl Gateway for CrashAfterCharging {
    fn submit(&self, charge: &GatewayCharge<'_>) -> Result<GatewayAnswer, Unknown> {
        let outcome = self.inner.submit(charge);
        if !self.crashed.swap(true, Ordering::SeqCst) {
            panic!("host crashed after the gateway charged");
        }
        outcome
    }
}

/// A platform over `store`, as a restarted host would build it.
fn restart(store: Arc<dyn Store>, gateway: Arc<dyn Gateway>) -> Platform {
    let (engine, default) = super::shared();
    Platform::builder()
        .engine(engine.clone())
        .default_policy(Arc::clone(default))
        .store(store)
        .gateway(gateway)
        .simulated_clock(JAN_1)
        .build()
        .unwrap()
}

#[test]
fn a_restart_with_the_same_outbox_charges_nothing_twice() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let card_network = Arc::new(SimulatedGateway::new());
    let crashing = Arc::new(CrashAfterCharging {
        inner: card_network.clone(),
        crashed: AtomicBool::new(false),
    });
    let before = restart(Arc::clone(&store), crashing);
    let user = id("u");
    before
        .open_account(user.clone(), recharge_host::model::AccountKind::User, None)
        .unwrap();
    before.add_card(&user, "visa").unwrap();
    let crash = catch_unwind(AssertUnwindSafe(|| {
        before.save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
    }));
    assert!(crash.is_err(), "the host crashed mid-outbox");
    drop(before);
    assert_eq!(
        store.pending_charges().unwrap().len(),
        1,
        "committed, charged, not settled"
    );
    assert_eq!(card_network.money_moved(), d("20.00"));

    let after = restart(Arc::clone(&store), card_network.clone());
    after.run_outbox().unwrap();
    after.run_outbox().unwrap();
    assert_eq!(card_network.attempts(), 1, "the gateway saw the key once");
    assert_eq!(card_network.money_moved(), d("20.00"));
    let account = after.account(&user).unwrap();
    assert_eq!(
        (account.balance, account.status),
        (d("20.00"), Status::Active)
    );
    assert_eq!(after.charges().unwrap().len(), 1);
    assert!(store.pending_charges().unwrap().is_empty());
    // A late duplicate report from the gateway changes nothing.
    let key = after.charges().unwrap()[0].request.key.clone();
    assert!(
        !after
            .deliver_outcome(&key, webhook(ChargeOutcome::Succeeded))
            .unwrap()
    );
    assert_eq!(after.account(&user).unwrap().balance, d("20.00"));
}

#[test]
fn events_of_different_accounts_run_in_parallel_threads() {
    let h = harness();
    let users: Vec<_> = (0..8).map(|n| h.user(&format!("u{n}"))).collect();
    for user in &users {
        h.platform
            .save_auto_recharge(user, user, fixed("5.00", "10.00"))
            .unwrap();
    }
    std::thread::scope(|scope| {
        for user in &users {
            let platform = &h.platform;
            scope.spawn(move || {
                for call in 0..50 {
                    platform
                        .record_usage(
                            user,
                            &format!("c{call}"),
                            60,
                            recharge_host::model::MinuteType::Premium,
                        )
                        .unwrap();
                }
            });
        }
    });
    for user in &users {
        // 10.00 first, 8.00 of calls, one more recharge when it fell below 5.00.
        assert_eq!(h.balance(user), d("12.00"));
    }
    assert_eq!(h.platform.charges().unwrap().len(), 16);
}
