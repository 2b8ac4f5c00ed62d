//! One test (or more) per rule of SPEC.md §5, named after it, on the fake host.

use alloc::{string::String, vec, vec::Vec};

use super::testing::{FakeHost, MINUTE, at, d, fixed};
use crate::caps::Role;
use crate::model::{
    AllocationSettings, Answer, AutoRechargeSettings, ChargeOutcome, Event, MinutePurchase, Mode,
    Notice, PolicyError, Purpose, QueryKind, Rates, Refusal, Status,
};

fn target(threshold: &str, amount: &str) -> AutoRechargeSettings {
    AutoRechargeSettings {
        mode: Mode::Target,
        ..fixed(threshold, amount, "card")
    }
}

fn with_limit(settings: AutoRechargeSettings, limit: &str) -> AutoRechargeSettings {
    AutoRechargeSettings {
        monthly_limit: Some(d(limit)),
        ..settings
    }
}

fn amounts(host: &FakeHost) -> Vec<String> {
    host.charges
        .iter()
        .map(|charge| charge.amount.to_string())
        .collect()
}

fn is_invalid(result: Result<(), PolicyError>, field: &str) -> bool {
    matches!(result, Err(PolicyError::InvalidSettings(message)) if message.contains(field))
}

/// A user with fixed settings (threshold 10, amount 20) and balance 15.
fn recharging_user() -> FakeHost {
    let mut host = FakeHost::user("u1");
    host.set_balance("15.00");
    host.save_auto("u1", fixed("10.00", "20.00", "card"))
        .unwrap();
    host
}

/// A user whose auto-recharge was declined: suspended and paused.
fn paused_user() -> FakeHost {
    let mut host = recharging_user();
    host.usage("6.00").unwrap();
    host.settle_last(ChargeOutcome::Declined).unwrap();
    assert_eq!(host.status(), Status::Paused);
    host
}

// R1 ---------------------------------------------------------------------------

#[test]
fn r1_saves_settings_as_given_and_reads_them_back() {
    let mut host = FakeHost::user("u1");
    host.set_balance("50");
    let settings = with_limit(fixed("10.00", "20", "card"), "100.00");
    host.save_auto("u1", settings.clone()).unwrap();
    assert_eq!(
        host.query("u1", QueryKind::AutoRecharge),
        Ok(Answer::AutoRecharge(Some(settings)))
    );
    assert!(host.charges.is_empty());
}

#[test]
fn r1_rejects_each_invalid_field_by_name() {
    let cases: Vec<(AutoRechargeSettings, &str)> = vec![
        (fixed("-0.01", "20", "card"), "threshold"),
        (fixed("10.001", "20", "card"), "threshold"),
        (fixed("10", "0", "card"), "amount"),
        (fixed("10", "-5", "card"), "amount"),
        (fixed("10", "20.005", "card"), "amount"),
        (with_limit(fixed("10", "20", "card"), "0"), "monthly_limit"),
        (
            with_limit(fixed("10", "20", "card"), "50.5001"),
            "monthly_limit",
        ),
        (target("10", "10"), "threshold"),
        (target("10", "9"), "target mode"),
    ];
    for (settings, field) in cases {
        let mut host = FakeHost::user("u1");
        let result = host.save_auto("u1", settings.clone());
        assert!(
            is_invalid(result.clone(), field),
            "{settings:?}: {result:?}"
        );
    }
}

#[test]
fn r1_enabling_needs_a_saved_card() {
    let mut host = FakeHost::user("u1");
    let result = host.save_auto("u1", fixed("10", "20", "stolen"));
    assert!(
        matches!(result, Err(PolicyError::PaymentMethodRequired(_))),
        "{result:?}"
    );
    // Validation comes before the card check.
    let result = host.save_auto("u1", fixed("-1", "20", "stolen"));
    assert!(is_invalid(result, "threshold"));
}

#[test]
fn r1_rejected_save_changes_nothing() {
    let mut host = recharging_user();
    host.usage("6.00").unwrap();
    let before = host.clone();
    for bad in [fixed("10", "0", "card"), fixed("10", "20", "stolen")] {
        assert!(host.save_auto("u1", bad).is_err());
        assert_eq!(host.subject.state, before.subject.state);
        assert_eq!(host.set_state_calls, before.set_state_calls);
        assert_eq!(host.charges, before.charges);
        assert_eq!(host.timers, before.timers);
        assert_eq!(host.notices, before.notices);
    }
}

#[test]
fn r1_disabling_is_always_accepted_as_given() {
    let mut host = recharging_user();
    let off = AutoRechargeSettings {
        enabled: false,
        ..fixed("-3", "0", "no-such-card")
    };
    host.save_auto("u1", off.clone()).unwrap();
    assert_eq!(
        host.query("u1", QueryKind::AutoRecharge),
        Ok(Answer::AutoRecharge(Some(off)))
    );
    host.usage("100").unwrap();
    assert!(host.charges.is_empty());
}

#[test]
fn r1_never_saved_reads_as_none() {
    let host = FakeHost::user("u1");
    assert_eq!(
        host.query("u1", QueryKind::AutoRecharge),
        Ok(Answer::AutoRecharge(None))
    );
}

// R2 ---------------------------------------------------------------------------

#[test]
fn r2_usage_below_threshold_requests_one_charge() {
    let mut host = recharging_user();
    host.usage("5.01").unwrap();
    assert_eq!(amounts(&host), ["20.00"]);
    let charge = &host.charges[0];
    assert_eq!(
        (
            charge.payer,
            charge.card.as_str(),
            &charge.purpose,
            charge.key.as_str()
        ),
        (Role::Subject, "card", &Purpose::AutoRecharge, "u1/ar/1/1")
    );
}

#[test]
fn r2_equal_to_threshold_does_not_trigger() {
    let mut host = recharging_user();
    host.usage("5.00").unwrap();
    assert_eq!(host.balance(), d("10.00"));
    assert!(host.charges.is_empty());
    host.usage("0.0001").unwrap();
    assert_eq!(host.charges.len(), 1);
}

#[test]
fn r2_saving_below_threshold_recharges_at_once() {
    let mut host = FakeHost::user("u1");
    host.set_balance("3.00");
    host.save_auto("u1", fixed("10", "20", "card")).unwrap();
    assert_eq!(amounts(&host), ["20"]);
}

#[test]
fn r2_at_most_one_recharge_in_flight() {
    let mut host = recharging_user();
    host.usage("6").unwrap();
    host.usage("6").unwrap();
    host.handle(Event::CardUpdated("card".into())).unwrap();
    host.save_auto("u1", fixed("10.00", "20.00", "card"))
        .unwrap();
    assert_eq!(host.charges.len(), 1);
    // Once it succeeds, the trigger runs again: still below, so one more.
    host.usage("20").unwrap();
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    assert_eq!(host.balance(), d("3.00"));
    assert_eq!(amounts(&host), ["20.00", "20.00"]);
}

