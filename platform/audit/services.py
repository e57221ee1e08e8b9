"""Writes to the decision trail.

`record(...)` appends one event. Call it inside the database transaction of the decision it
records: it joins that transaction, so a rollback removes the event with the decision, and a
committed decision always has its event. Appends to one chain serialise on the chain's head
row (SELECT ... FOR UPDATE on PostgreSQL; SQLite's IMMEDIATE transactions already take the
write lock at BEGIN), which keeps sequence numbers gapless across processes. The lock is held
until the caller's transaction ends, so keep those transactions short.

`checkpoint_create(...)` signs a chain's head with the vault's signing key.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from collections.abc import Mapping
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, connections, router, transaction
from django.utils import timezone

from audit.actors import resolve_actor
from audit.canonical import (
    CHAIN_OPEN_ACTION,
    CURRENT_HASH_VERSION,
    DEFAULT_CHAIN,
    PayloadError,
    canonical_json,
    chain_hash,
    checkpoint_message,
    format_timestamp,
)
from audit.models import ChainHead, Checkpoint, Event, Outcome
from audit.verification import verify_chain
from vault.keys import active_signing_key, get_key_provider

CHAIN_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")


class TrailIntegrityError(Exception):
    """The trail is broken, so the service refuses to sign over it. Run `manage.py verify_trail`."""


def record(
    *,
    actor,
    action: str,
    resource_type: str,
    resource_id: str | int = "",
    outcome: str,
    policy: str = "",
    payload: dict | None = None,
    chain: str = DEFAULT_CHAIN,
) -> Event:
    """Append an event to `chain` and return it.

    actor: a User, a DRF Token (API access), None or AnonymousUser, or a system actor string
    such as "task:tuning.run_job" or "scp:SUITE". outcome: one of Outcome (allowed, denied,
    succeeded, failed). payload: what the decision was based on; a dict of JSON values, with
    Decimal, datetime, date and UUID converted deterministically (see audit.canonical).
    Never put secrets (passwords, tokens, keys) in it.
    """
    resolved = resolve_actor(actor)
    _validate_chain(chain)
    action = _required_text("action", action, 128)
    resource_type = _required_text("resource_type", resource_type, 64)
    resource_id = _optional_text("resource_id", resource_id, 255)
    policy = _optional_text("policy", policy, 255)
    if outcome not in Outcome.values:
        raise ValueError(f"outcome {outcome!r} is not one of {', '.join(Outcome.values)}.")
    if payload is not None and not isinstance(payload, Mapping):
        raise PayloadError(f"payload must be a dict, not {type(payload).__name__}.")
    payload_json = canonical_json(payload or {})
    return _append(
        resolved, chain=chain, action=action, resource_type=resource_type, outcome=str(outcome),
        policy=policy, prepared=[(resource_id, payload_json)],
    )[0]  # fmt: skip


def record_many(
    *,
    actor,
    action: str,
    resource_type: str,
    outcome: str,
    events: list[tuple[str | int, dict]],
    policy: str = "",
    chain: str = DEFAULT_CHAIN,
) -> list[Event]:
    """Append one event per (resource_id, payload) of ``events``, in that order, as one chained run.

    The same events, hashes and guarantees as calling ``record`` once per item (the same canonical
    form, each event's hash over its predecessor's, gapless sequences, the head locked once for the
    run, the caller's transaction joined): written with one multi-row INSERT per 500 events and one
    head UPDATE for the whole run, instead of one INSERT and one head UPDATE per event. For a
    service deciding thousands of things at once (a screened batch's alerts).
    """
    if not events:
        return []
    resolved = resolve_actor(actor)
    _validate_chain(chain)
    action = _required_text("action", action, 128)
    resource_type = _required_text("resource_type", resource_type, 64)
    policy = _optional_text("policy", policy, 255)
    if outcome not in Outcome.values:
        raise ValueError(f"outcome {outcome!r} is not one of {', '.join(Outcome.values)}.")
    prepared = []
    for resource_id, payload in events:
        if payload is not None and not isinstance(payload, Mapping):
            raise PayloadError(f"payload must be a dict, not {type(payload).__name__}.")
        prepared.append(
            (_optional_text("resource_id", resource_id, 255), _plain_canonical_json(payload or {}))
        )

    return _append(
        resolved, chain=chain, action=action, resource_type=resource_type, outcome=str(outcome),
        policy=policy, prepared=prepared,
    )  # fmt: skip


def _append(resolved, *, chain, action, resource_type, outcome, policy, prepared) -> list[Event]:
    """Append the checked events of `prepared` ((resource_id, canonical payload JSON) pairs) to
    `chain` as one run, inside the caller's transaction: record() and record_many() both write
    here. The head is read and locked, each event hashed over its predecessor, the events inserted
    (one statement per 500) and the head advanced once, each a single statement of SQL: the ORM's
    compilation of these three statements cost more than the hashing and the database work."""
    using = router.db_for_write(Event)
    # No savepoint: if the write fails inside the caller's transaction, that whole transaction
    # must roll back, so a decision can never commit without its event.
    with transaction.atomic(using=using, savepoint=False):
        head = _locked_head(chain, using)
        if head.sequence == 0 and chain != DEFAULT_CHAIN:
            _register_chain(chain, using)
            head = _locked_head(chain, using)
        now = timezone.now()
        stamp = format_timestamp(now)
        user_ref = resolved.user.pk if resolved.user is not None else None
        # The canonical form of each event (the same bytes as event.canonical_bytes(): keys sorted,
        # the payload's canonical JSON spliced in) differs between the events of a run only in
        # payload, resource_id and sequence: the rest is encoded once.
        head_part = (
            "{"
            + ",".join(
                f'"{key}":{_plain_canonical_json(value)}'
                for key, value in (
                    ("action", action),
                    ("actor_kind", resolved.kind),
                    ("actor_label", resolved.label),
                    ("actor_user_ref", user_ref),
                    ("chain", chain),
                    ("hash_version", CURRENT_HASH_VERSION),
                    ("outcome", str(outcome)),
                )
            )
            + ',"payload":'
        )
        policy_part = f',"policy":{_plain_canonical_json(policy)},"resource_id":'
        type_part = f',"resource_type":{_plain_canonical_json(resource_type)},"sequence":'
        stamp_part = f',"timestamp":{_plain_canonical_json(stamp)}}}'
        written, prev_hash, sequence = [], head.head_hash, head.sequence
        for resource_id, payload_json in prepared:
            sequence += 1
            canonical = (
                f"{head_part}{payload_json}{policy_part}{_plain_canonical_json(resource_id)}"
                f"{type_part}{sequence}{stamp_part}"
            )
            event_hash = chain_hash(prev_hash, canonical.encode("utf-8"))
            written.append((sequence, resource_id, payload_json, prev_hash, event_hash))
            prev_hash = event_hash
        events = _insert_events(
            using,
            written,
            chain=chain,
            now=now,
            user=resolved.user,
            kind=resolved.kind,
            label=resolved.label,
            action=action,
            resource_type=resource_type,
            outcome=str(outcome),
            policy=policy,
        )
        # One UPDATE for the run (on PostgreSQL the head's trigger checks that every event it
        # passes over is there and that the new head hash is the last event's: audit 0005).
        connection = connections[using]
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {quote(ChainHead._meta.db_table)} SET {quote('sequence')} = %s,"  # noqa: S608
                f" {quote('head_hash')} = %s, {quote('updated_at')} = %s WHERE {quote('chain')} = %s",
                [sequence, prev_hash, connection.ops.adapt_datetimefield_value(now), chain],
            )
    return events


_EVENT_COLUMNS = (
    "chain",
    "sequence",
    "timestamp",
    "actor_user_id",
    "actor_user_ref",
    "hash_version",
    "actor_kind",
    "actor_label",
    "action",
    "resource_type",
    "resource_id",
    "outcome",
    "policy",
    "payload_json",
    "prev_hash",
    "hash",
)


def _insert_events(
    using: str, written: list[tuple], *, chain, now, user, kind, label, **common
) -> list[Event]:
    """INSERT the run's events (multi-row, RETURNING id, 500 per statement) and return them as
    Event instances. Event's own manager refuses bulk writes so that nothing else bypasses this
    module; the ORM's per-field compilation of bulk_create cost more than hashing and inserting."""
    connection = connections[using]
    quote = connection.ops.quote_name
    stamp = connection.ops.adapt_datetimefield_value(now)
    user_id = user.pk if user is not None else None
    fixed_before = (chain,)
    fixed_after = (stamp, user_id, user_id, CURRENT_HASH_VERSION, kind, label)
    rows = [
        (
            *fixed_before,
            sequence,
            *fixed_after,
            common["action"],
            common["resource_type"],
            resource_id,
            common["outcome"],
            common["policy"],
            payload_json,
            prev_hash,
            event_hash,
        )
        for sequence, resource_id, payload_json, prev_hash, event_hash in written
    ]
    table = quote(Event._meta.db_table)
    names = ", ".join(quote(c) for c in _EVENT_COLUMNS)
    one = "(" + ", ".join(["%s"] * len(_EVENT_COLUMNS)) + ")"
    ids: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 500):
            part = rows[start : start + 500]
            cursor.execute(
                f"INSERT INTO {table} ({names}) VALUES {', '.join([one] * len(part))} RETURNING id",  # noqa: S608
                [value for row in part for value in row],
            )
            ids += [r[0] for r in cursor.fetchall()]
    events = []
    for pk, (sequence, resource_id, payload_json, prev_hash, event_hash) in zip(ids, written, strict=True):
        event = Event(
            id=pk,
            chain=chain,
            sequence=sequence,
            timestamp=now,
            actor_user=user,
            actor_user_ref=user_id,
            hash_version=CURRENT_HASH_VERSION,
            actor_kind=kind,
            actor_label=label,
            resource_id=resource_id,
            payload_json=payload_json,
            prev_hash=prev_hash,
            hash=event_hash,
            **common,
        )
        event._state.adding = False
        events.append(event)
    return events


def _plain_canonical_json(payload) -> str:
    """canonical_json, fast for payloads of plain JSON types (C json instead of the Python walk);
    anything else (Decimal, datetime, UUID, sets, NaN...) takes canonical_json's own path."""
    try:
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return canonical_json(payload)


def _register_chain(chain: str, using: str) -> None:
    """A new chain is announced on the default chain, so a chain nobody announced is a forgery.

    verify_chain refuses a chain that neither a signed checkpoint nor this registration knows, and
    reports a registered chain whose events are gone.
    """
    registered = Event.objects.using(using).filter(
        chain=DEFAULT_CHAIN, action=CHAIN_OPEN_ACTION, resource_id=chain
    )
    if not registered.exists():
        record(
            actor="system:audit",
            action=CHAIN_OPEN_ACTION,
            resource_type="trail",
            resource_id=chain,
            outcome="succeeded",
            payload={"chain": chain},
        )


class _Head(NamedTuple):
    sequence: int
    head_hash: str


def _locked_head(chain: str, using: str) -> _Head:
    """The chain's head, locked until the caller's transaction ends (FOR UPDATE on PostgreSQL;
    SQLite's IMMEDIATE transaction holds the write lock already), as one plain statement."""
    connection = connections[using]
    quote = connection.ops.quote_name
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    query = (
        f"SELECT {quote('sequence')}, {quote('head_hash')} FROM {quote(ChainHead._meta.db_table)}"  # noqa: S608
        f" WHERE {quote('chain')} = %s{lock}"
    )
    with connection.cursor() as cursor:
        cursor.execute(query, [chain])
        row = cursor.fetchone()
        if row is None:
            # First event of a new chain: ON CONFLICT DO NOTHING lets concurrent first writers race
            # safely; the loser then waits on the winner's row lock below.
            ChainHead.objects.using(using).bulk_create([ChainHead(chain=chain)], ignore_conflicts=True)
            cursor.execute(query, [chain])
            row = cursor.fetchone()
    return _Head(sequence=int(row[0]), head_hash=row[1])


def checkpoint_create(*, chain: str = DEFAULT_CHAIN) -> Checkpoint | None:
    """Sign `chain`'s current head. None when nothing was appended since the last checkpoint.

    The events since the previous checkpoint are verified first: the service never signs over a
    broken chain (it raises TrailIntegrityError instead).
    """
    _validate_chain(chain)
    provider = get_key_provider()
    # Fetch (and on first use create, which is itself trailed) the key before reading the head.
    # The newest version signs (rotate_keys --signing-key); checkpoints name the version they used.
    signing_key = active_signing_key(provider, checkpoint_key_name())
    head = ChainHead.objects.filter(chain=chain).first()
    if head is None or head.sequence == 0:
        return None
    previous = Checkpoint.objects.filter(chain=chain).order_by("-size").first()
    if previous and previous.size >= head.sequence:
        return None
    verification = verify_chain(
        chain,
        up_to=head.sequence,
        resume_after=(previous.size, previous.head_hash) if previous else None,
        check_checkpoints=False,
    )
    if not verification.ok:
        raise TrailIntegrityError(f"Refusing to sign chain {chain!r}: {verification.problem.message}")
    if verification.last_sequence != head.sequence or verification.last_hash != head.head_hash:
        raise TrailIntegrityError(
            f"Refusing to sign chain {chain!r}: its head row does not match its events."
        )

    signed_at = timezone.now()
    message = checkpoint_message(
        chain=chain,
        size=head.sequence,
        head_hash=head.head_hash,
        signed_at=signed_at,
        algorithm=signing_key.algorithm,
        key_id=signing_key.key_id,
    )
    checkpoint = Checkpoint(
        chain=chain,
        size=head.sequence,
        head_hash=head.head_hash,
        signed_at=signed_at,
        key_provider=provider.name,
        key_name=signing_key.name,
        key_id=signing_key.key_id,
        algorithm=signing_key.algorithm,
        signature=base64.b64encode(signing_key.sign(message)).decode("ascii"),
    )
    checkpoint._written_by_trail_service = True
    try:
        with transaction.atomic():
            checkpoint.save(force_insert=True)
    except IntegrityError:
        return None  # another worker signed this very size a moment ago
    return checkpoint


def checkpoint_all_chains() -> list[Checkpoint]:
    """One new checkpoint per chain that grew since its last one (the periodic task)."""
    # First use creates the key, which is trailed: do it before listing the chains to sign.
    active_signing_key(get_key_provider(), checkpoint_key_name())
    chains = ChainHead.objects.order_by("chain").values_list("chain", flat=True)
    return [checkpoint for chain in chains if (checkpoint := checkpoint_create(chain=chain))]


def checkpoint_key_name() -> str:
    return getattr(settings, "AUDIT_SIGNING_KEY", "audit-checkpoints")


def _validate_chain(chain: str) -> None:
    if not isinstance(chain, str) or not CHAIN_NAME_PATTERN.match(chain):
        raise ValueError(f"chain {chain!r} must be 1-64 lowercase letters, digits, '.', '_', ':' or '-'.")


def _required_text(name: str, value: str, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string.")
    return _optional_text(name, value, max_length)


def _optional_text(name: str, value: str | int | uuid.UUID, max_length: int) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | uuid.UUID):
        raise TypeError(f"{name} must be a string, an integer or a UUID, not {type(value).__name__}.")
    text = str(value)
    if len(text) > max_length:
        raise ValueError(f"{name} is {len(text)} characters long; the trail stores at most {max_length}.")
    return text


def trail_export_log(
    *,
    actor,
    export_format: str,
    chain: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Event:
    """Trail the export of the trail itself: who took which slice of it, in which format."""
    return record(
        actor=actor,
        action="trail.export",
        resource_type="trail",
        resource_id=chain or "*",
        outcome="succeeded",
        payload={"format": export_format, "since": since, "until": until},
    )


def trail_read_log(*, actor, event_ids: list[int], filters: dict | None = None) -> Event:
    """Trail a read of the trail itself: who looked at which events (ids), with which filters."""
    chosen = {key: value for key, value in (filters or {}).items() if value not in (None, "")}
    return record(
        actor=actor,
        action="trail.read",
        resource_type="trail",
        resource_id=str(event_ids[0]) if len(event_ids) == 1 and filters is None else "list",
        outcome="succeeded",
        payload={"events": list(event_ids), "filters": chosen},
    )
