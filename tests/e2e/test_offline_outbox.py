"""On a phone (390 px) in a real Chromium with no connection: a form that is safe to send twice (a work
order's status update, a new work order with its submission key) is kept on the phone by the maintenance
pages' worker and sent by itself, once, when the connection is back; the page then shows what the server
answered. A form that is not safe to send twice is not kept; signing out with sends waiting asks first."""

from __future__ import annotations

import pytest

from audit.models import Event
from manufacturing.models import Line, Machine, Site, WorkOrder
from manufacturing.services import work_order_file, work_order_transition

PHONE = {"width": 390, "height": 844}
PNG = bytes.fromhex(  # a 1 x 1 PNG
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2d1d6a10000000049454e44ae426082"
)


@pytest.fixture
def machine(db):
    site, _ = Site.objects.get_or_create(code="site-a", defaults={"name": "Site A"})
    line = Line.objects.create(site=site, name="Line 1")
    return Machine.objects.create(line=line, tag="CWC04009", name="Chiller 9")


def _back_in_coverage(page, sends: int) -> list[str]:
    """The connection comes back: what the page reports the server answered to each of `sends` sends."""
    page.context.set_offline(False)
    page.wait_for_function(
        f"() => document.querySelectorAll('[data-testid=outbox-result]').length === {sends}",
        timeout=30_000,
    )
    return page.locator('[data-testid="outbox-result"]').all_inner_texts()


def _send_recording(page, name: str, samples: str) -> None:
    """The asset page's recording form sent with a one-column CSV of `samples` at 12 kHz, 1797 rpm."""
    form = page.locator('[data-testid="upload-recording"]')
    form.locator('input[name="file"]').set_input_files(
        files=[{"name": name, "mimeType": "text/csv", "buffer": samples.encode()}]
    )
    form.locator('input[name="sample_rate"]').fill("12000")
    form.locator('input[name="rpm"]').fill("1797")
    form.locator('button[type="submit"]').click()


