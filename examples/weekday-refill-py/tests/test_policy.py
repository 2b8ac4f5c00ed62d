import unittest
from decimal import Decimal as D

from recharge_policy import (
    AutoRechargeSettings,
    Answer,
    ChargeOutcome,
    Event,
    Mode,
    Notice,
    PolicyError,
    Purpose,
    QueryKind,
    Role,
    Status,
    exact,
)
from recharge_policy.testing import MemoryCaps, account

from weekday_refill import next_monday, policy
from weekday_refill.state import State

SATURDAY = 1_767_398_400_000  # 2026-01-03T00:00:00Z
MONDAY_AFTER = 1_767_571_200_000  # 2026-01-05T00:00:00Z
TUESDAY = MONDAY_AFTER + 86_400_000


def settings(**fields) -> AutoRechargeSettings:
    values = dict(enabled=True, threshold=D("10.00"), amount=D("50.00"), card="visa", mode=Mode.TARGET, monthly_limit=None)
    values.update(fields)
    return AutoRechargeSettings(**values)


def host(balance="0.00", now=TUESDAY, state=None) -> MemoryCaps:
    subject = account("acme", cards=["visa"], balance=D(balance))
    if state is not None:
        subject.state = state.encode()
    return MemoryCaps(subject, now=now)


def save(actor, **fields):
    return Event.SaveAutoRecharge(actor, settings(**fields))


