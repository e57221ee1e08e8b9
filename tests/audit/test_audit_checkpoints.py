"""Signed checkpoints: made by the command and the periodic task, checked by verify_trail."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.core.management import CommandError, call_command
from django.db import connection

from audit.canonical import canonical_event, chain_hash, checkpoint_message
from audit.models import Checkpoint, Event
from audit.services import TrailIntegrityError, checkpoint_create
from audit.tasks import checkpoint_trail
from audit.verification import ProblemKind, verify_chain
from tests.audit.conftest import (
    as_application_role,
    refused_by_database,
    run_sql,
    triggers_disabled,
)
from vault.keys import get_key_provider

pytestmark = pytest.mark.django_db


def test_checkpoint_signs_the_head_with_the_vault_key(chain_of, capsys):
    chain_of(5)
    call_command("checkpoint_trail")
    assert "chain 'suite' at 6 events" in capsys.readouterr().out  # 5 + the creation of the signing key
    checkpoint = Checkpoint.objects.get()
    head = Event.objects.get(chain="suite", sequence=checkpoint.size)
    assert checkpoint.head_hash == head.hash
    key_event = Event.objects.get(action="key.create")
    assert (key_event.actor_label, key_event.resource_id) == ("system:vault", checkpoint.key_name)

    # An independent check with the published public key.
    public_key = load_pem_public_key(
        get_key_provider().signing_key(checkpoint.key_name).public_key_pem().encode()
    )
    message = json.dumps(
        {
            "algorithm": "Ed25519",
            "chain": "suite",
            "head_hash": head.hash,
            "key_id": checkpoint.key_id,
            "signed_at": checkpoint.signed_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "size": 6,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    public_key.verify(base64.b64decode(checkpoint.signature), message)  # raises if invalid

    result = verify_chain("suite")
    assert result.ok and result.checkpoints_verified == 1


def test_nothing_to_sign_when_the_chain_did_not_grow(chain_of):
    chain_of(2)
    first = checkpoint_create()
    assert first is not None
    assert checkpoint_create() is None
    chain_of(1)
    second = checkpoint_create()
    assert second.size == first.size + 1


def test_periodic_task_checkpoints_every_chain_that_grew(chain_of):
    chain_of(3, chain="finance")
    chain_of(2, chain="medical")
    created = checkpoint_trail.apply().get()
    # finance, medical, and "suite", where both chains were registered and the key creation recorded
    assert len(created) == 3
    assert {checkpoint.chain: checkpoint.size for checkpoint in Checkpoint.objects.all()} == {
        "finance": 3,
        "medical": 2,
        "suite": 3,
    }
    assert checkpoint_trail.apply().get() == []


def test_tampered_checkpoint_is_named(chain_of):
    chain_of(4)
    checkpoint = checkpoint_create()
    update = "UPDATE {checkpoints} SET head_hash = %s WHERE id = %s"
    if connection.vendor == "postgresql":
        with as_application_role():
            assert "append-only" in refused_by_database(update, ["0" * 64, checkpoint.pk])
            assert "append-only" in refused_by_database("DELETE FROM {checkpoints}")
    with triggers_disabled():
        run_sql(update, [Event.objects.get(sequence=2).hash, checkpoint.pk])
    with pytest.raises(CommandError) as failure:
        call_command("verify_trail")
    assert failure.value.returncode == 1
    assert f"checkpoint #{checkpoint.pk} (size 5" in str(failure.value)
    assert "signature does not match" in str(failure.value)


def test_chain_rewritten_behind_a_checkpoint_is_named(chain_of):
    """The forger recomputes every later hash and the head: only the signed checkpoint catches it."""
    chain_of(6)
    checkpoint = checkpoint_create()
    chain_of(2)
    with triggers_disabled():
        _rewrite_from(sequence=3, payload={"number": 3, "note": "rewritten"})
    result = verify_chain("suite")
    assert result.problem.kind == ProblemKind.CHECKPOINT_MISMATCH
    assert result.problem.checkpoint_id == checkpoint.pk
    with pytest.raises(CommandError) as failure:
        call_command("verify_trail")
    assert f"checkpoint #{checkpoint.pk} (size 7" in str(failure.value)
    assert "rewritten" in str(failure.value)


def test_events_deleted_behind_a_checkpoint_are_named_even_with_the_head_moved_back(chain_of):
    chain_of(6)
    checkpoint_create()  # covers 7 events
    with triggers_disabled():
        run_sql("DELETE FROM {events} WHERE sequence >= 6")
        run_sql("UPDATE {heads} SET sequence = 5, head_hash = %s", [Event.objects.get(sequence=5).hash])
    result = verify_chain("suite")
    assert (result.problem.kind, result.first_bad_sequence) == (ProblemKind.MISSING, 6)


def test_checkpoint_refuses_to_sign_a_broken_chain(chain_of):
    chain_of(3)
    with triggers_disabled():
        run_sql("UPDATE {events} SET action = 'rewritten' WHERE sequence = 2")
    with pytest.raises(TrailIntegrityError, match="event 2 was modified"):
        checkpoint_create()
    assert not Checkpoint.objects.exists()
    with pytest.raises(CommandError) as failure:
        call_command("checkpoint_trail")
    assert failure.value.returncode == 1


def test_checkpoint_with_a_missing_key_is_reported(chain_of, settings, tmp_path):
    chain_of(2)
    checkpoint = checkpoint_create()
    settings.VAULT_KEY_DIR = tmp_path / "other-keys"
    result = verify_chain("suite")
    assert result.problem.kind == ProblemKind.CHECKPOINT_SIGNATURE
    assert result.problem.checkpoint_id == checkpoint.pk
    assert "signing key is not available" in result.problem.message


def test_checkpoint_message_is_canonical_json():
    message = checkpoint_message(
        chain="suite",
        size=3,
        head_hash="ab" * 32,
        signed_at="2026-01-01T00:00:00.000000Z",
        algorithm="Ed25519",
        key_id="k",
    )
    assert json.loads(message) == {
        "algorithm": "Ed25519",
        "chain": "suite",
        "head_hash": "ab" * 32,
        "key_id": "k",
        "signed_at": "2026-01-01T00:00:00.000000Z",
        "size": 3,
    }


def _rewrite_from(*, sequence: int, payload: dict) -> None:
    events = list(Event.objects.filter(chain="suite", sequence__gte=sequence).order_by("sequence"))
    previous_hash = Event.objects.get(chain="suite", sequence=sequence - 1).hash
    for event in events:
        new_payload = payload if event.sequence == sequence else event.payload
        canonical = canonical_event(
            chain=event.chain,
            sequence=event.sequence,
            timestamp=event.timestamp,
            actor_kind=event.actor_kind,
            actor_label=event.actor_label,
            action=event.action,
            resource_type=event.resource_type,
            resource_id=event.resource_id,
            outcome=event.outcome,
            policy=event.policy,
            payload=new_payload,
            hash_version=event.hash_version,
            actor_user_ref=event.actor_user_ref,
        )
        new_hash = chain_hash(previous_hash, canonical)
        run_sql(
            "UPDATE {events} SET payload_json = %s, prev_hash = %s, hash = %s WHERE id = %s",
            [
                json.dumps(new_payload, sort_keys=True, separators=(",", ":")),
                previous_hash,
                new_hash,
                event.pk,
            ],
        )
        previous_hash = new_hash
    run_sql("UPDATE {heads} SET head_hash = %s WHERE chain = 'suite'", [previous_hash])
