"""Authorization matrix for the finance API: anonymous, wrong role, officer of the other team,
auditor (reads everything, changes nothing), officer of the team. Denials change nothing."""

from __future__ import annotations

import pytest

from audit.models import Event
from finance.models import SAR, Alert, Case, Note, ScenarioVersion, Transaction
from tests.finance.conftest import TEAM, structuring_rows

ANONYMOUS, WRONG_ROLE, OTHER_TEAM, AUDITOR, SAME_TEAM = (
    "anonymous",
    "wrong role",
    "other team",
    "auditor",
    "same team",
)
CALLERS = [ANONYMOUS, WRONG_ROLE, OTHER_TEAM, AUDITOR, SAME_TEAM]


@pytest.fixture
def caller(request, client, make_user):
    user = {
        ANONYMOUS: None,
        WRONG_ROLE: lambda: make_user("maintenance_engineer", site="site-a", department=TEAM),
        OTHER_TEAM: lambda: make_user("compliance_officer", department="aml-us"),
        AUDITOR: lambda: make_user("auditor"),
        SAME_TEAM: lambda: make_user("compliance_officer", department=TEAM),
    }[request.param]
    user = user() if user else None
    if user is not None:
        client.force_login(user)
    return request.param, user


def _state():
    return (
        Transaction.objects.count(),
        Alert.objects.filter(status="new").count(),
        list(Case.objects.values_list("status", "disposition")),
        Note.objects.count(),
        SAR.objects.count(),
        ScenarioVersion.objects.count(),
    )


READ = {ANONYMOUS: 401, WRONG_ROLE: 404, OTHER_TEAM: 404, AUDITOR: 200, SAME_TEAM: 200}


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS, indirect=True)
def test_read_alert_case_and_queue(caller, client, screened):
    kind, user = caller
    alert = Alert.objects.get()
    assert client.get(f"/api/finance/alerts/{alert.pk}/").status_code == READ[kind]
    assert client.get(f"/api/finance/cases/{alert.case_id}/").status_code == READ[kind]
    listed = client.get("/api/finance/alerts/")
    if kind == ANONYMOUS:
        assert listed.status_code == 401
    else:
        assert (alert.pk in [row["id"] for row in listed.json()]) == (kind in (AUDITOR, SAME_TEAM))
    if kind in (WRONG_ROLE, OTHER_TEAM):
        assert Event.objects.filter(
            action="alert.view", outcome="denied", resource_id=str(alert.pk), actor_label=user.username
        ).exists()


WRITE = {ANONYMOUS: 401, WRONG_ROLE: 404, OTHER_TEAM: 404, AUDITOR: 403}


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS, indirect=True)
@pytest.mark.parametrize(
    ("path", "body", "ok"),
    [
        ("cases/{case}/notes/", {"text": "called the customer"}, 201),
        ("cases/{case}/disposition/", {"disposition": "false_positive", "reason": "payroll"}, 200),
        ("cases/{case}/sar/", {"use_model": False}, 201),
    ],
    ids=["note", "disposition", "sar"],
)
def test_case_changes(caller, client, screened, path, body, ok):
    kind, _ = caller
    case = Case.objects.get()
    before = _state()
    response = client.post(f"/api/finance/{path.format(case=case.pk)}", body, content_type="application/json")
    assert response.status_code == (ok if kind == SAME_TEAM else WRITE[kind]), response.content
    if kind != SAME_TEAM:
        assert _state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS, indirect=True)
def test_batch_and_assign(caller, client, screened, officer):
    kind, user = caller
    before = _state()
    rows = structuring_rows(prefix="N", account="ACC-N")
    response = client.post(
        "/api/finance/transactions/batch/",
        {"team": TEAM, "transactions": rows},
        content_type="application/json",
    )
    expected = {ANONYMOUS: 401, WRONG_ROLE: 403, OTHER_TEAM: 403, AUDITOR: 403, SAME_TEAM: 201}[kind]
    assert response.status_code == expected, response.content
    alert = Alert.objects.order_by("pk").first()
    assign = client.post(
        "/api/finance/alerts/assign/",
        {"alerts": [alert.pk], "assignee": officer.username},
        content_type="application/json",
    )
    assert assign.status_code == {**WRITE, SAME_TEAM: 200}[kind]
    if kind != SAME_TEAM:
        assert _state() == before and Alert.objects.get(pk=alert.pk).assignee is None


@pytest.mark.django_db
def test_assign_refuses_an_officer_of_another_team(client, screened, officer, officer_us):
    client.force_login(officer)
    alert = Alert.objects.get()
    response = client.post(
        "/api/finance/alerts/assign/",
        {"alerts": [alert.pk], "assignee": officer_us.username},
        content_type="application/json",
    )
    assert response.status_code == 400 and officer_us.username in response.json()["detail"]
    assert Alert.objects.get().assignee is None


@pytest.mark.django_db
@pytest.mark.parametrize("caller", [ANONYMOUS, WRONG_ROLE, AUDITOR, SAME_TEAM], indirect=True)
def test_scenario_propose(caller, client):
    kind, _ = caller
    response = client.post(
        "/api/finance/scenarios/",
        {"code": "STRUCTURING", "params": {"min_count": 4}},
        content_type="application/json",
    )
    assert response.status_code == {ANONYMOUS: 401, WRONG_ROLE: 403, AUDITOR: 403, SAME_TEAM: 201}[kind]
    assert ScenarioVersion.objects.filter(version=2).exists() == (kind == SAME_TEAM)


PORTAL_READ = {ANONYMOUS: 302, WRONG_ROLE: 404, OTHER_TEAM: 404, AUDITOR: 200, SAME_TEAM: 200}


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS, indirect=True)
def test_portal_case_page_and_note(caller, client, screened):
    kind, _ = caller
    case = Case.objects.get()
    assert client.get(f"/finance/cases/{case.pk}/").status_code == PORTAL_READ[kind]
    alert = Alert.objects.get()
    assert client.get(f"/finance/alerts/{alert.pk}/").status_code == PORTAL_READ[kind]
    before = _state()
    client.post(f"/finance/cases/{case.pk}/", {"action": "note", "text": "seen"})
    client.post(
        f"/finance/cases/{case.pk}/", {"action": "prepare_close", "disposition": "no_sar", "reason": "x"}
    )
    if kind == SAME_TEAM:
        assert Note.objects.count() == 1 and Case.objects.get().status == "pending_close"
    else:
        assert _state() == before
