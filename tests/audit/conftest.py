"""Fixtures for the decision trail tests: fresh signing keys, raw-SQL tampering, a test urlconf."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

import pytest
from django.db import connection, transaction

from audit.models import ChainHead, Checkpoint, Event
from audit.services import record

EVENT_TABLE = Event._meta.db_table
CHECKPOINT_TABLE = Checkpoint._meta.db_table
HEAD_TABLE = ChainHead._meta.db_table
TRAIL_TABLES = (EVENT_TABLE, CHECKPOINT_TABLE, HEAD_TABLE)


@pytest.fixture(autouse=True)
def private_keys(settings, tmp_path):
    """Each test gets its own key directory, so keys (and their trail events) start from nothing."""
    settings.VAULT_KEY_DIR = tmp_path / "keys"
    return settings.VAULT_KEY_DIR


def run_sql(sql: str, params: tuple | list = (), **identifiers: str) -> list[tuple]:
    """Raw SQL, as a tamperer sends it. {events}, {checkpoints}, {heads} name the trail tables;
    other {names} are identifiers from the test itself. Values always go in `params`."""
    tables = {"events": EVENT_TABLE, "checkpoints": CHECKPOINT_TABLE, "heads": HEAD_TABLE}
    with connection.cursor() as cursor:
        cursor.execute(sql.format(**tables, **identifiers), params)
        return cursor.fetchall() if cursor.description else []


@contextmanager
def triggers_disabled():
    """What a malicious DBA (a superuser) does first on PostgreSQL; SQLite has no triggers to disable.

    Runs inside the test's transaction, so the triggers are back on when the test ends.
    """
    if connection.vendor != "postgresql":
        yield
        return
    run_sql("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE refuses while deferred checks are pending
    for table in TRAIL_TABLES:
        run_sql("ALTER TABLE {table} DISABLE TRIGGER USER", table=table)
    try:
        yield
    finally:
        for table in TRAIL_TABLES:
            run_sql("ALTER TABLE {table} ENABLE TRIGGER USER", table=table)


@contextmanager
def as_application_role():
    """On PostgreSQL, act as an ordinary (non-superuser) role with full privileges on the trail tables."""
    assert connection.vendor == "postgresql"
    role = f"suite_trail_probe_{uuid.uuid4().hex[:12]}"
    run_sql("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE refuses while deferred checks are pending
    run_sql("CREATE ROLE {role} NOLOGIN", role=role)  # rolled back with the test's transaction
    # audit_rewrappedtexts (rotated copies of sealed texts) references the events: granted too, so a
    # TRUNCATE naming both meets the append-only trigger, not a missing privilege
    run_sql("GRANT ALL ON {events}, {checkpoints}, {heads}, audit_rewrappedtexts TO {role}", role=role)
    run_sql("SET ROLE {role}", role=role)
    try:
        yield
    finally:
        run_sql("RESET ROLE")


def refused_by_database(sql: str, params: tuple | list = (), **identifiers: str) -> str:
    """Run `sql` in a savepoint and return the database's refusal message (fails if it was accepted)."""
    from django.db import DatabaseError

    with pytest.raises(DatabaseError) as refusal, transaction.atomic():
        run_sql(sql, params, **identifiers)
    return str(refusal.value)


@pytest.fixture
def chain_of():
    """Record `count` events on `chain` from a system actor and return them."""

    def make(count: int, chain: str = "suite") -> list[Event]:
        return [
            record(
                actor="task:tests.fill",
                action="test.decide",
                resource_type="case",
                resource_id=number,
                outcome="succeeded" if number % 2 else "denied",
                policy="tests.policy",
                payload={"number": number, "note": f"event {number}"},
                chain=chain,
            )
            for number in range(1, count + 1)
        ]

    return make
