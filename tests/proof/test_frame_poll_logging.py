"""The viewer polls a frame the worker has not rendered yet: each answer is a 503 with Retry-After, an
expected "not ready yet", so it is not logged as a server error (Django logs every 5xx as an ERROR of
django.request): DEBUG while the render is queued or in progress, WARNING once no worker has taken it
(the worker is probably not running), never ERROR."""

from __future__ import annotations

import logging

import pytest
from kombu import Queue

from accounts.roles import Role
from medical.models import Channel, Instance
from medical.services import IngestSource, instance_ingest
from suite.celery import app
from tests.medical.dicom_files import file_bytes

pytestmark = pytest.mark.django_db
NO_WORKER_QUEUE = "proof-frame-poll-no-worker"


@pytest.fixture
def unrendered(settings, tmp_path):
    """An image whose frames go to a queue no worker reads (as when the worker is not running)."""
    settings.MEDICAL_FRAME_CACHE_DIR = tmp_path / "frames"
    settings.MEDICAL_RENDER_QUEUE = NO_WORKER_QUEUE
    settings.MEDICAL_FRAME_WAIT_SECONDS = 0.1
    settings.MEDICAL_FRAME_QUEUED_NOTICE_SECONDS = 60
    source = IngestSource(
        channel=Channel.API,
        department="radiology",
        actor="test:proof",
        received_from="tests",
        previews="skip",
    )
    outcome = instance_ingest(source=source, filename="rtdose.dcm", data=file_bytes("rtdose.dcm"))
    yield Instance.objects.get(pk=outcome.instance_id)
    with app.connection_for_write() as connection:
        Queue(NO_WORKER_QUEUE, channel=connection.default_channel).purge()


def _request_log(caplog) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "django.request"]


def test_polling_a_frame_not_rendered_yet_is_not_logged_as_a_server_error(
    client, make_user, unrendered, settings, caplog
):
    client.force_login(make_user(Role.RADIOLOGIST, department="radiology"))
    portal = f"/medical/instances/{unrendered.pk}/frames/3.png"
    api = f"/api/medical/instances/{unrendered.pk}/frames/3/"
    with caplog.at_level(logging.DEBUG, logger="django.request"):
        queued = client.get(portal)
        settings.MEDICAL_FRAME_QUEUED_NOTICE_SECONDS = 0  # queued "long enough": no worker has taken it
        stalled_portal, stalled_api = client.get(portal), client.get(api)
    assert queued.status_code == 503 and queued["Retry-After"] == "1" and not queued.json()["stalled"]
    assert stalled_portal.status_code == stalled_api.status_code == 503
    assert stalled_portal.json()["stalled"] and stalled_api["Retry-After"] == "5"
    assert _request_log(caplog) == [
        ("DEBUG", f"Frame not ready (queued): {portal}"),
        ("WARNING", f"Frame not ready (queued, stalled): {portal}"),
        ("WARNING", f"Frame not ready (queued, stalled): {api}"),
    ]
