"""The policy's per-account state is bytes the host keeps and commits with the
event (``account.state`` / ``set-state``). :func:`load_state` and
:func:`save_state` read and write a typed :class:`PolicyState`, as the Rust
SDK's ``Helpers::load_state`` / ``save_state`` do; the other helpers turn bytes
into text, fields or JSON and back, each decoder returning ``None`` for bytes it
cannot read."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Iterable, Optional, Protocol, TypeVar

from .errors import PolicyError
from .money import format as format_decimal

if TYPE_CHECKING:
    from .caps import Capabilities
    from .roles import Role


class PolicyState(Protocol):
    """What a policy remembers about one account: ``State()`` is the default."""

    def encode(self) -> bytes:
        """The state as bytes."""

    @classmethod
    def decode(cls, data: bytes) -> Optional["PolicyState"]:
        """The state from bytes it encoded earlier; ``None`` if they cannot be read."""


S = TypeVar("S", bound=PolicyState)


def load_state(caps: "Capabilities", who: "Role", state_type: type[S]) -> S:
    """The policy's state for the account: the default when none was saved. Bytes
    that cannot be read are an error (``policy-error.refused``, "policy state
    unreadable"), not a silent reset."""
    data = caps.state(who)
    if not data:
        return state_type()
    state = state_type.decode(data)
    if state is None:
        raise PolicyError.refused("policy state unreadable")
    return state


def save_state(caps: "Capabilities", who: "Role", state: PolicyState) -> None:
    """Replace the policy's state for the account, committed with the event."""
    caps.set_state(who, state.encode())


def text_to_bytes(text: str) -> bytes:
    """Text as UTF-8 bytes."""
    return text.encode("utf-8")


def bytes_to_text(data: bytes) -> Optional[str]:
    """UTF-8 bytes as text, or ``None`` if they are not valid UTF-8 (a BOM is kept)."""
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _field(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return format_decimal(value)
    return str(value)


def encode_fields(fields: Iterable[Any], separator: str = "|") -> bytes:
    """Fields joined by ``separator`` as bytes, the compact one-line form: booleans
    as ``1``/``0``, decimals at their own scale."""
    return text_to_bytes(separator.join(_field(value) for value in fields))


def decode_fields(data: bytes, limit: Optional[int] = None, separator: str = "|") -> Optional[list[str]]:
    """Bytes split at ``separator`` into at most ``limit`` fields, the last taking the
    rest (Rust's ``splitn``), or ``None`` if they are not UTF-8."""
    text = bytes_to_text(data)
    if text is None:
        return None
    return text.split(separator, -1 if limit is None else limit - 1)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format_decimal(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def encode_json(value: Any) -> bytes:
    """A value as JSON bytes; decimals become their exact text."""
    return text_to_bytes(json.dumps(value, default=_plain, separators=(",", ":")))


def decode_json(data: bytes) -> Any:
    """JSON bytes as a value, or ``None`` when empty or unreadable."""
    text = bytes_to_text(data)
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


_COUNTER = re.compile(r"\+?[0-9]+")


def parse_counter(text: str) -> Optional[int]:
    """An unsigned 64-bit counter, or ``None``: ``"+7"`` reads as Rust reads it."""
    if not _COUNTER.fullmatch(text):
        return None
    value = int(text)
    return value if value < 1 << 64 else None
