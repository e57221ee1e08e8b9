"""Preventive maintenance plans and the running-hours meter: due by the calendar or by the meter,
whichever first; one work order per interval, filed on the owner's authority; done or skipped starts
the next interval; a meter only goes up; pages, API, the beat task and the trail."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audit.models import Event
from manufacturing.models import MaintenancePlan, MeterReading, WorkOrder
from manufacturing.services import work_order_file, work_order_transition
from manufacturing.services.maintenance_plans import (
    MeterKeyReused,
    PlanRefused,
    meter_record,
    plan_create,
    plan_update,
    plans_file_due,
)
from manufacturing.tasks import file_due_maintenance

pytestmark = pytest.mark.django_db


def _later(days: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(days=days)


def test_a_calendar_plan_files_one_work_order_per_interval(engineer_a, machine_a, failure_codes):
    plan = plan_create(
        actor=engineer_a,
        machine=machine_a,
        title="Grease DE bearing",
        every_days=30,
        instructions="2 shots, Mobil SHC",
    )
    assert plans_file_due(now=_later(29)) == []
    (work_order,) = plans_file_due(now=_later(30.01))
    assert (work_order.plan, work_order.preventive, work_order.title) == (plan, True, "Grease DE bearing")
    assert "2 shots, Mobil SHC" in work_order.description and "30 days since" in work_order.description
    assert work_order.created_by == engineer_a  # on the owner's authority
    assert plans_file_due(now=_later(31)) == [] and plans_file_due(now=_later(90)) == []  # one while open
    assert WorkOrder.objects.count() == 1
    work_order_transition(actor=engineer_a, work_order=work_order, to_status="in_progress")
    work_order_transition(
        actor=engineer_a,
        work_order=work_order,
        to_status="complete",
        failure_mode="OTH",
        failure_cause="WEA",
        action_code="NON",
        note="greased",
    )
    plan.refresh_from_db()
    assert abs((plan.last_done_at - timezone.now()).total_seconds()) < 60  # the next interval starts
    assert plans_file_due(now=_later(29)) == []
    assert len(plans_file_due(now=_later(30.01))) == 1
    assert Event.objects.filter(action="maintenance_plan.create").count() == 1
    assert Event.objects.filter(action="work_order.file").count() == 2


def test_a_running_hours_plan_files_as_the_meter_passes_it(engineer_a, machine_a):
    plan = plan_create(actor=engineer_a, machine=machine_a, title="Oil change", every_hours=500)
    assert plan.last_done_hours is None  # no meter yet: the hours count from the first reading
    meter_record(actor=engineer_a, machine=machine_a, hours=12_000)
    plan.refresh_from_db()
    assert plan.last_done_hours == 12_000 and not WorkOrder.objects.exists()
    meter_record(actor=engineer_a, machine=machine_a, hours=12_499.5)
    assert not WorkOrder.objects.exists()
    meter_record(actor=engineer_a, machine=machine_a, hours=12_500)  # files at once, not at the next hour
    work_order = WorkOrder.objects.get()
    assert work_order.plan == plan and "500 running hours since 12000 h" in work_order.description
    work_order_transition(
        actor=engineer_a, work_order=work_order, to_status="cancelled", note="done with the overhaul"
    )
    plan.refresh_from_db()
    assert plan.last_done_hours == 12_500  # skipped: the next 500 h count from here
    assert Event.objects.filter(action="meter.record").count() == 3


def test_whichever_comes_first(engineer_a, machine_a):
    meter_record(actor=engineer_a, machine=machine_a, hours=100)
    plan_create(actor=engineer_a, machine=machine_a, title="Inspect belts", every_days=90, every_hours=1000)
    assert plans_file_due(now=_later(60)) == []
    meter_record(actor=engineer_a, machine=machine_a, hours=1100)  # the hours come first
    work_order = WorkOrder.objects.get()
    assert "1000 running hours" in work_order.description and "days since" not in work_order.description


def test_a_meter_only_goes_up_and_bad_plans_are_refused(client, engineer_a, machine_a):
    meter_record(actor=engineer_a, machine=machine_a, hours=500)
    with pytest.raises(PlanRefused, match="below the latest reading"):
        meter_record(actor=engineer_a, machine=machine_a, hours=499)
    for hours in ("abc", "nan", "-1", "inf"):
        with pytest.raises(PlanRefused):
            meter_record(actor=engineer_a, machine=machine_a, hours=hours)
    assert MeterReading.objects.count() == 1
    for kwargs, message in (
        ({"title": "x"}, "give an interval"),
        ({"title": "", "every_days": 7}, "needs a title"),
        ({"title": "x", "every_days": 0}, "more than 0"),
        ({"title": "x", "every_days": 1.5}, "whole number"),
        ({"title": "x", "every_hours": "lots"}, "must be a number"),
        ({"title": "x", "every_days": 7, "priority": 9}, "priority"),
    ):
        with pytest.raises(PlanRefused, match=message):
            plan_create(actor=engineer_a, machine=machine_a, **kwargs)
    assert not MaintenancePlan.objects.exists()
    client.force_login(engineer_a)
    response = client.post(
        f"/api/manufacturing/assets/{machine_a.pk}/meter/", {"hours": 10}, content_type="application/json"
    )
    assert response.status_code == 400 and "only goes up" in response.json()["detail"]


def test_a_reading_sent_later_takes_its_place_between_the_readings_around_it(engineer_a, machine_a):
    """A reading typed on a phone with no connection arrives after later ones: it is kept at the time it
    was read, checked against the readings before and after that time, and never becomes the latest."""
    plan = plan_create(actor=engineer_a, machine=machine_a, title="Grease", every_hours=1000)
    meter_record(actor=engineer_a, machine=machine_a, hours=1000, read_at=_later(-2))
    meter_record(actor=engineer_a, machine=machine_a, hours=1400)
    late = meter_record(actor=engineer_a, machine=machine_a, hours=1200, read_at=_later(-1))
    assert [r.hours for r in machine_a.meter_readings.all()] == [1400, 1200, 1000]
    assert machine_a.meter_readings.first().hours == 1400 and late.filed == []
    event = Event.objects.filter(action="meter.record").latest("pk")
    assert event.payload["sent_later"] is True and event.payload["read_at"] == late.read_at.isoformat()
    with pytest.raises(PlanRefused, match=r"above a later reading \(1400 h"):
        meter_record(actor=engineer_a, machine=machine_a, hours=1500, read_at=_later(-0.5))
    with pytest.raises(PlanRefused, match=r"below the reading before it \(1200 h"):
        meter_record(actor=engineer_a, machine=machine_a, hours=1100, read_at=_later(-0.5))
    with pytest.raises(PlanRefused, match="in the future"):
        meter_record(actor=engineer_a, machine=machine_a, hours=1500, read_at=_later(0.1))
    with pytest.raises(PlanRefused, match="before 2000"):
        meter_record(actor=engineer_a, machine=machine_a, hours=1, read_at=dt.datetime(1999, 12, 31, 23))
    # a phone's clock a minute ahead is taken as now
    ahead = meter_record(actor=engineer_a, machine=machine_a, hours=1500, read_at=_later(1 / 1440))
    assert ahead.read_at <= timezone.now()
    plan.refresh_from_db()
    assert plan.last_done_hours == 1000  # counted from the first reading
    assert MeterReading.objects.count() == 4


def test_a_reading_sent_twice_is_recorded_once(client, engineer_a, engineer_b, machine_a):
    """The same submission key from the same person returns the reading it recorded (nothing recorded,
    trailed or filed again); with another figure it is refused, naming what it recorded; the key is
    each person's own. The page and the API say so."""
    plan_create(actor=engineer_a, machine=machine_a, title="Grease", every_hours=100)
    first = meter_record(actor=engineer_a, machine=machine_a, hours=100, submission_key="k-1")
    due = meter_record(actor=engineer_a, machine=machine_a, hours=200, submission_key="k-2")
    assert len(due.filed) == 1 and not due.replayed
    again = meter_record(actor=engineer_a, machine=machine_a, hours=200, submission_key="k-2")
    assert again.pk == due.pk and again.replayed and again.filed == []
    with pytest.raises(MeterKeyReused, match=r"already recorded 200 h on .*use a new key"):
        meter_record(actor=engineer_a, machine=machine_a, hours=250, submission_key="k-2")
    with pytest.raises(PlanRefused, match="submission key must be"):
        meter_record(actor=engineer_a, machine=machine_a, hours=250, submission_key="bad key!")
    assert (MeterReading.objects.count(), WorkOrder.objects.count()) == (2, 1)
    assert Event.objects.filter(action="meter.record").count() == 2
    assert first.submission_key == "k-1"

    client.force_login(engineer_a)
    page = f"/manufacturing/assets/{machine_a.pk}/meter/"
    # read three hours ago, before the two readings above: it fits below them
    read = (timezone.now() - dt.timedelta(hours=3)).isoformat()
    response = client.post(page, {"hours": "50", "submission": "k-3", "read_at": read}, follow=True)
    shown = response.content.decode()
    assert "Meter reading recorded: 50 h (read " in shown and 'data-sent="k-3"' in shown
    response = client.post(page, {"hours": "50", "submission": "k-3", "read_at": read}, follow=True)
    assert "This form was already sent: 50 h (read " in response.content.decode()
    response = client.post(page, {"hours": "60", "submission": "k-3", "read_at": read}, follow=True)
    shown = response.content.decode()
    assert "already recorded 50 h" in shown and 'data-spent="k-3"' in shown
    response = client.post(page, {"hours": "320", "read_at": "yesterday"}, follow=True)
    assert "is not a date and time" in response.content.decode()
    assert MeterReading.objects.count() == 3

    api = f"/api/manufacturing/assets/{machine_a.pk}/meter/"
    body = {"hours": 75, "read_at": read.replace("+00:00", "Z")}
    posted = client.post(api, body, content_type="application/json", headers={"Idempotency-Key": "api-1"})
    assert posted.status_code == 201 and "Idempotent-Replayed" not in posted
    assert posted.json()["hours"] == 75 and posted.json()["read_at"][:16] == read[:16]
    replay = client.post(api, body, content_type="application/json", headers={"Idempotency-Key": "api-1"})
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == posted.json()["id"]
    other = client.post(
        api, {"hours": 401}, content_type="application/json", headers={"Idempotency-Key": "api-1"}
    )
    assert other.status_code == 422 and "use a new key" in other.json()["detail"]
    late = client.post(api, {"hours": 150, "read_at": read}, content_type="application/json")
    assert late.status_code == 400 and "above a later reading (100 h" in late.json()["detail"]
    assert MeterReading.objects.count() == 4