#[test]
fn r2_usage_hot_path_decides_without_calling_the_host() {
    // Above the threshold: the balance and the watermark came with the event.
    let mut host = recharging_user();
    assert_eq!(host.subject.watermark, Some(d("10.00")));
    let calls = host.calls.get();
    let writes = host.set_state_calls;
    host.usage("1").unwrap();
    assert_eq!(host.calls.get() - calls, 0);
    assert_eq!(host.set_state_calls, writes);

    // Never saved: no watermark, nothing to read.
    let mut fresh = FakeHost::user("u2");
    fresh.usage("1").unwrap();
    assert_eq!(fresh.calls.get(), 0);
    assert_eq!(fresh.set_state_calls, 0);
}

#[test]
fn r2_the_watermark_follows_the_trigger_gate() {
    let mut host = recharging_user();
    assert_eq!(host.subject.watermark, Some(d("10.00")));
    // A recharge in flight: no usage can trigger another.
    host.set_balance("10.50");
    host.usage("1").unwrap();
    assert_eq!(host.charges.len(), 1);
    assert_eq!(host.subject.watermark, None);
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    assert_eq!(host.subject.watermark, Some(d("10.00")));
    // Disabled: none.
    let mut off = fixed("10.00", "20.00", "card");
    off.enabled = false;
    host.save_auto("u1", off).unwrap();
    assert_eq!(host.subject.watermark, None);
}

#[test]
fn r2_no_charge_when_disabled_or_never_saved() {
    let mut host = FakeHost::user("u1");
    host.usage("100").unwrap();
    host.save_auto(
        "u1",
        AutoRechargeSettings {
            enabled: false,
            ..fixed("10", "20", "card")
        },
    )
    .unwrap();
    host.usage("1").unwrap();
    assert!(host.charges.is_empty());
}

// R3 ---------------------------------------------------------------------------

#[test]
fn r3_fixed_amount_closes_gap_in_one_charge() {
    let mut host = FakeHost::user("u1");
    host.save_auto("u1", fixed("15", "10", "card")).unwrap();
    assert_eq!(amounts(&host), ["20"]);
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    assert_eq!(host.balance(), d("20"));
    assert_eq!(host.charges.len(), 1);
}

#[test]
fn r3_fixed_amount_from_a_negative_balance() {
    let mut host = recharging_user();
    host.usage("45.50").unwrap();
    assert_eq!(host.balance(), d("-30.50"));
    assert_eq!(amounts(&host), ["60.00"]);
}

#[test]
fn r3_target_rounds_up_to_cents() {
    let mut host = FakeHost::user("u1");
    host.set_balance("12.00");
    host.save_auto("u1", target("10.00", "50.00")).unwrap();
    host.usage("2.0001").unwrap();
    assert_eq!(host.balance(), d("9.9999"));
    assert_eq!(amounts(&host), ["40.01"]);
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    assert_eq!(host.balance(), d("50.0099"));
}

// R4 ---------------------------------------------------------------------------

#[test]
fn r4_monthly_limit_per_utc_calendar_month_with_one_notice() {
    let mut host = FakeHost::user("u1");
    host.now = at("2027-01-31 22:00");
    host.set_balance("15.00");
    host.save_auto("u1", with_limit(fixed("10", "20", "card"), "50"))
        .unwrap();
    for cost in ["6", "20"] {
        host.usage(cost).unwrap();
        host.settle_last(ChargeOutcome::Succeeded).unwrap();
    }
    assert_eq!(amounts(&host), ["20", "20"]);
    // 40 charged this month: another 20 would exceed 50.
    host.usage("20").unwrap();
    host.usage("1").unwrap();
    host.usage("1").unwrap();
    assert_eq!(host.charges.len(), 2);
    assert_eq!(
        host.notice_kinds(Role::Subject)
            .iter()
            .filter(|kind| **kind == Notice::RechargeLimitReached)
            .count(),
        1
    );
    let notice = host
        .notices
        .iter()
        .find(|sent| sent.kind == Notice::RechargeLimitReached)
        .unwrap();
    assert!(
        notice.message.contains("20.00") && notice.message.contains("50.00"),
        "{}",
        notice.message
    );

    // A minute before midnight UTC is still January.
    host.advance_to(at("2027-01-31 23:59")).unwrap();
    host.usage("1").unwrap();
    assert_eq!(host.charges.len(), 2);
    // February brings a fresh allowance.
    host.advance_to(at("2027-02-01 00:00")).unwrap();
    host.usage("1").unwrap();
    assert_eq!(host.charges.len(), 3);
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    assert_eq!(
        host.notice_kinds(Role::Subject)
            .iter()
            .filter(|kind| **kind == Notice::RechargeLimitReached)
            .count(),
        1
    );
}

#[test]
fn r4_in_flight_counts_and_final_failure_frees_the_allowance() {
    let mut host = FakeHost::user("u1");
    host.set_balance("15.00");
    host.save_auto("u1", with_limit(fixed("10", "30", "card"), "50"))
        .unwrap();
    host.usage("6").unwrap();
    assert_eq!(amounts(&host), ["30"]);
    host.settle_last(ChargeOutcome::Declined).unwrap();
    assert_eq!(
        host.state().usage.charged_in(host.state().usage.month),
        d("0")
    );
    // The card is fixed; the declined 30 no longer counts, so 30 fits under 50.
    host.handle(Event::CardUpdated("card".into())).unwrap();
    assert_eq!(amounts(&host), ["30", "30"]);
}

#[test]
fn r4_a_retry_in_a_new_month_counts_in_that_month() {
    let mut host = FakeHost::user("u1");
    host.now = at("2027-01-31 23:50");
    host.save_auto("u1", with_limit(fixed("10", "20", "card"), "20"))
        .unwrap();
    // 23:50 and 23:55 fail; the retry at 00:25 runs in February and succeeds.
    host.settle_last(ChargeOutcome::Failed).unwrap();
    host.advance_to(at("2027-01-31 23:55")).unwrap();
    host.settle_last(ChargeOutcome::Failed).unwrap();
    host.advance_to(at("2027-02-01 00:25")).unwrap();
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    assert_eq!(amounts(&host), ["20", "20", "20"]);
    // February has spent its 20: the next shortfall is not recharged.
    host.usage("12").unwrap();
    assert_eq!(host.charges.len(), 3);
    assert_eq!(
        host.notice_kinds(Role::Subject)
            .iter()
            .filter(|kind| **kind == Notice::RechargeLimitReached)
            .count(),
        1
    );
}

