//! Guardrails H1–H6 against a hostile component (`tests/guests/hostile`): whatever
//! it does, the host keeps serving, commits nothing for a faulting event, and
//! other tenants are unaffected.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use recharge_host::model::{AccountKind, MinuteType, PolicyError, QueryKind, Status};
use recharge_host::{HostError, Limits, PolicyEngine, PolicyFault, QUARANTINE_AFTER};

use super::*;

fn hostile() -> &'static [u8] {
    static HOSTILE: OnceLock<Vec<u8>> = OnceLock::new();
    HOSTILE.get_or_init(|| build_guest("hostile"))
}

/// A harness where `name` (a user with card "visa" and 50.00) runs the hostile
/// policy, and a bystander "calm" runs the default one.
fn hostile_user(name: &str) -> (Harness, AccountId) {
    let h = harness();
    let account = h.user(name);
    h.platform
        .top_up(&account, &account, "visa", d("50.00"))
        .unwrap();
    h.platform.set_policy(&account, hostile()).unwrap();
    (h, account)
}

/// Usage that the host records whatever the policy does afterwards.
fn poke(
    h: &Harness,
    account: &AccountId,
    call: &str,
) -> Result<recharge_host::EventReport, HostError> {
    h.platform
        .record_usage(account, call, 60, MinuteType::Basic)
}

fn assert_fault(
    result: Result<recharge_host::EventReport, HostError>,
    expected: fn(&PolicyFault) -> bool,
) {
    match result {
        Err(HostError::Fault(fault)) => assert!(expected(&fault), "unexpected fault {fault:?}"),
        other => panic!("expected a policy fault, got {other:?}"),
    }
}

/// Nothing but the top-up charge, the usage and a `policy_fault` notice.
fn assert_untouched(h: &Harness, account: &AccountId) {
    let record = h.platform.account(account).unwrap();
    assert_eq!(record.status, Status::Active);
    assert!(
        record
            .policy_states()
            .all(|(_, state)| state != b"poisoned")
    );
    assert_eq!(h.platform.charges().unwrap().len(), 1, "only the top-up");
    assert!(h.platform.pending_charges().unwrap().is_empty());
    let kinds: Vec<_> = h
        .platform
        .notifications()
        .unwrap()
        .into_iter()
        .map(|notice| notice.kind)
        .collect();
    assert!(kinds.iter().all(|kind| kind == "policy_fault"), "{kinds:?}");
    assert!(!kinds.is_empty());
}

#[test]
fn h5_an_endless_loop_runs_out_of_fuel() {
    let (h, account) = hostile_user("loop-1");
    assert_fault(poke(&h, &account, "c1"), |fault| {
        *fault == PolicyFault::OutOfFuel
    });
    assert_untouched(&h, &account);
    // The call itself is recorded: a finished call always is.
    assert_eq!(h.balance(&account), d("49.91"));
}

