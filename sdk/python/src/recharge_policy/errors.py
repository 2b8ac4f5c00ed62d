"""The two ways a rule says no, mirroring the Rust SDK's ``PolicyError`` and
``Refusal``. A rule raises :class:`PolicyError` to reject an event or a query
(the host keeps nothing of it); a :class:`Refused` from a capability call that
escapes a rule becomes ``policy-error.refused`` with the refusal's description,
as the Rust examples do with ``.map_err(refused)``. Any other exception is a
bug: the component traps and the host records a ``policy_fault``.
"""

from __future__ import annotations

from .model import Refusal

#: The contract's ``policy-error`` cases.
POLICY_ERROR_CODES = ("forbidden", "invalid-settings", "payment-method-required", "refused")


class PolicyError(Exception):
    """Why the policy rejects an event or a query."""

    def __init__(self, code: str, message: str) -> None:
        if code not in POLICY_ERROR_CODES:
            raise ValueError(f"not a policy-error case: {code}")
        super().__init__(message)
        self.code = code
        self.message = message

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PolicyError) and (self.code, self.message) == (other.code, other.message)

    def __hash__(self) -> int:
        return hash((self.code, self.message))

    def __repr__(self) -> str:
        return f"PolicyError({self.code!r}, {self.message!r})"

    @classmethod
    def forbidden(cls, message: str) -> "PolicyError":
        """The actor may not do this."""
        return cls("forbidden", message)

    @classmethod
    def invalid_settings(cls, message: str) -> "PolicyError":
        """The settings are not valid."""
        return cls("invalid-settings", message)

    @classmethod
    def payment_method_required(cls, message: str) -> "PolicyError":
        """A saved card is needed and missing."""
        return cls("payment-method-required", message)

    @classmethod
    def refused(cls, message: str) -> "PolicyError":
        """A capability call was refused and the policy gave up."""
        return cls("refused", message)


def describe_refusal(refusal: Refusal) -> str:
    """A message for a refusal, the same text as the Rust SDK's ``describe_refusal``."""
    return {
        "foreign-account": "account not handed to this event",
        "unknown-card": "card is not a saved card of the payer",
        "bad-amount": f"bad amount: {refusal.why}",
        "price-mismatch": "allocation price differs from the amount",
        "too-many-charges": "too many charges",
        "duplicate-key": "idempotency key already used",
        "invalid": f"invalid request: {refusal.why}",
    }.get(refusal.tag, f"refused: {refusal.tag}")


class Refused(Exception):
    """The host refused a capability call."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(describe_refusal(refusal))
        self.refusal = refusal
