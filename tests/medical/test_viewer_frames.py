"""The viewer's frames: any frame of a multi-frame image, at any window, rendered once into the
cache and served from it; malformed requests answered 4xx with what to change."""

from __future__ import annotations

import io
import math
import os
import time

import numpy as np
import pytest
from PIL import Image

from audit.models import Event
from medical import storage
from medical.dicom.frames import FrameError, Window, decode, render_frame
from medical.models import Instance
from medical.services import frames as frame_service
from tests.medical.dicom_files import read_test_file
from tests.support import wait_for


@pytest.fixture(autouse=True)
def frame_cache(request, settings, tmp_path):
    """A cache per test; a test with the worker keeps the default (the worker process reads its own settings)."""
    if "celery_worker" not in request.fixturenames:
        settings.MEDICAL_FRAME_CACHE_DIR = tmp_path / "frames"


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)), dtype=float)


# --- rendering (pure) -------------------------------------------------------------------------------


def test_every_frame_of_a_multi_frame_image_is_rendered_and_frames_differ():
    image = decode(read_test_file("rtdose.dcm"))  # 15 dose planes, 10 x 10
    assert image.count == 15 and not image.colour
    planes = [np.asarray(render_frame(image, index)) for index in range(image.count)]
    assert all(plane.shape == (10, 10) for plane in planes)  # full resolution: the browser enlarges
    assert len({plane.tobytes() for plane in planes}) > 10
    with pytest.raises(FrameError, match="Frame 16 does not exist"):
        render_frame(image, 15)


def test_a_window_changes_the_pixels_and_ct_values_are_hounsfield_units():
    image = decode(read_test_file("CT_small.dcm"))
    lung = np.asarray(render_frame(image, 0, Window(-600, 1500)), dtype=float)
    bone = np.asarray(render_frame(image, 0, Window(400, 1800)), dtype=float)
    assert lung.mean() > bone.mean() + 20  # the same tissue is brighter in a lower window
    # a narrow window around the modality values' median splits the image in dark and bright
    median = float(np.median(image.frames[0]))
    split = np.asarray(render_frame(image, 0, Window(median, 1)))
    assert {0, 255} <= set(np.unique(split).tolist())


def test_colour_frames_have_no_window_and_keep_their_size():
    image = decode(read_test_file("examples_ybr_color.dcm"))  # 30 ultrasound frames
    assert image.count == 30 and image.colour and image.default_window is None
    last = render_frame(image, 29)
    assert last.mode == "RGB" and last.size == (320, 240)


@pytest.mark.parametrize(
    ("center", "width", "message"),
    [
        ("40", None, "both the window center"),
        ("forty", "400", "must be numbers"),
        ("40", "0", "between 0.001"),
        ("1e12", "400", "must be between"),
        ("nan", "400", "finite"),
    ],
)
def test_malformed_windows_are_refused_with_what_to_change(center, width, message):
    with pytest.raises(FrameError, match=message):
        frame_service.frame_window(center, width)


# --- the cache ----------------------------------------------------------------------------------------


@pytest.fixture
def dose(ingest) -> Instance:
    return Instance.objects.get(pk=ingest("rtdose.dcm").instance_id)


@pytest.mark.django_db
def test_frames_are_rendered_once_then_served_from_the_cache(dose):
    assert frame_service.instance_frames_render(instance_id=dose.pk, first=7) == 15
    frame = frame_service.frame_cached(dose, index=7, window=None)
    assert frame is not None and frame.window is not None  # the default window is reported
    path = frame_service._window_dir(dose, None) / "7.png"
    stamp = path.stat().st_mtime_ns
    assert frame_service.instance_frames_render(instance_id=dose.pk) == 0  # nothing rendered again
    assert path.stat().st_mtime_ns == stamp

    window = Window.rounded(frame.window.center, frame.window.width / 4)
    assert frame_service.frame_cached(dose, index=7, window=window) is None
    frame_service.instance_frames_render(
        instance_id=dose.pk, center=window.center, width=window.width, first=7
    )
    narrow = frame_service.frame_cached(dose, index=7, window=window)
    assert not np.array_equal(_pixels(narrow.png), _pixels(frame.png))


@pytest.mark.django_db
def test_a_changed_copy_misses_the_cache_and_old_windows_are_dropped(dose, settings):
    settings.MEDICAL_FRAME_CACHE_WINDOWS = 2
    frame_service.instance_frames_render(instance_id=dose.pk)
    for width in (100000, 200000, 300000):
        frame_service.instance_frames_render(instance_id=dose.pk, center=1e6, width=width)
    version = frame_service._window_dir(dose, None).parent
    assert sorted(path.name for path in version.iterdir()) == ["c1e06_w2e05", "c1e06_w3e05", "default"]

    Instance.objects.filter(pk=dose.pk).update(deidentified_sha256="f" * 64)  # as if re-stored
    dose.refresh_from_db()
    assert frame_service.frame_cached(dose, index=0, window=None) is None
    frame_service.instance_frames_render(instance_id=dose.pk, first=0)
    assert not version.exists()  # the old version's frames are gone
    assert frame_service.frame_cached(dose, index=0, window=None) is not None