#[test]
fn r4_a_recharge_larger_than_the_limit_is_never_made() {
    let mut host = FakeHost::user("u1");
    host.save_auto("u1", with_limit(fixed("10", "60", "card"), "50"))
        .unwrap();
    assert!(host.charges.is_empty());
    assert_eq!(
        host.notice_kinds(Role::Subject),
        [Notice::RechargeLimitReached]
    );
}

// R5 ---------------------------------------------------------------------------

#[test]
fn r5_success_notices_and_clears_in_flight() {
    let mut host = recharging_user();
    host.usage("6").unwrap();
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    assert_eq!(host.balance(), d("29.00"));
    assert_eq!(host.state().recharge, None);
    assert_eq!(
        host.notice_kinds(Role::Subject),
        [Notice::RechargeSucceeded]
    );
    assert_eq!(host.notices[0].message, "auto-recharge of 20.00 succeeded");
    assert_eq!(host.status(), Status::Active);
}

#[test]
fn r5_retries_at_5m_30m_2h_then_final_failure() {
    let mut host = recharging_user();
    let t = host.now;
    host.usage("6").unwrap();
    for _ in 0..4 {
        host.settle_last(ChargeOutcome::Failed).unwrap();
        assert_eq!(host.balance(), d("9.00"), "a failed charge credits nothing");
        if let Some(timer) = host.timers.first().copied() {
            host.advance_to(timer.at).unwrap();
        }
    }
    let times: Vec<_> = host.charges.iter().map(|charge| charge.at - t).collect();
    assert_eq!(times, [0, 5 * MINUTE, 35 * MINUTE, 155 * MINUTE]);
    let keys: Vec<_> = host
        .charges
        .iter()
        .map(|charge| charge.key.as_str())
        .collect();
    assert_eq!(keys, ["u1/ar/1/1", "u1/ar/1/2", "u1/ar/1/3", "u1/ar/1/4"]);
    assert_eq!(amounts(&host), ["20.00"; 4]);
    assert!(host.timers.is_empty());
    assert_eq!(
        host.notice_kinds(Role::Subject),
        [Notice::RechargeFailed, Notice::AccountPaused]
    );
    assert_eq!(
        host.notices[0].message,
        "auto-recharge of 20.00 failed after 4 attempts"
    );
    assert_eq!(host.status(), Status::Paused);
    assert!(host.state().suspended);
    // Suspended: no more recharges, whatever the usage.
    host.usage("50").unwrap();
    host.advance(3 * 24 * 60 * MINUTE).unwrap();
    assert_eq!(host.charges.len(), 4);
}

#[test]
fn r5_success_on_a_retry_ends_the_recharge() {
    let mut host = recharging_user();
    host.usage("6").unwrap();
    host.settle_last(ChargeOutcome::Failed).unwrap();
    host.advance(5 * MINUTE).unwrap();
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    assert_eq!(host.balance(), d("29.00"));
    assert_eq!(host.state().recharge, None);
    assert_eq!(host.status(), Status::Active);
    assert_eq!(
        host.notice_kinds(Role::Subject),
        [Notice::RechargeSucceeded]
    );
}

#[test]
fn r5_decline_is_final_at_once() {
    let host = paused_user();
    assert_eq!(host.charges.len(), 1);
    assert!(host.timers.is_empty());
    assert_eq!(
        host.notice_kinds(Role::Subject),
        [Notice::RechargeFailed, Notice::AccountPaused]
    );
    assert_eq!(
        host.notices[0].message,
        "auto-recharge of 20.00 was declined"
    );
    assert_eq!(host.statuses, [Status::Paused]);
}

/// A user who needs 1,100.00 in fixed mode (threshold 1,100, amount 100) over a
/// host capping charges at 1,000.
fn over_the_cap_user() -> FakeHost {
    let mut host = FakeHost::user("u1");
    host.save_auto("u1", fixed("1100.00", "100.00", "card"))
        .unwrap();
    host
}

fn assert_never_paused(host: &FakeHost) {
    assert_eq!(host.status(), Status::Active);
    assert!(host.statuses.is_empty());
    assert!(!host.state().suspended);
    assert!(
        !host
            .notice_kinds(Role::Subject)
            .contains(&Notice::AccountPaused)
    );
    assert!(
        host.notices
            .iter()
            .all(|sent| !sent.message.contains("attempts")),
        "{:?}",
        host.notices
    );
}

#[test]
fn r5_a_refusal_over_the_charge_cap_is_not_a_card_failure() {
    let mut host = over_the_cap_user();
    // The largest multiple of the amount that fits, then the rest on its success.
    assert_eq!(amounts(&host), ["1000.00"]);
    assert_eq!(host.pending()[0].key, "u1/ar/1/1");
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    assert_eq!(amounts(&host), ["1000.00", "100.00"]);
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    assert_eq!(host.balance(), d("1100.00"));
    assert_eq!(
        host.notice_kinds(Role::Subject),
        [Notice::RechargeSucceeded, Notice::RechargeSucceeded]
    );
    assert_never_paused(&host);
    assert!(host.timers.is_empty());
}

#[test]
fn r5_over_the_cap_the_monthly_count_is_what_was_charged() {
    let mut host = FakeHost::user("u1");
    host.save_auto(
        "u1",
        with_limit(fixed("1100.00", "100.00", "card"), "1050.00"),
    )
    .unwrap();
    // 1,100.00 would exceed the limit: nothing is asked (R4 first).
    assert!(host.charges.is_empty());
    let mut host = FakeHost::user("u1");
    host.save_auto(
        "u1",
        with_limit(fixed("1100.00", "100.00", "card"), "1100.00"),
    )
    .unwrap();
    assert_eq!(amounts(&host), ["1000.00"]);
    assert_eq!(host.state().usage.charged, d("1000.00"));
}

#[test]
fn r5_over_the_cap_target_mode_charges_the_largest_whole_cent_amount() {
    let mut host = FakeHost::user("u1");
    host.charge_cap = d("777.77");
    host.set_balance("-0.50");
    host.save_auto("u1", target("10.00", "1234.56")).unwrap();
    assert_eq!(amounts(&host), ["777.77"]);
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    assert_eq!(host.balance(), d("777.27"));
    // At or above the threshold: the trigger has nothing more to charge.
    assert_eq!(host.charges.len(), 1);
    assert_never_paused(&host);
}

