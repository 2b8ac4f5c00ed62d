//! Rules R1–R9 end to end: the host driving the real default policy component.

use recharge_host::HostError;
use recharge_host::model::{Answer, MinuteType, Mode, PolicyError, QueryKind, Status};

use super::*;
use recharge_host::CardBehavior;

#[test]
fn r1_only_the_account_itself_saves_its_settings() {
    let h = harness();
    let user = h.user("u");
    let (agency, sub) = h.agency_with_sub("a", "s");
    h.platform.add_card(&sub, "visa").unwrap();
    let refused = h
        .platform
        .save_auto_recharge(&agency, &sub, fixed("5.00", "10.00"));
    assert!(
        matches!(refused, Err(HostError::Rejected(PolicyError::Forbidden(_)))),
        "{refused:?}"
    );
    let refused = h
        .platform
        .save_auto_recharge(&user, &sub, fixed("5.00", "10.00"));
    assert!(matches!(
        refused,
        Err(HostError::Rejected(PolicyError::Forbidden(_)))
    ));
    h.platform
        .save_auto_recharge(&sub, &sub, fixed("5.00", "10.00"))
        .unwrap();
    // The parent agency may read them.
    let answer = h
        .platform
        .query(&agency, &sub, QueryKind::AutoRecharge)
        .unwrap();
    assert_eq!(answer, Answer::AutoRecharge(Some(fixed("5.00", "10.00"))));
}

#[test]
fn r1_enabling_needs_a_saved_card_and_a_rejected_save_changes_nothing() {
    let h = harness();
    let user = h.user("u");
    h.platform
        .save_auto_recharge(&user, &user, fixed("0.00", "10.00"))
        .unwrap();
    let mut bad = fixed("5.00", "10.00");
    bad.card = "unsaved".into();
    let refused = h.platform.save_auto_recharge(&user, &user, bad);
    assert!(matches!(
        refused,
        Err(HostError::Rejected(PolicyError::PaymentMethodRequired(_)))
    ));
    let refused = h
        .platform
        .save_auto_recharge(&user, &user, fixed("5.00", "10.001"));
    assert!(matches!(
        refused,
        Err(HostError::Rejected(PolicyError::InvalidSettings(_)))
    ));
    let mut target = fixed("20.00", "20.00");
    target.mode = Mode::Target;
    let refused = h.platform.save_auto_recharge(&user, &user, target);
    assert!(matches!(
        refused,
        Err(HostError::Rejected(PolicyError::InvalidSettings(_)))
    ));
    let answer = h
        .platform
        .query(&user, &user, QueryKind::AutoRecharge)
        .unwrap();
    assert_eq!(answer, Answer::AutoRecharge(Some(fixed("0.00", "10.00"))));
    assert!(h.platform.charges().unwrap().is_empty());
    // Disabling is always allowed.
    let mut off = fixed("-1.00", "0");
    off.enabled = false;
    h.platform.save_auto_recharge(&user, &user, off).unwrap();
}

#[test]
fn r2_equal_to_the_threshold_does_not_trigger() {
    let h = harness();
    let user = h.user("u");
    h.platform.top_up(&user, &user, "visa", d("10.00")).unwrap();
    h.platform
        .save_auto_recharge(&user, &user, fixed("10.00", "25.00"))
        .unwrap();
    assert_eq!(h.charge_amounts(), vec![d("10.00")], "only the top-up");
    // 60 basic seconds cost 0.09: now below, one recharge.
    h.platform
        .record_usage(&user, "c1", 60, MinuteType::Basic)
        .unwrap();
    assert_eq!(h.charge_amounts(), vec![d("10.00"), d("25.00")]);
    assert_eq!(h.balance(&user), d("34.91"));
}

#[test]
fn r2_saving_below_the_threshold_recharges_at_once() {
    let h = harness();
    let user = h.user("u");
    h.platform
        .save_auto_recharge(&user, &user, fixed("15.00", "50.00"))
        .unwrap();
    assert_eq!(h.charge_amounts(), vec![d("50.00")]);
    assert_eq!(h.balance(&user), d("50.00"));
    assert_eq!(h.notices(&user, "recharge_succeeded").len(), 1);
}

#[test]
fn r3_fixed_amount_closes_the_gap_in_one_charge() {
    let h = harness();
    let user = h.user("u");
    h.platform
        .save_auto_recharge(&user, &user, fixed("15.00", "10.00"))
        .unwrap();
    assert_eq!(h.charge_amounts(), vec![d("20.00")]);
    assert_eq!(h.balance(&user), d("20.00"));
}

