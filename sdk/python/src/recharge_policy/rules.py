"""The shape of a policy, the Python twin of the Rust SDK's ``PolicyRules``."""

from __future__ import annotations

from decimal import Decimal
from typing import Optional

from .caps import Capabilities
from .model import AccountView, AnyAnswer, AnyEvent, MinuteQuote, QueryKind, Rates
from .money import allocation_price, minutes_bought


class PolicyRules:
    """A billing policy's rules over the capabilities the host lends for one call.

    Subclass it and implement :meth:`handle`, :meth:`query` and :meth:`describe`;
    the other three have the Rust SDK's defaults. Rules keep nothing between
    calls: what must last goes into the account's state. Raise
    :class:`~recharge_policy.PolicyError` to reject; a
    :class:`~recharge_policy.Refused` that escapes becomes ``policy-error.refused``;
    any other exception traps (a ``policy_fault``).
    """

    def handle(self, event: AnyEvent, has_parent: bool, caps: Capabilities) -> None:
        """Handle one event about the subject: an ``Event.Usage`` or a contract event."""
        raise NotImplementedError(f"{type(self).__name__} does not implement handle")

    def query(self, actor: str, what: QueryKind, has_parent: bool, caps: Capabilities) -> AnyAnswer:
        """Answer ``actor``'s question about the subject; nothing may change."""
        raise NotImplementedError(f"{type(self).__name__} does not implement query")

    def describe(self, caps: Capabilities) -> AccountView:
        """The subject's settings, for the host's reports."""
        raise NotImplementedError(f"{type(self).__name__} does not implement describe")

    def usage_matters(self, balance: Decimal, watermark: Optional[Decimal]) -> bool:
        """The usage hot path's first look, from the subject's balance after the call
        and the watermark the policy keeps: ``False`` means the event changes
        nothing and :meth:`handle` is not called. The default hands every usage on."""
        return True

    def estimate(self, basic_minutes: int, premium_minutes: int, rates: Rates) -> Decimal:
        """The monthly price of an allocation (default: whole cents at ``rates``)."""
        return allocation_price(basic_minutes, premium_minutes, rates)

    def minutes_for(self, credit: Decimal, rates: Rates) -> MinuteQuote:
        """Whole minutes ``credit`` buys of each type (default: all on one type)."""
        return MinuteQuote(minutes_bought(credit, rates.basic), minutes_bought(credit, rates.premium))
