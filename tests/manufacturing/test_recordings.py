"""Recording uploads through the API: stored, trailed, clear 400s for bad files, 404 for another site."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import Event
from manufacturing.analysis.vibration import VELOCITY_BAND_HZ
from manufacturing.models import VibrationRecording
from manufacturing.services.recordings import MIN_SAMPLE_RATE_HZ

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
