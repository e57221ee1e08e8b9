"""Site isolation for work orders through the API: anonymous, wrong role, other site, same site.

A work order the caller may not see answers 404; denials of signed-in users are trailed; a denied
request changes nothing.
"""

from __future__ import annotations

import pytest

from audit.models import Event
from manufacturing.models import WorkOrder, WorkOrderEvent
from manufacturing.services import work_order_file

ANONYMOUS, WRONG_ROLE, OTHER_SITE, SAME_SITE = "anonymous", "wrong role", "other site", "same site"
CALLERS = [ANONYMOUS, WRONG_ROLE, OTHER_SITE, SAME_SITE]


@pytest.fixture
def caller(request, client, make_user):
    user = {
        ANONYMOUS: None,
        WRONG_ROLE: lambda: make_user("clinician", site="site-a", department="radiology"),
        OTHER_SITE: lambda: make_user("maintenance_engineer", site="site-b"),
        SAME_SITE: lambda: make_user("maintenance_engineer", site="site-a"),
    }[request.param]
    user = user() if user else None
    if user is not None:
        client.force_login(user)
    return request.param, user


@pytest.fixture
def work_order(engineer_a, machine_a):
    return work_order_file(actor=engineer_a, machine=machine_a, title="Motor hot")


def _state():
    return (
        WorkOrder.objects.count(),
        list(WorkOrder.objects.values_list("status", flat=True)),
        WorkOrderEvent.objects.count(),
    )


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS, indirect=True)
def test_read(caller, client, work_order):
    kind, user = caller
    response = client.get(f"/api/manufacturing/work-orders/{work_order.pk}/")
    assert response.status_code == {ANONYMOUS: 401, WRONG_ROLE: 404, OTHER_SITE: 404, SAME_SITE: 200}[kind]
    listed = client.get("/api/manufacturing/work-orders/")
    if kind == ANONYMOUS:
        assert listed.status_code == 401
    else:
        ids = [row["id"] for row in listed.json()]
        assert (work_order.pk in ids) == (kind == SAME_SITE)
    if kind in (WRONG_ROLE, OTHER_SITE):
        assert Event.objects.filter(
            action="work_order.view",
            outcome="denied",
            resource_id=str(work_order.pk),
            actor_label=user.username,
        ).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS, indirect=True)
def test_transition(caller, client, work_order):
    kind, _ = caller
    before = _state()
    response = client.post(
        f"/api/manufacturing/work-orders/{work_order.pk}/transition/",
        {"status": "in_progress"},
        content_type="application/json",
    )
    assert response.status_code == {ANONYMOUS: 401, WRONG_ROLE: 404, OTHER_SITE: 404, SAME_SITE: 200}[kind]
    if kind != SAME_SITE:
        assert _state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS, indirect=True)
def test_file(caller, client, machine_a):
    kind, _ = caller
    before = _state()
    response = client.post(
        "/api/manufacturing/work-orders/",
        {"machine": machine_a.pk, "title": "Belt squeal"},
        content_type="application/json",
    )
    assert response.status_code == {ANONYMOUS: 401, WRONG_ROLE: 404, OTHER_SITE: 404, SAME_SITE: 201}[kind]
    if kind != SAME_SITE:
        assert _state() == before
