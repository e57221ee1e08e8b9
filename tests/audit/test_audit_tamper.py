"""Tampering behind the trail service: the database refuses it, and verify_trail names where it happened.

On PostgreSQL the append-only triggers refuse each change first; the test then disables them, as
a malicious superuser would, and tampers anyway. SQLite has no triggers: tampering goes straight in.
"""

from __future__ import annotations

import io
import logging

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit.canonical import canonical_event, chain_hash
from audit.verification import ProblemKind, verify_chain
from tests.audit.conftest import (
    EVENT_TABLE,
    TRAIL_TABLES,
    as_application_role,
    refused_by_database,
    run_sql,
    triggers_disabled,
)

pytestmark = pytest.mark.django_db
POSTGRESQL = connection.vendor == "postgresql"
SHIFT = 1_000_000  # moves rows out of the way of the (chain, sequence) unique constraint


def verify_trail_failure() -> str:
    with pytest.raises(CommandError) as failure:
        call_command("verify_trail", "--chain", "suite")
    assert failure.value.returncode == 1
    return str(failure.value)


@pytest.fixture
def eight_events(chain_of):
    events = chain_of(8)
    call_command("verify_trail", "--chain", "suite", stdout=io.StringIO())  # intact before tampering
    return events


def test_intact_chain_exits_0_and_counts_events(eight_events, capsys):
    call_command("verify_trail")
    output = capsys.readouterr().out
    assert "OK: 8 events verified" in output


def test_modified_payload_is_named(eight_events):
    update = "UPDATE {events} SET payload_json = %s WHERE chain = 'suite' AND sequence = 5"
    if POSTGRESQL:
        assert "append-only" in refused_by_database(update, ['{"number":5000}'])
    with triggers_disabled():
        run_sql(update, ['{"number":5000}'])
    assert "BROKEN at sequence 5: event 5 was modified" in verify_trail_failure()


def test_payload_rewritten_in_non_canonical_form_is_named(eight_events):
    with triggers_disabled():
        run_sql(
            "UPDATE {events} SET payload_json = %s WHERE sequence = 3",
            ['{"note": "event 3", "number": 3}'],
        )
    assert verify_chain("suite").first_bad_sequence == 3


@pytest.mark.parametrize("column", ["actor_label", "action", "outcome", "policy", "resource_id"])
def test_any_hashed_column_changed_is_named(eight_events, column):
    with triggers_disabled():
        run_sql("UPDATE {events} SET {column} = 'x' WHERE sequence = 6", column=column)
    result = verify_chain("suite")
    assert (result.problem.kind, result.first_bad_sequence) == (ProblemKind.MODIFIED, 6)


def test_deleted_event_is_named(eight_events):
    delete = "DELETE FROM {events} WHERE chain = 'suite' AND sequence = 4"
    if POSTGRESQL:
        assert "append-only" in refused_by_database(delete)
    with triggers_disabled():
        run_sql(delete)
    assert "BROKEN at sequence 4: event 4 is missing" in verify_trail_failure()


def test_last_event_deleted_is_named_from_the_chain_head(eight_events):
    with triggers_disabled():
        run_sql("DELETE FROM {events} WHERE sequence = 8")
    assert "BROKEN at sequence 8: event 8 is missing" in verify_trail_failure()


def test_forged_event_inserted_mid_chain_is_named(eight_events):
    third = eight_events[2]
    with triggers_disabled():
        run_sql("UPDATE {events} SET sequence = sequence + %s WHERE sequence >= 4", [SHIFT])
        run_sql("UPDATE {events} SET sequence = sequence - %s + 1 WHERE sequence > %s", [SHIFT, SHIFT])
        _insert_raw(
            sequence=4, prev_hash=third.hash, hash="f" * 64, payload_json='{"forged":true}', like=third
        )
    assert "BROKEN at sequence 4" in verify_trail_failure()


