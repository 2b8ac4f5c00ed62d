"""An in-memory host for testing rules as plain Python, without a component: the
capability methods of the adapter's ``caps``, over accounts you set up,
recording what the rules asked for."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Optional

from .errors import Refused
from .model import AccountKind, AnyPurpose, Notice, Rates, Refusal, Snapshot, Status
from .money import is_whole_cents
from .roles import Role


@dataclass
class MemoryAccount:
    """An account of :class:`MemoryCaps`: its snapshot, cards, state and watermark."""

    snapshot: Snapshot
    cards: list[str] = field(default_factory=list)
    state: bytes = b""
    watermark: Optional[Decimal] = None


def account(id: str, cards: Optional[list[str]] = None, **snapshot: Any) -> MemoryAccount:
    """A fresh active user account with nothing in it; override any snapshot field."""
    fields = dict(
        id=id,
        kind=AccountKind.USER,
        parent=None,
        balance=Decimal("0.00"),
        included_basic_seconds=0,
        included_premium_seconds=0,
        basic_seconds=0,
        premium_seconds=0,
        status=Status.ACTIVE,
    )
    fields.update(snapshot)
    return MemoryAccount(Snapshot(**fields), list(cards or []))


class MemoryCaps:
    """Capabilities over a subject (and parent) :class:`MemoryAccount` at ``now``.
    Charges, timers and notices are recorded in ``charges``, ``timers`` and
    ``notices``; state, watermark and status change in the accounts."""

    def __init__(
        self,
        subject: MemoryAccount,
        parent: Optional[MemoryAccount] = None,
        now: int = 0,
        rates: Optional[Rates] = None,
    ) -> None:
        self.accounts = {Role.SUBJECT: subject, Role.PARENT: parent}
        self.clock = now
        self.prices = rates or Rates(Decimal("0.09"), Decimal("0.16"))
        self.charges: list[dict[str, Any]] = []
        self.timers: list[tuple[str, int, int]] = []
        self.notices: list[tuple[str, Notice, str]] = []

    def _account(self, who: Role) -> MemoryAccount:
        account = self.accounts[who]
        if account is None:
            raise Refused(Refusal("foreign-account"))
        return account

    def snapshot(self, who: Role) -> Snapshot:
        return replace(self._account(who).snapshot)

    def balance(self, who: Role) -> Decimal:
        return self._account(who).snapshot.balance

    def id(self, who: Role) -> str:
        return self._account(who).snapshot.id

    def status(self, who: Role) -> Status:
        return self._account(who).snapshot.status

    def has_card(self, who: Role, card: str) -> bool:
        account = self.accounts[who]
        return account is not None and card in account.cards

    def state(self, who: Role) -> bytes:
        account = self.accounts[who]
        return b"" if account is None else account.state

    def set_state(self, who: Role, state: bytes) -> None:
        self._account(who).state = bytes(state)

    def watermark(self, who: Role) -> Optional[Decimal]:
        account = self.accounts[who]
        return None if account is None else account.watermark

    def set_watermark(self, who: Role, watermark: Optional[Decimal]) -> None:
        self._account(who).watermark = watermark

    def set_status(self, who: Role, status: Status) -> None:
        self._account(who).snapshot.status = status

    def now(self) -> int:
        return self.clock

    def rates(self) -> Rates:
        return self.prices

    def request_charge(self, payer: Role, card: str, amount: Decimal, purpose: AnyPurpose, key: str) -> None:
        account = self._account(payer)
        if card not in account.cards:
            raise Refused(Refusal("unknown-card"))
        if amount <= 0 or not is_whole_cents(amount):
            raise Refused(Refusal("bad-amount", "not positive whole cents"))
        self.charges.append(dict(payer=account.snapshot.id, card=card, amount=amount, purpose=purpose, key=key))

    def wake_at(self, who: Role, at: int, tag: int) -> None:
        self.timers.append((self._account(who).snapshot.id, at, tag))

    def notify(self, who: Role, kind: Notice, message: str) -> None:
        self.notices.append((self._account(who).snapshot.id, kind, message))
