"""A send repeated by a phone on a bad connection files nothing twice: work orders (Idempotency-Key on
the API, the form's submission key on the pages), inspections and attachments; an alert is covered by
one work order at a time."""

from __future__ import annotations

import hashlib
import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from audit.models import Event
from manufacturing.models import Alert, Inspection, WorkOrder, WorkOrderAttachment
from manufacturing.services import WorkOrderRefused, work_order_file, work_order_transition

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
API = "/api/manufacturing/work-orders/"


def _file(client, machine, key=None, **extra):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(
        API,
        {"machine": machine.pk, "title": "DE bearing noisy", "priority": 2, **extra},
        content_type="application/json",
        headers=headers,
    )


def test_the_same_idempotency_key_files_once_and_replays_the_answer(client, engineer_a, machine_a):
    client.force_login(engineer_a)
    first = _file(client, machine_a, key="b7e1c0de-0001")
    again = _file(client, machine_a, key="b7e1c0de-0001")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert "Idempotent-Replayed" not in first.headers and again.headers["Idempotent-Replayed"] == "true"
    assert WorkOrder.objects.count() == 1
    assert Event.objects.filter(action="work_order.file").count() == 1
    assert WorkOrder.objects.get().submission_key == "b7e1c0de-0001"


def test_a_key_reused_for_another_work_order_is_422_and_files_nothing(client, engineer_a, machine_a):
    client.force_login(engineer_a)
    first = _file(client, machine_a, key="k1").json()
    other = _file(client, machine_a, key="k1", title="Gearbox oil leak")
    assert other.status_code == 422
    assert f"already filed work order {first['id']}" in other.json()["detail"]
    assert "use a new key" in other.json()["detail"]
    assert _file(client, machine_a, key="k2", title="Gearbox oil leak").status_code == 201
    assert WorkOrder.objects.count() == 2


def test_keys_are_each_persons_own_and_checked(client, engineer_a, make_user, machine_a):
    colleague = make_user("maintenance_engineer", site="site-a")
    client.force_login(engineer_a)
    assert _file(client, machine_a, key="shared-1").status_code == 201
    client.force_login(colleague)
    assert _file(client, machine_a, key="shared-1").status_code == 201  # another person's key space
    assert WorkOrder.objects.count() == 2
    bad = _file(client, machine_a, key="not a key; drop table")
    assert bad.status_code == 400 and "1 to 64 letters" in bad.json()["detail"]
    assert _file(client, machine_a, key="x" * 65).status_code == 400
    assert WorkOrder.objects.count() == 2
    assert _file(client, machine_a).status_code == _file(client, machine_a).status_code == 201  # no key
    assert WorkOrder.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_the_same_key_sent_twice_at_once_files_once(engineer_a, machine_a):
    """Two requests with one key racing past the lookup: the unique constraint lets one insert, and the
    other returns what it filed (PostgreSQL; SQLite runs the two transactions one after the other, so
    there the second finds the first)."""
    start = threading.Barrier(2)
    results: list = []

    def send():
        try:
            start.wait()
            results.append(
                work_order_file(actor=engineer_a, machine=machine_a, title="Race", submission_key="r1")
            )
        except Exception as error:
            results.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(result, WorkOrder) for result in results), results
    assert {result.pk for result in results} == {WorkOrder.objects.get().pk}
    assert sorted(result.replayed for result in results) == [False, True]
    assert Event.objects.filter(action="work_order.file").count() == 1


def test_an_alert_is_covered_by_one_work_order_at_a_time(
    client, engineer_a, machine_a, machine_b, failure_codes
):
    alert = Alert.objects.create(machine=machine_a, kind="vibration_zone", message="Vibration zone D")
    client.force_login(engineer_a)
    first = _file(client, machine_a, alert=alert.pk)
    assert first.status_code == 201 and first.json()["alert"] == alert.pk
    second = _file(client, machine_a, alert=alert.pk, title="Zone D again")
    assert second.status_code == 400
    assert f"already covered by work order {first.json()['id']} (open)" in second.json()["detail"]
    page = client.get(f"/manufacturing/work-orders/new/?alert={alert.pk}").content.decode()
    assert (
        'data-testid="alert-covered"' in page and f"/manufacturing/work-orders/{first.json()['id']}/" in page
    )
    assert f'name="alert" value="{alert.pk}"' not in page  # a new one from this page goes without it
    other_site = Alert.objects.create(machine=machine_b, kind="vibration_zone", message="zone D")
    assert _file(client, machine_a, alert=other_site.pk).status_code == 404
    wrong_machine = Alert.objects.create(
        machine=type(machine_a).objects.create(line=machine_a.line, tag="P-2", name="Pump 2"),
        kind="vibration_zone",
        message="zone C",
    )
    refused = _file(client, machine_a, alert=wrong_machine.pk)
    assert refused.status_code == 400 and "not on" in refused.json()["detail"]
    work_order = WorkOrder.objects.get(pk=first.json()["id"])
    work_order_transition(actor=engineer_a, work_order=work_order, to_status="cancelled", note="duplicate")
    assert _file(client, machine_a, alert=alert.pk, title="Zone D again").status_code == 201
    assert WorkOrder.objects.filter(alert=alert).count() == 2


