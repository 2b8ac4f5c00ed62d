//! Refusals are not card failures (SPEC R5, H3): the default policy, through the
//! real component, keeps within the host's caps and never pauses an account
//! whose card was never charged.

use recharge_host::model::{MinuteType, PolicyError, Status};
use recharge_host::{Guardrails, HostError, Store};

use super::*;

/// A harness whose host enforces `guardrails`.
fn harness_with(guardrails: Guardrails) -> Harness {
    harness_on(JAN_1, guardrails)
}

fn status(h: &Harness, account: &AccountId) -> Status {
    h.platform.account(account).unwrap().status
}

/// No card was charged and failed: nothing may say so, nor pause.
fn assert_never_failed(h: &Harness, account: &AccountId) {
    assert_eq!(status(h, account), Status::Active);
    assert!(h.notices(account, "account_paused").is_empty());
    assert!(
        h.platform
            .notifications()
            .unwrap()
            .iter()
            .all(|notice| !notice.message.contains("attempts")),
        "a notice counts attempts no card made"
    );
}

/// A call of `seconds` of basic minutes.
fn call(h: &Harness, account: &AccountId, id: &str, seconds: i64) {
    h.platform
        .record_usage(account, id, seconds, MinuteType::Basic)
        .unwrap();
}

/// Protects "nothing stuck, no false pause": 1,100.00 needed over a 1,000.00
/// cap is charged as 1,000.00 then the rest, each exactly once.
#[test]
fn r5_a_fixed_recharge_over_the_cap_charges_the_largest_multiple_then_the_rest() {
    let h = harness();
    let user = h.user("over-cap");
    h.platform
        .save_auto_recharge(&user, &user, fixed("1100.00", "100.00"))
        .unwrap();
    assert_eq!(h.charge_amounts(), vec![d("1000.00"), d("100.00")]);
    assert_eq!(h.balance(&user), d("1100.00"));
    assert_eq!(h.notices(&user, "recharge_succeeded").len(), 2);
    assert!(h.notices(&user, "recharge_failed").is_empty());
    assert_never_failed(&h, &user);
    assert!(h.platform.pending_charges().unwrap().is_empty());
}

/// Protects "no notice storm, no false pause": when not even one amount fits,
/// one notice says no card was charged, and usage does not ask again.
#[test]
fn r5_when_no_amount_fits_the_cap_one_notice_and_no_pause() {
    let h = harness_with(Guardrails {
        max_charge: d("10.00"),
        ..Guardrails::default()
    });
    let user = h.user("tiny-cap");
    h.platform
        .save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
        .unwrap();
    for n in 0..5 {
        call(&h, &user, &format!("c{n}"), 60);
    }
    assert!(h.platform.charges().unwrap().is_empty());
    let failed = h.notices(&user, "recharge_failed");
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].message.contains("no card was charged"),
        "{}",
        failed[0].message
    );
    assert_never_failed(&h, &user);
    // Settings that fit: recharged at once.
    h.platform
        .save_auto_recharge(&user, &user, fixed("10.00", "10.00"))
        .unwrap();
    assert_eq!(h.charge_amounts(), vec![d("10.00"), d("10.00")]);
}

/// Protects "nothing stuck past the day, no false pause": the 26th
/// auto-recharge of a UTC day waits for the next day, with one notice, and is
/// made then.
#[test]
fn r5_the_26th_auto_recharge_of_a_day_defers_to_the_next_day() {
    let h = harness();
    let user = h.user("daily-cap");
    h.platform
        .save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
        .unwrap();
    // 223 minutes cost 20.07: every call takes the balance below the threshold.
    for n in 0..26 {
        call(&h, &user, &format!("c{n}"), 223 * 60);
    }
    assert_eq!(h.charge_amounts().len(), 25, "the host's daily cap");
    // One `recharge_deferred` notice (a kind of contract 0.2.0), and no limit
    // reached: the monthly limit is not what stopped it.
    let deferred = h.notices(&user, "recharge_deferred");
    assert_eq!(deferred.len(), 1, "{deferred:?}");
    assert!(deferred[0].message.contains("deferred to the next UTC day"));
    assert!(h.notices(&user, "recharge_limit_reached").is_empty());
    assert!(deferred[0].message.contains("no card was charged"));
    assert!(h.notices(&user, "recharge_failed").is_empty());
    assert_never_failed(&h, &user);
    // Later calls that day ask nothing and say nothing more.
    call(&h, &user, "late", 60);
    h.platform.advance_to(JAN_1 + DAY - MINUTE).unwrap();
    assert_eq!(h.charge_amounts().len(), 25);
    // The next UTC day: recharged at midnight, and the account still serves.
    h.platform.advance_to(JAN_1 + DAY).unwrap();
    let charges = h.platform.charges().unwrap();
    assert_eq!(charges.len(), 26);
    assert_eq!(charges[25].at, JAN_1 + DAY);
    assert!(h.balance(&user) >= d("10.00"));
    assert_eq!(
        h.store
            .auto_recharges_on(&user, (JAN_1 + DAY) / DAY)
            .unwrap(),
        1
    );
    assert_never_failed(&h, &user);
}

/// Protects "a rejected save changes nothing, no charge the host would refuse":
/// an allocation priced over the cap is rejected when saved.
#[test]
fn r7_an_allocation_priced_over_the_cap_is_rejected_at_save() {
    let h = harness();
    let (agency, sub) = h.agency_with_sub("big-agency", "big-sub");
    // 12,000 basic minutes at 0.09: 1,080.00.
    let result = h
        .platform
        .save_allocation(&agency, &sub, allocation(12_000, 0));
    assert!(
        matches!(
            &result,
            Err(HostError::Rejected(PolicyError::InvalidSettings(message)))
                if message.contains("per-charge cap")
        ),
        "{result:?}"
    );
    assert!(h.platform.charges().unwrap().is_empty());
    assert!(h.platform.pending_charges().unwrap().is_empty());
    assert_eq!(h.platform.describe(&sub).unwrap().allocation, None);
    assert!(
        h.store.pending_timers(&sub).unwrap() == 0,
        "nothing scheduled"
    );
    assert!(h.platform.notifications().unwrap().is_empty());
    // Within the cap it buys at once, as always.
    h.platform
        .save_allocation(&agency, &sub, allocation(10_000, 0))
        .unwrap();
    assert_eq!(h.charge_amounts(), vec![d("900.00")]);
}