#[test]
fn r5_when_not_even_one_amount_fits_one_notice_and_no_pause() {
    let mut host = FakeHost::user("u1");
    host.save_auto("u1", fixed("10.00", "1200.00", "card"))
        .unwrap();
    assert!(host.charges.is_empty());
    assert_eq!(host.notice_kinds(Role::Subject), [Notice::RechargeFailed]);
    assert_eq!(
        host.notices[0].message,
        "auto-recharge of 1200.00 not made: the host refused it as over its per-charge cap; \
         no card was charged"
    );
    assert_never_paused(&host);
    assert!(host.state().refused);
    assert_eq!(host.subject.watermark, None, "usage need not even ask");
    // No notice storm: nothing is asked again until something changes.
    for _ in 0..5 {
        host.usage("3.00").unwrap();
    }
    host.handle(Event::Timer(0)).unwrap();
    assert_eq!(host.notices.len(), 1);
    assert!(host.charges.is_empty());
    // New settings that fit: asked at once.
    host.save_auto("u1", fixed("10.00", "500.00", "card"))
        .unwrap();
    assert_eq!(amounts(&host), ["500.00"]);
}

#[test]
fn r5_a_hold_after_a_refusal_ends_with_a_card_update_or_a_payment() {
    let mut host = FakeHost::user("u1");
    host.save_auto("u1", fixed("10.00", "20.00", "card"))
        .unwrap();
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    host.refuse_charges = Some(Refusal::UnknownCard);
    host.usage("15.00").unwrap();
    assert_eq!(
        host.notices.last().unwrap().message,
        "auto-recharge of 20.00 not made: the host refused it \
         (card is not a saved card of the payer); no card was charged"
    );
    assert_never_paused(&host);
    host.refuse_charges = None;
    host.usage("1.00").unwrap();
    assert_eq!(host.charges.len(), 1);
    host.handle(Event::CardUpdated("card".into())).unwrap();
    assert_eq!(host.charges.len(), 2, "a card update asks again");
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    // A payment lifts it too: the balance situation changed.
    host.refuse_charges = Some(Refusal::UnknownCard);
    host.usage("30.00").unwrap();
    assert!(host.state().refused);
    host.refuse_charges = None;
    host.top_up("u1", "card", "1.00").unwrap();
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    assert!(!host.state().refused);
    assert_eq!(host.pending()[0].purpose, Purpose::AutoRecharge);
    assert_never_paused(&host);
}

/// A user (threshold 10, amount 20, balance 15) on a host allowing two
/// auto-recharges a day, both made and paid on 2027-01-15.
fn capped_user() -> FakeHost {
    let mut host = recharging_user();
    host.daily_auto_recharges = Some(2);
    for _ in 0..2 {
        host.usage("20.00").unwrap();
        host.settle_last(ChargeOutcome::Succeeded).unwrap();
    }
    assert_eq!(host.charges.len(), 2);
    host
}

#[test]
fn r5_at_the_daily_count_cap_the_recharge_waits_for_the_next_utc_day() {
    let mut host = capped_user();
    host.usage("30.00").unwrap();
    assert_eq!(host.charges.len(), 2);
    let deferred: Vec<_> = host
        .notices
        .iter()
        .filter(|sent| sent.message.contains("deferred"))
        .collect();
    assert_eq!(deferred.len(), 1);
    assert_eq!(
        deferred[0].message,
        "auto-recharge of 40.00 deferred to the next UTC day: the host's daily count of \
         auto-recharges is reached; no card was charged"
    );
    assert_eq!(host.timers.len(), 1);
    assert_eq!(host.timers[0].at, at("2027-01-16 00:00"));
    assert_eq!(host.state().recharge, None);
    // One notice: later usage that day asks nothing.
    host.usage("1.00").unwrap();
    host.advance_to(at("2027-01-15 23:59")).unwrap();
    assert_eq!(host.notices.len(), 3, "two successes, the deferral");
    assert_eq!(host.charges.len(), 2);
    // The next UTC day: the trigger runs again, on the balance then.
    host.advance_to(at("2027-01-16 00:00")).unwrap();
    assert_eq!(host.charges.len(), 3);
    assert_eq!(host.charges[2].at, at("2027-01-16 00:00"));
    assert_eq!(host.charges[2].amount, d("40.00"));
    assert_eq!(host.state().deferred_until, None);
    assert_never_paused(&host);
}

#[test]
fn r5_a_retry_refused_at_the_daily_cap_is_deferred_not_counted_as_failed() {
    let mut host = recharging_user();
    host.daily_auto_recharges = Some(1);
    let t = host.now;
    host.usage("6.00").unwrap();
    host.settle_last(ChargeOutcome::Failed).unwrap();
    // The retry at T+5m is refused: it waits for the next day, as attempt 2.
    host.advance(5 * MINUTE).unwrap();
    assert_eq!(host.charges.len(), 1);
    assert_eq!(host.timers.len(), 1);
    assert_eq!(host.timers[0].at, at("2027-01-16 00:00"));
    host.advance_to(at("2027-01-16 00:00")).unwrap();
    assert_eq!(host.pending()[0].key, "u1/ar/1/2");
    // Two real failures so far; the schedule goes on from the deferred attempt.
    host.settle_last(ChargeOutcome::Failed).unwrap();
    assert_eq!(host.timers[0].at, at("2027-01-16 00:30"));
    assert_eq!(host.status(), Status::Active);
    assert!(host.charges[0].at == t);
    let deferred = host
        .notices
        .iter()
        .filter(|sent| sent.message.contains("deferred"))
        .count();
    assert_eq!(deferred, 1);
}

// R6 ---------------------------------------------------------------------------

#[test]
fn r6_top_up_success_resumes_a_paused_account() {
    let mut host = paused_user();
    host.top_up("u1", "card", "30.00").unwrap();
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    assert_eq!(host.status(), Status::Active);
    assert!(!host.state().suspended);
    assert_eq!(
        host.notice_kinds(Role::Subject).last(),
        Some(&Notice::AccountResumed)
    );
    assert_eq!(host.balance(), d("39.00"));
}

#[test]
fn r6_card_update_clears_suspension_and_reruns_the_trigger() {
    let mut host = paused_user();
    host.usage("1").unwrap();
    assert_eq!(host.charges.len(), 1, "suspended");
    host.handle(Event::CardUpdated("card".into())).unwrap();
    assert!(!host.state().suspended);
    assert_eq!(
        host.status(),
        Status::Paused,
        "paused until a payment succeeds"
    );
    assert_eq!(amounts(&host), ["20.00", "20.00"]);
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    assert_eq!(host.status(), Status::Active);
    assert_eq!(
        host.notice_kinds(Role::Subject),
        [
            Notice::RechargeFailed,
            Notice::AccountPaused,
            Notice::RechargeSucceeded,
            Notice::AccountResumed
        ]
    );
}