def test_forged_event_appended_with_a_correct_hash_is_named(eight_events):
    """The forger knows the algorithm and computes a valid hash; the chain head still says 8."""
    last = eight_events[-1]
    canonical = canonical_event(
        chain="suite",
        sequence=9,
        timestamp=last.timestamp,
        actor_kind="system",
        actor_label="task:forger",
        action="test.decide",
        resource_type="case",
        resource_id="9",
        outcome="allowed",
        policy="",
        payload={},
        hash_version=2,
    )
    with triggers_disabled():
        _insert_raw(
            sequence=9,
            prev_hash=last.hash,
            hash=chain_hash(last.hash, canonical),
            payload_json="{}",
            like=last,
            actor_label="task:forger",
            outcome="allowed",
            policy="",
            resource_id="9",
        )
    assert "BROKEN at sequence 9: event 9 was not appended by the trail service" in verify_trail_failure()


def test_swapped_events_are_named(eight_events):
    with triggers_disabled():
        run_sql("UPDATE {events} SET sequence = %s WHERE sequence = 5", [SHIFT])
        run_sql("UPDATE {events} SET sequence = 5 WHERE sequence = 6")
        run_sql("UPDATE {events} SET sequence = 6 WHERE sequence = %s", [SHIFT])
    assert "BROKEN at sequence 5: event 5 does not follow event 4" in verify_trail_failure()


def test_wiped_trail_is_named(eight_events):
    if POSTGRESQL:
        with as_application_role():
            for table in TRAIL_TABLES:
                # audit_rewrappedtexts references the events: PostgreSQL refuses a TRUNCATE of the events
                # alone for that reason before any trigger runs; named together, the trigger answers.
                with_referrers = ", audit_rewrappedtexts" if table == EVENT_TABLE else ""
                assert "append-only" in refused_by_database(
                    f"TRUNCATE {{table}}{with_referrers}", table=table
                )
            assert "may only advance" in refused_by_database("UPDATE {heads} SET sequence = 0")
            assert "may only advance" in refused_by_database("DELETE FROM {heads}")
        run_sql(
            "TRUNCATE {events}, audit_rewrappedtexts"
        )  # a superuser could disable the trigger anyway: it lets them through
    else:
        run_sql("DELETE FROM {events}")
    assert "BROKEN at sequence 1: event 1 is missing" in verify_trail_failure()


def test_unknown_chain_is_a_usage_error(eight_events):
    with pytest.raises(CommandError) as failure:
        call_command("verify_trail", "--chain", "nope")
    assert failure.value.returncode == 2 and "No chain named 'nope'" in str(failure.value)


def test_progress_is_logged_for_big_chains(chain_of, caplog, capsys):
    chain_of(25)
    with caplog.at_level(logging.INFO, logger="audit.verify_trail"):
        call_command("verify_trail", "--progress-every", "10")
    assert [record.getMessage() for record in caplog.records if record.name == "audit.verify_trail"] == [
        "chain 'suite': 10 of 25 events verified",
        "chain 'suite': 20 of 25 events verified",
    ]
    assert "OK: 25 events verified" in capsys.readouterr().out


def _insert_raw(*, sequence, prev_hash, hash, payload_json, like, **overrides):
    row = {
        "chain": "suite",
        "sequence": sequence,
        "timestamp": like.timestamp,
        "actor_kind": like.actor_kind,
        "actor_label": like.actor_label,
        "action": like.action,
        "resource_type": like.resource_type,
        "resource_id": like.resource_id,
        "outcome": like.outcome,
        "policy": like.policy,
        "payload_json": payload_json,
        "hash_version": like.hash_version,
        "actor_user_ref": like.actor_user_ref,
        "prev_hash": prev_hash,
        "hash": hash,
        **overrides,
    }
    run_sql(
        "INSERT INTO {events} ({columns}) VALUES ({placeholders})",
        list(row.values()),
        columns=", ".join(row),
        placeholders=", ".join(["%s"] * len(row)),
    )
