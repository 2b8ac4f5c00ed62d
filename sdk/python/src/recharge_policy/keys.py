"""Idempotency keys. The host scopes a key to the payer and the policy (H3), so a
key only has to be unique among the policy's own charges for the account: take a
fresh number from the account's state for every charge series."""

from __future__ import annotations


def charge_key(account: str, kind: str, *numbers: int) -> str:
    """``account/kind/n1/n2...``: ``charge_key("acme", "topup", 3)`` is ``acme/topup/3``."""
    return "/".join([account, kind, *(str(int(number)) for number in numbers)])


def is_charge_key(key: str, account: str, kind: str, *numbers: int) -> bool:
    """Whether ``key`` is the key :func:`charge_key` makes of the same parts."""
    return key == charge_key(account, kind, *numbers)