#[test]
fn r6_disabling_cancels_pending_retries() {
    let mut host = FakeHost::user("u1");
    host.set_balance("15.00");
    host.save_auto("u1", with_limit(fixed("10", "20", "card"), "20"))
        .unwrap();
    host.usage("6").unwrap();
    host.settle_last(ChargeOutcome::Failed).unwrap();
    assert_eq!(host.timers.len(), 1);
    let off = AutoRechargeSettings {
        enabled: false,
        ..fixed("10", "20", "card")
    };
    host.save_auto("u1", off).unwrap();
    assert_eq!(host.state().recharge, None);
    host.advance(3 * 60 * MINUTE).unwrap();
    assert_eq!(host.charges.len(), 1, "the stale retry timer did nothing");
    // The cancelled recharge no longer counts: 20 fits the limit of 20 again.
    host.save_auto("u1", with_limit(fixed("10", "20", "card"), "20"))
        .unwrap();
    assert_eq!(host.pending()[0].key, "u1/ar/2/1");
    assert!(
        !host
            .notice_kinds(Role::Subject)
            .contains(&Notice::RechargeLimitReached)
    );
}

#[test]
fn r6_disabling_keeps_a_charge_already_executing() {
    let mut host = recharging_user();
    host.usage("6").unwrap();
    let off = AutoRechargeSettings {
        enabled: false,
        ..fixed("10", "20", "card")
    };
    host.save_auto("u1", off).unwrap();
    assert!(host.state().recharge.is_some());
    // Its failure is final, without a retry or a pause: auto-recharge is off.
    host.settle_last(ChargeOutcome::Failed).unwrap();
    assert!(host.timers.is_empty());
    assert_eq!(host.state().recharge, None);
    assert_eq!(host.status(), Status::Active);
    assert_eq!(host.notice_kinds(Role::Subject), [Notice::RechargeFailed]);
}

#[test]
fn r6_late_success_for_an_unknown_key_still_resumes() {
    let mut host = paused_user();
    let late = host.charges[0].clone();
    host.handle(Event::PaymentOutcome(crate::model::PaymentOutcome {
        key: "u1/ar/99/1".into(),
        outcome: ChargeOutcome::Succeeded,
        amount: late.amount,
        purpose: Purpose::AutoRecharge,
        payer: "u1".into(),
        reference: None,
        reason: None,
    }))
    .unwrap();
    assert_eq!(host.status(), Status::Active);
    assert_eq!(
        &host.notice_kinds(Role::Subject)[2..],
        [Notice::RechargeSucceeded, Notice::AccountResumed]
    );
}

#[test]
fn r6_late_failure_for_an_unknown_key_is_ignored() {
    let mut host = recharging_user();
    host.usage("6").unwrap();
    let before = host.clone();
    host.handle(Event::PaymentOutcome(crate::model::PaymentOutcome {
        key: "u1/ar/99/1".into(),
        outcome: ChargeOutcome::Declined,
        amount: d("20"),
        purpose: Purpose::AutoRecharge,
        payer: "u1".into(),
        reference: None,
        reason: None,
    }))
    .unwrap();
    assert_eq!(host.subject.state, before.subject.state);
    assert_eq!(host.notices, before.notices);
    assert_eq!(host.status(), Status::Active);
}

#[test]
fn r6_saving_a_different_card_lifts_the_suspension() {
    let mut host = paused_user();
    host.save_auto("u1", fixed("10.00", "20.00", "card"))
        .unwrap();
    assert_eq!(host.charges.len(), 1, "same card: still suspended");
    host.subject.cards.push("card-2".into());
    host.save_auto("u1", fixed("10.00", "20.00", "card-2"))
        .unwrap();
    assert_eq!(host.pending()[0].card, "card-2");
}

// R7 ---------------------------------------------------------------------------

fn sub_account() -> FakeHost {
    FakeHost::sub_account("s1", "a1")
}

#[test]
fn r7_save_buys_at_once_and_schedules_the_next_run() {
    let mut host = sub_account();
    host.save_allocation("a1", 100, 50, "agency-card").unwrap();
    assert_eq!(host.charges.len(), 1);
    let charge = &host.charges[0];
    assert_eq!(charge.payer, Role::Parent);
    assert_eq!(charge.card, "agency-card");
    assert_eq!(charge.amount.to_string(), "17.00");
    assert_eq!(charge.key, "s1/alloc/1/0/1");
    assert_eq!(
        charge.purpose,
        Purpose::Allocation(MinutePurchase {
            beneficiary: "s1".into(),
            basic_minutes: 100,
            premium_minutes: 50
        })
    );
    assert_eq!(host.timers.len(), 1);
    assert_eq!(host.timers[0].at, at("2027-02-15 12:00"));
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    assert_eq!(host.subject.snapshot.basic_seconds, 6000);
    assert_eq!(
        host.notice_kinds(Role::Parent),
        [Notice::AllocationSucceeded]
    );
    assert_eq!(
        host.notices[0].message,
        "allocation of 100 basic and 50 premium minutes for s1 succeeded: 17.00 charged"
    );
    let view = super::describe(&host).allocation.unwrap();
    assert_eq!(view.next_run, at("2027-02-15 12:00"));
}

fn run_times(anchor: &str, runs: usize) -> Vec<i64> {
    let mut host = sub_account();
    host.now = at(anchor);
    host.save_allocation("a1", 10, 0, "agency-card").unwrap();
    for _ in 0..runs {
        host.settle_last(ChargeOutcome::Succeeded).unwrap();
        let next = host.timers[0].at;
        host.advance_to(next).unwrap();
    }
    host.charges.iter().map(|charge| charge.at).collect()
}

#[test]
fn r7_anchor_clamps_jan31_feb28_mar31() {
    assert_eq!(
        run_times("2027-01-31 09:15", 4),
        [
            at("2027-01-31 09:15"),
            at("2027-02-28 09:15"),
            at("2027-03-31 09:15"),
            at("2027-04-30 09:15"),
            at("2027-05-31 09:15")
        ]
    );
}

#[test]
fn r7_leap_year_feb29_2028() {
    assert_eq!(
        run_times("2028-01-31 00:00", 2),
        [
            at("2028-01-31 00:00"),
            at("2028-02-29 00:00"),
            at("2028-03-31 00:00")
        ]
    );
}

#[test]
fn r7_resave_does_not_buy_twice() {
    let mut host = sub_account();
    host.save_allocation("a1", 100, 50, "agency-card").unwrap();
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    host.advance(MINUTE).unwrap();
    host.save_allocation("a1", 200, 0, "agency-card").unwrap();
    assert_eq!(host.charges.len(), 1);
    assert_eq!(
        host.query("a1", QueryKind::Estimate),
        Ok(Answer::Estimate(d("18.00")))
    );
    // The next run buys the new allocation, on the original schedule.
    host.advance_to(at("2027-02-15 12:00")).unwrap();
    assert_eq!(host.charges.len(), 2);
    assert_eq!(host.charges[1].at, at("2027-02-15 12:00"));
    assert_eq!(host.charges[1].amount.to_string(), "18.00");
}

