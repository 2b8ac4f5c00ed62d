"""The hostile corpus's Python policy, built on the SDK: what it does on a rated
call (the ``usage`` event) depends on the subject account's id, as the Rust
``rogue`` does. ``tests/hostile/js/README.md`` says what the host must answer.

- ``spin-``: loops forever.
- ``grow-``: keeps 1 MiB bytearrays until the runtime fails.
- ``throw-``: requests a 1.00 top-up on the card ``visa``, then raises a plain
  ``RuntimeError`` (not a ``PolicyError``) whether or not the request was
  accepted, so the event traps after asking for a charge.
- ``wasi-``: tries the environment, arguments and randomness an author reaches
  for, and saves what each attempt gave in the subject's state (the attempts
  that abort the component instead have cases of their own:)
- ``file-``: ``open('/etc/passwd')``.
- ``clock-``: ``time.time()``.
- ``entropy-``: ``os.urandom(8)``.
- ``print-``: ``print()``.

Any other account, and every other event, is accepted doing nothing.
"""

from __future__ import annotations

import os
import random
import sys
import time
from decimal import Decimal
from typing import Any, Callable

from recharge_policy import (
    AccountView,
    Answer,
    Event,
    PolicyRules,
    Purpose,
    Refused,
    Role,
    charge_key,
    encode_json,
    save_state,
)


def _attempt(run: Callable[[], Any]) -> dict[str, Any]:
    """What one attempt gave: its value, or the class name of what it raised."""
    try:
        return {"value": run()}
    except Exception as error:
        return {"raised": type(error).__name__}


def _probe_ambient() -> dict[str, Any]:
    """The ambient authority an author might try, each attempt's outcome by name."""
    return {
        "os.environ": _attempt(lambda: dict(os.environ)),
        "sys.argv": _attempt(lambda: list(sys.argv)),
        "os.getcwd()": _attempt(os.getcwd),
        "random.random()": _attempt(lambda: [random.random(), random.random()]),
    }


def _read_passwd() -> str:
    with open("/etc/passwd", encoding="utf-8") as passwd:
        return passwd.read()


class Findings:
    """The ``wasi-`` findings as the subject's state: one JSON object."""

    def __init__(self, attempts: dict[str, Any]) -> None:
        self.attempts = attempts

    def encode(self) -> bytes:
        return encode_json(self.attempts)


class Hostile(PolicyRules):
    def handle(self, event, has_parent, caps):
        if not isinstance(event, Event.Usage):
            return
        subject = caps.id(Role.SUBJECT)
        if subject.startswith("spin-"):
            while True:
                pass
        elif subject.startswith("grow-"):
            hoard = []
            while True:
                hoard.append(bytearray(1 << 20))
        elif subject.startswith("throw-"):
            request = "accepted"
            try:
                key = charge_key("throw", caps.now())
                caps.request_charge(Role.SUBJECT, "visa", Decimal("1.00"), Purpose.TopUp(), key)
            except Refused as refused:
                request = f"refused ({refused})"
            raise RuntimeError(f"raised mid-event; the charge request was {request}")
        elif subject.startswith("wasi-"):
            save_state(caps, Role.SUBJECT, Findings(_probe_ambient()))
        elif subject.startswith("file-"):
            _read_passwd()
        elif subject.startswith("clock-"):
            time.time()
        elif subject.startswith("entropy-"):
            os.urandom(8)
        elif subject.startswith("print-"):
            print("hostile: print")

    def query(self, actor, what, has_parent, caps):
        return Answer.Service(True)

    def describe(self, caps):
        return AccountView()


policy = Hostile()
