"""The trail's REST API: list with filters, detail with verification, verify, export, schema."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from accounts.roles import Role
from audit.models import Event
from audit.services import record
from tests.audit.conftest import run_sql, triggers_disabled
from tests.factories import api_key

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.audit.urls")]

EVENTS = "/api/audit/events/"
VERIFY = "/api/audit/verify/"
EXPORT = "/api/audit/export/"


@pytest.fixture
def api():
    return APIClient()


def as_token(api: APIClient, user) -> APIClient:
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_key(user)}")
    return api


@pytest.mark.parametrize("path", [EVENTS, VERIFY, EXPORT, f"{EVENTS}1/"])
def test_anonymous_is_refused_without_an_event(api, path):
    assert api.get(path).status_code in {401, 403}
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        (Role.CLINICIAN, EVENTS, 403),
        (Role.CLINICIAN, VERIFY, 403),
        (Role.MAINTENANCE_ENGINEER, EXPORT, 403),
        (Role.COMPLIANCE_OFFICER, EVENTS, 200),
        (Role.COMPLIANCE_OFFICER, VERIFY, 200),
        (Role.COMPLIANCE_OFFICER, EXPORT, 403),
        (Role.AUDITOR, EVENTS, 200),
        (Role.AUDITOR, EXPORT, 200),
        (Role.ADMIN, VERIFY, 200),
        (Role.ADMIN, EXPORT, 200),
    ],
)
def test_roles_and_trailed_denials(api, make_user, chain_of, role, path, status):
    chain_of(2)
    user = make_user(role)
    before = set(Event.objects.values_list("pk", flat=True))
    response = as_token(api, user).get(path)
    assert response.status_code == status
    new_events = list(Event.objects.exclude(pk__in=before))
    if status == 403:
        [denial] = new_events  # the refusal, and nothing else
        assert (denial.outcome, denial.actor_kind, denial.actor_user) == ("denied", "token", user)
        assert denial.action == ("trail.export" if path == EXPORT else "trail.read")
        assert {"method": "GET", "path": path}.items() <= denial.payload.items()
        assert denial.payload["reason"]
    else:
        assert all(event.outcome != "denied" for event in new_events)


def test_list_filters(api, make_user, chain_of):
    chain_of(6)
    clinician = make_user(Role.CLINICIAN, username="carol")
    record(
        actor=clinician, action="study.read", resource_type="study", resource_id="1.2.3", outcome="allowed"
    )
    api.force_authenticate(make_user(Role.AUDITOR))

    def listed(**params):
        response = api.get(EVENTS, params)
        assert response.status_code == 200, response.data
        return response.data

    page = listed(limit=4)
    assert page["count"] == 7 and len(page["results"]) == 4 and page["next"]
    assert page["results"][0]["action"] == "study.read"  # newest first
    [carol] = listed(actor="CAROL")["results"]
    assert (carol["actor_kind"], carol["resource_id"], carol["payload"]) == ("user", "1.2.3", {})
    assert listed(outcome="denied", action="test.")["count"] == 3
    assert listed(resource_type="case", resource_id="4")["results"][0]["payload"] == {
        "number": 4,
        "note": "event 4",
    }
    # Later events are the trail reads of this test itself (trail.read).
    assert listed(since=carol["timestamp"], resource_type="study")["count"] == 1
    assert listed(until=carol["timestamp"])["count"] == 6
    assert api.get(EVENTS, {"outcome": "perhaps"}).status_code == 400


def test_detail_includes_verification(api, make_user, chain_of):
    events = chain_of(3)
    api.force_authenticate(make_user(Role.AUDITOR))
    body = api.get(f"{EVENTS}{events[2].pk}/").data
    assert body["sequence"] == 3 and body["hash"] == events[2].hash and body["prev_hash"] == events[1].hash
    assert body["verification"]["ok"] is True and body["verification"]["events_verified"] == 3
    with triggers_disabled():
        run_sql("UPDATE {events} SET outcome = 'allowed' WHERE id = %s", [events[0].pk])
    verification = api.get(f"{EVENTS}{events[2].pk}/").data["verification"]
    assert verification["ok"] is False
    assert verification["first_bad_sequence"] == 1
    assert verification["problem"]["kind"] == "modified"
    assert api.get(f"{EVENTS}999999/").status_code == 404


def test_verify_endpoint(api, make_user, chain_of):
    chain_of(3, chain="finance")
    api.force_authenticate(make_user(Role.COMPLIANCE_OFFICER))
    body = api.get(VERIFY, {"chain": "finance"}).data
    assert body["ok"] is True and body["chains"][0]["events_verified"] == 3
    with triggers_disabled():
        run_sql("DELETE FROM {events} WHERE chain = 'finance' AND sequence = 2")
    body = api.get(VERIFY).data
    assert body["ok"] is False
    # "suite" holds the registration of the finance chain and verifies.
    assert {chain["chain"]: chain["first_bad_sequence"] for chain in body["chains"]} == {
        "finance": 2,
        "suite": None,
    }
    assert api.get(VERIFY, {"chain": "nope"}).status_code == 404


@pytest.mark.parametrize(
    ("export_format", "content_type"), [("jsonl", "application/x-ndjson"), ("csv", "text/csv")]
)
def test_export_download(api, make_user, chain_of, export_format, content_type):
    chain_of(3)
    as_token(api, make_user(Role.AUDITOR, username="audrey"))
    response = api.get(EXPORT, {"format": export_format})
    assert response.status_code == 200
    assert response["Content-Type"] == f"{content_type}; charset=utf-8"
    body = b"".join(response.streaming_content).decode()
    rows = body.splitlines()[(1 if export_format == "csv" else 0) :]
    assert len(rows) == 4  # 3 events and the export's own
    if export_format == "jsonl":
        assert [json.loads(row)["sequence"] for row in rows] == [1, 2, 3, 4]
    exported = Event.objects.get(action="trail.export")
    assert (exported.actor_kind, exported.actor_label, exported.payload["format"]) == (
        "token",
        "audrey",
        export_format,
    )


def test_export_rejects_unknown_formats_and_bad_dates(api, make_user):
    api.force_authenticate(make_user(Role.AUDITOR))
    assert api.get(EXPORT, {"format": "xml"}).status_code == 404
    for export_format in ("jsonl", "csv"):
        response = api.get(EXPORT, {"since": "soon", "format": export_format})
        assert response.status_code == 400 and "since" in response.json()
        assert response["Content-Type"] == "application/json"


def test_openapi_schema_documents_the_trail_api(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    assert {
        "/api/audit/events/",
        "/api/audit/events/{id}/",
        "/api/audit/verify/",
        "/api/audit/export/",
    } <= set(paths)
    list_parameters = {parameter["name"] for parameter in paths["/api/audit/events/"]["get"]["parameters"]}
    assert {
        "actor",
        "action",
        "resource_type",
        "resource_id",
        "outcome",
        "since",
        "until",
        "limit",
    } <= list_parameters
    export_responses = paths["/api/audit/export/"]["get"]["responses"]["200"]["content"]
    assert {"application/x-ndjson", "text/csv"} <= set(export_responses)


def test_reading_the_trail_is_itself_trailed(api, make_user, chain_of):
    chain_of(3)
    auditor = make_user(Role.AUDITOR)
    api.force_authenticate(auditor)
    listed = api.get(EVENTS, {"limit": 2, "action": "test."}).data["results"]
    read = Event.objects.filter(action="trail.read").latest("id")
    assert read.actor_label == auditor.username
    assert read.payload == {
        "events": [row["id"] for row in listed],
        "filters": {"limit": "2", "action": "test."},
    }
    api.get(f"{EVENTS}{listed[0]['id']}/")
    detail = Event.objects.filter(action="trail.read").latest("id")
    assert (detail.resource_id, detail.payload["events"]) == (str(listed[0]["id"]), [listed[0]["id"]])