#[test]
fn r7_zero_zero_stops() {
    let mut host = sub_account();
    host.save_allocation("a1", 100, 50, "agency-card").unwrap();
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    host.save_allocation("a1", 0, 0, "").unwrap();
    assert_eq!(super::describe(&host).allocation, None);
    assert_eq!(
        host.query("a1", QueryKind::Estimate),
        Ok(Answer::Estimate(d("0.00")))
    );
    host.advance_to(at("2027-06-01 00:00")).unwrap();
    assert_eq!(host.charges.len(), 1, "stale run timers do nothing");
    // Starting again anchors a new schedule with fresh keys.
    host.save_allocation("a1", 1, 0, "agency-card").unwrap();
    assert_eq!(host.pending()[0].key, "s1/alloc/2/0/1");
}

#[test]
fn r7_validates_minutes_and_the_agency_card() {
    let mut host = sub_account();
    assert!(is_invalid(
        host.save_allocation("a1", -1, 0, "agency-card"),
        "basic_minutes"
    ));
    assert!(is_invalid(
        host.save_allocation("a1", 0, -1, "agency-card"),
        "premium_minutes"
    ));
    let result = host.save_allocation("a1", 10, 0, "card");
    assert!(
        matches!(result, Err(PolicyError::PaymentMethodRequired(_))),
        "the sub-account's card is not the agency's"
    );
    host.save_allocation("a1", 0, 0, "no-card-needed").unwrap();
    assert!(host.charges.is_empty());
    assert_eq!(host.set_state_calls, 0);
}

#[test]
fn r7_failures_retry_then_tell_the_agency_and_keep_the_schedule() {
    let mut host = sub_account();
    let t = host.now;
    host.save_allocation("a1", 100, 50, "agency-card").unwrap();
    for _ in 0..4 {
        host.settle_last(ChargeOutcome::Failed).unwrap();
        let retry = host.timers.iter().map(|timer| timer.at).min().unwrap();
        if retry < at("2027-02-01 00:00") {
            host.advance_to(retry).unwrap();
        }
    }
    let times: Vec<_> = host.charges.iter().map(|charge| charge.at - t).collect();
    assert_eq!(times, [0, 5 * MINUTE, 35 * MINUTE, 155 * MINUTE]);
    let keys: Vec<_> = host
        .charges
        .iter()
        .map(|charge| charge.key.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "s1/alloc/1/0/1",
            "s1/alloc/1/0/2",
            "s1/alloc/1/0/3",
            "s1/alloc/1/0/4"
        ]
    );
    assert_eq!(host.notice_kinds(Role::Parent), [Notice::AllocationFailed]);
    assert!(host.notice_kinds(Role::Subject).is_empty());
    assert_eq!(host.subject.snapshot.basic_seconds, 0);
    assert_eq!(host.status(), Status::Active);
    // The next run stays as scheduled.
    host.advance_to(at("2027-02-15 12:00")).unwrap();
    assert_eq!(host.pending()[0].key, "s1/alloc/1/1/1");
    host.settle_last(ChargeOutcome::Declined).unwrap();
    assert_eq!(
        host.notice_kinds(Role::Parent),
        [Notice::AllocationFailed, Notice::AllocationFailed]
    );
}

#[test]
fn r7_never_touches_the_agency() {
    let mut host = sub_account();
    let agency = host.parent.clone().unwrap();
    host.save_allocation("a1", 100, 50, "agency-card").unwrap();
    host.settle_last(ChargeOutcome::Declined).unwrap();
    host.advance_to(at("2027-02-15 12:00")).unwrap();
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    let after = host.parent.clone().unwrap();
    assert_eq!(after.snapshot, agency.snapshot);
    assert_eq!(after.state, agency.state);
    assert!(host.statuses.is_empty());
}

#[test]
fn r7_each_run_uses_the_rates_in_force() {
    let mut host = sub_account();
    host.save_allocation("a1", 100, 50, "agency-card").unwrap();
    host.rates = Rates {
        basic: d("0.10"),
        premium: d("0.20"),
    };
    assert_eq!(
        host.query("s1", QueryKind::Estimate),
        Ok(Answer::Estimate(d("20.00")))
    );
    host.advance_to(at("2027-02-15 12:00")).unwrap();
    assert_eq!(amounts(&host), ["17.00", "20.00"]);
}

#[test]
fn r7_one_purchase_per_period() {
    let mut host = sub_account();
    host.save_allocation("a1", 10, 0, "agency-card").unwrap();
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    // Runs of February, March and April, purchases left unanswered.
    host.advance_to(at("2027-05-01 00:00")).unwrap();
    let keys: Vec<_> = host
        .charges
        .iter()
        .map(|charge| charge.key.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "s1/alloc/1/0/1",
            "s1/alloc/1/1/1",
            "s1/alloc/1/2/1",
            "s1/alloc/1/3/1"
        ]
    );
    // A duplicate run timer for a paid period buys nothing.
    let paid = super::keys::TimerTag::AllocationRun {
        series: 1,
        period: 0,
    }
    .encode()
    .unwrap();
    host.handle(Event::Timer(paid)).unwrap();
    assert_eq!(host.charges.len(), 4);
}

#[test]
fn r7_an_allocation_priced_over_the_cap_is_rejected_when_saved() {
    let mut host = sub_account();
    host.charge_cap = d("10.00");
    let result = host.save_allocation("a1", 100, 50, "agency-card");
    assert_eq!(
        result,
        Err(PolicyError::InvalidSettings(
            "the allocation's price of 17.00 is over the host's per-charge cap".into()
        ))
    );
    // The host drops the rejected event's wake-up (H4); this fake keeps calls.
    assert!(host.charges.is_empty() && host.notices.is_empty());
    assert_eq!(host.set_state_calls, 0, "a rejected save changes nothing");
    host.timers.clear();
    // Saving while active is checked too, though it buys nothing now.
    host.save_allocation("a1", 100, 0, "agency-card").unwrap();
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    let before = host.subject.state.clone();
    let result = host.save_allocation("a1", 200, 0, "agency-card");
    assert!(is_invalid(result, "per-charge cap"));
    assert_eq!(host.subject.state, before);
    assert_eq!(host.charges.len(), 1);
}

