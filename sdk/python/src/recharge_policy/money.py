"""Exact money on :class:`decimal.Decimal`, as the Rust SDK's ``money`` module.

The contract carries a decimal as ``mantissa × 10^-scale`` (``s64``, ``u8``). A
Decimal keeps its exponent the way rust_decimal keeps its scale (``50.00 -
7.3333`` is ``42.6667``), so the same arithmetic gives the same digits. Every
function here reads and writes through the integer parts, never through a
float, and never under the default 28-digit context: the adapter runs each
call under :data:`EXACT`, and :func:`exact` does the same in tests.
"""

from __future__ import annotations

import contextlib
import decimal
import re
from decimal import Decimal
from typing import Iterator

__all__ = [
    "EXACT",
    "MAX_SCALE",
    "allocation_price",
    "display",
    "exact",
    "format",
    "from_parts",
    "is_whole_cents",
    "minutes_bought",
    "nearest_cent",
    "parse",
    "to_parts",
    "to_wit_parts",
    "to_wit_parts_exact",
    "try_parse",
    "whole_cents_up",
]

#: The largest scale the host's decimals carry (rust_decimal's).
MAX_SCALE = 28

_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1

#: A context in which sums, differences and products of contract decimals are
#: exact: far more digits than two 64-bit mantissas at scale 28 need.
EXACT = decimal.Context(
    prec=400,
    rounding=decimal.ROUND_HALF_EVEN,
    Emin=-9999,
    Emax=9999,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)


@contextlib.contextmanager
def exact() -> Iterator[decimal.Context]:
    """Run a block under :data:`EXACT`, as every exported call runs."""
    with decimal.localcontext(EXACT) as context:
        yield context


def from_parts(mantissa: int, scale: int) -> Decimal:
    """``mantissa × 10^-scale``, built exactly (no context rounding)."""
    digits = tuple(int(digit) for digit in str(abs(mantissa)))
    return Decimal((1 if mantissa < 0 else 0, digits, -scale))


def to_parts(value: Decimal) -> tuple[int, int]:
    """The decimal as ``(mantissa, scale)`` with ``scale >= 0``; zero has no sign."""
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"not a finite decimal: {value}")
    mantissa = int("".join(map(str, digits)) or "0")
    if sign:
        mantissa = -mantissa
    if exponent > 0:
        return mantissa * 10**exponent, 0
    return mantissa, -exponent


_DECIMAL_TEXT = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?")


def try_parse(text: str) -> Decimal | None:
    """Parse ``"12.34"``, ``"-0.5"``, ``"7"`` (the places set the scale), or ``None``."""
    match = _DECIMAL_TEXT.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        return None
    sign, whole, fraction = match.group(1), match.group(2), match.group(3) or ""
    if not whole and not fraction or len(fraction) > MAX_SCALE:
        return None
    magnitude = int((whole or "0") + fraction)
    return from_parts(-magnitude if sign == "-" else magnitude, len(fraction))


def parse(text: str) -> Decimal:
    """:func:`try_parse`, raising ``ValueError`` for text that is not a decimal."""
    value = try_parse(text)
    if value is None:
        raise ValueError(f"not a decimal: {text!r}")
    return value


def _write(mantissa: int, scale: int) -> str:
    digits = str(abs(mantissa)).rjust(scale + 1, "0")
    sign = "-" if mantissa < 0 else ""
    if scale == 0:
        return sign + digits
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}"


def format(value: Decimal) -> str:  # noqa: A001 - the SDKs' shared name
    """Every digit at the decimal's own scale: ``"10.00"``, ``"0.005"`` (Rust's ``Display``)."""
    return _write(*to_parts(value))


def display(value: Decimal) -> str:
    """Money for people: at least two decimals, no trailing zeros beyond (``17.00``, ``0.1627``)."""
    mantissa, scale = to_parts(value)
    while scale > 2 and mantissa % 10 == 0:
        mantissa //= 10
        scale -= 1
    if scale < 2:
        mantissa *= 10 ** (2 - scale)
        scale = 2
    return _write(mantissa, scale)


def is_whole_cents(value: Decimal) -> bool:
    """Whether the amount has no fraction of a cent."""
    mantissa, scale = to_parts(value)
    return scale <= 2 or mantissa % 10 ** (scale - 2) == 0


def whole_cents_up(value: Decimal) -> Decimal:
    """Round up to whole cents; at most two places come back as they are."""
    mantissa, scale = to_parts(value)
    if scale <= 2:
        return value
    return from_parts(-(-mantissa // 10 ** (scale - 2)), 2)


def _round_away_from_zero(mantissa: int, scale: int, places: int) -> tuple[int, int]:
    if scale <= places:
        return mantissa, scale
    unit = 10 ** (scale - places)
    rounded = (abs(mantissa) + unit // 2) // unit
    return (-rounded if mantissa < 0 else rounded), places


def _round_half_even(mantissa: int, scale: int, places: int) -> tuple[int, int]:
    unit = 10 ** (scale - places)
    rounded, rest = divmod(abs(mantissa), unit)
    if rest * 2 > unit or (rest * 2 == unit and rounded % 2 == 1):
        rounded += 1
    return (-rounded if mantissa < 0 else rounded), places


def nearest_cent(value: Decimal) -> Decimal:
    """The nearest whole cent, a midpoint away from zero; two places or fewer stay."""
    mantissa, scale = to_parts(value)
    if scale <= 2:
        return value
    return from_parts(*_round_away_from_zero(mantissa, scale, 2))


def allocation_price(basic_minutes: int, premium_minutes: int, rates) -> Decimal:
    """The price of whole minutes at ``rates`` in whole cents (100 basic + 50 premium = 17.00)."""
    with exact():
        return nearest_cent(basic_minutes * rates.basic + premium_minutes * rates.premium)


def minutes_bought(credit: Decimal, rate: Decimal) -> int:
    """Whole minutes ``credit`` buys at ``rate`` (0 for a non-positive rate)."""
    (credit_mantissa, credit_scale), (rate_mantissa, rate_scale) = to_parts(credit), to_parts(rate)
    if rate_mantissa <= 0 or credit_mantissa <= 0:
        return 0
    minutes = (credit_mantissa * 10**rate_scale) // (rate_mantissa * 10**credit_scale)
    return min(minutes, _I64_MAX)


def from_wit_parts(mantissa: int, scale: int) -> Decimal:
    """A decimal the host sent, as the Rust SDK reads it: past scale 28 the rest is truncated."""
    if scale <= MAX_SCALE:
        return from_parts(mantissa, scale)
    divisor = 10 ** (scale - MAX_SCALE)
    truncated = abs(mantissa) // divisor
    return from_parts(-truncated if mantissa < 0 else truncated, MAX_SCALE)


def to_wit_parts_exact(value: Decimal) -> tuple[int, int] | None:
    """``(mantissa, scale)`` for the contract when it fits exactly (64 bits, scale <= 28)."""
    mantissa, scale = to_parts(value)
    if _I64_MIN <= mantissa <= _I64_MAX and scale <= MAX_SCALE:
        return mantissa, scale
    return None


def to_wit_parts(value: Decimal) -> tuple[int, int]:
    """``(mantissa, scale)`` for an answer: one place less while it does not fit
    (a midpoint to even, as the Rust SDK does), then saturated."""
    mantissa, scale = to_parts(value)
    while not (_I64_MIN <= mantissa <= _I64_MAX and scale <= MAX_SCALE):
        if scale == 0:
            return (_I64_MIN if mantissa < 0 else _I64_MAX), 0
        mantissa, scale = _round_half_even(mantissa, scale, scale - 1)
    return mantissa, scale
