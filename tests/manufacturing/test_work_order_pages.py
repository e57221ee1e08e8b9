"""Portal pages around work orders and assets: charts, QR label, planning (cross-site assignment grant),
attachments, inspections filing work orders, the printable report, phone filing from an alert."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import Event
from manufacturing.models import (
    Alert,
    BearingGeometry,
    Component,
    InspectionItem,
    VibrationAnalysis,
    VibrationRecording,
    WorkOrder,
    WorkOrderAttachment,
)
from manufacturing.services import work_order_file

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def analysed(machine_a):
    """An outer-race-like recording: 12 kHz, 0.5 s, impulses at BPFO on a 3 kHz resonance."""
    bearing = BearingGeometry.objects.create(
        designation="6205", ball_count=9, ball_diameter_mm=7.94, pitch_diameter_mm=39.04
    )
    component = Component.objects.create(machine=machine_a, name="DE bearing", bearing=bearing)
    rate, t = 12000, np.arange(6000) / 12000
    signal = 0.05 * np.sin(2 * np.pi * 30 * t) + 0.3 * np.sin(2 * np.pi * 3000 * t) * (
        np.sin(2 * np.pi * 107.4 * t) > 0.95
    )
    buffer = io.BytesIO()
    np.save(buffer, signal)
    recording = VibrationRecording(
        machine=machine_a, component=component, sample_rate=rate, rpm=1797, units="g", status="done"
    )
    recording.file.save("r.npy", ContentFile(buffer.getvalue()), save=False)
    recording.save()
    VibrationAnalysis.objects.create(
        recording=recording,
        rms_velocity=5.2,
        peak=0.4,
        crest_factor=4.0,
        kurtosis=7.5,
        zone="D",
        fault="outer_race",
        result={
            "zone": "D",
            "fault": "outer_race",
            "fault_confidence": 0.9,
            "evidence": ["BPFO and 2 harmonics 14 dB above the floor"],
            "spectrum": {"freq_hz": [0, 30, 60, 90], "amplitude": [0, 0.05, 0.01, 0.0]},
            "envelope": {"freq_hz": [0, 53.7, 107.4, 214.8], "amplitude": [0, 0.01, 0.2, 0.1]},
            "fault_frequencies": {"bpfo": 107.4, "bpfi": 162.2, "bsf": 70.6, "ftf": 11.9},
        },
    )
    return recording


def test_asset_page_shows_zone_fault_charts_and_marks_fault_frequencies(
    client, engineer_a, machine_a, analysed
):
    client.force_login(engineer_a)
    page = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode()
    for testid in ("zone", "fault-call", "waveform", "spectrum", "envelope-spectrum", "rms-trend", "qr"):
        assert f'data-testid="{testid}"' in page, testid
    assert "Zone D" in page and "Outer-race bearing defect (0.90)" in page and "outer_race" not in page
    assert 'data-mark="BPFO"' in page and 'data-mark="BPFI"' in page
    assert "BPFO 107.4 Hz" in page
    # a long page on a phone: jump links, each to one section of the page
    jump = page[page.index('data-testid="jump"') :].split("</nav>")[0]
    targets = re.findall(r'href="#([a-z-]+)"', jump)
    assert len(targets) == 8  # the reliability section is the eighth
    for target in targets:
        assert len(re.findall(rf'<section id="{target}"', page)) == 1, target


def test_asset_recording_alert_and_work_order_link_each_other(client, engineer_a, machine_a, analysed):
    alert = Alert.objects.create(
        machine=machine_a, kind="vibration_zone", message="Vibration zone D", recording=analysed
    )
    client.force_login(engineer_a)
    asset = f"/manufacturing/assets/{machine_a.pk}/"
    page = client.get(asset).content.decode()
    recording = f"/manufacturing/recordings/{analysed.pk}/"
    assert f'id="recording-{analysed.pk}"' in page and f'href="{recording}"' in page
    assert f"/manufacturing/work-orders/new/?alert={alert.pk}" in page
    work_order = work_order_file(actor=engineer_a, machine=machine_a, title="Zone D", alert=alert)
    page = client.get(asset).content.decode()
    assert f"/manufacturing/work-orders/{work_order.pk}/" in page.split('data-testid="recordings"')[1]
    detail = client.get(f"/manufacturing/work-orders/{work_order.pk}/").content.decode()
    assert f'href="{recording}"' in detail
    assert "Zone D" in client.get(recording).content.decode()


def test_qr_label_encodes_the_asset_page_and_is_site_scoped(client, engineer_a, engineer_b, machine_a):
    client.force_login(engineer_a)
    response = client.get(f"/manufacturing/assets/{machine_a.pk}/qr.svg")
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    assert response.content.startswith(b"<") and b"<svg" in response.content[:300]
    assert client.get(f"/manufacturing/assets/{machine_a.pk}/label/").status_code == 200
    client.force_login(engineer_b)
    assert client.get(f"/manufacturing/assets/{machine_a.pk}/qr.svg").status_code == 404


def test_file_from_an_alert_on_the_phone_page(client, engineer_a, machine_a):
    alert = Alert.objects.create(machine=machine_a, kind="vibration_zone", message="Vibration zone D")
    client.force_login(engineer_a)
    page = client.get(f"/manufacturing/work-orders/new/?alert={alert.pk}").content.decode()
    assert "Vibration zone D" in page
    response = client.post(
        "/manufacturing/work-orders/new/",
        {"machine": machine_a.pk, "alert": alert.pk, "title": "Zone D", "priority": 2, "due": "2026-12-31"},
    )
    work_order = WorkOrder.objects.get()
    assert response.status_code == 302 and work_order.alert == alert and str(work_order.due) == "2026-12-31"
    assert Alert.objects.get().status == "acknowledged"
    # dates read one way everywhere, as the history's timestamps do (not "Dec. 31, 2026")
    for path in (
        f"/manufacturing/work-orders/{work_order.pk}/",
        f"/manufacturing/work-orders/{work_order.pk}/report/",
    ):
        assert (
            "2026-12-31" in client.get(path).content.decode()
            and "Dec. 31" not in client.get(path).content.decode()
        )
    bad = client.post(
        "/manufacturing/work-orders/new/",
        {"machine": machine_a.pk, "title": "x", "due": "tomorrow"},
        follow=True,
    )
    assert "due must be a date" in bad.content.decode() and WorkOrder.objects.count() == 1


def test_assigning_an_engineer_of_another_site_grants_them_that_work_order(
    client, engineer_a, engineer_b, machine_a, failure_codes
):
    work_order = work_order_file(actor=engineer_a, machine=machine_a, title="Seal leak")
    client.force_login(engineer_b)
    assert client.get(f"/api/manufacturing/work-orders/{work_order.pk}/").status_code == 404
    client.force_login(engineer_a)
    client.post(
        f"/manufacturing/work-orders/{work_order.pk}/plan/",
        {"assignee": engineer_b.username, "team": "mech", "priority": 1, "labour_hours": "2.5"},
    )
    work_order.refresh_from_db()
    assert (work_order.assignee, work_order.team, work_order.priority, work_order.labour_hours) == (
        engineer_b,
        "mech",
        1,
        2.5,
    )
    assert Event.objects.filter(action="work_order.update").exists()
    client.force_login(engineer_b)
    assert client.get(f"/api/manufacturing/work-orders/{work_order.pk}/").status_code == 200
    refused = client.post(
        f"/manufacturing/work-orders/{work_order.pk}/plan/", {"assignee": "nobody-here"}, follow=True
    )
    assert refused.status_code == 200  # b may view (grant) but not `file` on another site's work order
    client.force_login(engineer_a)
    refused = client.post(
        f"/manufacturing/work-orders/{work_order.pk}/plan/", {"assignee": "nobody-here"}, follow=True
    )
    assert "no active user" in refused.content.decode()
    work_order.refresh_from_db()
    assert work_order.assignee == engineer_b


def test_photo_attachment_checked_by_content_and_site_scoped(client, engineer_a, engineer_b, machine_a):
    work_order = work_order_file(actor=engineer_a, machine=machine_a, title="Crack in frame")
    client.force_login(engineer_a)
    url = f"/manufacturing/work-orders/{work_order.pk}/attachments/"
    client.post(url, {"file": SimpleUploadedFile("IMG_0001.HEIC.png", PNG)})
    refused = client.post(
        url, {"file": SimpleUploadedFile("photo.jpg", b"MZ\x90\x00 not a photo")}, follow=True
    )
    assert "is not a JPEG, PNG or WebP" in refused.content.decode()
    attachment = WorkOrderAttachment.objects.get()
    assert attachment.content_type == "image/png"
    assert Event.objects.filter(action="work_order.attach").count() == 1
    response = client.get(f"/manufacturing/attachments/{attachment.pk}/")
    assert response.status_code == 200 and b"".join(response.streaming_content) == PNG
    client.force_login(engineer_b)
    assert client.get(f"/manufacturing/attachments/{attachment.pk}/").status_code == 404
    assert client.post(url, {"file": SimpleUploadedFile("x.png", PNG)}).status_code == 404
    assert WorkOrderAttachment.objects.count() == 1


def test_failed_inspection_items_file_work_orders(client, engineer_a, machine_a):
    client.force_login(engineer_a)
    url = f"/manufacturing/assets/{machine_a.pk}/inspect/"
    assert "Guards and covers" in client.get(url).content.decode()
    assert client.get(url + "?template=abc").status_code == 200  # a bad template id: the standard list
    texts = ["Guards in place", "No leaks", "Belts ok"]
    refused = client.post(url, {"text": texts, "result-1": "fail"}, follow=True)
    assert "say what was found" in refused.content.decode() and not WorkOrder.objects.exists()
    client.post(
        url,
        {
            "text": texts,
            "result-1": "fail",
            "note-1": "oil under gearbox",
            "result-2": "fail",
            "note-2": "worn",
        },
    )
    assert WorkOrder.objects.count() == 2 and Alert.objects.filter(kind="inspection").count() == 2
    failed = InspectionItem.objects.filter(passed=False).select_related("work_order")
    assert {item.work_order.title for item in failed} == {"Inspection: No leaks", "Inspection: Belts ok"}
    assert all(item.work_order.priority == 2 and item.work_order.alert_id for item in failed)
    assert Event.objects.filter(action="inspection.record").count() == 1


def test_printable_report_of_a_closed_work_order(client, engineer_a, engineer_b, machine_a, failure_codes):
    work_order = work_order_file(actor=engineer_a, machine=machine_a, title="Pump DE bearing")
    client.force_login(engineer_a)
    url = f"/manufacturing/work-orders/{work_order.pk}/transition/"
    client.post(url, {"status": "in_progress"})
    client.post(
        url,
        {
            "status": "complete",
            "failure_mode": "VIB",
            "failure_cause": "WEA",
            "action_code": "REP",
            "labour_hours": "3",
            "downtime_hours": "1.5",
        },
    )
    report = client.get(f"/manufacturing/work-orders/{work_order.pk}/report/").content.decode()
    assert "VIB Vibration" in report and "WEA Wear and tear" in report and "REP Replace" in report
    assert "3.0 h / 1.5 h" in report
    # the history in words, as on the work order page, not the stored identifiers
    assert (
        "Open → In progress" in report and "In progress → Complete" in report and "in_progress" not in report
    )
    client.force_login(engineer_b)
    assert client.get(f"/manufacturing/work-orders/{work_order.pk}/report/").status_code == 404


def test_work_order_list_page_filters_by_status(client, engineer_a, machine_a, machine_b, engineer_b):
    work_order_file(actor=engineer_a, machine=machine_a, title="Site A job")
    work_order_file(actor=engineer_b, machine=machine_b, title="Site B job")
    client.force_login(engineer_a)
    page = client.get("/manufacturing/work-orders/?status=open").content.decode()
    assert "Site A job" in page and "Site B job" not in page
    assert "Site A job" not in client.get("/manufacturing/work-orders/?status=complete").content.decode()


def test_work_order_list_searches_words_within_the_site(client, engineer_a, machine_a, machine_b, engineer_b):
    work_order_file(
        actor=engineer_a, machine=machine_a, title="Pump seal leaking", description="oil under the pump"
    )
    work_order_file(actor=engineer_a, machine=machine_a, title="Fan belt squeal")
    work_order_file(actor=engineer_b, machine=machine_b, title="Pump seal leaking at site B")
    client.force_login(engineer_a)

    def listed(query: str) -> str:
        return client.get("/manufacturing/work-orders/", {"status": "all", "q": query}).content.decode()

    page = listed("pump SEAL")  # every word, any case
    assert "Pump seal leaking" in page and "Fan belt" not in page and "site B" not in page
    assert "Fan belt squeal" in listed(machine_a.tag) and "Pump seal" in listed(machine_a.tag)
    assert "Pump seal" in listed("oil") and "No work orders match these filters" in listed("pump belt")


def test_work_order_list_shows_what_is_to_do_most_urgent_first_and_pages_the_rest(
    client, engineer_a, machine_a
):
    import datetime as dt

    from manufacturing.services import work_order_transition

    low = work_order_file(actor=engineer_a, machine=machine_a, title="Low job", priority=4)
    late = work_order_file(
        actor=engineer_a, machine=machine_a, title="High job due later", priority=2, due=dt.date(2027, 3, 1)
    )
    work_order_file(
        actor=engineer_a, machine=machine_a, title="High job due first", priority=2, due=dt.date(2027, 1, 5)
    )
    work_order_file(actor=engineer_a, machine=machine_a, title="Emergency job", priority=1)
    work_order_transition(actor=engineer_a, work_order=late, to_status="in_progress")
    done = work_order_file(actor=engineer_a, machine=machine_a, title="Cancelled job")
    work_order_transition(actor=engineer_a, work_order=done, to_status="cancelled")
    client.force_login(engineer_a)
    page = client.get("/manufacturing/work-orders/").content.decode()  # the default: to do
    order = ["Emergency job", "High job due first", "High job due later", "Low job"]
    assert [page.index(title) for title in order] == sorted(page.index(title) for title in order)
    assert "Cancelled job" not in page and "1-4 of 4, most urgent first" in page
    assert "Cancelled job" in client.get("/manufacturing/work-orders/?status=all").content.decode()
    for index in range(55):
        work_order_file(actor=engineer_a, machine=machine_a, title=f"Routine job {index}", priority=3)
    first = client.get("/manufacturing/work-orders/?status=active&mine=").content.decode()
    assert "1-50 of 59" in first and "Low job" not in first
    assert 'href="?status=active&amp;mine=&amp;page=2"' in first
    second = client.get("/manufacturing/work-orders/?status=active&mine=&page=2").content.decode()
    assert "51-59 of 59" in second and "Low job" in second and low.title in second
    assert client.get("/manufacturing/work-orders/?page=999").status_code == 200  # the last page


def test_failure_mode_choices_put_the_iso_14224_modes_first(failure_codes):
    from manufacturing.selectors import failure_codes as codes_of
    from manufacturing.services.failure_codes import ISO_CATEGORY

    modes = list(codes_of("mode"))
    categories = [code.category for code in modes]
    iso = categories.count(ISO_CATEGORY)
    assert iso == 22 and len(modes) > iso  # the chiller tables' modes follow
    assert set(categories[:iso]) == {ISO_CATEGORY} and ISO_CATEGORY not in categories[iso:]
    rest = categories[iso:]
    assert rest == sorted(rest)  # then grouped by category, alphabetically
