//! Input the host cannot take is rejected by the platform itself, before any
//! policy sees it: never a `policy_fault`, never a step towards quarantine,
//! never an account left unusable.

use recharge_host::input::BadInput;
use recharge_host::model::MinuteType;
use recharge_host::{HostError, InvalidCommand};

use super::*;

fn is_bad_input(result: &Result<impl std::fmt::Debug, HostError>) -> bool {
    matches!(result, Err(HostError::Invalid(InvalidCommand::BadInput(_))))
}

#[test]
fn bad_input_never_reaches_a_tenant_policy_or_quarantines_it() {
    // No tenant blamed, nothing lost: money out of range or beyond its
    // precision, a call of 2^63-1 seconds and over-long ids are the caller's
    // mistakes, rejected before the tenant's policy runs, however often; the
    // account goes on serving afterwards.
    let h = harness();
    let acme = h.user("acme");
    h.platform
        .set_policy(&acme, super::tenant::weekday_refill())
        .unwrap();
    for _ in 0..4 {
        let huge = Decimal::from_str("9999999999999999999999999999").unwrap();
        assert!(is_bad_input(&h.platform.top_up(&acme, &acme, "visa", huge)));
        let precise = Decimal::from_str("10.0000000000000000001").unwrap();
        assert!(is_bad_input(
            &h.platform.top_up(&acme, &acme, "visa", precise)
        ));
        let forever = h
            .platform
            .record_usage(&acme, "c", i64::MAX, MinuteType::Basic);
        assert!(is_bad_input(&forever), "{forever:?}");
    }
    let long = AccountId::from("a".repeat(300).as_str());
    let opened = h.platform.open_account(long, AccountKind::User, None);
    assert!(
        matches!(
            opened,
            Err(HostError::Invalid(InvalidCommand::BadInput(
                BadInput::IdTooLong { len: 300, .. }
            )))
        ),
        "{opened:?}"
    );
    assert!(h.platform.notifications().unwrap().is_empty());
    h.platform.top_up(&acme, &acme, "visa", d("10.00")).unwrap();
    h.platform
        .record_usage(&acme, "c", 60, MinuteType::Basic)
        .unwrap();
    assert_eq!(h.balance(&acme), d("9.91"));
}