def test_an_owner_who_may_no_longer_file_files_nothing_and_the_denial_is_trailed(engineer_a, machine_a):
    plan_create(actor=engineer_a, machine=machine_a, title="Grease", every_days=7)
    engineer_a.site = "site-b"  # moved to another site
    engineer_a.save()
    assert plans_file_due(now=_later(8)) == [] and not WorkOrder.objects.exists()
    assert Event.objects.filter(action="work_order.file", outcome="denied").exists()
    engineer_a.is_active = False
    engineer_a.save()
    assert plans_file_due(now=_later(8)) == []


def test_the_beat_task_files_what_is_due(engineer_a, machine_a):
    plan = plan_create(actor=engineer_a, machine=machine_a, title="Grease", every_days=7)
    assert file_due_maintenance() == 0
    MaintenancePlan.objects.filter(pk=plan.pk).update(last_done_at=_later(-8))
    assert file_due_maintenance() == 1 and file_due_maintenance() == 0


def test_pages_and_api_of_plans_and_meter(client, engineer_a, engineer_b, machine_a):
    client.force_login(engineer_a)
    asset = f"/manufacturing/assets/{machine_a.pk}/"
    page = client.get(asset).content.decode()
    assert 'data-testid="maintenance"' in page and "no meter reading yet" in page
    added = client.post(asset + "plans/", {"title": "Grease DE bearing", "every_days": "30"}, follow=True)
    assert "Plan added: Grease DE bearing." in added.content.decode()
    refused = client.post(asset + "plans/", {"title": "Grease", "every_days": "often"}, follow=True)
    assert "every days must be a number" in refused.content.decode()
    client.post(asset + "meter/", {"hours": "2000"})
    plan = client.post(
        f"/api/manufacturing/assets/{machine_a.pk}/plans/",
        {"title": "Oil change", "every_hours": 250},
        content_type="application/json",
    )
    assert plan.status_code == 201 and plan.json()["due_hours"] == 2250 and plan.json()["due_now"] == ""
    meter = client.post(
        f"/api/manufacturing/assets/{machine_a.pk}/meter/", {"hours": 2300}, content_type="application/json"
    )
    assert meter.status_code == 201 and meter.json()["hours"] == 2300
    listed = {
        row["title"]: row for row in client.get(f"/api/manufacturing/assets/{machine_a.pk}/plans/").json()
    }
    work_order = WorkOrder.objects.get(plan__title="Oil change")
    assert listed["Oil change"]["open_work_order"] == work_order.pk
    assert listed["Grease DE bearing"]["due_date"] and listed["Grease DE bearing"]["open_work_order"] is None
    page = client.get(asset).content.decode()
    assert "2300 h" in page and f"work order {work_order.pk}" in page and "every 30 days" in page
    api = client.get(f"/api/manufacturing/work-orders/{work_order.pk}/").json()
    assert (api["preventive"], api["plan"]) == (True, work_order.plan_id)
    corrective = work_order_file(actor=engineer_a, machine=machine_a, title="Belt squeal")
    assert corrective.preventive is False
    preventive_only = client.get("/manufacturing/work-orders/?preventive=1").content.decode()
    assert "Oil change" in preventive_only and ">PM<" in preventive_only
    assert "Belt squeal" not in preventive_only
    assert "Belt squeal" in client.get("/manufacturing/work-orders/").content.decode()
    detail = client.get(f"/manufacturing/work-orders/{work_order.pk}/").content.decode()
    assert "preventive, from the plan “Oil change”" in detail
    client.force_login(engineer_b)  # another site: the asset does not exist for them
    assert client.get(f"/api/manufacturing/assets/{machine_a.pk}/plans/").status_code == 404
    assert client.post(asset + "meter/", {"hours": "9000"}).status_code == 404
    assert (
        client.post(
            f"/api/manufacturing/assets/{machine_a.pk}/plans/",
            {"title": "x", "every_days": 1},
            content_type="application/json",
        ).status_code
        == 404
    )
    assert MeterReading.objects.count() == 2 and MaintenancePlan.objects.count() == 2


