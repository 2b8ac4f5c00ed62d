"""recharge-policy-sdk: write a recharge billing policy in Python.

A policy is a module with a module-level ``policy``, an instance of a
:class:`PolicyRules` subclass; it imports only this package, so it runs as plain
Python in tests (hand it a :class:`recharge_policy.testing.MemoryCaps`).
``recharge-policy-build path/to/module -o policy.wasm`` puts it beside the
adapter (:mod:`recharge_policy.component`) and runs componentize-py over the
contract with ``--stub-wasi``, so the component imports nothing beyond
``recharge:policy@0.1.0``.
"""

from .caps import Capabilities
from .errors import PolicyError, Refused, describe_refusal
from .keys import charge_key
from .model import (
    AccountKind,
    AccountView,
    AllocationSettings,
    AllocationView,
    Answer,
    AutoRechargeSettings,
    ChargeOutcome,
    Event,
    MinutePurchase,
    MinuteQuote,
    MinuteType,
    Mode,
    Notice,
    Purpose,
    QueryKind,
    Rates,
    Refusal,
    Snapshot,
    Status,
    Timestamp,
)
from .money import (
    allocation_price,
    display,
    exact,
    format,
    is_whole_cents,
    minutes_bought,
    nearest_cent,
    parse,
    try_parse,
    whole_cents_up,
)
from .roles import Actor, Role, actor_of, is_parent_agency, is_subject
from .rules import PolicyRules
from .state import (
    PolicyState,
    load_state,
    save_state,
    bytes_to_text,
    decode_fields,
    decode_json,
    encode_fields,
    encode_json,
    parse_counter,
    text_to_bytes,
)

__all__ = [
    "AccountKind",
    "AccountView",
    "AllocationSettings",
    "AllocationView",
    "Answer",
    "AutoRechargeSettings",
    "Capabilities",
    "ChargeOutcome",
    "Event",
    "MinutePurchase",
    "MinuteQuote",
    "MinuteType",
    "Mode",
    "Notice",
    "PolicyError",
    "PolicyRules",
    "Purpose",
    "QueryKind",
    "Rates",
    "Refusal",
    "Refused",
    "Role",
    "Snapshot",
    "Status",
    "Timestamp",
    "Actor",
    "PolicyState",
    "actor_of",
    "load_state",
    "save_state",
    "allocation_price",
    "bytes_to_text",
    "charge_key",
    "decode_fields",
    "decode_json",
    "describe_refusal",
    "display",
    "encode_fields",
    "encode_json",
    "exact",
    "format",
    "is_parent_agency",
    "is_subject",
    "is_whole_cents",
    "minutes_bought",
    "nearest_cent",
    "parse",
    "parse_counter",
    "text_to_bytes",
    "try_parse",
    "whole_cents_up",
]
