"""Recompute a chain and report the first place it breaks.

A chain is intact when its events are numbered 1..N without gaps, each event's prev_hash is the
hash of the one before, each hash matches its recomputed canonical form, the chain head row
agrees with event N, and every signed checkpoint has a valid signature and still matches the
event at its size. Any change made behind the trail service (raw SQL included) breaks one of
these; a writer who also recomputes every later hash is still caught by the checkpoints.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from django.contrib.auth import get_user_model

from audit.canonical import (
    CHAIN_OPEN_ACTION,
    DEFAULT_CHAIN,
    GENESIS_HASH,
    canonical_event,
    canonical_json,
    chain_hash,
    checkpoint_message,
)
from audit.models import ChainHead, Checkpoint, Event
from vault.errors import VaultError
from vault.keys import get_key_provider

_EVENT_COLUMNS = (
    "hash_version",
    "actor_user_id",
    "actor_user_ref",
    "sequence",
    "timestamp",
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


class ProblemKind(StrEnum):
    MISSING = "missing"  # an event was deleted
    MODIFIED = "modified"  # an event's content no longer matches its hash
    BROKEN_LINK = "broken_link"  # an event does not follow the one before (inserted, reordered)
    UNEXPECTED = "unexpected"  # an event exists that the trail service never appended
    HEAD_MISMATCH = "head_mismatch"
    CHECKPOINT_SIGNATURE = "checkpoint_signature"
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"
    UNKNOWN_CHAIN = "unknown_chain"  # a chain no signed checkpoint and no registration knows (forged)


@dataclass(frozen=True)
class ChainProblem:
    kind: ProblemKind
    message: str
    sequence: int | None = None
    checkpoint_id: int | None = None


@dataclass(frozen=True)
class ChainVerification:
    chain: str
    events_verified: int
    checkpoints_verified: int
    last_sequence: int
    last_hash: str
    problem: ChainProblem | None = None
    anchored_at: int | None = None  # verified from the signed checkpoint of this size, not from event 1

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def first_bad_sequence(self) -> int | None:
        return self.problem.sequence if self.problem else None


ProgressCallback = Callable[[int, int], None]


def verify_chain(
    chain: str,
    *,
    up_to: int | None = None,
    resume_after: tuple[int, str] | None = None,
    check_checkpoints: bool = True,
    progress: ProgressCallback | None = None,
    progress_every: int = 10_000,
) -> ChainVerification:
    """Verify `chain` from its start (or from a trusted `(size, head_hash)`) up to `up_to` or its end.

    The head row is compared only when verifying to the end. `progress(verified, total)` is
    called every `progress_every` events.
    """
    checkpoints = list(Checkpoint.objects.filter(chain=chain).order_by("size")) if check_checkpoints else []
    if up_to is not None:
        checkpoints = [checkpoint for checkpoint in checkpoints if checkpoint.size <= up_to]
    # Signatures first: an altered checkpoint must be reported as such, not as a rewritten chain.
    signature_problems = {checkpoint.pk: _signature_problem(checkpoint) for checkpoint in checkpoints}
    signature_problem = next(filter(None, signature_problems.values()), None)
    valid_checkpoints = defaultdict(list)
    for checkpoint in checkpoints:
        if signature_problems[checkpoint.pk] is None:
            valid_checkpoints[checkpoint.size].append(checkpoint)

    expected, previous_hash = (resume_after[0] + 1, resume_after[1]) if resume_after else (1, GENESIS_HASH)
    events = Event.objects.filter(chain=chain, sequence__gte=expected)
    if up_to is not None:
        events = events.filter(sequence__lte=up_to)
    total = events.count() if progress else 0
    verified = 0

    def result(problem: ChainProblem | None = None) -> ChainVerification:
        return ChainVerification(
            chain=chain,
            events_verified=verified,
            checkpoints_verified=0 if problem else len(checkpoints),
            last_sequence=expected - 1,
            last_hash=previous_hash,
            problem=problem,
        )

    existing_users = _UserExistence()
    for full_row in events.order_by("sequence").values_list(*_EVENT_COLUMNS).iterator(chunk_size=2000):
        hash_version, actor_user_id, actor_user_ref, row = full_row[0], full_row[1], full_row[2], full_row[3:]
        sequence, stored_prev_hash, stored_hash = row[0], row[-2], row[-1]
        if sequence != expected:
            return result(
                ChainProblem(
                    ProblemKind.MISSING,
                    f"event {expected} is missing: the chain jumps from {expected - 1} to {sequence} (deleted).",
                    sequence=expected,
                )
            )
        if stored_prev_hash != previous_hash:
            return result(
                ChainProblem(
                    ProblemKind.BROKEN_LINK,
                    f"event {sequence} does not follow event {sequence - 1}: its previous-hash field is not "
                    "that event's hash (inserted, reordered or rewritten).",
                    sequence=sequence,
                )
            )
        if _recomputed_hash(chain, row, hash_version, actor_user_ref) != stored_hash:
            return result(
                ChainProblem(
                    ProblemKind.MODIFIED,
                    f"event {sequence} was modified: its content no longer matches its hash.",
                    sequence=sequence,
                )
            )
        # The user link may differ from the hashed reference only by being NULL because that user
        # was deleted (on_delete=SET_NULL).
        if (
            hash_version >= 2
            and actor_user_id != actor_user_ref
            and (actor_user_id is not None or existing_users.exists(actor_user_ref))
        ):
            return result(
                ChainProblem(
                    ProblemKind.MODIFIED,
                    f"event {sequence} was modified: its user link points at "
                    f"{actor_user_id if actor_user_id is not None else 'nobody'}, but its hash covers "
                    f"user {actor_user_ref}.",
                    sequence=sequence,
                )
            )
        for checkpoint in valid_checkpoints.get(sequence, ()):
            if checkpoint.head_hash != stored_hash:
                return result(
                    ChainProblem(
                        ProblemKind.CHECKPOINT_MISMATCH,
                        f"{_describe(checkpoint)} no longer matches event {sequence}: the chain was rewritten "
                        f"at or before sequence {sequence} after it was signed.",
                        sequence=sequence,
                        checkpoint_id=checkpoint.pk,
                    )
                )
        previous_hash = stored_hash
        expected += 1
        verified += 1
        if progress and verified % progress_every == 0:
            progress(verified, total)

    if signature_problem:
        return result(signature_problem)
    last_sequence = expected - 1
    beyond = [checkpoint for checkpoint in checkpoints if checkpoint.size > last_sequence]
    if beyond:
        return result(
            ChainProblem(
                ProblemKind.MISSING,
                f"event {last_sequence + 1} is missing: {_describe(beyond[0])} covers {beyond[0].size} events "
                f"but the chain ends at {last_sequence} (deleted from the end).",
                sequence=last_sequence + 1,
                checkpoint_id=beyond[0].pk,
            )
        )
    if up_to is None:
        head_problem = _head_problem(chain, last_sequence, previous_hash)
        if head_problem:
            return result(head_problem)
        if check_checkpoints and resume_after is None:
            registry_problem = _registry_problem(chain, last_sequence, anchored=bool(valid_checkpoints))
            if registry_problem:
                return result(registry_problem)
    return result()


def registered_chains() -> set[str]:
    """Chains announced on the default chain (audit.services registers each new chain)."""
    return set(
        Event.objects.filter(chain=DEFAULT_CHAIN, action=CHAIN_OPEN_ACTION).values_list(
            "resource_id", flat=True
        )
    )


def _registry_problem(chain: str, last_sequence: int, *, anchored: bool) -> ChainProblem | None:
    if chain == DEFAULT_CHAIN:
        return None
    registered = chain in registered_chains()
    if not registered and not anchored:
        return ChainProblem(
            ProblemKind.UNKNOWN_CHAIN,
            f"chain {chain!r} is not known: no signed checkpoint covers it and the {DEFAULT_CHAIN!r} chain "
            "never registered it (written behind the trail service).",
            sequence=1 if last_sequence else None,
        )
    if registered and last_sequence == 0:
        return ChainProblem(
            ProblemKind.MISSING,
            f"event 1 is missing: chain {chain!r} is registered on the {DEFAULT_CHAIN!r} chain but has no "
            "events (the whole chain was deleted).",
            sequence=1,
        )
    return None


class _UserExistence:
    """Whether a user key still exists, asked once per key (only for detached events)."""

    def __init__(self) -> None:
        self._known: dict[int, bool] = {}

    def exists(self, pk: int | None) -> bool:
        if pk is None:
            return False
        if pk not in self._known:
            self._known[pk] = get_user_model().objects.filter(pk=pk).exists()
        return self._known[pk]


def verify_event(event: Event, *, recent_checkpoints: int = 5) -> ChainVerification:
    """Verify the chain up to `event`, from the newest validly signed checkpoint at or before it.

    Cost grows with the distance to that checkpoint, not with the trail: the event page stays fast
    on a trail of millions of events. The checkpoint's event must still hash to the signed value,
    and every later event must link to it. When no signed checkpoint precedes the event (or the
    anchor does not hold), the whole chain up to the event is verified instead.
    """
    candidates = Checkpoint.objects.filter(chain=event.chain, size__lte=event.sequence).order_by("-size")
    anchor = next(
        (
            checkpoint
            for checkpoint in candidates[:recent_checkpoints]
            if _signature_problem(checkpoint) is None
        ),
        None,
    )
    if anchor is None:
        return verify_chain(event.chain, up_to=event.sequence)
    anchor_row = (
        Event.objects.filter(chain=event.chain, sequence=anchor.size).values_list("prev_hash", "hash").first()
    )
    if anchor_row is None or anchor_row[1] != anchor.head_hash:
        return verify_chain(event.chain, up_to=event.sequence)  # reports what broke, from the start
    result = verify_chain(
        event.chain,
        up_to=event.sequence,
        resume_after=(anchor.size - 1, anchor_row[0]),
        check_checkpoints=False,
    )
    if not result.ok:
        return result
    return ChainVerification(
        chain=result.chain,
        events_verified=result.events_verified,
        checkpoints_verified=1,
        last_sequence=result.last_sequence,
        last_hash=result.last_hash,
        anchored_at=anchor.size,
    )


def _recomputed_hash(chain: str, row: tuple, hash_version: int, actor_user_ref: int | None) -> str | None:
    (sequence, timestamp, actor_kind, actor_label, action, resource_type, resource_id, outcome, policy) = row[
        :9
    ]
    payload_json, prev_hash = row[9], row[10]
    try:
        payload = json.loads(payload_json)
    except (TypeError, ValueError):
        return None
    if canonical_json(payload) != payload_json:
        return None  # stored text rewritten, even if it still parses to the same data
    canonical = canonical_event(
        chain=chain,
        sequence=sequence,
        timestamp=timestamp,
        actor_kind=actor_kind,
        actor_label=actor_label,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        outcome=outcome,
        policy=policy,
        payload=payload,
        hash_version=hash_version,
        actor_user_ref=actor_user_ref if hash_version >= 2 else None,
    )
    return chain_hash(prev_hash, canonical)


def _head_problem(chain: str, last_sequence: int, last_hash: str) -> ChainProblem | None:
    head = ChainHead.objects.filter(chain=chain).first()
    head_sequence = head.sequence if head else 0
    if head_sequence > last_sequence:
        return ChainProblem(
            ProblemKind.MISSING,
            f"event {last_sequence + 1} is missing: the chain head records {head_sequence} events but the "
            f"chain ends at {last_sequence} (deleted from the end).",
            sequence=last_sequence + 1,
        )
    if head_sequence < last_sequence:
        return ChainProblem(
            ProblemKind.UNEXPECTED,
            f"event {head_sequence + 1} was not appended by the trail service: the chain head ends at "
            f"{head_sequence} but events run to {last_sequence}.",
            sequence=head_sequence + 1,
        )
    if head is not None and head.head_hash != last_hash:
        return ChainProblem(
            ProblemKind.HEAD_MISMATCH,
            f"the chain head's hash does not match event {last_sequence}.",
            sequence=last_sequence,
        )
    return None


def _signature_problem(checkpoint: Checkpoint) -> ChainProblem | None:
    try:
        key = get_key_provider().signing_key(checkpoint.key_name, create=False)
    except VaultError as error:
        return _bad_checkpoint(checkpoint, f"its signing key is not available ({error})")
    if key.key_id != checkpoint.key_id or key.algorithm != checkpoint.algorithm:
        return _bad_checkpoint(
            checkpoint, f"it names key {checkpoint.key_id[:16]}, not the vault's {key.key_id[:16]}"
        )
    message = checkpoint_message(
        chain=checkpoint.chain,
        size=checkpoint.size,
        head_hash=checkpoint.head_hash,
        signed_at=checkpoint.signed_at,
        algorithm=checkpoint.algorithm,
        key_id=checkpoint.key_id,
    )
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
    except (ValueError, binascii.Error):
        signature = b""
    if not key.verify(signature, message):
        return _bad_checkpoint(
            checkpoint, "its signature does not match its contents (the checkpoint was altered)"
        )
    return None


def _bad_checkpoint(checkpoint: Checkpoint, reason: str) -> ChainProblem:
    return ChainProblem(
        ProblemKind.CHECKPOINT_SIGNATURE,
        f"{_describe(checkpoint)} is not valid: {reason}.",
        checkpoint_id=checkpoint.pk,
    )


def _describe(checkpoint: Checkpoint) -> str:
    return f"checkpoint #{checkpoint.pk} (size {checkpoint.size}, signed {checkpoint.signed_at:%Y-%m-%d %H:%M:%S}Z)"
