"""The maintenance portal pages: list, asset page (file a work order from an alert), work order close."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from manufacturing.models import Alert, VibrationRecording, WorkOrder

pytestmark = pytest.mark.django_db


def test_file_from_alert_and_close_through_the_pages(client, engineer_a, machine_a, failure_codes):
    alert = Alert.objects.create(
        machine=machine_a, kind="vibration_zone", message="Vibration zone D: 9.00 mm/s RMS"
    )
    client.force_login(engineer_a)
    listing = client.get("/manufacturing/")
    assert listing.status_code == 200 and machine_a.tag in listing.content.decode()
    page = client.get(f"/manufacturing/assets/{machine_a.pk}/")
    assert "Vibration zone D" in page.content.decode()
    response = client.post(
        f"/manufacturing/assets/{machine_a.pk}/", {"title": "Zone D on DE", "priority": 2, "alert": alert.pk}
    )
    work_order = WorkOrder.objects.get()
    assert response.status_code == 302 and work_order.alert_id == alert.pk
    url = f"/manufacturing/work-orders/{work_order.pk}/transition/"
    client.post(url, {"status": "in_progress"})
    refused = client.post(url, {"status": "complete"}, follow=True)
    assert "missing: failure_mode" in refused.content.decode()
    client.post(
        url, {"status": "complete", "failure_mode": "M001a", "failure_cause": "WEA", "action_code": "REP"}
    )
    work_order.refresh_from_db()
    assert work_order.status == "complete" and work_order.failure_mode == "M001a"


def test_other_site_gets_404(client, engineer_b, machine_a):
    client.force_login(engineer_b)
    assert client.get(f"/manufacturing/assets/{machine_a.pk}/").status_code == 404
    assert client.post(f"/manufacturing/assets/{machine_a.pk}/", {"title": "x"}).status_code == 404
    assert not WorkOrder.objects.exists()


def test_engineer_home_links_maintenance_and_shows_own_site_alerts(client, engineer_a, machine_a, machine_b):
    Alert.objects.create(
        machine=machine_a, kind="vibration_zone", message="Zone D on site A", severity="danger"
    )
    Alert.objects.create(machine=machine_b, kind="vibration_zone", message="Zone D on site B")
    client.force_login(engineer_a)
    page = client.get("/", follow=True).content.decode()
    assert 'data-nav="maintenance"' in page
    assert "Zone D on site A" in page and "Zone D on site B" not in page


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_portal_recording_upload_refuses_non_finite_numbers(client, engineer_a, machine_a, value):
    """'inf' and 'nan' parse as floats: the form refuses them with a message and stores nothing."""
    client.force_login(engineer_a)
    upload = SimpleUploadedFile("de.csv", b"0.1\n0.2\n-0.1\n" * 100, content_type="text/csv")
    page = client.post(
        f"/manufacturing/assets/{machine_a.pk}/recordings/",
        {"file": upload, "sample_rate": value, "rpm": "1797"},
        follow=True,
    )
    assert page.status_code == 200 and "sample rate must be a finite number" in page.content.decode()
    assert not VibrationRecording.objects.exists()


def test_asset_page_says_whether_its_zone_limits_are_the_iso_default_or_set_for_it(
    client, engineer_a, machine_a
):
    client.force_login(engineer_a)
    machine_a.iso_group, machine_a.foundation, machine_a.zone_limits = "group2", "flexible", {}
    machine_a.save()
    page = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode()
    assert "A/B 2.3 · B/C 4.5 · C/D 7.1 mm/s (ISO 10816-3 default)" in page
    machine_a.zone_limits = {"A/B": 0.05, "B/C": 0.1, "C/D": 0.15}  # a small rig below the standard's range
    machine_a.save()
    page = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode()
    assert (
        "A/B 0.05 · B/C 0.1 · C/D 0.15 mm/s (set for this asset; the ISO 10816-3 default is 2.3 / 4.5 / 7.1)"
        in page
    )


def test_the_upload_form_takes_the_time_measured(client, engineer_a, machine_a, settings, tmp_path):
    """The phone form's "Measured at" (a datetime-local field, the site's time zone) is stored; a time
    that is not one is refused with the format to use, and nothing is stored."""
    settings.MEDIA_ROOT = tmp_path
    client.force_login(engineer_a)

    def post(when: str):
        upload = SimpleUploadedFile("de.csv", b"0.1\n0.2\n-0.1\n" * 400, content_type="text/csv")
        return client.post(
            f"/manufacturing/assets/{machine_a.pk}/recordings/",
            {"file": upload, "sample_rate": "12000", "rpm": "1797", "recorded_at": when},
            follow=True,
        )

    page = post("yesterday morning")
    assert "is not a date and time: give it as 2026-12-05 09:30" in page.content.decode()
    assert not VibrationRecording.objects.exists()
    page = post("2026-11-20T08:15")
    assert page.status_code == 200, page.content
    recording = VibrationRecording.objects.get()
    assert timezone.localtime(recording.recorded_at).strftime("%Y-%m-%d %H:%M") == "2026-11-20 08:15"