#[test]
fn r3_target_mode_refills_to_the_target_rounded_up_to_cents() {
    let h = harness();
    let user = h.user("u");
    h.platform.top_up(&user, &user, "visa", d("20.00")).unwrap();
    // 61 premium seconds cost 0.1627: balance 19.8373.
    h.platform
        .record_usage(&user, "c1", 61, MinuteType::Premium)
        .unwrap();
    let mut target = fixed("19.90", "30.00");
    target.mode = Mode::Target;
    h.platform.save_auto_recharge(&user, &user, target).unwrap();
    assert_eq!(h.charge_amounts(), vec![d("20.00"), d("10.17")]);
    assert_eq!(h.balance(&user), d("30.0073"));
}

#[test]
fn r4_monthly_limit_stops_recharges_with_one_notice_a_month() {
    let h = harness();
    let user = h.user("u");
    let mut settings = fixed("10.00", "10.00");
    settings.monthly_limit = Some(d("25.00"));
    h.platform
        .save_auto_recharge(&user, &user, settings)
        .unwrap();
    // Each 10-minute premium call costs 1.60; spend enough for several recharges.
    for call in 0..12 {
        h.platform
            .record_usage(&user, &format!("c{call}"), 600, MinuteType::Premium)
            .unwrap();
    }
    let total: Decimal = h.charge_amounts().iter().sum();
    assert!(total <= d("25.00"), "charged {total}");
    assert_eq!(h.charge_amounts(), vec![d("10.00"), d("10.00")]);
    assert_eq!(h.notices(&user, "recharge_limit_reached").len(), 1);
    // February: a new allowance.
    h.platform.advance_to(at("2026-02-01T00:00:00Z")).unwrap();
    h.platform
        .record_usage(&user, "feb", 60, MinuteType::Basic)
        .unwrap();
    assert_eq!(h.charge_amounts().len(), 3);
}

#[test]
fn r5_transient_failures_retry_at_5m_30m_2h_then_pause() {
    let h = harness();
    let user = h.user("u");
    h.gateway
        .set_behavior(&user, "visa", CardBehavior::Fail)
        .unwrap();
    h.platform
        .save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
        .unwrap();
    h.platform.advance_to(JAN_1 + DAY).unwrap();
    let charges = h.platform.charges().unwrap();
    let times: Vec<_> = charges.iter().map(|charge| charge.at - JAN_1).collect();
    assert_eq!(
        times,
        vec![0, 5 * MINUTE, 35 * MINUTE, 2 * HOUR + 35 * MINUTE]
    );
    assert!(
        charges
            .iter()
            .all(|charge| charge.request.amount == d("20.00"))
    );
    let mut keys: Vec<_> = charges
        .iter()
        .map(|charge| charge.request.key.clone())
        .collect();
    keys.dedup();
    assert_eq!(keys.len(), 4, "each attempt has its own key");
    assert_eq!(h.balance(&user), d("0"));
    assert_eq!(h.platform.account(&user).unwrap().status, Status::Paused);
    assert_eq!(h.notices(&user, "recharge_failed").len(), 1);
    assert_eq!(h.notices(&user, "account_paused").len(), 1);
}

#[test]
fn r5_a_transient_failure_then_success_credits_once() {
    let h = harness();
    let user = h.user("u");
    h.gateway
        .set_behavior(&user, "visa", CardBehavior::FailTimes(1))
        .unwrap();
    h.platform
        .save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
        .unwrap();
    assert_eq!(h.balance(&user), d("0"));
    h.platform.advance_to(JAN_1 + 5 * MINUTE).unwrap();
    assert_eq!(h.balance(&user), d("20.00"));
    assert_eq!(h.charge_amounts(), vec![d("20.00"), d("20.00")]);
    h.platform.advance_to(JAN_1 + DAY).unwrap();
    assert_eq!(h.charge_amounts().len(), 2, "no retry after success");
}

#[test]
fn r6_a_decline_pauses_and_a_card_update_resumes() {
    let h = harness();
    let user = h.user("u");
    h.gateway
        .set_behavior(&user, "visa", CardBehavior::Decline)
        .unwrap();
    h.platform
        .save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
        .unwrap();
    assert_eq!(h.charge_amounts().len(), 1, "a decline is final");
    assert_eq!(h.platform.account(&user).unwrap().status, Status::Paused);
    // Usage while suspended charges nothing.
    h.platform
        .record_usage(&user, "c1", 60, MinuteType::Basic)
        .unwrap();
    assert_eq!(h.charge_amounts().len(), 1);
    h.gateway
        .set_behavior(&user, "visa", CardBehavior::Ok)
        .unwrap();
    h.platform.update_card(&user, "visa").unwrap();
    assert_eq!(h.charge_amounts().len(), 2);
    assert_eq!(h.platform.account(&user).unwrap().status, Status::Active);
    assert_eq!(h.notices(&user, "account_resumed").len(), 1);
}

