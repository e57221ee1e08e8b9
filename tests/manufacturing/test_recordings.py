"""Recording uploads through the API: stored, trailed, clear 400s for bad files, 404 for another site."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import Event
from manufacturing.analysis.vibration import VELOCITY_BAND_HZ
from manufacturing.models import Alert, VibrationRecording
from manufacturing.services.recordings import MIN_SAMPLE_RATE_HZ, recording_upload
from tests.support import at_once

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _npy(samples) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(samples, dtype=float))
    return buffer.getvalue()


def _post(client, machine, name, data, **extra):
    body = {"machine": machine.pk, "sample_rate": 12000, "rpm": 1797, **extra}
    body["file"] = SimpleUploadedFile(name, data)
    return client.post("/api/manufacturing/recordings/", body)


SIGNAL = np.sin(np.arange(4096) * 0.3)


@pytest.mark.parametrize(
    ("name", "data"),
    [("x.npy", _npy(SIGNAL)), ("x.csv", "\n".join(f"{v:.6f}" for v in SIGNAL).encode())],
)
def test_upload_is_stored_and_trailed(client, engineer_a, machine_a, name, data):
    client.force_login(engineer_a)
    response = _post(client, machine_a, name, data)
    assert response.status_code == 201, response.content
    recording = VibrationRecording.objects.get(pk=response.json()["id"])
    assert (
        recording.sample_count == 4096 and recording.status == "pending" and recording.file.size == len(data)
    )
    assert Event.objects.filter(action="recording.upload", resource_id=str(recording.pk)).exists()


@pytest.mark.parametrize(
    ("name", "data", "extra", "message"),
    [
        ("x.wav", b"RIFF", {}, "upload a .csv"),
        ("x.csv", b"a,b\nc,d\n", {}, "could not be read"),
        ("x.npy", _npy(SIGNAL[:10]), {}, "at least 1024"),
        ("x.npy", _npy(np.full(2048, np.nan)), {}, "NaN"),
        ("x.npy", _npy(SIGNAL), {"rpm": 0}, "rpm"),
        # Below 2 kHz the ISO band (to 1000 Hz) cannot be analysed: refused at upload, nothing stored.
        ("x.npy", _npy(SIGNAL), {"sample_rate": 1999.5}, "needs at least 2000 samples per second"),
        ("x.npy", _npy(SIGNAL), {"sample_rate": 500}, "sample rate 500 Hz is too low"),
        ("x.npy", _npy(SIGNAL), {"units": "volts"}, "units"),
    ],
)
def test_bad_uploads_are_clear_400s(client, engineer_a, machine_a, name, data, extra, message):
    client.force_login(engineer_a)
    response = _post(client, machine_a, name, data, **extra)
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert not VibrationRecording.objects.exists()


def test_the_upload_minimum_sample_rate_is_what_the_analysis_needs():
    assert 2 * VELOCITY_BAND_HZ[1] == MIN_SAMPLE_RATE_HZ


def test_other_site_cannot_upload(client, engineer_b, machine_a):
    client.force_login(engineer_b)
    assert _post(client, machine_a, "x.npy", _npy(SIGNAL)).status_code == 404
    assert not VibrationRecording.objects.exists()


def test_the_same_file_and_settings_sent_again_is_kept_once(client, engineer_a, machine_a):
    """A retried upload (the answer was lost) stores, trails and analyses nothing new; the same file with
    other settings, or sent again after its analysis failed, is a recording of its own."""
    client.force_login(engineer_a)
    data = _npy(SIGNAL)
    first = _post(client, machine_a, "x.npy", data)
    again = _post(client, machine_a, "retry.npy", data)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    assert VibrationRecording.objects.count() == 1
    assert Event.objects.filter(action="recording.upload").count() == 1
    assert _post(client, machine_a, "x.npy", data, rpm=1750).status_code == 201  # another speed
    VibrationRecording.objects.filter(pk=first.json()["id"]).update(status="failed")
    assert _post(client, machine_a, "x.npy", data).status_code == 201  # analysed again
    assert VibrationRecording.objects.count() == 3
    page = client.post(
        f"/manufacturing/assets/{machine_a.pk}/recordings/",
        {"file": SimpleUploadedFile("x.npy", data), "sample_rate": "12000", "rpm": "1797", "units": "g"},
        follow=True,
    )
    assert "already uploaded with these settings" in page.content.decode()
    assert VibrationRecording.objects.count() == 3


def test_a_route_uploaded_later_falls_into_place_by_the_time_measured(client, engineer_a, machine_a):
    """A data collector's route sends recordings after they were made: the asset's condition is its
    latest *measured* recording, the trend runs in the order they were measured, and an alert from a
    late upload says when it was measured. Before, the upload time decided all three, so last week's
    reading uploaded today stood for the machine's state now."""
    from datetime import timedelta

    from django.utils import timezone

    from manufacturing.selectors import machine_condition
    from manufacturing.services.recordings import recording_analyse

    client.force_login(engineer_a)
    loud = _post(client, machine_a, "today.npy", _npy(SIGNAL * 40), units="mm/s")
    assert loud.status_code == 201, loud.content
    last_week = timezone.now() - timedelta(days=7)
    quiet = _post(
        client, machine_a, "route.npy", _npy(SIGNAL * 39), units="mm/s", recorded_at=last_week.isoformat()
    )
    assert quiet.status_code == 201, quiet.content
    today, route = (VibrationRecording.objects.get(pk=r.json()["id"]) for r in (loud, quiet))
    assert abs((route.recorded_at - last_week).total_seconds()) < 1 and route.uploaded_late
    assert not today.uploaded_late and today.recorded_at <= route.created_at
    assert (
        Event.objects.get(action="recording.upload", resource_id=str(route.pk)).payload["recorded_at"]
        == route.recorded_at.isoformat()
    )
    for recording in (route, today):
        assert recording_analyse(recording_id=recording.pk) == "done"
    # both in zone D: the route's, analysed first, raised the alert and says when the machine was in
    # that state; today's found the condition standing and raised none
    alerts = {alert.recording_id: alert.message for alert in Alert.objects.filter(machine=machine_a)}
    measured = timezone.localtime(route.recorded_at).strftime("%Y-%m-%d %H:%M")
    assert list(alerts) == [route.pk] and alerts[route.pk].startswith("Vibration zone D")
    assert alerts[route.pk].endswith(f" (measured {measured})")
    condition = machine_condition(machine_a)
    assert condition["analysis"].recording == today  # uploaded first, measured last
    assert [when for when, _, _ in condition["trend"]] == [route.recorded_at, today.recorded_at]
    page = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode()
    assert f"measured {measured}, uploaded " in page
    trend = page[page.index('data-testid="rms-trend"') :].split("</svg>")[0]
    assert timezone.localtime(route.recorded_at).strftime("%Y-%m-%d") in trend  # the axis in dates
    assert ">measured<" in trend


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2999-01-01T08:00", "is in the future"),
        ("0001-01-01T00:00", "is before 2000: check the date"),
        ("9999-12-31T23:59:59-12:00", "Datetime value out of range"),
        ("last tuesday", "Datetime has wrong format"),
    ],
)
def test_a_time_measured_that_cannot_be_right_is_refused(client, engineer_a, machine_a, value, message):
    client.force_login(engineer_a)
    response = _post(client, machine_a, "x.npy", _npy(SIGNAL), recorded_at=value)
    assert response.status_code == 400 and message in response.content.decode()
    assert not VibrationRecording.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_same_recording_sent_twice_at_once_is_kept_once(engineer_a, machine_a):
    """Two sends of one file racing past the lookup (PostgreSQL; SQLite runs them one after the other):
    the second waits for the first at the machine's row, finds it, and stores nothing."""
    data = _npy(SIGNAL)
    results = at_once(
        lambda: recording_upload(
            actor=engineer_a,
            machine=machine_a,
            name="x.npy",
            data=data,
            sample_rate=12000,
            rpm=1797,
            analyse=False,
        )
    )
    assert all(isinstance(result, VibrationRecording) for result in results), results
    assert {result.pk for result in results} == {VibrationRecording.objects.get().pk}
    assert sorted(result.replayed for result in results) == [False, True]
    assert Event.objects.filter(action="recording.upload").count() == 1