#[test]
fn r7_a_refused_run_is_not_a_card_failure_and_keeps_the_schedule() {
    let mut host = sub_account();
    host.charge_cap = d("20.00");
    host.save_allocation("a1", 100, 50, "agency-card").unwrap();
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    // New rates price February's run at 28.00, over the cap.
    host.rates = Rates {
        basic: d("0.20"),
        premium: d("0.16"),
    };
    host.advance_to(at("2027-02-15 12:00")).unwrap();
    assert_eq!(host.charges.len(), 1);
    assert_eq!(
        host.notices.last().unwrap().message,
        "allocation of 100 basic and 50 premium minutes for s1 not made: the host refused it \
         as over its per-charge cap; no card was charged"
    );
    assert_eq!(
        host.notice_kinds(Role::Parent),
        [Notice::AllocationSucceeded, Notice::AllocationFailed]
    );
    // No retries, nothing credited, the next run as scheduled.
    assert_eq!(host.subject.snapshot.basic_seconds, 6000);
    assert_eq!(host.timers.len(), 1);
    assert_eq!(host.timers[0].at, at("2027-03-15 12:00"));
    assert_eq!(host.state().allocation.unwrap().purchase, None);
    host.rates = Rates {
        basic: d("0.09"),
        premium: d("0.16"),
    };
    host.advance_to(at("2027-03-15 12:00")).unwrap();
    assert_eq!(amounts(&host), ["17.00", "17.00"]);
    assert!(host.statuses.is_empty());
}

// R8 ---------------------------------------------------------------------------

#[test]
fn r8_top_up_charges_once_without_retries() {
    let mut host = FakeHost::user("u1");
    host.top_up("u1", "card", "25.00").unwrap();
    assert_eq!(amounts(&host), ["25.00"]);
    assert_eq!(host.charges[0].purpose, Purpose::TopUp);
    assert_eq!(host.charges[0].key, "u1/topup/1");
    host.settle_last(ChargeOutcome::Failed).unwrap();
    host.advance(24 * 60 * MINUTE).unwrap();
    assert_eq!(host.charges.len(), 1);
    assert_eq!(host.notice_kinds(Role::Subject), [Notice::TopUpFailed]);
    assert_eq!(host.notices[0].message, "top-up of 25.00 failed");
    host.top_up("u1", "card", "25.00").unwrap();
    assert_eq!(host.charges[1].key, "u1/topup/2");
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    assert_eq!(host.balance(), d("25.00"));
    assert_eq!(host.notice_kinds(Role::Subject), [Notice::TopUpFailed]);
}

#[test]
fn r8_top_up_validates_amount_then_card() {
    let mut host = FakeHost::user("u1");
    assert!(is_invalid(host.top_up("u1", "card", "0"), "amount"));
    assert!(is_invalid(host.top_up("u1", "card", "1.001"), "amount"));
    assert!(is_invalid(host.top_up("u1", "nope", "-1"), "amount"));
    let result = host.top_up("u1", "nope", "10");
    assert!(
        matches!(result, Err(PolicyError::PaymentMethodRequired(_))),
        "{result:?}"
    );
    assert!(host.charges.is_empty());
}

#[test]
fn r8_success_reruns_the_trigger() {
    let mut host = FakeHost::user("u1");
    host.set_balance("-50");
    host.save_auto("u1", with_limit(fixed("10", "20", "card"), "20"))
        .unwrap();
    assert_eq!(host.charges.len(), 0, "80 needed, over the limit");
    host.top_up("u1", "card", "45").unwrap();
    host.settle_last(ChargeOutcome::Succeeded).unwrap();
    assert_eq!(amounts(&host), ["45", "20"]);
}

// R9 ---------------------------------------------------------------------------

#[test]
fn r9_service_needs_active_and_a_balance_or_minutes() {
    let mut host = FakeHost::user("u1");
    let can_call = |host: &FakeHost| host.query("u1", QueryKind::Service);
    assert_eq!(can_call(&host), Ok(Answer::Service(false)));
    host.set_balance("0.01");
    assert_eq!(can_call(&host), Ok(Answer::Service(true)));
    host.set_balance("-1");
    assert_eq!(can_call(&host), Ok(Answer::Service(false)));
    host.subject.snapshot.included_premium_seconds = 1;
    assert_eq!(can_call(&host), Ok(Answer::Service(true)));
    host.subject.snapshot.status = Status::Paused;
    assert_eq!(can_call(&host), Ok(Answer::Service(false)));
}

#[test]
fn r9_balance_and_estimate_answers() {
    let mut host = sub_account();
    host.set_balance("4.20");
    assert_eq!(
        host.query("s1", QueryKind::Balance),
        Ok(Answer::Balance(host.subject.snapshot.clone()))
    );
    assert_eq!(
        host.query("a1", QueryKind::Estimate),
        Ok(Answer::Estimate(d("0.00")))
    );
    host.save_allocation("a1", 100, 50, "agency-card").unwrap();
    assert_eq!(
        host.query("a1", QueryKind::Estimate),
        Ok(Answer::Estimate(d("17.00")))
    );
}

#[test]
fn queries_change_nothing() {
    let mut host = sub_account();
    host.save_allocation("a1", 100, 50, "agency-card").unwrap();
    let before = host.clone();
    for what in [
        QueryKind::AutoRecharge,
        QueryKind::Estimate,
        QueryKind::Service,
        QueryKind::Balance,
    ] {
        host.query("a1", what).unwrap();
    }
    assert_eq!(host.set_state_calls, before.set_state_calls);
    assert_eq!(host.charges, before.charges);
    assert_eq!(host.notices, before.notices);
}

// Authorization ----------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Op {
    SaveAutoRecharge,
    SaveAllocation,
    TopUp,
    Query(QueryKind),
}

fn attempt(host: &mut FakeHost, actor: &str, op: Op) -> Result<(), PolicyError> {
    match op {
        Op::SaveAutoRecharge => host.save_auto(actor, fixed("5", "10", "card")),
        Op::SaveAllocation => host.save_allocation(actor, 100, 50, "agency-card"),
        Op::TopUp => host.top_up(actor, "card", "10.00"),
        Op::Query(what) => host.query(actor, what).map(|_| ()),
    }
}

const QUERIES: [Op; 4] = [
    Op::Query(QueryKind::AutoRecharge),
    Op::Query(QueryKind::Estimate),
    Op::Query(QueryKind::Service),
    Op::Query(QueryKind::Balance),
];