def test_the_phone_form_sent_twice_files_once_and_says_so(client, engineer_a, machine_a):
    client.force_login(engineer_a)
    page = client.get(f"/manufacturing/work-orders/new/?machine={machine_a.pk}").content.decode()
    key = page.split('name="submission" value="', 1)[1].split('"', 1)[0]
    assert len(key) == 32 and 'data-draft="work-order-new:' in page
    form = {"machine": machine_a.pk, "title": "Belt squeal", "priority": 3, "submission": key}
    first = client.post("/manufacturing/work-orders/new/", form, follow=True)
    work_order = WorkOrder.objects.get()
    assert f"Work order {work_order.pk} filed." in first.content.decode()
    assert f'data-sent="{key}"' in first.content.decode()  # the phone drops its draft
    again = client.post("/manufacturing/work-orders/new/", form, follow=True)
    assert again.redirect_chain[-1][0] == f"/manufacturing/work-orders/{work_order.pk}/"
    assert "already sent" in again.content.decode() and WorkOrder.objects.count() == 1
    fresh = client.get(f"/manufacturing/work-orders/new/?machine={machine_a.pk}").content.decode()
    assert key not in fresh and "data-sent" not in fresh  # named once, and a new form has a new key


def test_a_sent_form_edited_and_sent_again_is_refused_then_filed_as_new(client, engineer_a, machine_a):
    client.force_login(engineer_a)
    form = {"machine": machine_a.pk, "title": "Belt squeal", "priority": 3, "submission": "s" * 32}
    client.post("/manufacturing/work-orders/new/", form)
    edited = client.post("/manufacturing/work-orders/new/", {**form, "title": "Belt squeal and smoke"})
    text = edited.content.decode()
    assert edited.status_code == 200 and "already filed work order" in text
    assert f'data-spent="{"s" * 32}"' in text  # the phone keeps the text and takes the page's new key
    fresh_key = text.split('name="submission" value="', 1)[1].split('"', 1)[0]
    assert fresh_key != "s" * 32
    client.post(
        "/manufacturing/work-orders/new/", {**form, "title": "Belt squeal and smoke", "submission": fresh_key}
    )
    assert sorted(WorkOrder.objects.values_list("title", flat=True)) == [
        "Belt squeal",
        "Belt squeal and smoke",
    ]


def test_the_asset_page_form_carries_a_key_too(client, engineer_a, machine_a):
    client.force_login(engineer_a)
    page = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode()
    assert 'data-draft="asset-work-order:' in page and 'name="submission"' in page
    form = {"title": "Guard loose", "priority": 3, "submission": "asset-key-1"}
    client.post(f"/manufacturing/assets/{machine_a.pk}/", form)
    client.post(f"/manufacturing/assets/{machine_a.pk}/", form)
    assert WorkOrder.objects.count() == 1


def test_an_inspection_sent_twice_is_recorded_once(client, engineer_a, machine_a):
    client.force_login(engineer_a)
    url = f"/manufacturing/assets/{machine_a.pk}/inspect/"
    assert 'name="submission"' in client.get(url).content.decode()
    form = {
        "text": ["Guards in place", "No leaks"],
        "result-1": "fail",
        "note-1": "oil",
        "submission": "insp-1",
    }
    client.post(url, form)
    again = client.post(url, form, follow=True)
    assert "already sent" in again.content.decode()
    assert Inspection.objects.count() == 1 and WorkOrder.objects.count() == 1
    assert Event.objects.filter(action="inspection.record").count() == 1
    edited = client.post(url, {**form, "note-1": "oil and smoke"}, follow=True)
    assert "already recorded as inspection" in edited.content.decode()
    assert 'data-spent="insp-1"' in edited.content.decode()
    assert Inspection.objects.count() == 1


