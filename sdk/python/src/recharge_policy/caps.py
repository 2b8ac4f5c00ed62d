"""The capabilities the host lends a policy for one call, the twin of the Rust
SDK's ``Capabilities``. The adapter implements them over the contract's imports;
:class:`recharge_policy.testing.MemoryCaps` over plain data for tests. A refused
call raises :class:`~recharge_policy.Refused`."""

from __future__ import annotations

from decimal import Decimal
from typing import Optional, Protocol

from .model import AnyPurpose, Notice, Rates, Snapshot, Status, Timestamp
from .roles import Role


class Capabilities(Protocol):
    """What the host supplies to the rules for one call: balance, payment, clock, notify."""

    def snapshot(self, who: Role) -> Snapshot:
        """The account's id, kind, parent, balance, minute buckets and status."""

    def balance(self, who: Role) -> Decimal:
        """The wallet balance (on a usage call, the subject's comes with the call)."""

    def id(self, who: Role) -> str:
        """The account's id."""

    def status(self, who: Role) -> Status:
        """Whether the account is serving."""

    def has_card(self, who: Role, card: str) -> bool:
        """Whether the account has a saved card ``card`` (``False`` for one not handed over)."""

    def state(self, who: Role) -> bytes:
        """The policy's state for the account (empty when none was saved or reachable)."""

    def set_state(self, who: Role, state: bytes) -> None:
        """Replace the policy's state for the account."""

    def watermark(self, who: Role) -> Optional[Decimal]:
        """The watermark the policy keeps for the account, if any."""

    def set_watermark(self, who: Role, watermark: Optional[Decimal]) -> None:
        """Keep ``watermark`` (``None`` clears it); usage calls bring the subject's back."""

    def set_status(self, who: Role, status: Status) -> None:
        """Pause or resume the account."""

    def now(self) -> Timestamp:
        """The current time."""

    def rates(self) -> Rates:
        """The rates in force now."""

    def request_charge(self, payer: Role, card: str, amount: Decimal, purpose: AnyPurpose, key: str) -> None:
        """Ask for one charge, run by the host after the event commits."""

    def wake_at(self, who: Role, at: Timestamp, tag: int) -> None:
        """Ask for an ``Event.Timer(tag)`` for the account at ``at``."""

    def notify(self, who: Role, kind: Notice, message: str) -> None:
        """Send a notice to the account."""
