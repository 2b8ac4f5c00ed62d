import unittest
from typing import Optional

from recharge_policy import (
    AccountKind,
    Actor,
    PolicyError,
    Refused,
    Refusal,
    Role,
    actor_of,
    describe_refusal,
    load_state,
    save_state,
)
from recharge_policy.testing import MemoryCaps, account


class Counter:
    def __init__(self, count: int = 0) -> None:
        self.count = count

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Counter) and other.count == self.count

    def encode(self) -> bytes:
        return str(self.count).encode()

    @classmethod
    def decode(cls, data: bytes) -> Optional["Counter"]:
        return cls(int(data)) if data.isdigit() else None


class HelpersTest(unittest.TestCase):
    def test_the_actor_is_the_subject_its_agency_or_someone_else(self):
        caps = MemoryCaps(account("sub", kind=AccountKind.SUB_ACCOUNT, parent="acme"))
        self.assertIs(actor_of(caps, "sub"), Actor.SUBJECT)
        self.assertIs(actor_of(caps, "acme"), Actor.AGENCY)
        self.assertIs(actor_of(caps, "other"), Actor.OTHER)
        caps.accounts[Role.SUBJECT] = None
        with self.assertRaises(Refused):
            actor_of(caps, "sub")

    def test_state_none_saved_is_the_default_unreadable_is_refused(self):
        caps = MemoryCaps(account("acme"))
        self.assertEqual(load_state(caps, Role.SUBJECT, Counter), Counter())
        save_state(caps, Role.SUBJECT, Counter(3))
        self.assertEqual(load_state(caps, Role.SUBJECT, Counter), Counter(3))
        caps.accounts[Role.SUBJECT].state = b"x"
        with self.assertRaises(PolicyError) as raised:
            load_state(caps, Role.SUBJECT, Counter)
        self.assertEqual(raised.exception, PolicyError.refused("policy state unreadable"))

    def test_refusals_read_as_the_rust_sdk_describes_them(self):
        self.assertEqual(describe_refusal(Refusal("bad-amount", "too many digits")), "bad amount: too many digits")
        self.assertEqual(describe_refusal(Refusal("invalid", "x")), "invalid request: x")
        self.assertEqual(describe_refusal(Refusal("duplicate-key")), "idempotency key already used")


if __name__ == "__main__":
    unittest.main()