#[test]
fn r6_a_manual_top_up_resumes_a_paused_account() {
    let h = harness();
    let user = h.user("u");
    h.gateway
        .set_behavior(&user, "visa", CardBehavior::Decline)
        .unwrap();
    h.platform
        .save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
        .unwrap();
    h.platform.add_card(&user, "mc").unwrap();
    h.platform.top_up(&user, &user, "mc", d("50.00")).unwrap();
    let account = h.platform.account(&user).unwrap();
    assert_eq!(
        (account.status, account.balance),
        (Status::Active, d("50.00"))
    );
    assert_eq!(h.notices(&user, "account_resumed").len(), 1);
}

#[test]
fn r6_disabling_cancels_pending_retries() {
    let h = harness();
    let user = h.user("u");
    h.gateway
        .set_behavior(&user, "visa", CardBehavior::Fail)
        .unwrap();
    h.platform
        .save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
        .unwrap();
    let mut off = fixed("10.00", "20.00");
    off.enabled = false;
    h.platform.save_auto_recharge(&user, &user, off).unwrap();
    h.platform.advance_to(JAN_1 + DAY).unwrap();
    assert_eq!(h.charge_amounts().len(), 1);
    assert_eq!(h.platform.account(&user).unwrap().status, Status::Active);
}

#[test]
fn r7_allocation_buys_at_once_then_monthly_on_the_anchor_day() {
    let h = harness_at(at("2026-01-31T09:30:00Z"));
    let (agency, sub) = h.agency_with_sub("a", "s");
    h.platform
        .save_allocation(&agency, &sub, allocation(100, 50))
        .unwrap();
    let charges = h.platform.charges().unwrap();
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].request.payer, agency);
    assert_eq!(charges[0].request.amount, d("17.00"));
    let account = h.platform.account(&sub).unwrap();
    assert_eq!(
        (account.basic_seconds, account.premium_seconds),
        (6000, 3000)
    );
    assert_eq!(
        h.balance(&agency),
        d("0"),
        "the agency's wallet is never touched"
    );
    assert_eq!(h.notices(&agency, "allocation_succeeded").len(), 1);
    h.platform.advance_to(at("2026-04-01T00:00:00Z")).unwrap();
    let runs: Vec<_> = h
        .platform
        .charges()
        .unwrap()
        .iter()
        .map(|charge| charge.at)
        .collect();
    assert_eq!(
        runs,
        vec![
            at("2026-01-31T09:30:00Z"),
            at("2026-02-28T09:30:00Z"),
            at("2026-03-31T09:30:00Z")
        ]
    );
    assert_eq!(h.platform.account(&sub).unwrap().basic_seconds, 18000);
}

#[test]
fn r7_only_the_parent_agency_saves_an_allocation() {
    let h = harness();
    let (agency, sub) = h.agency_with_sub("a", "s");
    let (other, _) = h.agency_with_sub("b", "t");
    h.platform.add_card(&sub, "amex").unwrap();
    for actor in [&sub, &other] {
        let refused = h.platform.save_allocation(actor, &sub, allocation(10, 0));
        assert!(
            matches!(refused, Err(HostError::Rejected(PolicyError::Forbidden(_)))),
            "{refused:?}"
        );
    }
    let mut no_card = allocation(10, 0);
    no_card.card = "none".into();
    let refused = h.platform.save_allocation(&agency, &sub, no_card);
    assert!(matches!(
        refused,
        Err(HostError::Rejected(PolicyError::PaymentMethodRequired(_)))
    ));
    assert!(h.platform.charges().unwrap().is_empty());
    let estimate = h
        .platform
        .query(&agency, &sub, QueryKind::Estimate)
        .unwrap();
    assert_eq!(estimate, Answer::Estimate(d("0")));
}

#[test]
fn r7_resaving_while_active_changes_the_next_run_without_buying() {
    let h = harness();
    let (agency, sub) = h.agency_with_sub("a", "s");
    h.platform
        .save_allocation(&agency, &sub, allocation(100, 50))
        .unwrap();
    h.platform
        .save_allocation(&agency, &sub, allocation(10, 0))
        .unwrap();
    assert_eq!(h.charge_amounts(), vec![d("17.00")]);
    let estimate = h
        .platform
        .query(&agency, &sub, QueryKind::Estimate)
        .unwrap();
    assert_eq!(estimate, Answer::Estimate(d("0.90")));
    h.platform.advance_to(at("2026-02-01T00:00:00Z")).unwrap();
    assert_eq!(h.charge_amounts(), vec![d("17.00"), d("0.90")]);
    // 0 and 0 stops it.
    h.platform
        .save_allocation(&agency, &sub, allocation(0, 0))
        .unwrap();
    h.platform.advance_to(at("2026-06-01T00:00:00Z")).unwrap();
    assert_eq!(h.charge_amounts().len(), 2);
    assert!(h.platform.describe(&sub).unwrap().allocation.is_none());
}