def test_a_stopped_plan_files_nothing_more(client, engineer_a, engineer_b, machine_a):
    plan = plan_create(actor=engineer_a, machine=machine_a, title="Grease", every_days=7)
    client.force_login(engineer_b)
    assert client.post(f"/manufacturing/plans/{plan.pk}/stop/").status_code == 404  # another site
    client.force_login(engineer_a)
    page = client.post(f"/manufacturing/plans/{plan.pk}/stop/", follow=True).content.decode()
    assert "Plan stopped: Grease." in page and 'data-testid="stop-plan"' not in page
    assert plans_file_due(now=_later(8)) == [] and not WorkOrder.objects.exists()
    assert Event.objects.filter(action="maintenance_plan.retire").count() == 1
    assert client.post(f"/manufacturing/plans/{plan.pk}/stop/").status_code == 404  # already stopped


def test_a_plan_whose_owner_moved_on_is_shown_and_taken_over_by_editing_it(
    client, engineer_a, make_user, machine_a
):
    """The owner moves to another site: the plan files nothing and the asset page says so; an engineer of
    the site saves it (a shorter interval, already over) and it files on their authority at once."""
    plan = plan_create(actor=engineer_a, machine=machine_a, title="Grease", every_days=30)
    MaintenancePlan.objects.filter(pk=plan.pk).update(last_done_at=_later(-10))
    engineer_a.site = "site-b"
    engineer_a.save()
    colleague = make_user("maintenance_engineer", site="site-a")
    client.force_login(colleague)
    asset = f"/manufacturing/assets/{machine_a.pk}/"
    page = client.get(asset).content.decode()
    assert 'data-testid="plan-orphaned"' in page and f"owner {engineer_a.username}" in page
    assert client.get(f"/api/manufacturing/assets/{machine_a.pk}/plans/").json()[0]["owner_may_file"] is False

    saved = client.post(
        f"/manufacturing/plans/{plan.pk}/edit/",
        {"title": "Grease DE and NDE", "every_days": "7", "instructions": "2 shots", "priority": "2"},
        follow=True,
    ).content.decode()
    work_order = WorkOrder.objects.get()
    assert (
        "Plan saved: Grease DE and NDE, yours from now on (its work orders are filed on your authority); "
        f"it is due: preventive work order {work_order.pk} filed." in saved
    )
    assert 'data-testid="plan-orphaned"' not in saved
    assert (work_order.created_by, work_order.title, work_order.priority) == (
        colleague,
        "Grease DE and NDE",
        2,
    )
    plan.refresh_from_db()
    assert (plan.owner, plan.every_days, plan.instructions) == (colleague, 7, "2 shots")
    event = Event.objects.get(action="maintenance_plan.update")
    assert event.payload["changes"]["every_days"] == [30, 7]
    assert event.payload["changes"]["owner"] == [engineer_a.username, colleague.username]


