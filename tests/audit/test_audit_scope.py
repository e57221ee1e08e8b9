"""Trail reading is scoped by the policy per event resource type: AML compliance never reads clinical events."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.roles import Role
from audit.models import Event
from audit.services import record

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.audit.urls")]
EVENTS = "/api/audit/events/"
EXPORT = "/api/audit/export/"
QUESTION = "Does Mrs Example's scan show a fracture?"


@pytest.fixture
def mixed_trail(make_user):
    clinician = make_user(Role.CLINICIAN, username="cleo", department="radiology")
    officer = make_user(Role.COMPLIANCE_OFFICER, username="otto", department="aml-eu")
    admin = make_user(Role.ADMIN, username="adam")
    engineer = make_user(Role.MAINTENANCE_ENGINEER, username="mia", site="site-a")
    return {
        "study": record(
            actor=clinician,
            action="study.ask",
            resource_type="study",
            resource_id="7",
            outcome="succeeded",
            payload={"question": QUESTION},
        ),  # fmt: skip
        "case": record(
            actor=officer,
            action="case.triage",
            resource_type="case",
            resource_id="3",
            outcome="succeeded",
            payload={"decision": "escalate"},
        ),  # fmt: skip
        "user": record(
            actor=admin,
            action="account.change",
            resource_type="user",
            resource_id="9",
            outcome="succeeded",
            payload={"fields": ["department"]},
        ),  # fmt: skip
        "work_order": record(
            actor=engineer,
            action="work_order.file",
            resource_type="work_order",
            resource_id="5",
            outcome="succeeded",
            payload={"site": "site-a"},
        ),  # fmt: skip
    }


# role -> the resource types of mixed_trail it reads
SCOPES = {
    Role.AUDITOR: {"study", "case", "user", "work_order"},
    Role.COMPLIANCE_OFFICER: {"case"},
    Role.ADMIN: {"user"},
    # one domain each (issue 11)
    Role.CLINICAL_AUDITOR: {"study"},
    Role.AML_AUDITOR: {"case"},
    Role.PLANT_AUDITOR: {"work_order"},
}


@pytest.mark.parametrize("role", list(SCOPES))
def test_api_list_and_detail_follow_the_policy(make_user, mixed_trail, role):
    api = APIClient()
    api.force_authenticate(make_user(role))
    listed = api.get(EVENTS, {"limit": 500}).data["results"]
    seen = {row["resource_type"] for row in listed if row["id"] in {e.pk for e in mixed_trail.values()}}
    assert seen == SCOPES[role]
    assert (QUESTION in json.dumps(listed)) is ("study" in SCOPES[role])
    for rtype, event in mixed_trail.items():
        assert api.get(f"{EVENTS}{event.pk}/").status_code == (200 if rtype in SCOPES[role] else 404)


@pytest.mark.parametrize("role", list(SCOPES))
def test_portal_pages_follow_the_policy(client, make_user, mixed_trail, role):
    client.force_login(make_user(role))
    page = client.get(reverse("audit:event_list"), {"actor": ""})
    shown = {event.resource_type for event in page.context["page_obj"] if event in mixed_trail.values()}
    assert shown == SCOPES[role]
    detail = client.get(reverse("audit:event_detail", args=[mixed_trail["study"].pk]))
    assert detail.status_code == (200 if "study" in SCOPES[role] else 404)


def test_an_administrators_export_leaves_out_clinical_and_aml_events(make_user, mixed_trail):
    api = APIClient()
    api.force_authenticate(make_user(Role.ADMIN))
    response = api.get(EXPORT, {"format": "jsonl"})
    body = b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()
    types = {json.loads(line)["resource_type"] for line in body.splitlines() if line.strip()}
    assert "user" in types and not types & {"study", "case"}
    assert QUESTION not in body


def test_a_clinician_reads_no_trail_at_all(make_user, mixed_trail):
    api = APIClient()
    api.force_authenticate(make_user(Role.CLINICIAN))
    before = Event.objects.count()
    assert api.get(EVENTS).status_code == 403
    assert Event.objects.count() == before + 1  # the refusal, trailed


@pytest.mark.parametrize("role", [Role.CLINICAL_AUDITOR, Role.AML_AUDITOR, Role.PLANT_AUDITOR])
def test_a_domain_auditors_export_holds_that_domain_only(make_user, mixed_trail, role):
    api = APIClient()
    api.force_authenticate(make_user(role))
    response = api.get(EXPORT, {"format": "jsonl"})
    body = b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()
    types = {json.loads(line)["resource_type"] for line in body.splitlines() if line.strip()}
    assert types & set(mixed_trail) == SCOPES[role]
    assert (QUESTION in body) is (role is Role.CLINICAL_AUDITOR)
