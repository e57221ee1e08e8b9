"""rotate_keys and sealed blobs inside JSON: finance's sealed name matches in an alert's evidence
(re-wrapped in the alert row) and in its alert.raise event on the trail (append-only and hashed:
re-wrapped into vault.models.SealedCopy, which open_sealed falls back to once the old version is gone).
"""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from audit.models import Event
from audit.services import record
from audit.verification import verify_chain
from finance.models import Alert, Transaction
from finance.services.persist import MATCH_CONTEXT, _seal_matches, open_matches
from tests.vault.test_vault_rotation_legacy import seal_format1
from vault.envelope import open_sealed, sealed_header
from vault.errors import TamperedError
from vault.keys import get_key_provider
from vault.models import SealedCopy
from vault.rotation import rotate_kek

pytestmark = pytest.mark.django_db
ALERTS, TRAIL = "finance.Alert.evidence", "audit.Event.payload alert.raise"
NAMES = ["Ivan Petrov", "Olga Karpova"]


@pytest.fixture
def raised_alert():
    """An alert whose evidence holds two sealed name matches: one as screening seals it now, one in
    the vault's format 1 (before December 2026); and its alert.raise event carrying the evidence."""
    match = {"reason": "token overlap", "details": {"tokens": ["ivan", "petrov"]}, "entry_id": "ofac:1",
             "entry_name": "PETROV, Ivan", "score": 0.93}  # fmt: skip
    evidence = _seal_matches(
        {"names": {"matches": [{"party_name": NAMES[0], **match}]}}, {"src": NAMES[0]}, {}
    )
    secret = json.dumps({"party_name": NAMES[1], "reason": "alias", "details": {}}, sort_keys=True)
    legacy = seal_format1(secret.encode(), key_name="default", context=MATCH_CONTEXT)
    evidence["names"]["matches"].append(
        {"party": "dst", "party_hash": "-", "entry_id": "eu:9", "entry_name": "KARPOVA, Olga", "score": 0.9,
         "sealed": base64.b64encode(legacy).decode("ascii")}
    )  # fmt: skip
    tx = Transaction.objects.create(
        tx_ref="T-rot", ts=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), src_account="A", dst_account="B",
        src_bank="1", dst_bank="2", amount_paid=9000.0, amount_received=9000.0, currency_paid="EUR",
        currency_received="EUR", payment_format="Wire",
    )  # fmt: skip
    alert = Alert.objects.create(transaction=tx, team="aml-eu", risk=0.9, decision="hold", evidence=evidence)
    event = record(actor="task:tests.rotate", action="alert.raise", resource_type="alert", resource_id=alert.pk,
                   outcome="succeeded", payload={"alert": alert.pk, "evidence": evidence})  # fmt: skip
    return alert, event


def _opened_names(evidence: dict) -> list[str]:
    return [m["party_name"] for m in open_matches(evidence)["names"]["matches"]]


def _trail_evidence(event) -> dict:
    return json.loads(Event.objects.get(pk=event.pk).payload_json)["evidence"]


def test_sealed_matches_in_alert_evidence_and_on_the_trail_survive_rotations(raised_alert):
    alert, event = raised_alert
    first = rotate_kek("default", file_roots=[])
    assert (first.places[ALERTS], first.places[TRAIL]) == (2, 2)
    assert (first.resealed_format1, first.left_format1, first.failed_format1) == (2, 0, 0)
    evidence = Alert.objects.get(pk=alert.pk).evidence
    kek_of = {sealed_header(base64.b64decode(m["sealed"]))["kek"] for m in evidence["names"]["matches"]}
    assert kek_of == {"default.v2"}
    # the trail payload is not touched: same bytes, the chain verifies
    assert Event.objects.get(pk=event.pk).payload_json == event.payload_json and verify_chain("suite").ok
    assert SealedCopy.objects.filter(place=TRAIL).count() == 2

    provider = get_key_provider()
    provider.destroy_kek("default")  # version 1: every original on the trail now needs its copy
    assert _opened_names(evidence) == NAMES
    assert _opened_names(_trail_evidence(event)) == NAMES

    second = rotate_kek("default", file_roots=[])  # the copies and the row move on; no copy is made twice
    assert (second.places[ALERTS], second.places["vault.SealedCopy.blob"], second.places.get(TRAIL)) == (
        2,
        2,
        None,
    )
    provider.destroy_kek("default.v2")
    assert _opened_names(Alert.objects.get(pk=alert.pk).evidence) == NAMES
    assert _opened_names(_trail_evidence(event)) == NAMES


def test_a_swapped_copy_is_refused(raised_alert):
    _alert, event = raised_alert
    rotate_kek("default", file_roots=[])
    get_key_provider().destroy_kek("default")
    first, second = SealedCopy.objects.order_by("pk")
    first.blob, second.blob = bytes(second.blob), bytes(first.blob)
    first.save(), second.save()
    current = base64.b64decode(_trail_evidence(event)["names"]["matches"][0]["sealed"])  # format 2
    with pytest.raises(TamperedError, match="swapped"):
        open_sealed(current, context=MATCH_CONTEXT)
