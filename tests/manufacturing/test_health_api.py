"""Reading asset health through the API: a gateway uploads a recording, follows the `url` it is given
and reads the worker's analysis (a CWRU outer-race recording through the real pipeline); the asset list
and an asset's condition (zone limits in use, latest recording, running hours, open alerts); another
site's assets and recordings are 404 and not listed."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from manufacturing.models import Alert, BearingGeometry, Component
from manufacturing.services.maintenance_plans import meter_record
from manufacturing.services.recordings import recording_analyse

pytestmark = pytest.mark.django_db
OUTER = Path(settings.SHARED_DATA_DIR) / "bearings" / "cwru_de_0hp" / "cwru_de_0hp_outer_race_007_at6_130.npy"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _upload(client, machine):
    buffer = io.BytesIO()
    np.save(buffer, np.load(OUTER)[:24000])
    body = {
        "machine": machine.pk,
        "sample_rate": 12000,
        "rpm": 1796,
        "file": SimpleUploadedFile("130.npy", buffer.getvalue()),
    }
    return client.post("/api/manufacturing/recordings/", body)


def test_an_uploaded_recordings_analysis_is_read_at_the_url_it_was_given(client, engineer_a, machine_a):
    bearing = BearingGeometry.objects.create(
        designation="6205-2RS JEM", ball_count=9, ball_diameter_mm=7.94, pitch_diameter_mm=39.04
    )
    Component.objects.create(machine=machine_a, name="DE bearing", bearing=bearing)
    client.force_login(engineer_a)
    uploaded = _upload(client, machine_a)
    assert uploaded.status_code == 201, uploaded.content
    url = uploaded.json()["url"]
    assert uploaded["Location"] == url == f"/api/manufacturing/recordings/{uploaded.json()['id']}/"
    pending = client.get(url).json()
    assert pending["status"] == "pending" and pending["analysis"] is None and pending["samples"] == 24000
    assert recording_analyse(recording_id=uploaded.json()["id"]) == "done"  # the worker's step
    done = client.get(url).json()
    assert done["status"] == "done" and done["page"] == f"/manufacturing/recordings/{done['id']}/"
    analysis = done["analysis"]
    assert analysis["fault"] == "outer_race" and analysis["fault_label"] == "outer-race bearing defect"
    assert analysis["zone"] in "ABCD" and analysis["rms_velocity"] > 0 and analysis["evidence"]
    assert abs(analysis["fault_frequencies"]["BPFO"] - 107.4) < 0.5
    again = _upload(client, machine_a)  # sent again: the same recording, no Location (nothing new)
    assert again.status_code == 200 and again.json()["url"] == url and "Location" not in again


def test_the_asset_list_and_an_assets_condition(client, engineer_a, engineer_b, machine_a, machine_b):
    client.force_login(engineer_a)
    listed = client.get("/api/manufacturing/assets/").json()
    assert [asset["tag"] for asset in listed] == [machine_a.tag]  # not site-b's
    assert listed[0]["zone"] is None and listed[0]["rul"] is None and listed[0]["replace_now"] is False
    assert listed[0]["url"] == f"/api/manufacturing/assets/{machine_a.pk}/"
    detail = client.get(listed[0]["url"]).json()
    assert detail["zone_limits"] == [1.4, 2.8, 4.5]  # ISO 10816-3 group 2, rigid: the default
    assert detail["latest_recording"] is None and detail["prediction"] is None
    assert detail["running_hours"] is None and detail["open_alerts"] == []

    machine_a.zone_limits = {"A/B": 1.4, "B/C": 2.8, "C/D": 6.0}
    machine_a.save()
    uploaded = _upload(client, machine_a).json()
    recording_analyse(recording_id=uploaded["id"])
    meter_record(actor=engineer_a, machine=machine_a, hours=1234.5)
    alert = Alert.objects.create(machine=machine_a, kind="vibration_zone", message="Vibration zone C")
    detail = client.get(f"/api/manufacturing/assets/{machine_a.pk}/").json()
    assert detail["zone_limits"] == [1.4, 2.8, 6.0]
    assert detail["latest_recording"]["id"] == uploaded["id"]
    assert detail["zone"] == detail["latest_recording"]["analysis"]["zone"]
    assert detail["running_hours"] == 1234.5
    assert [a["id"] for a in detail["open_alerts"]] == [alert.pk]
    assert client.get("/api/manufacturing/assets/").json()[0]["zone"] == detail["zone"]

    # the recordings, latest measured first, paginated: the zone and velocity trend
    earlier = client.post(
        "/api/manufacturing/recordings/",
        {
            "machine": machine_a.pk,
            "sample_rate": 12000,
            "rpm": 1796,
            "recorded_at": "2026-01-05T08:00",
            "file": SimpleUploadedFile("old.csv", "\n".join(["0.01", "-0.02", "0.03"] * 2000).encode()),
        },
    ).json()
    trend = client.get(f"/api/manufacturing/assets/{machine_a.pk}/recordings/").json()
    assert trend["count"] == 2 and [r["id"] for r in trend["results"]] == [uploaded["id"], earlier["id"]]
    assert (
        trend["results"][0]["analysis"]["zone"] == detail["zone"] and trend["results"][1]["analysis"] is None
    )
    assert trend["results"][1]["recorded_at"].startswith("2026-01-05T08:00")
    page = client.get(
        f"/api/manufacturing/assets/{machine_a.pk}/recordings/", {"limit": 1, "offset": 1}
    ).json()
    assert [r["id"] for r in page["results"]] == [earlier["id"]]
    bad = client.get(f"/api/manufacturing/assets/{machine_a.pk}/recordings/", {"limit": "many"})
    assert bad.status_code == 400 and "limit must be a whole number" in bad.content.decode()

    client.force_login(engineer_b)
    assert client.get(f"/api/manufacturing/assets/{machine_a.pk}/recordings/").status_code == 404
    assert client.get(f"/api/manufacturing/assets/{machine_a.pk}/").status_code == 404
    assert client.get(f"/api/manufacturing/recordings/{uploaded['id']}/").status_code == 404
    assert [asset["tag"] for asset in client.get("/api/manufacturing/assets/").json()] == [machine_b.tag]
    client.logout()
    assert client.get("/api/manufacturing/assets/").status_code in (401, 403)