def test_the_same_photo_sent_again_is_kept_once(client, engineer_a, machine_a):
    work_order = work_order_file(actor=engineer_a, machine=machine_a, title="Crack in frame")
    client.force_login(engineer_a)
    url = f"/api/manufacturing/work-orders/{work_order.pk}/attachments/"
    first = client.post(url, {"file": SimpleUploadedFile("IMG_1.png", PNG)})
    again = client.post(url, {"file": SimpleUploadedFile("IMG_1 (1).png", PNG)})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    page = client.post(
        f"/manufacturing/work-orders/{work_order.pk}/attachments/",
        {"file": SimpleUploadedFile("IMG_1.png", PNG)},
        follow=True,
    )
    assert "already attached" in page.content.decode()
    other = client.post(url, {"file": SimpleUploadedFile("IMG_2.png", PNG + b"\x01")})
    assert other.status_code == 201
    assert WorkOrderAttachment.objects.count() == 2
    assert Event.objects.filter(action="work_order.attach").count() == 2


def test_files_stored_before_their_sha256_was_kept_get_it_and_are_then_kept_once(
    client, engineer_a, machine_a, settings, tmp_path
):
    """Migration 0012: attachments and recordings stored before 0009 / 0010 (empty sha256) get theirs from
    the file; a copy of an attachment already kept twice, and a missing file, keep it empty."""
    import importlib

    from manufacturing.models import VibrationRecording

    backfill = importlib.import_module("manufacturing.migrations.0012_backfill_sha256").backfill
    settings.MEDIA_ROOT = tmp_path
    work_order = work_order_file(actor=engineer_a, machine=machine_a, title="Crack in frame")
    old, copy, gone = (
        WorkOrderAttachment.objects.create(
            work_order=work_order, file=SimpleUploadedFile(name, data), original_name=name
        )
        for name, data in (("a.png", PNG), ("a (1).png", PNG), ("b.png", PNG + b"\x02"))
    )
    gone.file.storage.delete(gone.file.name)
    recording = VibrationRecording.objects.create(
        machine=machine_a, file=SimpleUploadedFile("r.npy", b"\x93NUMPY"), sample_rate=12000, rpm=1797
    )
    assert {row.sha256 for row in WorkOrderAttachment.objects.all()} == {""}

    assert backfill(WorkOrderAttachment, VibrationRecording) == {"attachments": 1, "recordings": 1}
    for row in (old, copy, gone, recording):
        row.refresh_from_db()
    assert old.sha256 == hashlib.sha256(PNG).hexdigest() and (copy.sha256, gone.sha256) == ("", "")
    assert recording.sha256 == hashlib.sha256(b"\x93NUMPY").hexdigest()
    assert backfill(WorkOrderAttachment, VibrationRecording) == {"attachments": 0, "recordings": 0}

    client.force_login(engineer_a)
    again = client.post(
        f"/api/manufacturing/work-orders/{work_order.pk}/attachments/",
        {"file": SimpleUploadedFile("a.png", PNG)},
    )
    assert again.status_code == 200 and again.json()["id"] == old.pk
    assert WorkOrderAttachment.objects.count() == 3


def test_the_service_refuses_a_bad_key(engineer_a, machine_a):
    with pytest.raises(WorkOrderRefused, match="1 to 64 letters"):
        work_order_file(actor=engineer_a, machine=machine_a, title="x", submission_key="a b")
    assert not WorkOrder.objects.exists()


def test_the_last_move_sent_again_is_answered_as_made(
    client, engineer_a, make_user, machine_a, failure_codes
):
    """A phone that lost the answer to "complete" sends it again: it hears the work order is complete,
    nothing is recorded twice; another person's or another move to the status it has stays refused."""
    client.force_login(engineer_a)
    pk = _file(client, machine_a).json()["id"]
    url = f"{API}{pk}/transition/"
    start = {"status": "in_progress"}
    assert client.post(url, start, content_type="application/json").status_code == 200
    again = client.post(url, start, content_type="application/json")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    close = {
        "status": "complete",
        "failure_mode": "OTH",
        "failure_cause": "WEA",
        "action_code": "REP",
        "note": "seal",
    }
    first = client.post(url, close, content_type="application/json")
    repeat = client.post(url, close, content_type="application/json")
    assert first.status_code == repeat.status_code == 200 and repeat.json() == first.json()
    assert repeat.headers["Idempotent-Replayed"] == "true"
    assert Event.objects.filter(action="work_order.close").count() == 1
    assert WorkOrder.objects.get(pk=pk).events.count() == 3  # filed, started, completed
    other_codes = client.post(url, {**close, "action_code": "NON"}, content_type="application/json")
    assert other_codes.status_code == 400 and "final" in other_codes.json()["detail"]
    page = client.post(f"/manufacturing/work-orders/{pk}/transition/", close, follow=True)
    assert "Already complete: this form was sent before." in page.content.decode()
    colleague = make_user("maintenance_engineer", site="site-a")
    client.force_login(colleague)
    assert client.post(url, close, content_type="application/json").status_code == 400