#[test]
fn h5_an_endless_loop_with_unlimited_fuel_hits_the_deadline() {
    let limits = Limits {
        fuel: u64::MAX / 2,
        deadline: Duration::from_millis(50),
        ..Limits::default()
    };
    let engine = PolicyEngine::new(limits, None).unwrap();
    let gateway = Arc::new(recharge_host::SimulatedGateway::new());
    let platform = recharge_host::Platform::builder()
        .engine(engine)
        .default_policy(Arc::new(recharge_host::NativePolicy))
        .gateway(gateway)
        .simulated_clock(JAN_1)
        .build()
        .unwrap();
    let account = id("loop-deadline");
    platform
        .open_account(account.clone(), AccountKind::User, None)
        .unwrap();
    platform.set_policy(&account, hostile()).unwrap();
    let started = std::time::Instant::now();
    let result = platform.record_usage(&account, "c1", 60, MinuteType::Basic);
    assert!(
        matches!(result, Err(HostError::Fault(PolicyFault::Deadline))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn h5_a_memory_bomb_stops_at_the_memory_limit() {
    let (h, account) = hostile_user("bomb-1");
    assert_fault(poke(&h, &account, "c1"), |fault| {
        matches!(fault, PolicyFault::Trap(_))
    });
    assert_untouched(&h, &account);
}

#[test]
fn h5_deep_recursion_stops_at_the_stack_limit() {
    let (h, account) = hostile_user("recurse-1");
    assert_fault(poke(&h, &account, "c1"), |fault| {
        matches!(fault, PolicyFault::Trap(_))
    });
    assert_untouched(&h, &account);
}

#[test]
fn h4_a_trap_after_posting_effects_commits_nothing() {
    let (h, account) = hostile_user("trap-1");
    assert_fault(poke(&h, &account, "c1"), |fault| {
        matches!(fault, PolicyFault::Trap(_))
    });
    assert_untouched(&h, &account);
    assert!(h.notices(&account, "recharge_succeeded").is_empty());
}

fn refusal_of(h: &Harness, account: &AccountId) -> String {
    match poke(h, account, "c1") {
        Err(HostError::Rejected(PolicyError::Refused(refusal))) => refusal,
        other => panic!("expected the refusal to reach the policy, got {other:?}"),
    }
}

#[test]
fn h3_a_charge_on_an_unsaved_card_is_refused_not_trapped() {
    let (h, account) = hostile_user("unsaved-1");
    assert_eq!(refusal_of(&h, &account), "unknown-card");
    assert_eq!(h.platform.charges().unwrap().len(), 1);
}

#[test]
fn h3_oversized_fractional_and_negative_amounts_are_refused() {
    for name in ["oversized-1", "fraction-1", "negative-1"] {
        let (h, account) = hostile_user(name);
        let refusal = refusal_of(&h, &account);
        assert!(refusal.starts_with("bad-amount"), "{name}: {refusal}");
        assert_eq!(h.platform.charges().unwrap().len(), 1, "{name}");
    }
}

#[test]
fn h3_at_most_four_charge_requests_per_event() {
    let (h, account) = hostile_user("five-1");
    poke(&h, &account, "c1").unwrap();
    assert_eq!(h.platform.charges().unwrap().len(), 1 + 4);
}

#[test]
fn h3_at_most_25_auto_recharges_per_account_per_day() {
    let (h, account) = hostile_user("five-2");
    for call in 0..10 {
        poke(&h, &account, &format!("c{call}")).unwrap();
    }
    assert_eq!(h.platform.charges().unwrap().len(), 1 + 25);
    h.platform.advance_to(JAN_1 + DAY).unwrap();
    poke(&h, &account, "next-day").unwrap();
    assert_eq!(h.platform.charges().unwrap().len(), 1 + 25 + 4);
}

#[test]
fn h2_an_allocation_must_cost_its_price() {
    let h = harness();
    let (agency, sub) = h.agency_with_sub("agency", "mint-sub");
    h.platform.set_policy(&agency, hostile()).unwrap();
    let result = poke(&h, &sub, "c1");
    assert!(
        matches!(&result, Err(HostError::Rejected(PolicyError::Refused(refusal))) if refusal == "price-mismatch"),
        "{result:?}"
    );
    assert_eq!(h.platform.account(&sub).unwrap().basic_seconds, 0);
    assert!(h.platform.charges().unwrap().is_empty());
}

#[test]
fn h1_a_policy_cannot_credit_an_account_it_was_not_handed() {
    let (h, account) = hostile_user("foreign-1");
    h.platform
        .open_account(id("victim"), AccountKind::User, None)
        .unwrap();
    assert_eq!(refusal_of(&h, &account), "foreign-account");
    assert_eq!(h.platform.account(&id("victim")).unwrap().basic_seconds, 0);
}

#[test]
fn h6_three_faults_in_a_row_quarantine_the_tenant_and_others_are_unaffected() {
    let h = harness();
    let bystander = h.user("calm");
    h.platform
        .save_auto_recharge(&bystander, &bystander, fixed("10.00", "20.00"))
        .unwrap();
    let (agency, sub) = h.agency_with_sub("fault-agency", "fault-sub");
    h.platform.set_policy(&agency, hostile()).unwrap();
    for call in 0..QUARANTINE_AFTER {
        assert!(matches!(
            poke(&h, &agency, &format!("c{call}")),
            Err(HostError::Fault(_))
        ));
        // Between faults, the bystander on the default policy is served normally.
        h.platform
            .record_usage(&bystander, &format!("b{call}"), 600, MinuteType::Premium)
            .unwrap();
    }
    assert_eq!(h.notices(&agency, "policy_quarantined").len(), 1);
    assert_eq!(h.notices(&sub, "policy_quarantined").len(), 1);
    // The default policy now decides for the agency and its sub-account.
    poke(&h, &agency, "after").unwrap();
    h.platform.query(&sub, &sub, QueryKind::Service).unwrap();
    assert_eq!(h.platform.account(&bystander).unwrap().balance, d("15.20"));
    assert_eq!(h.notices(&bystander, "policy_fault").len(), 0);
}
