"""Whole chains and actor references: verify_trail catches a deleted chain, a forged chain, a changed
user link; events written under hash version 1 keep verifying beside version 2 events."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.roles import Role
from audit.canonical import CHAIN_OPEN_ACTION, GENESIS_HASH, canonical_event, chain_hash
from audit.models import Event
from audit.selectors import chain_names
from audit.services import checkpoint_create, record
from audit.verification import ProblemKind, verify_chain
from tests.audit.conftest import run_sql, triggers_disabled

pytestmark = pytest.mark.django_db


def verify_all_failure() -> str:
    with pytest.raises(CommandError) as failure:
        call_command("verify_trail")
    assert failure.value.returncode == 1
    return str(failure.value)


def _insert(chain: str, sequence: int, prev_hash: str, *, version: int, label: str = "task:legacy") -> str:
    """An event as a writer of hash `version` leaves it (raw SQL); returns its hash."""
    moment = timezone.now()
    fields = dict(
        chain=chain, sequence=sequence, timestamp=moment, actor_kind="system", actor_label=label,
        action="test.decide", resource_type="case", resource_id=str(sequence), outcome="allowed",
        policy="", payload={},
    )  # fmt: skip
    extra = {"hash_version": version, "actor_user_ref": None} if version >= 2 else {}
    digest = chain_hash(prev_hash, canonical_event(**fields, **extra))
    row = {**fields, "payload_json": "{}", "hash_version": version, "prev_hash": prev_hash, "hash": digest}
    row.pop("payload")
    run_sql(
        "INSERT INTO {events} ({columns}) VALUES ({placeholders})",
        list(row.values()),
        columns=", ".join(row),
        placeholders=", ".join(["%s"] * len(row)),
    )
    return digest


def test_version_1_events_still_verify_beside_version_2(chain_of):
    chain_of(1)  # the chain head exists
    # Rebuild the chain as version 1 wrote it; PostgreSQL's append-only triggers refuse this otherwise.
    with triggers_disabled():
        run_sql("DELETE FROM {events}")
        previous = GENESIS_HASH
        for sequence in (1, 2, 3):
            previous = _insert("suite", sequence, previous, version=1)
        run_sql("UPDATE {heads} SET sequence = 3, head_hash = %s WHERE chain = 'suite'", [previous])
    newer = chain_of(2)
    assert [event.hash_version for event in newer] == [2, 2]
    result = verify_chain("suite")
    assert result.ok and result.events_verified == 5
    # A version 1 event rewritten is still caught.
    with triggers_disabled():
        run_sql("UPDATE {events} SET resource_id = 'x' WHERE sequence = 2")
    assert verify_chain("suite").first_bad_sequence == 2


def test_user_link_repointed_is_named(make_user):
    alice, mallory = make_user(Role.CLINICIAN), make_user(Role.CLINICIAN)
    record(actor="task:tests", action="a.b", resource_type="r", outcome="allowed")
    event = record(actor=alice, action="study.read", resource_type="study", outcome="allowed")
    assert (event.hash_version, event.actor_user_ref) == (2, alice.pk)
    with triggers_disabled():
        run_sql("UPDATE {events} SET actor_user_id = %s WHERE id = %s", [mallory.pk, event.pk])
    result = verify_chain("suite")
    assert (result.problem.kind, result.first_bad_sequence) == (ProblemKind.MODIFIED, 2)
    assert "user link" in result.problem.message


def test_user_link_cleared_while_the_user_exists_is_named(make_user):
    alice = make_user(Role.CLINICIAN)
    event = record(actor=alice, action="study.read", resource_type="study", outcome="allowed")
    with triggers_disabled():
        run_sql("UPDATE {events} SET actor_user_id = NULL WHERE id = %s", [event.pk])
    assert verify_chain("suite").first_bad_sequence == 1
    alice.delete()  # now the link is NULL because the user is gone: that is allowed
    assert verify_chain("suite").ok


def test_hashed_reference_changed_is_named(make_user):
    alice, bob = make_user(Role.CLINICIAN), make_user(Role.CLINICIAN)
    event = record(actor=alice, action="study.read", resource_type="study", outcome="allowed")
    with triggers_disabled():
        run_sql(
            "UPDATE {events} SET actor_user_id = %s, actor_user_ref = %s WHERE id = %s",
            [bob.pk, bob.pk, event.pk],
        )
    assert verify_chain("suite").problem.kind == ProblemKind.MODIFIED


def test_new_chain_is_registered_on_the_default_chain(chain_of):
    chain_of(2, chain="finance")
    registration = Event.objects.get(chain="suite", action=CHAIN_OPEN_ACTION)
    assert registration.resource_id == "finance"
    chain_of(1, chain="finance")
    assert Event.objects.filter(chain="suite", action=CHAIN_OPEN_ACTION).count() == 1


def test_whole_chain_deleted_behind_a_checkpoint_is_named(chain_of):
    chain_of(3, chain="finance")
    assert checkpoint_create(chain="finance").size == 3
    with triggers_disabled():
        run_sql("DELETE FROM {events} WHERE chain = 'finance'")
        run_sql("DELETE FROM {heads} WHERE chain = 'finance'")
    assert "finance" in chain_names()
    message = verify_all_failure()
    assert "Chain 'finance' is BROKEN at sequence 1: event 1 is missing" in message


def test_whole_registered_chain_deleted_without_a_checkpoint_is_named(chain_of):
    chain_of(3, chain="finance")
    with triggers_disabled():
        run_sql("DELETE FROM {events} WHERE chain = 'finance'")
        run_sql("DELETE FROM {heads} WHERE chain = 'finance'")
    message = verify_all_failure()
    assert "Chain 'finance' is BROKEN at sequence 1" in message and "whole chain was deleted" in message


def test_forged_chain_with_correct_hashes_is_named(chain_of):
    chain_of(2)
    with triggers_disabled():
        previous = GENESIS_HASH
        for sequence in (1, 2):
            previous = _insert("payments", sequence, previous, version=2, label="task:forger")
        run_sql("INSERT INTO {heads} (chain, sequence, head_hash, updated_at) VALUES ('payments', 2, %s, %s)",
                [previous, timezone.now()])  # fmt: skip
    result = verify_chain("payments")
    assert result.problem.kind == ProblemKind.UNKNOWN_CHAIN
    assert "Chain 'payments' is BROKEN at sequence 1: chain 'payments' is not known" in verify_all_failure()