class WeekdayRefillTest(unittest.TestCase):
    def setUp(self):
        context = exact()
        context.__enter__()
        self.addCleanup(context.__exit__, None, None, None)

    def test_weekends_wait_for_monday_midnight(self):
        self.assertEqual(next_monday(SATURDAY + 3_600_000), MONDAY_AFTER)
        self.assertEqual(next_monday(SATURDAY + 86_400_000), MONDAY_AFTER)
        self.assertIsNone(next_monday(MONDAY_AFTER))
        self.assertIsNone(next_monday(-9_000_000_000_000_000))

    def test_a_weekday_shortfall_refills_to_the_target_in_whole_cents_once(self):
        caps = host(balance="7.3333")
        policy.handle(save("acme"), False, caps)
        self.assertEqual(
            caps.charges,
            [dict(payer="acme", card="visa", amount=D("42.67"), purpose=Purpose.AutoRecharge(), key="weekday/0")],
        )
        self.assertEqual(caps.state(Role.SUBJECT), b"v1|1|1|1|10.00|50.00|visa")
        policy.handle(Event.Usage(60, None, D("0.09")), False, caps)
        self.assertEqual(len(caps.charges), 1, "one refill in flight at most")

    def test_a_weekend_shortfall_asks_to_wake_on_monday_and_charges_nothing(self):
        caps = host(now=SATURDAY)
        policy.handle(save("acme"), False, caps)
        self.assertEqual(caps.charges, [])
        self.assertEqual(caps.timers, [("acme", MONDAY_AFTER, 1)])

    def test_the_balance_at_the_threshold_does_not_trigger(self):
        caps = host(balance="10.00")
        policy.handle(save("acme"), False, caps)
        self.assertEqual(caps.charges, [])

    def test_only_the_account_saves_whatever_else_is_wrong(self):
        with self.assertRaises(PolicyError) as raised:
            policy.handle(save("agency", threshold=D("-1")), True, host())
        self.assertEqual(raised.exception, PolicyError.forbidden("only the account saves its settings"))

    def test_settings_are_validated_then_the_card(self):
        cases = [
            (save("acme", amount=D("10.00")), PolicyError.invalid_settings(
                "threshold and target must be whole cents, the target above the threshold")),
            (save("acme", card="amex"), PolicyError.payment_method_required("no saved card amex")),
            (Event.SaveAllocation("acme", None), PolicyError.forbidden("this policy sells no monthly allocations")),
        ]
        for event, error in cases:
            with self.subTest(error=error), self.assertRaises(PolicyError) as raised:
                policy.handle(event, False, host())
            self.assertEqual(raised.exception, error)

    def test_outcomes_clear_the_flight_and_notify_in_the_rust_texts(self):
        caps = host(balance="60.00", state=State(settings(), True, 1))
        caps.set_status(Role.SUBJECT, Status.PAUSED)
        paid = dict(key="weekday/0", amount=D("42.6700"), payer="acme")
        policy.handle(Event.PaymentOutcome(outcome=ChargeOutcome.SUCCEEDED, purpose=Purpose.AutoRecharge(), **paid), False, caps)
        policy.handle(Event.PaymentOutcome(outcome=ChargeOutcome.DECLINED, purpose=Purpose.TopUp(), **paid), False, caps)
        paid["amount"] = D("5")
        policy.handle(Event.PaymentOutcome(outcome=ChargeOutcome.FAILED, purpose=Purpose.AutoRecharge(), **paid), False, caps)
        self.assertEqual(
            [(kind, message) for _, kind, message in caps.notices],
            [
                (Notice.RECHARGE_SUCCEEDED, "refilled 42.67"),
                (Notice.ACCOUNT_RESUMED, "payment received"),
                (Notice.TOP_UP_FAILED, "top-up of 42.67 failed"),
                (Notice.RECHARGE_FAILED, "refill of 5.00 failed"),
            ],
        )
        self.assertIs(caps.status(Role.SUBJECT), Status.ACTIVE)
        self.assertEqual(caps.state(Role.SUBJECT), b"v1|1|0|1|10.00|50.00|visa")

    def test_a_top_up_charges_once_with_its_own_key(self):
        caps = host(balance="20.00")
        for amount, card, error in [
            ("0.001", "visa", PolicyError.invalid_settings("amount must be positive whole cents")),
            ("5", "amex", PolicyError.payment_method_required("no saved card amex")),
        ]:
            with self.assertRaises(PolicyError) as raised:
                policy.handle(Event.TopUp("acme", card, D(amount)), False, caps)
            self.assertEqual(raised.exception, error)
        policy.handle(Event.TopUp("acme", "visa", D("5")), False, caps)
        self.assertEqual([(c["key"], c["amount"]) for c in caps.charges], [("topup/0", D("5"))])

    def test_queries_the_account_and_its_agency_may_ask(self):
        caps = host()
        caps.accounts[Role.SUBJECT].state = b"v1|3|0|0|-1.5|2|card|with|pipes"
        caps.accounts[Role.SUBJECT].snapshot.parent = "agency"
        answer = policy.query("agency", QueryKind.AUTO_RECHARGE, True, caps)
        self.assertEqual(answer, Answer.AutoRecharge(AutoRechargeSettings(False, D("-1.5"), D("2"), "card|with|pipes", Mode.TARGET, None)))
        self.assertEqual(str(answer.settings.threshold), "-1.5")
        self.assertEqual(policy.query("acme", QueryKind.SERVICE, True, caps), Answer.Service(False))
        self.assertEqual(policy.query("acme", QueryKind.ESTIMATE, True, caps), Answer.Estimate(D(0)))
        with self.assertRaises(PolicyError) as raised:
            policy.query("other", QueryKind.BALANCE, True, caps)
        self.assertEqual(raised.exception, PolicyError.forbidden("only the account and its agency may ask"))

    def test_state_round_trips_and_refuses_garbage(self):
        state = State(settings(card="visa|x"), True, 7)
        self.assertEqual(State.decode(state.encode()), state)
        self.assertIsNone(State.decode(b"\xff\x00garbage"))
        self.assertIsNone(State.decode(b"v1|2|1|1|10.00"))

    def test_unreadable_state_is_an_error_except_in_describe(self):
        caps = host()
        caps.accounts[Role.SUBJECT].state = b"garbage"
        unreadable = PolicyError.refused("policy state unreadable")
        for call in (lambda: policy.handle(save("other"), False, caps), lambda: policy.query("acme", QueryKind.AUTO_RECHARGE, False, caps)):
            with self.assertRaises(PolicyError) as raised:
                call()
            self.assertEqual(raised.exception, unreadable)
        self.assertIsNone(policy.describe(caps).auto_recharge)


if __name__ == "__main__":
    unittest.main()
