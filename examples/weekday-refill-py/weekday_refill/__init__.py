"""An example tenant policy: **refill to a target, weekdays only**.

An agency that only staffs its phones Monday to Friday does not want its card
charged at the weekend. This policy reads the account's auto-recharge settings
as "when the balance falls below ``threshold``, refill it to ``amount``", but
only charges on weekdays (UTC); a shortfall at the weekend waits for Monday
00:00. A failed charge is not retried: the account gets ``recharge_failed`` and
the next weekday shortfall tries again. It sells no monthly allocations.

The same policy as the Rust example ``examples/weekday-refill``, decision for
decision and message for message. Build it with
``recharge-policy-build weekday_refill -o weekday_refill_py.wasm``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Optional

from recharge_policy import (
    AccountView,
    Actor,
    Answer,
    AutoRechargeSettings,
    Capabilities,
    ChargeOutcome,
    Event,
    Notice,
    PolicyError,
    PolicyRules,
    Purpose,
    QueryKind,
    Role,
    Status,
    actor_of,
    charge_key,
    display,
    is_whole_cents,
    load_state,
    save_state,
    whole_cents_up,
)

from .state import State

#: The timer tag for "it is Monday now".
MONDAY = 1

DAY_MS = 86_400_000
#: chrono's first and last dates (-262143-01-01, 262142-12-31) as days since 1970-01-01.
FIRST_DAY = -96_465_293
LAST_DAY = 95_026_236


def _allowed(actor: str, caps: Capabilities, or_parent: bool) -> bool:
    """Whether ``actor`` is the subject itself, or (``or_parent``) its parent agency."""
    who = actor_of(caps, actor)
    return who is Actor.SUBJECT or (who is Actor.AGENCY and or_parent)


def _next_key(key: int) -> int:
    """The counter after ``key``, wrapping at 64 bits as the Rust example's ``u64`` does."""
    return (key + 1) % (1 << 64)


def next_monday(now: int) -> Optional[int]:
    """Monday 00:00 UTC after ``now`` (ms) if ``now`` falls on a weekend, else ``None``."""
    day = now // DAY_MS
    if not FIRST_DAY <= day <= LAST_DAY:
        return None
    # 1970-01-01 was a Thursday: 0 is Monday, 5 Saturday, 6 Sunday.
    wait = {5: 2, 6: 1}.get((day + 3) % 7)
    return None if wait is None else (day + wait) * DAY_MS


def _validate(settings: AutoRechargeSettings, caps: Capabilities) -> None:
    if not settings.enabled:
        return

    def money_ok(value: Decimal) -> bool:
        return value >= 0 and is_whole_cents(value)

    if not money_ok(settings.threshold) or not money_ok(settings.amount) or settings.amount <= settings.threshold:
        raise PolicyError.invalid_settings(
            "threshold and target must be whole cents, the target above the threshold"
        )
    if not caps.has_card(Role.SUBJECT, settings.card):
        raise PolicyError.payment_method_required(f"no saved card {settings.card}")


def _refill(state: State, caps: Capabilities) -> None:
    """Refill to the target if below the threshold: now on a weekday, on Monday otherwise."""
    settings = state.settings
    if settings is None or not settings.enabled:
        return
    balance = caps.balance(Role.SUBJECT)
    if state.in_flight or balance >= settings.threshold:
        return
    monday = next_monday(caps.now())
    if monday is not None:
        # Asked again on every weekend event: the same tag replaces the earlier
        # wake-up, so one Monday wake-up stays pending.
        caps.wake_at(Role.SUBJECT, monday, MONDAY)
        return
    amount = whole_cents_up(settings.amount - balance)
    key = charge_key("weekday", state.next_key)
    caps.request_charge(Role.SUBJECT, settings.card, amount, Purpose.AutoRecharge(), key)
    state.next_key = _next_key(state.next_key)
    state.in_flight = True


def _outcome(state: State, result: ChargeOutcome, amount: Decimal, purpose, caps: Capabilities) -> None:
    refill = isinstance(purpose, Purpose.AutoRecharge)
    if refill:
        state.in_flight = False
    if result is ChargeOutcome.SUCCEEDED:
        if refill:
            caps.notify(Role.SUBJECT, Notice.RECHARGE_SUCCEEDED, f"refilled {display(amount)}")
        if caps.status(Role.SUBJECT) is Status.PAUSED:
            caps.set_status(Role.SUBJECT, Status.ACTIVE)
            caps.notify(Role.SUBJECT, Notice.ACCOUNT_RESUMED, "payment received")
        return
    if isinstance(purpose, Purpose.TopUp):
        kind, what = Notice.TOP_UP_FAILED, "top-up"
    else:
        kind, what = Notice.RECHARGE_FAILED, "refill"
    caps.notify(Role.SUBJECT, kind, f"{what} of {display(amount)} failed")


class WeekdayRefill(PolicyRules):
    """The policy."""

    def handle(self, event, has_parent: bool, caps: Capabilities) -> None:
        state = load_state(caps, Role.SUBJECT, State)
        match event:
            case Event.SaveAutoRecharge(actor=actor, settings=settings):
                if not _allowed(actor, caps, False):
                    raise PolicyError.forbidden("only the account saves its settings")
                _validate(settings, caps)
                state.settings = settings
            case Event.SaveAllocation():
                raise PolicyError.forbidden("this policy sells no monthly allocations")
            case Event.TopUp(actor=actor, card=card, amount=amount):
                if not _allowed(actor, caps, False):
                    raise PolicyError.forbidden("only the account tops itself up")
                if amount <= 0 or not is_whole_cents(amount):
                    raise PolicyError.invalid_settings("amount must be positive whole cents")
                if not caps.has_card(Role.SUBJECT, card):
                    raise PolicyError.payment_method_required(f"no saved card {card}")
                key = charge_key("topup", state.next_key)
                caps.request_charge(Role.SUBJECT, card, amount, Purpose.TopUp(), key)
                state.next_key = _next_key(state.next_key)
            case Event.PaymentOutcome(outcome=result, amount=amount, purpose=purpose):
                _outcome(state, result, amount, purpose, caps)
            case _:
                pass  # usage, card updated, timer: only the refill below reacts
        _refill(state, caps)
        save_state(caps, Role.SUBJECT, state)

    def query(self, actor: str, what: QueryKind, has_parent: bool, caps: Capabilities):
        if not _allowed(actor, caps, True):
            raise PolicyError.forbidden("only the account and its agency may ask")
        snapshot = caps.snapshot(Role.SUBJECT)
        match what:
            case QueryKind.AUTO_RECHARGE:
                return Answer.AutoRecharge(load_state(caps, Role.SUBJECT, State).settings)
            case QueryKind.ESTIMATE:
                return Answer.Estimate(Decimal(0))
            case QueryKind.SERVICE:
                return Answer.Service(
                    snapshot.status is Status.ACTIVE and (snapshot.balance > 0 or snapshot.has_minutes())
                )
            case QueryKind.BALANCE:
                return Answer.Balance(snapshot)
        raise TypeError(f"not a query: {what!r}")

    def describe(self, caps: Capabilities) -> AccountView:
        try:
            settings = load_state(caps, Role.SUBJECT, State).settings
        except PolicyError:
            settings = None
        return AccountView(auto_recharge=settings, allocation=None)


#: What ``recharge-policy-build`` exports.
policy = WeekdayRefill()
