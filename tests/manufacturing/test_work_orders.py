"""The work order state machine through the API: legal and illegal transitions, codes to close, the trail."""

from __future__ import annotations

import pytest

from access.decisions import decide
from audit.models import Event
from manufacturing.models import Alert, FailureCode, WorkOrder, WorkOrderEvent
from manufacturing.services import WorkOrderRefused, work_order_file, work_order_transition
from manufacturing.services.work_orders import work_order_update

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


def test_a_refused_move_names_the_statuses_as_the_engineer_reads_them(
    client, engineer_a, machine_a, failure_codes
):
    client.force_login(engineer_a)
    pk = _file(client, machine_a).json()["id"]
    detail = _move(client, pk, status="complete").json()["detail"]
    assert detail.startswith(
        "a work order that is open cannot become complete (complete); "
        "allowed: cancelled (cancelled), in progress (in_progress)"
    )
    assert _move(client, pk, status="cancelled").status_code == 200
    detail = _move(client, pk, status="in_progress").json()["detail"]
    assert detail == (
        "a work order that is cancelled cannot become in progress (in_progress); allowed: none (it is final)"
    )


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


def test_assignee_from_another_site_carries_out_and_closes_but_does_not_cancel(
    client, engineer_a, engineer_b, make_user, machine_a, failure_codes
):
    """Policy: a site's engineers file, plan, assign and cancel its work orders; an engineer of another
    site assigned to one gets grants of view, work (start, hold, resume, photos, the assistant) and
    close on that work order only, given by the assigner and trailed. Before the fix the grant held
    view and close, so the assignee could close a work order they could never start."""
    work_order = work_order_file(actor=engineer_a, machine=machine_a, title="Seal leak on pump")
    client.force_login(engineer_b)
    assert _move(client, work_order.pk, status="in_progress").status_code == 404  # not assigned yet
    work_order_update(actor=engineer_a, work_order=work_order, assignee=engineer_b.username)
    granted = Event.objects.filter(action="work_order.grant", resource_id=str(work_order.pk))
    assert sorted(e.payload["action"] for e in granted) == ["close", "view", "work"]

    for to in ("in_progress", "on_hold", "in_progress"):
        response = _move(client, work_order.pk, status=to, labour_hours=1.5)
        assert response.status_code == 200, response.content
    assert decide(engineer_b, "work", work_order).policy == "assigned_work_order"
    moves = Event.objects.filter(action="work_order.transition", actor_user=engineer_b)
    assert moves.count() == 3 and all(e.policy == "assigned_work_order" for e in moves)

    refused = _move(client, work_order.pk, status="cancelled")  # cancelling stays with site-a
    assert refused.status_code == 403, refused.content
    work_order.refresh_from_db()
    assert work_order.status == WorkOrder.Status.IN_PROGRESS

    other = make_user("maintenance_engineer", site="site-b")  # same site as the assignee, not assigned
    client.force_login(other)
    assert _move(client, work_order.pk, status="on_hold").status_code == 404
    work_order.refresh_from_db()
    assert work_order.status == WorkOrder.Status.IN_PROGRESS

    client.force_login(engineer_b)
    codes = {kind: FailureCode.objects.filter(kind=kind).first().code for kind in ("mode", "cause", "action")}
    response = _move(
        client,
        work_order.pk,
        status="complete",
        failure_mode=codes["mode"],
        failure_cause=codes["cause"],
        action_code=codes["action"],
    )
    assert response.status_code == 200, response.content
    assert WorkOrderEvent.objects.filter(work_order=work_order, actor=engineer_b).count() == 4
