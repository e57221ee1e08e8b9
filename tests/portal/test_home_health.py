"""The administrator's installation-health panel on the home page."""

from __future__ import annotations

import pytest

from audit.services import checkpoint_create, record

pytestmark = pytest.mark.django_db


def _rows(client, user) -> dict[str, tuple[str, str]] | None:
    client.force_login(user)
    panels = {p["key"]: p for p in client.get("/", follow=True).context["panels"]}
    panel = panels.get("installation-health")
    return None if panel is None else {row.label: (row.badge, row.detail) for row in panel["rows"]}


def _event(number: int) -> None:
    record(
        actor="task:tests",
        action="test.decide",
        resource_type="case",
        resource_id=number,
        outcome="succeeded",
    )


def test_the_admin_sees_database_broker_and_scheduler(client, make_user, settings):
    admin = make_user("admin")
    _event(1)
    rows = _rows(client, admin)
    assert rows["Database"][0] == "ok" and rows["Task broker"][0] == "ok"
    assert rows["Periodic scheduler"][1] == "no trail checkpoint signed yet"

    checkpoint_create()
    assert _rows(client, admin)["Periodic scheduler"][0] == "ok"
    # Events keep arriving but no checkpoint for over two intervals (an interval of 0 minutes
    # here, so the checkpoint above is already older than that): the scheduler looks down.
    settings.AUDIT_CHECKPOINT_MINUTES = 0
    _event(2)
    badge, detail = _rows(client, admin)["Periodic scheduler"]
    assert badge == "late" and "run_worker --beat" in detail


@pytest.mark.parametrize("role", ["clinician", "auditor", "ml_engineer"])
def test_other_roles_do_not_get_the_panel(client, make_user, role):
    assert _rows(client, make_user(role, department="radiology")) is None


def test_pages_name_their_icon_and_favicon_ico_leads_there(client):
    page = client.get("/login/").content.decode()
    assert '<link rel="icon" href="/static/portal/favicon.svg" type="image/svg+xml">' in page
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/portal/favicon.svg"
