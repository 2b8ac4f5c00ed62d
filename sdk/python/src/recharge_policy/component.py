"""The adapter between the contract and a :class:`~recharge_policy.PolicyRules`:
the thin layer ``recharge-policy-build`` puts beside the policy, as the Rust
SDK's ``export_policy!`` does. It imports the bindings componentize-py generates
(``wit_world``), so it only runs inside a component; no rule lives here.

What each export does with the rules:

- ``handle(event, subject, parent)``: the event in the SDK's model, and a
  ``caps`` over the two borrowed accounts;
- ``usage(call)``: ``rules.usage_matters(balance, watermark)`` first, from the
  call alone; only if it says ``True`` is ``rules.handle`` called, with an
  ``Event.Usage`` and a ``caps`` that asks the host for the accounts on first
  need (``current-subject``, ``current-parent``), answers the subject's balance
  and watermark from the call, and drops the handles it asked for when the call
  ends;
- ``query``, ``describe``, ``estimate``, ``minutes-for``: the rules' answers in
  the contract's form (``describe`` lends the subject alone, as the Rust SDK does).

A rule's return is ``ok``; a raised :class:`PolicyError` is ``err(policy-error)``;
a :class:`Refused` that escapes is ``err(policy-error.refused(its description))``;
any other exception traps, which the host records as a ``policy_fault``. Every
call runs under :data:`recharge_policy.money.EXACT`, so decimal arithmetic in the
rules is exact.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable, Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import policy as wit_policy
from wit_world.imports import balance, clock, notify, payment
from wit_world.imports import types as wit

from . import model
from .errors import PolicyError, Refused
from .money import exact, from_wit_parts, to_wit_parts, to_wit_parts_exact
from .roles import Role

_REFUSALS = {
    wit.Refusal_ForeignAccount: "foreign-account",
    wit.Refusal_UnknownCard: "unknown-card",
    wit.Refusal_BadAmount: "bad-amount",
    wit.Refusal_PriceMismatch: "price-mismatch",
    wit.Refusal_TooManyCharges: "too-many-charges",
    wit.Refusal_DuplicateKey: "duplicate-key",
    wit.Refusal_Invalid: "invalid",
}

_ERRORS = {
    "forbidden": wit_policy.PolicyError_Forbidden,
    "invalid-settings": wit_policy.PolicyError_InvalidSettings,
    "payment-method-required": wit_policy.PolicyError_PaymentMethodRequired,
    "refused": wit_policy.PolicyError_Refused,
}


def _host(call: Callable[..., Any], *args: Any) -> Any:
    """Run an import, turning its ``Err(refusal)`` into :class:`Refused`."""
    try:
        return call(*args)
    except Err as error:
        refusal = error.value
        raise Refused(model.Refusal(_REFUSALS[type(refusal)], getattr(refusal, "value", None))) from None


def _outcome(run: Callable[[], Any]) -> Any:
    """A rule's outcome: its value, or the contract's ``Err(policy-error)``."""
    try:
        with exact():
            return run()
    except PolicyError as error:
        raise Err(_ERRORS[error.code](error.message)) from None
    except Refused as error:
        raise Err(wit_policy.PolicyError_Refused(str(error))) from None


def _decimal(value: wit.Decimal) -> Decimal:
    return from_wit_parts(value.mantissa, value.scale)


def _to_wit(value: Decimal) -> wit.Decimal:
    return wit.Decimal(*to_wit_parts(value))


def _rates(rates: wit.Rates) -> model.Rates:
    return model.Rates(_decimal(rates.basic), _decimal(rates.premium))


def _snapshot(snapshot: wit.AccountSnapshot) -> model.Snapshot:
    return model.Snapshot(
        id=snapshot.id,
        kind=model.AccountKind[snapshot.kind.name],
        parent=snapshot.parent,
        balance=_decimal(snapshot.balance),
        included_basic_seconds=snapshot.included_basic_seconds,
        included_premium_seconds=snapshot.included_premium_seconds,
        basic_seconds=snapshot.basic_seconds,
        premium_seconds=snapshot.premium_seconds,
        status=model.Status[snapshot.status.name],
    )


def _snapshot_to_wit(snapshot: model.Snapshot) -> wit.AccountSnapshot:
    return wit.AccountSnapshot(
        id=snapshot.id,
        kind=wit.AccountKind[snapshot.kind.name],
        parent=snapshot.parent,
        balance=_to_wit(snapshot.balance),
        included_basic_seconds=snapshot.included_basic_seconds,
        included_premium_seconds=snapshot.included_premium_seconds,
        basic_seconds=snapshot.basic_seconds,
        premium_seconds=snapshot.premium_seconds,
        status=wit.AccountStatus[snapshot.status.name],
    )


def _settings(settings: wit.AutoRechargeSettings) -> model.AutoRechargeSettings:
    return model.AutoRechargeSettings(
        enabled=settings.enabled,
        threshold=_decimal(settings.threshold),
        amount=_decimal(settings.amount),
        card=settings.card,
        mode=model.Mode[settings.mode.name],
        monthly_limit=None if settings.monthly_limit is None else _decimal(settings.monthly_limit),
    )


def _settings_to_wit(settings: Optional[model.AutoRechargeSettings]) -> Optional[wit.AutoRechargeSettings]:
    if settings is None:
        return None
    return wit.AutoRechargeSettings(
        enabled=settings.enabled,
        threshold=_to_wit(settings.threshold),
        amount=_to_wit(settings.amount),
        card=settings.card,
        mode=wit.RechargeMode[settings.mode.name],
        monthly_limit=None if settings.monthly_limit is None else _to_wit(settings.monthly_limit),
    )


def _allocation(settings: wit.AllocationSettings) -> model.AllocationSettings:
    return model.AllocationSettings(settings.basic_minutes, settings.premium_minutes, settings.card)


def _purpose(purpose: wit.Purpose) -> model.AnyPurpose:
    if isinstance(purpose, wit.Purpose_Allocation):
        bought = purpose.value
        return model.Purpose.Allocation(
            model.MinutePurchase(bought.beneficiary, bought.basic_minutes, bought.premium_minutes)
        )
    if isinstance(purpose, wit.Purpose_TopUp):
        return model.Purpose.TopUp()
    return model.Purpose.AutoRecharge()


def _purpose_to_wit(purpose: model.AnyPurpose) -> wit.Purpose:
    if isinstance(purpose, model.Purpose.Allocation):
        bought = purpose.purchase
        return wit.Purpose_Allocation(
            wit.MinutePurchase(bought.beneficiary, bought.basic_minutes, bought.premium_minutes)
        )
    if isinstance(purpose, model.Purpose.TopUp):
        return wit.Purpose_TopUp()
    if isinstance(purpose, model.Purpose.AutoRecharge):
        return wit.Purpose_AutoRecharge()
    raise TypeError(f"not a purpose: {purpose!r}")


def _event(event: wit_policy.Event) -> model.AnyEvent:
    value = event.value
    if isinstance(event, wit_policy.Event_SaveAutoRecharge):
        return model.Event.SaveAutoRecharge(value.actor, _settings(value.settings))
    if isinstance(event, wit_policy.Event_SaveAllocation):
        return model.Event.SaveAllocation(value.actor, _allocation(value.settings))
    if isinstance(event, wit_policy.Event_TopUp):
        return model.Event.TopUp(value.actor, value.card, _decimal(value.amount))
    if isinstance(event, wit_policy.Event_CardUpdated):
        return model.Event.CardUpdated(value)
    if isinstance(event, wit_policy.Event_PaymentOutcome):
        return model.Event.PaymentOutcome(
            key=value.key,
            outcome=model.ChargeOutcome[value.outcome.name],
            amount=_decimal(value.amount),
            purpose=_purpose(value.purpose),
            payer=value.payer,
        )
    return model.Event.Timer(value)


def _answer_to_wit(answer: model.AnyAnswer) -> wit_policy.Answer:
    if isinstance(answer, model.Answer.AutoRecharge):
        return wit_policy.Answer_AutoRecharge(_settings_to_wit(answer.settings))
    if isinstance(answer, model.Answer.Estimate):
        return wit_policy.Answer_Estimate(_to_wit(answer.amount))
    if isinstance(answer, model.Answer.Service):
        return wit_policy.Answer_Service(bool(answer.can_call))
    if isinstance(answer, model.Answer.Balance):
        return wit_policy.Answer_Balance(_snapshot_to_wit(answer.snapshot))
    raise TypeError(f"not an answer: {answer!r}")


class _Caps:
    """The capabilities of one call over the contract's imports (see
    :class:`recharge_policy.caps.Capabilities`)."""

    def __init__(self, lent: Optional[dict], handed: Optional[tuple[Decimal, Optional[Decimal]]] = None) -> None:
        self._lent = lent
        self._handed = handed
        self._asked: dict[Role, Any] = {}

    def _account(self, who: Role) -> Any:
        if not isinstance(who, Role):
            raise TypeError(f"not a role: {who!r}")
        if self._lent is not None:
            account = self._lent[who]
        else:
            if who not in self._asked:
                ask = balance.current_subject if who is Role.SUBJECT else balance.current_parent
                try:
                    self._asked[who] = _host(ask)
                except Refused as refused:
                    self._asked[who] = refused
            account = self._asked[who]
            if isinstance(account, Refused):
                raise account
        if account is None:
            raise Refused(model.Refusal("foreign-account"))
        return account

    def release(self) -> None:
        """Give back the handles asked for during the call (the host allows only 8 at once)."""
        for account in self._asked.values():
            if isinstance(account, balance.Account):
                account.__exit__(None, None, None)
        self._asked.clear()

    def _reachable(self, who: Role) -> Any:
        try:
            return self._account(who)
        except Refused:
            return None

    def snapshot(self, who: Role) -> model.Snapshot:
        return _snapshot(_host(self._account(who).snapshot))

    def balance(self, who: Role) -> Decimal:
        if who is Role.SUBJECT and self._handed is not None:
            return self._handed[0]
        return _decimal(_host(self._account(who).balance))

    def id(self, who: Role) -> str:
        return _host(self._account(who).id)

    def status(self, who: Role) -> model.Status:
        return model.Status[_host(self._account(who).status).name]

    def has_card(self, who: Role, card: str) -> bool:
        account = self._reachable(who)
        return account is not None and _host(account.has_card, card)

    def state(self, who: Role) -> bytes:
        account = self._reachable(who)
        return b"" if account is None else _host(account.state)

    def set_state(self, who: Role, state: bytes) -> None:
        _host(self._account(who).set_state, bytes(state))

    def watermark(self, who: Role) -> Optional[Decimal]:
        if who is Role.SUBJECT and self._handed is not None:
            return self._handed[1]
        account = self._reachable(who)
        watermark = None if account is None else _host(account.watermark)
        return None if watermark is None else _decimal(watermark)

    def set_watermark(self, who: Role, watermark: Optional[Decimal]) -> None:
        parts = None
        if watermark is not None:
            parts = to_wit_parts_exact(watermark)
            if parts is None:
                raise Refused(model.Refusal("bad-amount", "watermark: too many digits"))
        account = self._account(who)
        _host(account.set_watermark, None if parts is None else wit.Decimal(*parts))

    def set_status(self, who: Role, status: model.Status) -> None:
        _host(self._account(who).set_status, wit.AccountStatus[status.name])

    def now(self) -> int:
        return _host(clock.now)

    def rates(self) -> model.Rates:
        return _rates(_host(clock.current_rates))

    def request_charge(self, payer: Role, card: str, amount: Decimal, purpose: model.AnyPurpose, key: str) -> None:
        account = self._account(payer)
        parts = to_wit_parts_exact(amount)
        if parts is None:
            raise Refused(model.Refusal("bad-amount", "too many digits"))
        _host(payment.request_charge, account, card, wit.Decimal(*parts), _purpose_to_wit(purpose), key)

    def wake_at(self, who: Role, at: int, tag: int) -> None:
        _host(clock.wake_me_at, self._account(who), int(at), int(tag))

    def notify(self, who: Role, kind: model.Notice, message: str) -> None:
        _host(notify.send, self._account(who), wit.NoticeKind[kind.name], message)


def _lent(subject: Any, parent: Any) -> dict:
    return {Role.SUBJECT: subject, Role.PARENT: parent}


def export_policy(rules: Any) -> type:
    """The class componentize-py exports as ``recharge:policy/policy@0.1.0`` for ``rules``
    (the app module binds it to the name ``Policy``)."""

    class Policy(exports.Policy):
        def usage(self, call: wit_policy.RatedCall) -> None:
            balance_after = _decimal(call.balance)
            watermark = None if call.watermark is None else _decimal(call.watermark)
            if not rules.usage_matters(balance_after, watermark):
                return
            event = model.Event.Usage(call.seconds, model.MinuteType[call.minute_type.name], _decimal(call.wallet_cost))
            caps = _Caps(None, (balance_after, watermark))
            try:
                _outcome(lambda: rules.handle(event, call.has_parent, caps))
            finally:
                caps.release()

        def handle(self, event: wit_policy.Event, subject: Any, parent: Any) -> None:
            caps = _Caps(_lent(subject, parent))
            _outcome(lambda: rules.handle(_event(event), parent is not None, caps))

        def query(self, actor: str, what: wit_policy.QueryKind, subject: Any, parent: Any) -> wit_policy.Answer:
            caps = _Caps(_lent(subject, parent))
            kind = model.QueryKind[what.name]
            return _outcome(lambda: _answer_to_wit(rules.query(actor, kind, parent is not None, caps)))

        def describe(self, subject: Any) -> wit.AccountView:
            with exact():
                view = rules.describe(_Caps(_lent(subject, None)))
            allocation = view.allocation
            return wit.AccountView(
                auto_recharge=_settings_to_wit(view.auto_recharge),
                allocation=None
                if allocation is None
                else wit.AllocationView(
                    wit.AllocationSettings(
                        allocation.settings.basic_minutes, allocation.settings.premium_minutes, allocation.settings.card
                    ),
                    allocation.next_run,
                ),
            )

        def estimate(self, basic_minutes: int, premium_minutes: int, rates: wit.Rates) -> wit.Decimal:
            with exact():
                return _to_wit(rules.estimate(basic_minutes, premium_minutes, _rates(rates)))

        def minutes_for(self, credit: wit.Decimal, rates: wit.Rates) -> wit_policy.MinuteQuote:
            with exact():
                quote = rules.minutes_for(_decimal(credit), _rates(rates))
            return wit_policy.MinuteQuote(quote.basic_minutes, quote.premium_minutes)

    return Policy
