"""The canonical form of trail events, and the hash that chains them. Pure functions, no Django.

An event's canonical form is the JSON object of its hashed fields (HASHED_FIELDS) written with
sorted keys, compact separators (",", ":"), UTF-8 without escaping non-ASCII characters, and the
timestamp as ISO-8601 UTC with microseconds ("2026-11-03T10:15:30.123456Z"). Its hash is

    hash = sha256(previous_hash_hex_as_ascii || canonical_event_utf8).hexdigest()

where the first event of a chain has previous hash GENESIS_HASH (64 zeros).

Hash versions: version 1 (events written before December 2026) covers HASHED_FIELDS. Version 2
(every new event) also covers "hash_version" itself and "actor_user_ref", the primary key of the
user behind the event (null for system and anonymous actors), so every column of an event,
its actor reference included, is under the hash. Old events keep verifying under version 1. The same rules apply
to payloads: `canonical_json` turns Decimal into its string ("12.50"), datetime into ISO-8601
UTC with microseconds, date into ISO-8601, UUID into its string, tuples into lists, and refuses
anything else that JSON cannot hold (sets, bytes, NaN, non-string keys, naive datetimes).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal

GENESIS_HASH = "0" * 64
CURRENT_HASH_VERSION = 2
DEFAULT_CHAIN = "suite"
# Recorded on DEFAULT_CHAIN when another chain gets its first event (the chain registry).
CHAIN_OPEN_ACTION = "trail.chain_open"
HASHED_FIELDS = (
    "chain",
    "sequence",
    "timestamp",
    "actor_kind",
    "actor_label",
    "action",
    "resource_type",
    "resource_id",
    "outcome",
    "policy",
    "payload",
)


class PayloadError(ValueError):
    """A payload value has no deterministic JSON form."""


def format_timestamp(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise PayloadError(
            f"Naive datetime {moment!r}: make it timezone-aware (django.utils.timezone.now())."
        )
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_json_value(value: object, path: str = "payload") -> object:
    """`value` as plain JSON types (dict, list, str, int, float, bool, None), converted deterministically."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)  # IntEnum and friends: their plain number
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PayloadError(f"{path}: {value!r} has no JSON form; record it as a string or omit it.")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise PayloadError(f"{path}: {value!r} has no JSON form; record it as a string or omit it.")
        return str(value)
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        converted = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise PayloadError(
                    f"{path}: key {key!r} is a {type(key).__name__}; payload keys must be strings."
                )
            converted[key] = to_json_value(item, f"{path}[{key!r}]")
        return converted
    if isinstance(value, list | tuple):
        return [to_json_value(item, f"{path}[{index}]") for index, item in enumerate(value)]
    hint = " (sets have no order: pass a sorted list)" if isinstance(value, set | frozenset) else ""
    raise PayloadError(f"{path}: a {type(value).__name__} is not JSON-serialisable{hint}.")


def canonical_json(value: object) -> str:
    return json.dumps(
        to_json_value(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def canonical_event(
    *,
    chain: str,
    sequence: int,
    timestamp: dt.datetime | str,
    actor_kind: str,
    actor_label: str,
    action: str,
    resource_type: str,
    resource_id: str,
    outcome: str,
    policy: str,
    payload: object,
    hash_version: int = 1,
    actor_user_ref: int | None = None,
) -> bytes:
    document = {
        "chain": chain,
        "sequence": int(sequence),
        "timestamp": timestamp if isinstance(timestamp, str) else format_timestamp(timestamp),
        "actor_kind": actor_kind,
        "actor_label": actor_label,
        "action": action,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "outcome": outcome,
        "policy": policy,
        "payload": payload,
    }
    if hash_version >= 2:
        document["hash_version"] = int(hash_version)
        document["actor_user_ref"] = None if actor_user_ref is None else int(actor_user_ref)
    elif actor_user_ref is not None:
        raise ValueError("Hash version 1 does not cover an actor reference: use version 2.")
    return canonical_json(document).encode("utf-8")


def chain_hash(previous_hash: str, canonical: bytes) -> str:
    return hashlib.sha256(previous_hash.encode("ascii") + canonical).hexdigest()


def checkpoint_message(
    *, chain: str, size: int, head_hash: str, signed_at: dt.datetime | str, algorithm: str, key_id: str
) -> bytes:
    """The bytes a checkpoint signature covers: its fields as canonical JSON."""
    document = {
        "algorithm": algorithm,
        "chain": chain,
        "head_hash": head_hash,
        "key_id": key_id,
        "signed_at": signed_at if isinstance(signed_at, str) else format_timestamp(signed_at),
        "size": int(size),
    }
    return canonical_json(document).encode("utf-8")
