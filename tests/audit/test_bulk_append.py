"""record_many(): one chained run of N events, hashed and verified exactly like N record() calls."""

from __future__ import annotations

import pytest
from django.db import transaction

from audit.canonical import PayloadError
from audit.models import ChainHead, Event
from audit.services import record, record_many
from audit.verification import verify_chain

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
