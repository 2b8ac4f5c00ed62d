"""Plain data of a policy, mirroring the contract without binding types (the Rust
SDK's ``model``), so rules run as ordinary Python in tests. Variants are
families of dataclasses under one name (``Event.TopUp``, ``Answer.Service``),
ready for ``match``. Amounts are :class:`decimal.Decimal`, times are
milliseconds since the epoch, minutes and seconds are ``int``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Optional, Union

Timestamp = int
"""A point in time: milliseconds since 1970-01-01T00:00:00Z."""


class AccountKind(Enum):
    """What an account is."""

    USER = "user"
    AGENCY = "agency"
    SUB_ACCOUNT = "sub-account"


class Status(Enum):
    """Whether an account may take calls."""

    ACTIVE = "active"
    PAUSED = "paused"


class MinuteType(Enum):
    """The two kinds of call minutes."""

    BASIC = "basic"
    PREMIUM = "premium"


class Mode(Enum):
    """Auto-recharge mode."""

    FIXED = "fixed"
    TARGET = "target"


class ChargeOutcome(Enum):
    """How a charge ended at the gateway."""

    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    FAILED = "failed"


class Notice(Enum):
    """The notices a policy may send, valued as SPEC.md spells them."""

    RECHARGE_SUCCEEDED = "recharge_succeeded"
    RECHARGE_FAILED = "recharge_failed"
    RECHARGE_LIMIT_REACHED = "recharge_limit_reached"
    ACCOUNT_PAUSED = "account_paused"
    ACCOUNT_RESUMED = "account_resumed"
    ALLOCATION_SUCCEEDED = "allocation_succeeded"
    ALLOCATION_FAILED = "allocation_failed"
    TOP_UP_FAILED = "top_up_failed"


class QueryKind(Enum):
    """What a caller may ask about an account."""

    AUTO_RECHARGE = "auto-recharge"
    ESTIMATE = "estimate"
    SERVICE = "service"
    BALANCE = "balance"


@dataclass(frozen=True)
class Rates:
    """Per-minute prices in force, USD per minute."""

    basic: Decimal
    premium: Decimal

    def of(self, minute_type: MinuteType) -> Decimal:
        """The price of one minute of this type."""
        return self.basic if minute_type is MinuteType.BASIC else self.premium


@dataclass
class Snapshot:
    """What the host knows of an account's money, read in one call."""

    id: str
    kind: AccountKind
    parent: Optional[str]
    balance: Decimal
    included_basic_seconds: int
    included_premium_seconds: int
    basic_seconds: int
    premium_seconds: int
    status: Status

    def has_minutes(self) -> bool:
        """Whether any minute bucket has seconds left."""
        return (
            self.included_basic_seconds > 0
            or self.included_premium_seconds > 0
            or self.basic_seconds > 0
            or self.premium_seconds > 0
        )


@dataclass
class AutoRechargeSettings:
    """Auto-recharge settings as an account saves and reads them."""

    enabled: bool
    threshold: Decimal
    amount: Decimal
    card: str
    mode: Mode = Mode.FIXED
    monthly_limit: Optional[Decimal] = None


@dataclass
class AllocationSettings:
    """A monthly minute allocation for a sub-account, paid by its agency."""

    basic_minutes: int
    premium_minutes: int
    card: str


@dataclass
class AllocationView:
    """A running allocation."""

    settings: AllocationSettings
    next_run: Timestamp


@dataclass
class AccountView:
    """What the policy keeps for one account, for the host's reports."""

    auto_recharge: Optional[AutoRechargeSettings] = None
    allocation: Optional[AllocationView] = None


@dataclass(frozen=True)
class MinutePurchase:
    """Minutes bought by an allocation charge."""

    beneficiary: str
    basic_minutes: int
    premium_minutes: int


@dataclass(frozen=True)
class MinuteQuote:
    """Whole minutes a sum of credit buys."""

    basic_minutes: int
    premium_minutes: int


class Purpose:
    """What a charge is for: ``Purpose.AutoRecharge()``, ``Purpose.TopUp()``,
    ``Purpose.Allocation(purchase)``."""

    @dataclass(frozen=True)
    class AutoRecharge:
        """Automatic refill of the payer's wallet."""

    @dataclass(frozen=True)
    class TopUp:
        """A manual top-up of the payer's wallet."""

    @dataclass(frozen=True)
    class Allocation:
        """Minutes bought for a sub-account of the paying agency."""

        purchase: MinutePurchase


AnyPurpose = Union[Purpose.AutoRecharge, Purpose.TopUp, Purpose.Allocation]


class Event:
    """Something that happened to the subject account."""

    @dataclass
    class Usage:
        """A call was rated against the subject (the ``usage`` export)."""

        seconds: int
        minute_type: MinuteType
        wallet_cost: Decimal

    @dataclass
    class SaveAutoRecharge:
        """``actor`` saves auto-recharge settings of the subject."""

        actor: str
        settings: AutoRechargeSettings

    @dataclass
    class SaveAllocation:
        """``actor`` saves the subject's monthly allocation (0 and 0 stops it)."""

        actor: str
        settings: AllocationSettings

    @dataclass
    class TopUp:
        """``actor`` asks for a manual top-up of the subject."""

        actor: str
        card: str
        amount: Decimal

    @dataclass
    class CardUpdated:
        """The subject updated the payment details of this card."""

        card: str

    @dataclass
    class PaymentOutcome:
        """A charge requested for the subject ended."""

        key: str
        outcome: ChargeOutcome
        amount: Decimal
        purpose: AnyPurpose
        payer: str

    @dataclass
    class Timer:
        """A wake-up the policy asked for, with its tag."""

        tag: int


AnyEvent = Union[
    Event.Usage,
    Event.SaveAutoRecharge,
    Event.SaveAllocation,
    Event.TopUp,
    Event.CardUpdated,
    Event.PaymentOutcome,
    Event.Timer,
]


class Answer:
    """An answer to a query."""

    @dataclass
    class AutoRecharge:
        """The settings, or ``None`` if never saved."""

        settings: Optional[AutoRechargeSettings]

    @dataclass
    class Estimate:
        """The monthly estimate in USD."""

        amount: Decimal

    @dataclass
    class Service:
        """Whether the account can take calls."""

        can_call: bool

    @dataclass
    class Balance:
        """The balance and minute buckets."""

        snapshot: Snapshot


AnyAnswer = Union[Answer.AutoRecharge, Answer.Estimate, Answer.Service, Answer.Balance]


@dataclass(frozen=True)
class Refusal:
    """Why the host refused a capability call: ``tag`` is the contract's case
    (``foreign-account``, ``unknown-card``, ``bad-amount``, ``price-mismatch``,
    ``too-many-charges``, ``duplicate-key``, ``invalid``), ``why`` its text if any."""

    tag: str
    why: Optional[str] = field(default=None)