#[test]
fn authorization_matrix() {
    // (subject, actor, who the actor is, allowed ops)
    let sub = || FakeHost::sub_account("s1", "a1");
    let user = || FakeHost::user("u1");
    let agency = || FakeHost::agency("a1");
    type Case = (
        fn() -> FakeHost,
        &'static str,
        &'static str,
        [bool; 3],
        bool,
    );
    // [save auto-recharge, save allocation, top-up], queries
    let cases: [Case; 11] = [
        (sub, "s1", "self (sub-account)", [true, false, true], true),
        (sub, "a1", "parent agency", [false, true, false], true),
        (sub, "a2", "foreign agency", [false, false, false], false),
        (
            sub,
            "s2",
            "sibling sub-account",
            [false, false, false],
            false,
        ),
        (user, "u1", "self (user)", [true, false, true], true),
        (user, "a1", "foreign agency", [false, false, false], false),
        (user, "u2", "another user", [false, false, false], false),
        (user, "", "nobody", [false, false, false], false),
        (agency, "a1", "self (agency)", [true, false, true], true),
        (agency, "a2", "foreign agency", [false, false, false], false),
        (agency, "s1", "a sub-account", [false, false, false], false),
    ];
    for (make, actor, who, settings, queries) in cases {
        let ops = [Op::SaveAutoRecharge, Op::SaveAllocation, Op::TopUp]
            .into_iter()
            .zip(settings);
        for (op, allowed) in ops.chain(QUERIES.into_iter().map(|op| (op, queries))) {
            let mut host = make();
            let result = attempt(&mut host, actor, op);
            if allowed {
                assert_eq!(result, Ok(()), "{who} {actor:?} {op:?}");
            } else {
                assert!(
                    matches!(result, Err(PolicyError::Forbidden(_))),
                    "{who} {actor:?} {op:?}: {result:?}"
                );
                assert!(
                    host.charges.is_empty() && host.set_state_calls == 0,
                    "{who} {op:?}"
                );
            }
        }
    }
}

#[test]
fn authorization_comes_before_validation() {
    let mut host = sub_account();
    let bad_auto = fixed("-1", "0", "no-card");
    assert!(matches!(
        host.save_auto("a1", bad_auto.clone()),
        Err(PolicyError::Forbidden(_))
    ));
    assert!(matches!(
        host.save_auto("s1", bad_auto),
        Err(PolicyError::InvalidSettings(_))
    ));
    assert!(matches!(
        host.save_allocation("s1", -1, 0, "no-card"),
        Err(PolicyError::Forbidden(_))
    ));
    assert!(matches!(
        host.save_allocation("a2", 10, 0, "no-card"),
        Err(PolicyError::Forbidden(_))
    ));
    assert!(matches!(
        host.top_up("a1", "no-card", "-1"),
        Err(PolicyError::Forbidden(_))
    ));
}

// Timers, state and quotes -------------------------------------------------------

#[test]
fn unknown_and_stale_timers_do_nothing() {
    let mut host = recharging_user();
    host.usage("6").unwrap();
    let before = host.clone();
    for tag in [0, u64::MAX, 1 << 60 | 5 << 28 | 2] {
        host.handle(Event::Timer(tag)).unwrap();
    }
    assert_eq!(host.charges, before.charges);
    assert_eq!(host.subject.state, before.subject.state);
}

#[test]
fn garbage_state_reads_as_fresh() {
    let mut host = FakeHost::user("u1");
    host.subject.state = vec![1, 0xff, 0x80, 0x80];
    host.usage("5").unwrap();
    assert_eq!(super::describe(&host), crate::model::AccountView::default());
    host.save_auto("u1", fixed("10", "20", "card")).unwrap();
    assert_eq!(amounts(&host), ["20"]);
}

#[test]
fn describe_reports_settings_and_the_next_run() {
    let mut host = sub_account();
    host.save_auto("s1", fixed("0", "20", "card")).unwrap();
    host.save_allocation("a1", 3, 4, "agency-card").unwrap();
    let view = super::describe(&host);
    assert_eq!(view.auto_recharge, Some(fixed("0", "20", "card")));
    let allocation = view.allocation.unwrap();
    assert_eq!(
        allocation.settings,
        AllocationSettings {
            basic_minutes: 3,
            premium_minutes: 4,
            card: "agency-card".into()
        }
    );
    assert_eq!(allocation.next_run, at("2027-02-15 12:00"));
}

#[test]
fn quotes() {
    let rates = Rates {
        basic: d("0.09"),
        premium: d("0.16"),
    };
    assert_eq!(super::estimate(100, 50, &rates).to_string(), "17.00");
    assert_eq!(super::estimate(0, 0, &rates), d("0"));
    assert_eq!(
        super::estimate(
            i64::MAX,
            i64::MAX,
            &Rates {
                basic: rust_decimal::Decimal::MAX,
                premium: d("1")
            }
        ),
        rust_decimal::Decimal::MAX
    );
    let quote = super::minutes_for(d("10.00"), &rates);
    assert_eq!((quote.basic_minutes, quote.premium_minutes), (111, 62));
}

#[test]
fn r2_usage_matters_only_below_the_watermark() {
    use crate::{DefaultPolicy, PolicyRules};
    let matters = |balance: &str, watermark: Option<&str>| {
        DefaultPolicy::usage_matters(d(balance), watermark.map(d))
    };
    assert!(matters("9.99", Some("10.00")));
    // Equal to the threshold does not trigger.
    assert!(!matters("10.00", Some("10.00")));
    assert!(!matters("10.0000", Some("10.00")));
    assert!(!matters("25.00", Some("10.00")));
    // No watermark: nothing can trigger.
    assert!(!matters("-5.00", None));
}

// R5: requires_action ------------------------------------------------------------

#[test]
fn r5_requires_action_is_one_attempt_one_notice_and_no_retry() {
    let mut host = recharging_user();
    host.usage("6.00").unwrap();
    host.settle_last(ChargeOutcome::RequiresAction).unwrap();
    // Treated as after a decline: suspended and paused, never retried blindly.
    host.advance(24 * 60 * MINUTE).unwrap();
    host.usage("1.00").unwrap();
    assert_eq!(amounts(&host), ["20.00"]);
    assert_eq!(host.status(), Status::Paused);
    assert_eq!(
        host.notice_kinds(Role::Subject),
        [Notice::PaymentActionRequired, Notice::AccountPaused]
    );
    // The customer authenticates the card: the suspension clears and the
    // trigger runs again (R6).
    host.handle(Event::CardUpdated("card".into())).unwrap();
    assert_eq!(amounts(&host), ["20.00", "20.00"]);
}

#[test]
fn r7_requires_action_tells_the_agency_once_and_keeps_the_schedule() {
    let mut host = sub_account();
    host.save_allocation("a1", 100, 50, "agency-card").unwrap();
    host.settle_last(ChargeOutcome::RequiresAction).unwrap();
    host.advance(6 * 60 * MINUTE).unwrap();
    assert_eq!(host.charges.len(), 1);
    assert_eq!(
        host.notice_kinds(Role::Parent),
        [Notice::PaymentActionRequired]
    );
    assert!(
        host.timers
            .iter()
            .any(|timer| timer.at >= at("2027-02-01 00:00"))
    );
}

#[test]
fn r8_a_top_up_needing_authentication_says_so() {
    let mut host = FakeHost::user("u1");
    host.top_up("u1", "card", "25.00").unwrap();
    host.settle_last(ChargeOutcome::RequiresAction).unwrap();
    assert_eq!(
        host.notice_kinds(Role::Subject),
        [Notice::PaymentActionRequired]
    );
    assert_eq!(host.balance(), d("0"));
}
