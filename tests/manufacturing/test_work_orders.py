"""The work order state machine through the API: legal and illegal transitions, codes to close, the trail."""

from __future__ import annotations

import pytest

from audit.models import Event
from manufacturing.models import Alert, FailureCode, WorkOrder, WorkOrderEvent
from manufacturing.services import WorkOrderRefused, work_order_file, work_order_transition

pytestmark = pytest.mark.django_db


def _file(client, machine, **extra):
    return client.post(
        "/api/manufacturing/work-orders/",
        {"machine": machine.pk, "title": "DE bearing noisy", "priority": 2, **extra},
        content_type="application/json",
    )


def _move(client, work_order_id, **data):
    return client.post(
        f"/api/manufacturing/work-orders/{work_order_id}/transition/", data, content_type="application/json"
    )


def test_full_lifecycle_with_codes_is_trailed(client, engineer_a, machine_a, failure_codes):
    client.force_login(engineer_a)
    response = _file(client, machine_a)
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    assert response.json()["site"] == "site-a" and response.json()["status"] == "open"
    for to in ("in_progress", "on_hold", "in_progress"):
        assert _move(client, pk, status=to).status_code == 200
    mode = FailureCode.objects.filter(kind="mode").first().code
    response = _move(
        client,
        pk,
        status="complete",
        failure_mode=mode,
        failure_cause="WEA",
        action_code="REP",
        labour_hours=2.5,
    )
    assert response.status_code == 200, response.content
    work_order = WorkOrder.objects.get(pk=pk)
    assert (work_order.status, work_order.failure_mode, work_order.labour_hours) == ("complete", mode, 2.5)
    assert work_order.completed_at is not None
    assert list(WorkOrderEvent.objects.filter(work_order=work_order).values_list("to_status", flat=True)) == [
        "open",
        "in_progress",
        "on_hold",
        "in_progress",
        "complete",
    ]
    actions = list(
        Event.objects.filter(
            resource_type="work_order", resource_id=str(pk), outcome="succeeded"
        ).values_list("action", flat=True)
    )
    assert actions.count("work_order.transition") == 3
    assert "work_order.file" in actions and "work_order.close" in actions


@pytest.mark.parametrize(
    ("path", "to"),
    [((), "complete"), ((), "on_hold"), (("cancelled",), "in_progress"), ((), "done")],
)
def test_illegal_transitions_are_400_and_change_nothing(
    client, engineer_a, machine_a, failure_codes, path, to
):
    client.force_login(engineer_a)
    pk = _file(client, machine_a).json()["id"]
    for step in path:
        assert _move(client, pk, status=step).status_code == 200
    before = WorkOrder.objects.get(pk=pk).status
    events = WorkOrderEvent.objects.count()
    response = _move(client, pk, status=to, failure_mode="x", failure_cause="WEA", action_code="REP")
    assert response.status_code == 400
    assert "cannot become" in response.json()["detail"] or "unknown status" in response.json()["detail"]
    assert WorkOrder.objects.get(pk=pk).status == before
    assert WorkOrderEvent.objects.count() == events


def test_closing_needs_known_codes(engineer_a, machine_a, failure_codes):
    work_order = work_order_file(actor=engineer_a, machine=machine_a, title="Leak at pump seal")
    work_order_transition(actor=engineer_a, work_order=work_order, to_status="in_progress")
    with pytest.raises(WorkOrderRefused, match="missing: failure_cause, action_code"):
        work_order_transition(
            actor=engineer_a, work_order=work_order, to_status="complete", failure_mode="M001a"
        )
    with pytest.raises(WorkOrderRefused, match="not a known failure mode"):
        work_order_transition(
            actor=engineer_a,
            work_order=work_order,
            to_status="complete",
            failure_mode="NOPE",
            failure_cause="WEA",
            action_code="REP",
        )
    assert WorkOrder.objects.get(pk=work_order.pk).status == "in_progress"


def test_filing_from_an_alert_acknowledges_it(engineer_a, machine_a):
    alert = Alert.objects.create(machine=machine_a, kind=Alert.Kind.VIBRATION_ZONE, message="zone D 9.1 mm/s")
    work_order = work_order_file(actor=engineer_a, machine=machine_a, title="Zone D vibration", alert=alert)
    alert.refresh_from_db()
    assert alert.status == Alert.Status.ACKNOWLEDGED and work_order.alert_id == alert.pk


def test_bad_input_is_a_clear_400(client, engineer_a, machine_a):
    client.force_login(engineer_a)
    assert _file(client, machine_a, title="").status_code == 400
    assert _file(client, machine_a, priority=9).status_code == 400
    assert client.get("/api/manufacturing/work-orders/abc/").status_code == 404
    assert WorkOrder.objects.count() == 0