#[test]
fn r7_a_failed_allocation_notifies_the_agency_and_keeps_the_schedule() {
    let h = harness();
    let (agency, sub) = h.agency_with_sub("a", "s");
    h.gateway
        .set_behavior(&agency, "amex", CardBehavior::Decline)
        .unwrap();
    h.platform
        .save_allocation(&agency, &sub, allocation(100, 0))
        .unwrap();
    assert_eq!(h.notices(&agency, "allocation_failed").len(), 1);
    assert_eq!(h.platform.account(&sub).unwrap().basic_seconds, 0);
    h.gateway
        .set_behavior(&agency, "amex", CardBehavior::Ok)
        .unwrap();
    h.platform.advance_to(at("2026-02-01T00:00:00Z")).unwrap();
    assert_eq!(h.platform.account(&sub).unwrap().basic_seconds, 6000);
    assert_eq!(h.platform.account(&agency).unwrap().status, Status::Active);
}

#[test]
fn r7_rates_in_force_at_run_time_price_each_run() {
    let h = harness();
    let (agency, sub) = h.agency_with_sub("a", "s");
    h.platform
        .save_allocation(&agency, &sub, allocation(100, 50))
        .unwrap();
    h.platform
        .set_rates(recharge_host::model::Rates {
            basic: d("0.10"),
            premium: d("0.20"),
        })
        .unwrap();
    h.platform.advance_to(at("2026-02-01T00:00:00Z")).unwrap();
    assert_eq!(h.charge_amounts(), vec![d("17.00"), d("20.00")]);
}

#[test]
fn r8_a_failed_top_up_is_not_retried_and_notifies() {
    let h = harness();
    let user = h.user("u");
    h.gateway
        .set_behavior(&user, "visa", CardBehavior::Fail)
        .unwrap();
    h.platform.top_up(&user, &user, "visa", d("30.00")).unwrap();
    h.platform.advance_to(JAN_1 + DAY).unwrap();
    assert_eq!(h.charge_amounts(), vec![d("30.00")]);
    assert_eq!(h.balance(&user), d("0"));
    assert_eq!(h.notices(&user, "top_up_failed").len(), 1);
}

#[test]
fn r9_service_needs_an_active_account_with_credit_or_minutes() {
    let h = harness();
    let user = h.user("u");
    let service = |h: &Harness| h.platform.query(&user, &user, QueryKind::Service).unwrap();
    assert_eq!(service(&h), Answer::Service(false));
    h.platform.include_minutes(&user, 0, 1).unwrap();
    assert_eq!(service(&h), Answer::Service(true));
    h.platform
        .record_usage(&user, "c1", 120, MinuteType::Premium)
        .unwrap();
    assert_eq!(
        service(&h),
        Answer::Service(false),
        "minutes gone, wallet negative"
    );
    assert_eq!(
        h.balance(&user),
        d("-0.16"),
        "only usage takes a wallet below zero"
    );
    h.platform.top_up(&user, &user, "visa", d("5.00")).unwrap();
    assert_eq!(service(&h), Answer::Service(true));
}

#[test]
fn usage_is_rated_once_per_call_id() {
    let h = harness();
    let user = h.user("u");
    h.platform
        .record_usage(&user, "c1", 61, MinuteType::Premium)
        .unwrap();
    h.platform
        .record_usage(&user, "c1", 61, MinuteType::Premium)
        .unwrap();
    assert_eq!(h.balance(&user), d("-0.1627"));
}

#[test]
fn runaway_guard_never_stops_a_schedule_that_moves_forward_in_time() {
    // Nothing stuck: a monthly allocation advanced a century in one step fires
    // 1,200 times, past the 1,000 wake-ups an account may fire at one instant;
    // each run is a month later than the last, so the guard (which stops
    // wake-ups re-armed at or before "now") never faults it.
    let h = harness();
    let (agency, sub) = h.agency_with_sub("a", "s");
    h.platform
        .save_allocation(
            &agency,
            &sub,
            AllocationSettings {
                basic_minutes: 1,
                premium_minutes: 0,
                card: "amex".into(),
            },
        )
        .unwrap();
    let century = JAN_1 + 36_525 * DAY;
    h.platform.advance_to(century).unwrap();
    assert!(h.notices(&sub, "policy_fault").is_empty());
    assert!(h.notices(&agency, "policy_fault").is_empty());
    let runs = h.platform.charges().unwrap().len();
    assert_eq!(
        runs,
        1 + 1_200,
        "the first purchase and one a month for 100 years"
    );
    assert_eq!(
        h.platform.account(&sub).unwrap().basic_seconds,
        1_201 * 60,
        "every run's minute credited once"
    );
}