@pytest.mark.django_db
def test_the_whole_cache_stays_under_its_byte_bound_least_recently_used_first(ingest, settings):
    settings.MEDICAL_FRAME_CACHE_TRIM_SECONDS = 0
    names = ("rtdose.dcm", "CT_small.dcm", "MR_small.dcm")
    images = [Instance.objects.get(pk=ingest(name).instance_id) for name in names]
    for image in images:
        frame_service.instance_frames_render(instance_id=image.pk)
    folders = [frame_service._window_dir(image, None) for image in images]
    sizes = [sum(path.stat().st_size for path in folder.iterdir()) for folder in folders]
    total = sum(sizes)
    now = time.time()
    for age, folder in zip((300, 200, 100), folders, strict=True):  # rendered a while ago, in this order
        os.utime(folder, (now - age, now - age))
    assert frame_service.frame_cached(images[0], index=0, window=None) is not None  # used again now
    # a bound that holds everything but one image: the least recently used one (CT_small) must go
    settings.MEDICAL_FRAME_CACHE_MAX_BYTES = math.ceil((total - sizes[1]) / frame_service.TRIM_TARGET) + 1
    assert total > settings.MEDICAL_FRAME_CACHE_MAX_BYTES

    trim = frame_service.frame_cache_trim(force=True)
    assert (trim.bytes_before, trim.bytes_after, trim.windows_removed) == (total, total - sizes[1], 1)
    assert folders[0].is_dir() and folders[2].is_dir()
    assert not folders[1].exists() and not folders[1].parent.parent.exists()  # empty parents go too
    assert frame_service.frame_cached(images[1], index=0, window=None) is None  # a miss: rendered again
    settings.MEDICAL_FRAME_CACHE_TRIM_SECONDS = 3600
    assert frame_service.frame_cache_trim() is None  # checked at most once per interval

    # after every render (interval 0): a bound of one byte keeps only the window just rendered
    settings.MEDICAL_FRAME_CACHE_TRIM_SECONDS = 0
    settings.MEDICAL_FRAME_CACHE_MAX_BYTES = 1
    frame_service.instance_frames_render(instance_id=images[1].pk)
    assert folders[1].is_dir() and not folders[0].exists() and not folders[2].exists()


@pytest.mark.django_db
def test_an_image_that_cannot_be_decoded_is_reported_not_retried(ingest):
    instance = Instance.objects.get(pk=ingest("CT_small.dcm").instance_id)
    data = bytearray(storage.read_media(instance.deidentified_file))
    storage.write_media(instance.deidentified_file, bytes(data[: len(data) - 20000]))  # truncated pixels
    frame_service.instance_frames_render(instance_id=instance.pk)
    with pytest.raises(FrameError, match="cannot be"):
        frame_service.frame_cached(instance, index=0, window=None)


# --- the view -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_cached_frame_is_served_with_its_window_and_the_read_is_trailed(client, radiologist, dose):
    frame_service.instance_frames_render(instance_id=dose.pk)
    client.force_login(radiologist)
    reads = Event.objects.filter(action="study.view", outcome="allowed")
    before = reads.count()
    response = client.get(f"/medical/instances/{dose.pk}/frames/14.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response["X-Frame-Count"] == "15" and float(response["X-Window-Width"]) > 0
    assert reads.count() == before + 1
    assert reads.last().resource_id == str(dose.series.study_id)
    api = client.get(f"/api/medical/instances/{dose.pk}/frames/14/")
    assert api.status_code == 200 and api.content == response.content
    # served from the cache: no render was queued
    assert not (frame_service._window_dir(dose, None) / ".queued").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("frames/15.png", 404, "frames 0 to 14"),
        ("frames/0.png?wc=40", 400, "both the window center"),
        ("frames/0.png?wc=40&ww=-3", 400, "between 0.001"),
    ],
)
def test_bad_frame_requests_are_4xx_with_a_reason_and_queue_nothing(
    client, radiologist, dose, path, status, message
):
    client.force_login(radiologist)
    response = client.get(f"/medical/instances/{dose.pk}/{path}")
    assert response.status_code == status
    assert message in response.json()["detail"]
    assert not frame_service._instance_dir(dose).exists()