def _on_a_work_order(page, log_in, make_user, machine):
    """An engineer on a phone whose worker controls the pages, with the asset page kept (its form's
    submission key with it), on the page of an open work order."""
    engineer = make_user("maintenance_engineer", site="site-a")
    order = work_order_file(actor=engineer, machine=machine, title="Condenser fan noisy")
    page.set_viewport_size(PHONE)
    log_in(engineer)
    page.goto(f"/manufacturing/assets/{machine.pk}/")
    page.wait_for_function("() => navigator.serviceWorker && !!navigator.serviceWorker.controller")
    page.goto(f"/manufacturing/assets/{machine.pk}/")  # kept now, through the worker
    page.goto(f"/manufacturing/work-orders/{order.pk}/")
    return engineer, order


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_forms_sent_with_no_connection_are_kept_and_sent_once_when_it_is_back(
    page, log_in, make_user, machine
):
    engineer, order = _on_a_work_order(page, log_in, make_user, machine)

    page.context.set_offline(True)
    # a status update: kept on the phone, nothing reaches the server yet
    page.select_option('[data-testid="transition"] select[name="status"]', "in_progress")
    page.fill('[data-testid="transition"] input[name="note"]', "Fan guard off, bearing checked")
    page.click('[data-testid="transition"] button[type="submit"]')
    kept = page.locator('[data-testid="outbox-kept"]')
    assert f"Work order {order.pk}: status update" in kept.inner_text()
    assert "will be sent by itself" in kept.inner_text()
    # a photo of the work: a multipart form, kept with its file
    page.go_back()
    page.set_input_files(
        '[data-testid="attach"] input[name="file"]',
        files=[{"name": "fan-guard.png", "mimeType": "image/png", "buffer": PNG}],
    )
    page.click('[data-testid="attach"] button[type="submit"]')
    assert f"Work order {order.pk}: attachment" in page.locator('[data-testid="outbox-kept"]').inner_text()
    # a form that is not safe to send twice (planning) is not kept: it says nothing was sent
    page.go_back()
    page.fill('[data-testid="plan"] input[name="assignee"]', engineer.username)
    page.click('[data-testid="plan"] button[type="submit"]')
    assert "nothing was sent" in page.locator('[data-testid="outbox-not-sent"]').inner_text()
    # a new work order from the asset page kept while online
    page.goto(f"/manufacturing/assets/{machine.pk}/")
    page.fill('[data-testid="file-work-order"] input[name="title"]', "Oil leak under the compressor")
    page.click('[data-testid="file-work-order"] button[type="submit"]')
    assert "New work order for CWC04009" in page.locator('[data-testid="outbox-kept"]').inner_text()
    assert "3 sends are waiting" in page.locator('[data-testid="outbox-kept"]').inner_text()
    order.refresh_from_db()
    assert order.status == WorkOrder.Status.OPEN and order.assignee is None
    assert not WorkOrder.objects.filter(title="Oil leak under the compressor").exists()

    page.click('[data-testid="outbox-back"]')  # the kept asset page lists what waits
    waiting = page.locator('[data-testid="outbox-waiting"]')
    assert "3 forms are waiting on this phone" in waiting.inner_text()
    assert f"Work order {order.pk}: status update" in waiting.inner_text()
    # signing out would delete them: it asks first, and staying keeps them
    dialogs = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.click("form[data-logout] button")
    assert dialogs and "3 forms have not left this phone" in dialogs[0]
    assert page.locator('[data-testid="outbox-waiting"]').count() == 1

    # back in coverage: the page is told so, or tries again within 10 s; the worker sends, in order
    results = _back_in_coverage(page, 3)
    assert (
        results[0].startswith(f"Work order {order.pk}: status update") and "Work order updated." in results[0]
    )
    assert results[1].startswith(f"Work order {order.pk}: attachment") and "Attachment added." in results[1]
    filed = WorkOrder.objects.get(title="Oil leak under the compressor")
    assert results[2].startswith("New work order for CWC04009")
    assert f"Work order {filed.pk} filed." in results[2]
    assert page.locator('[data-testid="outbox-waiting"]').count() == 0
    page.goto(f"/manufacturing/assets/{machine.pk}/")  # the server took the new work order: no draft of it
    assert page.locator('[data-testid="draft-note"]').count() == 0
    assert page.input_value('[data-testid="file-work-order"] input[name="title"]') == ""
    order.refresh_from_db()
    assert order.status == WorkOrder.Status.IN_PROGRESS
    assert Event.objects.filter(action="work_order.transition", resource_id=str(order.pk)).count() == 1

    # the connection dropping and coming back again sends nothing twice
    page.context.set_offline(True)
    page.context.set_offline(False)
    page.goto(f"/manufacturing/work-orders/{order.pk}/")
    page.wait_for_load_state("networkidle")
    assert WorkOrder.objects.filter(title="Oil leak under the compressor").count() == 1
    assert Event.objects.filter(action="work_order.transition", resource_id=str(order.pk)).count() == 1
    assert [a.original_name for a in order.attachments.all()] == ["fan-guard.png"]
    assert order.attachments.get().file.read() == PNG
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_kept_send_the_server_refuses_or_whose_sign_in_ended_is_reported_not_lost_in_silence(
    page, log_in, make_user, machine
):
    engineer, order = _on_a_work_order(page, log_in, make_user, machine)

    page.context.set_offline(True)
    page.select_option('[data-testid="transition"] select[name="status"]', "in_progress")
    page.click('[data-testid="transition"] button[type="submit"]')
    page.locator('[data-testid="outbox-kept"]').wait_for()
    # meanwhile, from the office, the work order is cancelled: the kept move is no longer possible
    work_order_transition(
        actor=engineer, work_order=order, to_status=WorkOrder.Status.CANCELLED, note="duplicate"
    )
    page.click('[data-testid="outbox-back"]')
    page.context.set_offline(False)
    refused = page.locator('[data-testid="outbox-result"]')
    refused.wait_for(timeout=30_000)
    assert "error" in refused.get_attribute("class")
    assert refused.inner_text().startswith(f"Work order {order.pk}: status update — not taken")
    assert "Work order updated" not in refused.inner_text()
    assert "a work order that is cancelled cannot become in progress" in refused.inner_text()
    order.refresh_from_db()
    assert order.status == WorkOrder.Status.CANCELLED

    # a form kept while the sign-in was still open, sent after it ended: not sent under no sign-in
    page.goto(f"/manufacturing/assets/{machine.pk}/")
    page.context.set_offline(True)
    page.fill('[data-testid="file-work-order"] input[name="title"]', "Oil leak under the compressor")
    page.click('[data-testid="file-work-order"] button[type="submit"]')
    page.locator('[data-testid="outbox-kept"]').wait_for()
    page.click('[data-testid="outbox-back"]')
    page.context.clear_cookies()  # the session ended while the phone had no connection
    page.context.set_offline(False)
    ended = page.locator('[data-testid="outbox-result"]')
    ended.wait_for(timeout=30_000)
    assert "the sign-in it was made under had ended" in ended.inner_text()
    assert not WorkOrder.objects.filter(title="Oil leak under the compressor").exists()
    assert page.locator('[data-testid="outbox-waiting"]').count() == 0


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_phone_with_no_storage_left_still_shows_pages_and_says_a_form_could_not_be_kept(
    page, log_in, make_user, machine, live_server
):
    """A full phone (its quota for the site set to one byte through the DevTools protocol): pages are
    shown as before, only not kept; a form sent with no connection that cannot be kept says so."""
    engineer, order = _on_a_work_order(page, log_in, make_user, machine)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Storage.overrideQuotaForOrigin", {"origin": live_server.url, "quotaSize": 1})

    # online: the worker cannot keep the page, and shows it all the same
    page.goto("/manufacturing/work-orders/")
    assert page.locator('[data-testid="offline-page"]').count() == 0
    assert "Condenser fan noisy" in page.content()

    page.goto(f"/manufacturing/work-orders/{order.pk}/")
    page.context.set_offline(True)
    page.set_input_files(
        '[data-testid="attach"] input[name="file"]',
        files=[{"name": "fan-guard.png", "mimeType": "image/png", "buffer": PNG}],
    )
    page.click('[data-testid="attach"] button[type="submit"]')
    not_kept = page.locator('[data-testid="outbox-not-kept"]').inner_text()
    assert "no room left to keep it" in not_kept and "nothing was sent" in not_kept
    assert f"Work order {order.pk}: attachment" in not_kept
    page.context.set_offline(False)
    page.goto(f"/manufacturing/work-orders/{order.pk}/")
    assert page.locator('[data-testid="outbox-waiting"]').count() == 0  # nothing waits to be sent later
    assert not order.attachments.exists()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_meter_readings_typed_with_no_connection_keep_their_time_and_land_once_each(
    page, log_in, make_user, machine
):
    """A route of meter readings with no coverage: each reading is kept on the phone with the time it
    was typed, and recorded at that time when the connection is back. The asset page opened again from
    the phone's copy carries the key it was saved with; a second reading typed on it is a new record
    (a fresh key), the same reading sent again lands once."""
    import datetime as dt

    from django.utils import timezone

    from manufacturing.models import MeterReading

    engineer = make_user("maintenance_engineer", site="site-a")
    page.set_viewport_size(PHONE)
    log_in(engineer)
    asset = f"/manufacturing/assets/{machine.pk}/"
    page.goto(asset)
    page.wait_for_function("() => navigator.serviceWorker && !!navigator.serviceWorker.controller")
    page.goto(asset)  # kept now, through the worker
    typed_at = timezone.now().replace(microsecond=0) - dt.timedelta(hours=2)
    page.clock.set_fixed_time(typed_at)  # the readings were typed two hours before the connection came back

    page.context.set_offline(True)
    page.goto(asset)  # the copy kept on the phone
    assert page.locator("body[data-kept-copy]").count() == 1
    page.fill('[data-testid="meter-form"] input[name="hours"]', "1200")
    page.click('[data-testid="meter-form"] button[type="submit"]')
    assert "Meter reading for CWC04009" in page.locator('[data-testid="outbox-kept"]').inner_text()
    page.clock.set_fixed_time(typed_at + dt.timedelta(minutes=30))
    page.goto(asset)  # the copy again, with the same key; the first reading's draft is put back
    assert page.input_value('[data-testid="meter-form"] input[name="hours"]') == "1200"
    page.fill('[data-testid="meter-form"] input[name="hours"]', "1250")
    page.click('[data-testid="meter-form"] button[type="submit"]')
    page.goto(asset)  # and the second reading sent again as it is (a tap that seemed to do nothing)
    assert page.input_value('[data-testid="meter-form"] input[name="hours"]') == "1250"
    page.click('[data-testid="meter-form"] button[type="submit"]')
    assert "3 sends are waiting" in page.locator('[data-testid="outbox-kept"]').inner_text()
    assert not MeterReading.objects.exists()

    page.click('[data-testid="outbox-back"]')
    results = _back_in_coverage(page, 3)
    shown = timezone.localtime(typed_at)
    assert f"Meter reading recorded: 1200 h (read {shown:%Y-%m-%d %H:%M})" in results[0]
    assert "Meter reading recorded: 1250 h (read " in results[1]
    assert "This form was already sent: 1250 h" in results[2] and "not taken" not in results[2]
    readings = list(MeterReading.objects.order_by("read_at"))
    assert [r.hours for r in readings] == [1200, 1250]
    assert abs(readings[0].read_at - typed_at) < dt.timedelta(seconds=2)
    assert abs(readings[1].read_at - (typed_at + dt.timedelta(minutes=30))) < dt.timedelta(seconds=2)
    assert readings[0].submission_key != readings[1].submission_key
    assert Event.objects.filter(action="meter.record").count() == 2
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_recording_taken_with_no_connection_is_sent_with_the_time_it_was_taken(
    page, log_in, make_user, machine
):
    """A vibration recording uploaded from the phone where there is no coverage (a pump room) is kept on
    the phone with its file and sent by itself when the connection is back, measured at the time it was
    sent from the phone (two hours before it arrived); sent again, it is kept once."""
    import datetime as dt

    import numpy as np
    from django.utils import timezone

    from manufacturing.models import VibrationRecording

    engineer = make_user("maintenance_engineer", site="site-a")
    page.set_viewport_size(PHONE)
    log_in(engineer)
    asset = f"/manufacturing/assets/{machine.pk}/"
    page.goto(asset)
    page.wait_for_function("() => navigator.serviceWorker && !!navigator.serviceWorker.controller")
    page.goto(asset)
    taken_at = timezone.now().replace(microsecond=0) - dt.timedelta(hours=2)
    page.clock.set_fixed_time(taken_at)
    samples = "\n".join(f"{v:.5f}" for v in np.sin(np.arange(24000) * 2 * np.pi * 29.95 / 12000) * 0.1)

    page.context.set_offline(True)
    page.goto(asset)
    _send_recording(page, "pump-de.csv", samples)
    assert "Recording for CWC04009" in page.locator('[data-testid="outbox-kept"]').inner_text()
    assert not VibrationRecording.objects.exists()

    page.click('[data-testid="outbox-back"]')
    (result,) = _back_in_coverage(page, 1)
    recording = VibrationRecording.objects.get()
    assert f"Recording {recording.pk} uploaded" in result and "not taken" not in result
    assert recording.original_name == "pump-de.csv" and recording.sample_count == 24000
    assert abs(recording.recorded_at - taken_at) < dt.timedelta(seconds=2)
    assert recording.uploaded_late  # measured two hours before it arrived
    page.goto(asset)  # the server took it: no draft of the form is put back
    assert page.locator('[data-testid="upload-recording"] [data-testid="draft-note"]').count() == 0

    # with a connection, the phone's clock still two hours behind: a page from the server measures the
    # offset, so a recording sent now is measured now, not two hours ago; the page drops its draft
    _send_recording(page, "pump-nde.csv", samples.replace("0.0", "0.1"))
    page.locator(".messages").wait_for()
    assert "uploaded; the analysis runs on the worker" in page.locator(".messages").inner_text()
    now = VibrationRecording.objects.get(original_name="pump-nde.csv")
    assert abs(now.recorded_at - timezone.now()) < dt.timedelta(minutes=1) and not now.uploaded_late
    assert page.locator('[data-testid="upload-recording"] [data-testid="draft-note"]').count() == 0
