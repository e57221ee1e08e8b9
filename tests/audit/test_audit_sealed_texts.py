"""Question and answer texts sealed in trail payloads: hashed, verifiable, opened only as the policy allows."""

from __future__ import annotations

import hashlib

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.roles import Role
from audit.models import Event
from audit.sealing import open_texts, sealed_texts
from audit.services import record
from audit.verification import verify_chain
from tests.audit.conftest import run_sql, triggers_disabled

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.audit.urls")]
QUESTION, ANSWER = "Is Mr Testpatient's femur fractured?", "The slice thickness is 5 mm."


@pytest.fixture(autouse=True)
def private_keys(settings, tmp_path):
    settings.VAULT_KEY_DIR = tmp_path / "keys"


@pytest.fixture
def asked(make_user):
    clinician = make_user(Role.CLINICIAN, username="cleo", department="radiology")
    texts = sealed_texts({"question": QUESTION, "answer": ANSWER}, action="study.ask", resource_type="study",
                         resource_id=7)  # fmt: skip
    return record(actor=clinician, action="study.ask", resource_type="study", resource_id=7, outcome="succeeded",
                  payload={"question_id": 1, **texts})  # fmt: skip


def test_texts_are_sealed_digested_and_the_chain_verifies(asked):
    assert QUESTION not in asked.payload_json and ANSWER not in asked.payload_json
    digests = asked.payload["sealed_texts"]["sha256"]
    assert digests["question"] == hashlib.sha256(QUESTION.encode()).hexdigest()
    assert open_texts(asked) == {"question": QUESTION, "answer": ANSWER}
    assert verify_chain(asked.chain).ok
    # The blob is inside the hashed payload: changing it breaks the chain at this event.
    with triggers_disabled():
        run_sql("UPDATE {events} SET payload_json = replace(payload_json, 'sha256', 'sha257') WHERE id = %s",
                [asked.pk])  # fmt: skip
    result = verify_chain(asked.chain)
    assert not result.ok and result.first_bad_sequence == asked.sequence


def test_a_blob_copied_into_another_event_does_not_open(asked, make_user):
    from vault.errors import VaultError

    other = record(actor="task:tests.copy", action="study.ask", resource_type="study", resource_id=8,
                   outcome="succeeded", payload={"sealed_texts": asked.payload["sealed_texts"]})  # fmt: skip
    with pytest.raises(VaultError):
        open_texts(other)


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.AUDITOR, 200),
        (Role.CLINICAL_AUDITOR, 200),
        (Role.COMPLIANCE_OFFICER, 404),
        (Role.AML_AUDITOR, 404),
        (Role.PLANT_AUDITOR, 404),
        (Role.ADMIN, 404),
    ],
)
def test_api_opens_sealed_texts_for_the_roles_the_policy_allows(make_user, asked, role, status):
    api = APIClient()
    user = make_user(role)
    api.force_authenticate(user)
    response = api.get(f"/api/audit/events/{asked.pk}/", {"unseal": "1"})
    assert response.status_code == status
    if status == 200:
        assert response.data["opened_texts"] == {"question": QUESTION, "answer": ANSWER}
        opening = Event.objects.get(action="trail_event.unseal")
        assert (opening.outcome, opening.actor_label) == ("allowed", user.username)
    # Without unseal, even an auditor gets digests only.
    plain = api.get(f"/api/audit/events/{asked.pk}/")
    assert plain.status_code == status and QUESTION not in str(plain.content)


def test_portal_page_opens_them_for_an_auditor_only_on_request(client, make_user, asked):
    client.force_login(make_user(Role.AUDITOR))
    url = reverse("audit:event_detail", args=[asked.pk])
    page = client.get(url)
    assert b'data-testid="sealed-texts"' in page.content and QUESTION.encode() not in page.content
    opened = client.get(url, {"unseal": "1"})
    assert opened.status_code == 200 and QUESTION.encode().replace(b"'", b"&#x27;") in opened.content
