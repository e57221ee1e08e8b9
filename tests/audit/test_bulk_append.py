"""record_many(): one chained run of N events, hashed and verified exactly like N record() calls."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.canonical import PayloadError
from audit.models import ChainHead, Event
from audit.services import record, record_many
from audit.verification import verify_chain
from tests.audit.conftest import as_application_role, refused_by_database

pytestmark = pytest.mark.django_db


def _append(n: int, chain: str = "suite", start: int = 0):
    return record_many(
        actor="system:test",
        action="thing.decide",
        resource_type="thing",
        outcome="succeeded",
        events=[(start + i, {"n": start + i, "why": ["a", 1.5]}) for i in range(n)],
        chain=chain,
    )


def test_a_run_is_chained_between_single_records_and_verifies():
    first = record(actor="system:test", action="thing.decide", resource_type="thing", outcome="succeeded")
    run = _append(4, start=1)
    last = record(actor="system:test", action="thing.decide", resource_type="thing", outcome="succeeded")
    assert [e.sequence for e in run] == [2, 3, 4, 5] and last.sequence == 6
    assert run[0].prev_hash == first.hash and last.prev_hash == run[-1].hash
    for event in run:
        stored = Event.objects.get(pk=event.pk)
        assert stored.hash == stored.computed_hash() == event.hash
        assert stored.payload == {"n": int(stored.resource_id), "why": ["a", 1.5]}
    head = ChainHead.objects.get(chain="suite")
    assert (head.sequence, head.head_hash) == (6, last.hash)
    assert verify_chain("suite").ok


def test_a_run_on_a_new_chain_registers_it_and_verifies():
    run = _append(3, chain="finance-bulk")
    assert [e.sequence for e in run] == [1, 2, 3]
    assert Event.objects.filter(chain="suite", action="trail.chain_open", resource_id="finance-bulk").exists()
    assert verify_chain("finance-bulk").ok and verify_chain("suite").ok


def test_a_bad_payload_refuses_the_whole_run_and_nothing_is_written():
    before = Event.objects.count()
    with pytest.raises(PayloadError):
        record_many(
            actor="system:test",
            action="thing.decide",
            resource_type="thing",
            outcome="succeeded",
            events=[(1, {"ok": 1}), (2, {"bad": {1, 2}})],
        )
    assert Event.objects.count() == before


def test_a_run_rolls_back_with_the_callers_transaction():
    with pytest.raises(RuntimeError), transaction.atomic():
        _append(3)
        raise RuntimeError("the decision failed")
    assert Event.objects.count() == 0
    assert not ChainHead.objects.filter(chain="suite", sequence__gt=0).exists()
    assert _append(1)[0].sequence == 1 and verify_chain("suite").ok


def test_payloads_beyond_plain_json_are_converted_like_record():
    import datetime as dt
    from decimal import Decimal

    moment = dt.datetime(2026, 12, 3, 7, 0, tzinfo=dt.UTC)
    [event] = record_many(
        actor="system:test",
        action="thing.decide",
        resource_type="thing",
        outcome="succeeded",
        events=[("x", {"amount": Decimal("12.50"), "at": moment, "pair": (1, "ü")})],
    )
    stored = Event.objects.get(pk=event.pk)
    assert stored.payload == {"amount": "12.50", "at": "2026-12-03T07:00:00.000000Z", "pair": [1, "ü"]}
    assert stored.hash == stored.computed_hash() and verify_chain("suite").ok


def test_a_run_moves_the_head_with_one_update():
    _append(2)
    with CaptureQueriesContext(connection) as queries:
        run = _append(40, start=2)
    head_updates = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("UPDATE") and "chainhead" in q["sql"]
    ]
    assert len(head_updates) == 1, head_updates
    head = ChainHead.objects.get(chain="suite")
    assert (head.sequence, head.head_hash) == (42, run[-1].hash)
    assert verify_chain("suite").ok


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the head's trigger exists on PostgreSQL only")
def test_the_head_trigger_lets_it_jump_only_over_events_that_exist():
    run = _append(5)
    record(actor="system:test", action="thing.decide", resource_type="other", outcome="succeeded")
    with as_application_role():
        jump = "UPDATE {heads} SET sequence = %s, head_hash = %s WHERE chain = 'suite'"
        # over events that are not there, onto a hash no event has, backwards: refused
        assert "may only advance" in refused_by_database(jump, [9, run[-1].hash])
        assert "may only advance" in refused_by_database(jump, [3, run[2].hash])
    assert ChainHead.objects.get(chain="suite").sequence == 6
    assert _append(3, start=6)[-1].sequence == 9 and verify_chain("suite").ok
