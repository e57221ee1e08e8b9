"""Four eyes on case closings and SARs (API and portal), maker-checker on scenario versions, shadow runs."""

from __future__ import annotations

import datetime as dt

import pytest

from audit.models import Event
from finance import services
from finance.models import SAR, Alert, Case, ScenarioVersion
from tests.finance.conftest import TEAM, structuring_rows

pytestmark = pytest.mark.django_db


def _post(client, path, body=None):
    return client.post(f"/api/finance/{path}", body or {}, content_type="application/json")


def test_closing_needs_a_second_officer_api(client, screened, officer, officer2):
    case = Case.objects.get()
    client.force_login(officer)
    assert (
        _post(client, f"cases/{case.pk}/disposition/", {"disposition": "no_sar"}).status_code == 400
    )  # reason
    prepared = _post(
        client, f"cases/{case.pk}/disposition/", {"disposition": "no_sar", "reason": "known payroll"}
    )
    assert prepared.json()["status"] == "pending_close"
    refused = _post(client, f"cases/{case.pk}/close/approve/")
    assert refused.status_code == 403 and "four eyes" in refused.json()["detail"]
    assert Case.objects.get().status == "pending_close"
    assert Event.objects.filter(action="case.close_approve", outcome="denied").exists()
    client.force_login(officer2)
    approved = _post(client, f"cases/{case.pk}/close/approve/")
    assert approved.status_code == 200 and approved.json()["status"] == "closed"
    assert approved.json()["closed_by"] == officer2.username
    assert set(Alert.objects.values_list("status", flat=True)) == {"closed"}


def test_sar_filed_needs_an_approved_sar_and_four_eyes_on_it(client, screened, officer, officer2):
    case = Case.objects.get()
    client.force_login(officer)
    assert _post(client, f"cases/{case.pk}/disposition/", {"disposition": "sar_filed"}).status_code == 400
    sar = _post(client, f"cases/{case.pk}/sar/", {"use_model": False}).json()
    assert sar["verification"]["ok"] and sar["verification"]["cited_share"] == 1.0
    assert _post(client, f"sars/{sar['id']}/approve/").status_code == 403
    # an editor of the draft is a preparer too
    client.force_login(officer2)
    edited = _post(client, f"sars/{sar['id']}/", {"text": sar["text"]})
    assert edited.status_code == 200 and officer2.username in edited.json()["editors"]
    assert _post(client, f"sars/{sar['id']}/approve/").status_code == 403
    third = type(officer).objects.create(username="officer3", department=TEAM)
    third.groups.set(officer.groups.all())
    client.force_login(third)
    assert _post(client, f"sars/{sar['id']}/approve/").json()["status"] == "approved"
    client.force_login(officer)
    assert _post(client, f"cases/{case.pk}/disposition/", {"disposition": "sar_filed"}).status_code == 200
    client.force_login(officer2)
    assert _post(client, f"cases/{case.pk}/close/approve/").json()["disposition"] == "sar_filed"
    xml = client.get(f"/api/finance/sars/{sar['id']}/goaml.xml")
    assert xml.status_code == 200 and b"<report_code>SAR</report_code>" in xml.content


def test_sar_edit_with_unverified_number_or_no_citation_is_refused(client, screened, officer):
    case = Case.objects.get()
    client.force_login(officer)
    sar = _post(client, f"cases/{case.pk}/sar/", {"use_model": False}).json()
    alert = Alert.objects.get()
    bad_number = f"The account moved 1,234,567.89 USD [A{alert.pk}]."
    response = _post(client, f"sars/{sar['id']}/", {"text": bad_number})
    assert response.status_code == 400 and "1234567.89" in response.json()["detail"]
    no_citation = "The account structured payments."
    assert _post(client, f"sars/{sar['id']}/", {"text": no_citation}).status_code == 400
    assert _post(client, f"sars/{sar['id']}/", {"text": "Paid 28,500.00 USD [A999999]."}).status_code == 400
    assert SAR.objects.get().text == sar["text"]


def test_four_eyes_in_the_portal(client, screened, officer, officer2):
    case = Case.objects.get()
    client.force_login(officer)
    client.post(
        f"/finance/cases/{case.pk}/",
        {"action": "prepare_close", "disposition": "false_positive", "reason": "x"},
    )
    page = client.get(f"/finance/cases/{case.pk}/")
    assert b'data-testid="four-eyes"' in page.content and b"approve-close" not in page.content
    response = client.post(f"/finance/cases/{case.pk}/", {"action": "approve_close"}, follow=True)
    assert b"another compliance officer must approve" in response.content
    assert Case.objects.get().status == "pending_close"
    client.force_login(officer2)
    assert b"approve-close" in client.get(f"/finance/cases/{case.pk}/").content
    client.post(f"/finance/cases/{case.pk}/", {"action": "approve_close"})
    assert Case.objects.get().status == "closed"


def test_scenario_maker_checker_and_alerts_point_to_the_version(client, officer, officer2):
    client.force_login(officer)
    proposed = _post(
        client, "scenarios/", {"code": "STRUCTURING", "params": {"min_count": 4}, "note": "tighter"}
    )
    assert proposed.status_code == 201 and proposed.json()["version"] == 2 and not proposed.json()["active"]
    assert _post(client, "scenarios/", {"code": "STRUCTURING", "params": {"nope": 1}}).status_code == 400
    refused = _post(client, f"scenarios/{proposed.json()['id']}/approve/")
    assert refused.status_code == 403
    assert ScenarioVersion.objects.get(code="STRUCTURING", active=True).version == 1
    # until approved, screening uses version 1: three payments alert
    services.transactions_ingest(actor=officer, table=services.rows_validate(structuring_rows()), team=TEAM)
    assert Alert.objects.get().scenario_versions.get().version == 1
    client.force_login(officer2)
    approved = _post(client, f"scenarios/{proposed.json()['id']}/approve/")
    assert approved.status_code == 200 and approved.json()["approved_by"] == officer2.username
    assert ScenarioVersion.objects.get(code="STRUCTURING", version=1).retired_at is not None
    # version 2 wants four payments: the same pattern on a new account no longer alerts
    services.transactions_ingest(
        actor=officer, table=services.rows_validate(structuring_rows(prefix="V", account="ACC-V")), team=TEAM
    )
    assert Alert.objects.count() == 1
    assert Event.objects.filter(action="scenario.approve", outcome="succeeded").count() == 1


def test_shadow_run_shows_what_a_proposed_version_would_alert(client, officer, officer2, screened):
    client.force_login(officer)
    looser = _post(client, "scenarios/", {"code": "STRUCTURING", "params": {"min_count": 2}}).json()
    since = dt.datetime(2023, 11, 1, tzinfo=dt.UTC).isoformat()
    until = dt.datetime(2023, 12, 1, tzinfo=dt.UTC).isoformat()
    result = _post(client, f"scenarios/{looser['id']}/shadow/", {"since": since, "until": until}).json()
    assert result["alerts_now"] == 1 and result["would_alert"] == 2 and result["new_count"] == 1
    assert result["new"] == ["S1"]
    assert Alert.objects.count() == 1  # nothing alerted for real
    assert Event.objects.filter(action="scenario.shadow_run").count() == 1