def test_editing_a_plan_checks_its_fields_its_site_and_that_it_runs(
    client, engineer_a, engineer_b, make_user, machine_a
):
    plan = plan_create(actor=engineer_a, machine=machine_a, title="Grease", every_days=30)
    url = f"/api/manufacturing/plans/{plan.pk}/"
    client.force_login(engineer_b)  # another site: the plan does not exist for them
    assert (
        client.put(url, {"title": "x", "every_days": 1}, content_type="application/json").status_code == 404
    )
    client.force_login(make_user("plant_auditor"))  # reads the plant's trail, not its assets
    assert (
        client.put(url, {"title": "x", "every_days": 1}, content_type="application/json").status_code == 404
    )
    client.force_login(engineer_a)
    refused = client.put(url, {"title": "Grease"}, content_type="application/json")
    assert refused.status_code == 400 and "give an interval" in refused.json()["detail"]
    changed = client.put(url, {"title": "Grease", "every_hours": 500}, content_type="application/json")
    assert changed.status_code == 200
    assert (changed.json()["every_days"], changed.json()["every_hours"], changed.json()["owner"]) == (
        None,
        500,
        engineer_a.username,
    )
    assert Event.objects.filter(action="maintenance_plan.update", outcome="succeeded").count() == 1
    page = client.post(
        f"/manufacturing/plans/{plan.pk}/edit/", {"title": "Grease", "every_days": "14"}, follow=True
    ).content.decode()
    assert "Plan saved: Grease." in page  # already the owner's: nothing taken over
    client.post(f"/manufacturing/plans/{plan.pk}/stop/")
    assert (
        client.put(url, {"title": "x", "every_days": 1}, content_type="application/json").status_code == 404
    )
    with pytest.raises(PlanRefused, match="was stopped"):
        plan_update(actor=engineer_a, plan=plan, title="x", every_days=1)
    assert Event.objects.filter(action="maintenance_plan.update", outcome="succeeded").count() == 2
    assert MaintenancePlan.objects.get().title == "Grease"
