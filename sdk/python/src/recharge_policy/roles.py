"""Who may do what. An event names its actor by account id; the accounts a call
can reach are its subject and, for a sub-account, the parent agency (H1): a rule
names them by :class:`Role`, never by id."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from .model import Snapshot

if TYPE_CHECKING:
    from .caps import Capabilities


class Role(Enum):
    """Which of the accounts handed to the call a capability call is about."""

    SUBJECT = "subject"
    PARENT = "parent"


def is_subject(actor: str, snapshot: Snapshot) -> bool:
    """Whether ``actor`` is the subject itself."""
    return actor == snapshot.id


def is_parent_agency(actor: str, snapshot: Snapshot) -> bool:
    """Whether ``actor`` is the subject's parent agency."""
    return snapshot.parent is not None and snapshot.parent == actor


def actor_allowed(actor: str, caps: "Capabilities", or_parent: bool = False) -> bool:
    """Whether ``actor`` is the subject or (``or_parent``) its agency, from the
    subject's snapshot; a refused snapshot raises :class:`~recharge_policy.Refused`."""
    subject = caps.snapshot(Role.SUBJECT)
    return is_subject(actor, subject) or (or_parent and is_parent_agency(actor, subject))
