"""The policy's per-account state: its settings, whether a refill is in flight,
and a counter for idempotency keys. One line of text, byte for byte the Rust
example's: ``v1|next_key|in_flight|enabled|threshold|target|card``, settings
optional. Read and written with the SDK's ``load_state`` / ``save_state``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from recharge_policy import AutoRechargeSettings, Mode, decode_fields, encode_fields, parse_counter, try_parse


@dataclass
class State:
    """What the policy remembers about one account."""

    settings: Optional[AutoRechargeSettings] = None
    in_flight: bool = False
    next_key: int = 0

    def encode(self) -> bytes:
        """The state as the line the Rust example writes."""
        fields: list[object] = ["v1", self.next_key, self.in_flight]
        if self.settings is not None:
            settings = self.settings
            fields += [settings.enabled, settings.threshold, settings.amount, settings.card]
        return encode_fields(fields)

    @classmethod
    def decode(cls, data: bytes) -> Optional["State"]:
        """The state in ``data``, or ``None`` if it cannot be read."""
        fields = decode_fields(data, 7)
        if fields is None or fields[0] != "v1" or len(fields) < 3:
            return None
        next_key = parse_counter(fields[1])
        if next_key is None:
            return None
        in_flight = fields[2] == "1"
        if len(fields) == 3:
            return cls(None, in_flight, next_key)
        if len(fields) < 7:
            return None
        threshold, amount = try_parse(fields[4]), try_parse(fields[5])
        if threshold is None or amount is None:
            return None
        # The line keeps no mode or limit: the policy reads every setting as a target.
        settings = AutoRechargeSettings(fields[3] == "1", threshold, amount, fields[6], Mode.TARGET, None)
        return cls(settings, in_flight, next_key)
