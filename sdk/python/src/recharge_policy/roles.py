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


class Actor(Enum):
    """Who is asking, relative to the subject (the Rust SDK's ``Actor``)."""

    SUBJECT = "subject"
    AGENCY = "agency"
    OTHER = "other"


def is_subject(actor: str, snapshot: Snapshot) -> bool:
    """Whether ``actor`` is the subject itself."""
    return actor == snapshot.id


def is_parent_agency(actor: str, snapshot: Snapshot) -> bool:
    """Whether ``actor`` is the subject's parent agency."""
    return snapshot.parent is not None and snapshot.parent == actor


def actor_of(caps: "Capabilities", actor: str) -> Actor:
    """Whether ``actor`` is the subject, its agency or someone else, from the
    subject's snapshot (the Rust SDK's ``Helpers::actor``); a refused snapshot
    raises :class:`~recharge_policy.Refused`."""
    subject = caps.snapshot(Role.SUBJECT)
    if is_subject(actor, subject):
        return Actor.SUBJECT
    return Actor.AGENCY if is_parent_agency(actor, subject) else Actor.OTHER
