"""Idempotency keys. The host scopes a key to the payer and the policy (H3), so a
key only has to be unique among the policy's own charges for the account: take a
fresh number from the account's state for every charge series."""

from __future__ import annotations


def charge_key(kind: str, *sequence: int) -> str:
    """The key of the policy's ``sequence``-th charge of a ``kind``, as the Rust
    SDK's ``Helpers::charge_key`` makes it: ``charge_key("topup", 3)`` is
    ``topup/3``; more numbers add parts (``charge_key("alloc", 1, 2)`` is ``alloc/1/2``)."""
    return "/".join([kind, *(str(int(number)) for number in sequence)])
