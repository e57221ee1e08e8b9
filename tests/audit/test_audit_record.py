"""record(): what it stores, what it refuses, and how it joins the caller's transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from knox.models import AuthToken

from accounts.roles import Role
from audit.canonical import GENESIS_HASH, PayloadError
from audit.models import AppendOnlyError, ChainHead, Checkpoint, Event
from audit.services import record
from audit.verification import verify_chain

pytestmark = pytest.mark.django_db


def test_events_are_numbered_and_chained_from_genesis(chain_of):
    events = chain_of(3)
    assert [event.sequence for event in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS_HASH
    assert events[1].prev_hash == events[0].hash and events[2].prev_hash == events[1].hash
    head = ChainHead.objects.get(chain="suite")
    assert (head.sequence, head.head_hash) == (3, events[2].hash)
    stored = Event.objects.get(pk=events[1].pk)
    assert stored.hash == stored.computed_hash() == events[1].hash


def test_chains_are_numbered_independently(chain_of):
    chain_of(2, chain="finance")
    medical = chain_of(1, chain="medical")
    assert medical[0].sequence == 1 and medical[0].prev_hash == GENESIS_HASH
    assert verify_chain("finance").ok and verify_chain("medical").ok


def test_payload_is_stored_canonically_with_deterministic_conversions():
    moment = dt.datetime(2026, 11, 3, 10, 15, 30, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    identifier = uuid.UUID("12345678-1234-5678-1234-567812345678")
    event = record(
        actor="task:tests",
        action="test.decide",
        resource_type="case",
        outcome="allowed",
        payload={
            "z": 1,
            "amount": Decimal("12.50"),
            "at": moment,
            "day": dt.date(2026, 1, 2),
            "id": identifier,
            "name": "Zoë",
            "pair": (1, 2),
        },
    )
    assert event.payload_json == (
        '{"amount":"12.50","at":"2026-11-03T08:15:30.123456Z","day":"2026-01-02",'
        '"id":"12345678-1234-5678-1234-567812345678","name":"Zoë","pair":[1,2],"z":1}'
    )
    assert Event.objects.get(pk=event.pk).payload["amount"] == "12.50"


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        ({"tags": {"a", "b"}}, "payload['tags']: a set is not JSON-serialisable"),
        ({"blob": b"\x00"}, "payload['blob']: a bytes is not JSON-serialisable"),
        ({"ratio": float("nan")}, "has no JSON form"),
        ({1: "x"}, "payload keys must be strings"),
        ({"when": dt.datetime(2026, 1, 1)}, "Naive datetime"),
        ({"nested": [{"deep": object()}]}, "payload['nested'][0]['deep']: a object"),
        (["not", "a", "dict"], "payload must be a dict"),
    ],
)
def test_payload_without_a_deterministic_json_form_is_refused(payload, complaint):
    with pytest.raises(PayloadError) as refusal:
        record(
            actor="task:tests", action="test.decide", resource_type="case", outcome="allowed", payload=payload
        )
    assert complaint in str(refusal.value)
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"outcome": "maybe"}, "outcome 'maybe' is not one of allowed, denied, succeeded, failed"),
        ({"action": ""}, "action must be a non-empty string"),
        ({"resource_type": "   "}, "resource_type must be a non-empty string"),
        ({"chain": "Bad Chain"}, "chain 'Bad Chain' must be"),
        ({"actor": "just-a-name"}, "must look like 'component:name'"),
        ({"resource_id": "x" * 256}, "resource_id is 256 characters long"),
    ],
)
def test_invalid_arguments_are_refused_with_a_clear_message(arguments, error):
    valid = {"actor": "task:tests", "action": "test.decide", "resource_type": "case", "outcome": "allowed"}
    with pytest.raises(ValueError) as refusal:
        record(**{**valid, **arguments})
    assert error in str(refusal.value)
    assert not Event.objects.exists()


def test_actor_kinds(make_user):
    user = make_user(Role.AUDITOR, username="ada")
    token, key = AuthToken.objects.create(user=user)
    as_user = record(actor=user, action="a.b", resource_type="r", outcome="allowed")
    as_token = record(actor=token, action="a.b", resource_type="r", outcome="allowed")
    as_system = record(actor="scp:SUITE", action="a.b", resource_type="r", outcome="succeeded")
    anonymous = [
        record(actor=actor, action="a.b", resource_type="r", outcome="denied")
        for actor in (None, AnonymousUser())
    ]
    assert (as_user.actor_kind, as_user.actor_label, as_user.actor_user) == ("user", "ada", user)
    assert (as_token.actor_kind, as_token.actor_label, as_token.actor_user) == ("token", "ada", user)
    assert key not in as_token.payload_json + as_token.actor_label
    assert (as_system.actor_kind, as_system.actor_label, as_system.actor_user) == (
        "system",
        "scp:SUITE",
        None,
    )
    assert {(event.actor_kind, event.actor_label) for event in anonymous} == {("anonymous", "anonymous")}


def test_rollback_of_the_callers_transaction_removes_the_event(chain_of):
    chain_of(2)

    class DecisionFailed(Exception):
        pass

    with pytest.raises(DecisionFailed), transaction.atomic():
        record(actor="task:tests", action="test.decide", resource_type="case", outcome="allowed")
        assert Event.objects.filter(chain="suite").count() == 3  # visible inside the transaction
        raise DecisionFailed

    assert Event.objects.filter(chain="suite").count() == 2
    assert ChainHead.objects.get(chain="suite").sequence == 2
    after = record(actor="task:tests", action="test.decide", resource_type="case", outcome="allowed")
    assert after.sequence == 3  # no gap left behind by the rolled-back event
    assert verify_chain("suite").ok


def test_the_orm_refuses_to_change_or_delete_events(chain_of):
    event = chain_of(2)[0]
    event.action = "rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        Event.objects.filter(pk=event.pk).update(action="rewritten")
    with pytest.raises(AppendOnlyError):
        Event.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        Event.objects.bulk_update([event], ["action"])
    with pytest.raises(AppendOnlyError):
        Event.objects.bulk_create([Event(chain="suite", sequence=9)])
    with pytest.raises(AppendOnlyError):
        Event(chain="suite", sequence=9, hash="0" * 64).save()  # bypassing record()
    with pytest.raises(AppendOnlyError):
        Checkpoint.objects.all().delete()
    assert Event.objects.get(pk=event.pk).action == "test.decide"
    assert verify_chain("suite").ok


def test_deleting_a_user_keeps_their_events_and_the_chain_intact(make_user):
    user = make_user(Role.CLINICIAN, username="leaver")
    event = record(
        actor=user, action="study.read", resource_type="study", resource_id="1.2.3", outcome="allowed"
    )
    user.delete()
    kept = Event.objects.get(pk=event.pk)
    assert kept.actor_user is None and kept.actor_label == "leaver"
    assert verify_chain("suite").ok


def test_hash_is_sha256_of_previous_hash_and_canonical_event(chain_of):
    event = chain_of(1)[0]
    document = {
        "chain": "suite",
        "sequence": 1,
        "timestamp": event.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor_kind": "system",
        "actor_label": "task:tests.fill",
        "action": "test.decide",
        "resource_type": "case",
        "resource_id": "1",
        "outcome": "succeeded",
        "policy": "tests.policy",
        "payload": {"number": 1, "note": "event 1"},
        "hash_version": 2,
        "actor_user_ref": None,
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert event.hash == hashlib.sha256(GENESIS_HASH.encode() + canonical).hexdigest()