@pytest.mark.django_db
def test_an_image_without_pixels_says_so(client, radiologist, ingest):
    plan = Instance.objects.get(pk=ingest("rtplan.dcm").instance_id)
    client.force_login(radiologist)
    response = client.get(f"/medical/instances/{plan.pk}/frames/0.png")
    assert response.status_code == 404 and "no pixels" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "portal", "api"),
    [("anonymous", 302, 401), ("wrong role", 404, 404), ("other department", 404, 404), ("same", 200, 200)],
)
def test_frame_access(client, make_user, dose, who, portal, api):
    frame_service.instance_frames_render(instance_id=dose.pk)
    user = {
        "anonymous": None,
        "wrong role": lambda: make_user("compliance_officer", department="radiology"),
        "other department": lambda: make_user("clinician", department="cardiology"),
        "same": lambda: make_user("clinician", department="radiology"),
    }[who]
    user = user() if user else None
    if user:
        client.force_login(user)
    cache = sorted(os.listdir(frame_service._window_dir(dose, None)))
    assert client.get(f"/medical/instances/{dose.pk}/frames/0.png").status_code == portal
    assert client.get(f"/api/medical/instances/{dose.pk}/frames/0/").status_code == api
    assert sorted(os.listdir(frame_service._window_dir(dose, None))) == cache  # nothing changed
    if user and portal == 404:
        assert Event.objects.filter(
            action="study.view", outcome="denied", actor_label=user.get_username()
        ).exists()


@pytest.mark.django_db
def test_a_frame_no_worker_takes_is_reported_queued_with_the_reason_then_served_once_rendered(
    client, radiologist, dose, settings, no_render_worker
):
    settings.MEDICAL_FRAME_WAIT_SECONDS = 0.1
    # The threshold is moved between requests rather than slept past: on a loaded machine the first
    # request alone outlasted a sub-second threshold and was already reported stalled.
    settings.MEDICAL_FRAME_QUEUED_NOTICE_SECONDS = 60
    client.force_login(radiologist)
    url = f"/medical/instances/{dose.pk}/frames/3.png"
    first = client.get(url)  # queued just now: not yet a reason to worry
    assert first.status_code == 503 and first["Retry-After"] == "1"
    assert first.json() | {"seconds": 0} == {
        "detail": "Queued for the image worker; it has not started yet.",
        "state": "queued",
        "seconds": 0,
        "stalled": False,
    }
    settings.MEDICAL_FRAME_QUEUED_NOTICE_SECONDS = 0  # queued for longer than this: stalled
    settings.MEDICAL_FRAME_WAIT_SECONDS = 3  # a stalled render is answered at once, not after the wait
    began = time.monotonic()
    stalled = client.get(f"/api/medical/instances/{dose.pk}/frames/3/")
    assert time.monotonic() - began < 1.5
    assert stalled.status_code == 503 and stalled["Retry-After"] == "5"
    body = stalled.json()
    assert body["state"] == "queued" and body["stalled"] and body["seconds"] >= 0
    assert "no worker has started it" in body["detail"] and "run_worker" in body["detail"]
    # the worker's service renders it (as the Celery task does): the same request now gets the frame
    assert frame_service.instance_frames_render(instance_id=dose.pk, first=3) == 15
    assert client.get(url).status_code == 200


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_renders_a_frame_on_demand(client, make_user, ingest, celery_worker):
    dose = Instance.objects.get(pk=ingest("rtdose.dcm").instance_id)
    client.force_login(make_user("radiologist", department="radiology"))
    url = f"/medical/instances/{dose.pk}/frames/9.png?wc=1000000&ww=500000"
    # a busy worker may take longer than the request waits: then 503 + Retry-After, as the viewer retries
    response = wait_for(
        lambda: (answer := client.get(url)).status_code != 503 and answer, timeout=60, message="the frame"
    )
    assert response.status_code == 200, response.content[:200]
    assert (response["X-Window-Center"], response["X-Window-Width"]) == ("1e+06", "500000")
    folder = frame_service._window_dir(dose, Window(1e6, 5e5))
    # the worker went on to the other frames, then cleared its marker
    wait_for(lambda: not (folder / ".queued").exists(), timeout=30, message="the render to finish")
    assert sorted(int(path.stem) for path in folder.glob("*.png")) == list(range(15))


@pytest.mark.django_db
def test_bench_viewer_prints_suite_beside_per_request_rendering():
    import json

    from django.core.management import call_command

    out = io.StringIO()
    call_command("bench_viewer", "--json", "--repeats", "1", stdout=out)
    result = json.loads(out.getvalue())
    by_file = {row["file"]: row for row in result["files"]}
    assert by_file["examples_ybr_color.dcm"]["frames"] == 30 and by_file["rtdose.dcm"]["frames"] == 15
    for row in by_file.values():
        assert row["suite_cached_request_ms_p50"] > 0 and row["per_request_render_ms_p50"] > 0
