"""Work whose Celery message was lost (the broker went away just after the row was committed) is sent
again by `requeue_pending` (portal.requeue), once per period, and handling it twice changes nothing."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.roles import Role
from audit.models import Event
from manufacturing.models import Line, Machine, Site, VibrationRecording
from manufacturing.services.recordings import recording_upload
from portal.models import ResentWork
from portal.requeue import registered, requeue_pending

pytestmark = pytest.mark.django_db


@pytest.fixture
def lost_recording(make_user):
    """A stored recording whose analysis message never left: in this test's transaction the upload's
    on_commit send does not run, which is exactly what a broker outage at commit time leaves."""
    site, _ = Site.objects.get_or_create(code="site-a", defaults={"name": "Site A"})
    machine = Machine.objects.create(
        line=Line.objects.create(site=site, name="Line 1"), tag="P-7", name="Pump"
    )
    engineer = make_user(Role.MAINTENANCE_ENGINEER, site="site-a")
    recording = recording_upload(
        actor=engineer,
        machine=machine,
        name="de.csv",
        data=b"0.1\n0.3\n-0.2\n-0.1\n" * 600,
        sample_rate=12000,
        rpm=1797,
        units="g",
    )
    assert recording.status == VibrationRecording.Status.PENDING
    return recording


def _messages(queue: str) -> list[tuple[str, list]]:
    """The (task, args) of every message waiting in `queue` on the configured broker, consumed."""
    from celery import current_app

    found = []
    with current_app.connection_for_read() as connection:
        simple = connection.SimpleQueue(queue)
        try:
            while True:
                try:
                    message = simple.get(timeout=1)
                except simple.Empty:
                    break
                args = message.decode()[0]
                found.append((message.headers["task"], args))
                message.ack()
        finally:
            simple.close()
    return found


def test_a_lost_analysis_is_sent_again_once_per_period_and_runs_once(lost_recording):
    from manufacturing.tasks import analyse_recording

    queue = f"requeue-test-{uuid.uuid4().hex[:8]}"
    now = timezone.now()
    # younger than the period: its message may just be waiting in a busy queue
    assert requeue_pending(now=now, queue=queue)["manufacturing.analysis"] == 0
    later = now + timedelta(minutes=6)
    assert requeue_pending(now=later, queue=queue)["manufacturing.analysis"] == 1
    assert requeue_pending(now=later + timedelta(seconds=60), queue=queue)["manufacturing.analysis"] == 0
    assert _messages(queue) == [("manufacturing.analyse_recording", [lost_recording.pk])]

    assert analyse_recording(lost_recording.pk) == "done"  # what the worker runs for the message
    events = Event.objects.filter(action="recording.analyse", resource_id=str(lost_recording.pk)).count()
    assert events == 1
    # a second copy of the message (the first was only slow) changes nothing
    assert analyse_recording(lost_recording.pk) == "done"
    assert Event.objects.filter(action="recording.analyse", resource_id=str(lost_recording.pk)).count() == 1
    # no longer pending: nothing to send, whatever the time
    assert requeue_pending(now=later + timedelta(hours=1), queue=queue)["manufacturing.analysis"] == 0
    assert ResentWork.objects.get(work="manufacturing.analysis").sends == 1


def test_a_lost_scan_registration_is_sent_again_and_runs_once(lost_recording, settings, tmp_path):
    """The same for a 3-D scan: kept at upload, its registration message lost, sent again, run once."""
    import numpy as np

    from manufacturing.services.scans import scan_upload
    from manufacturing.tasks import register_scan

    settings.MEDIA_ROOT = tmp_path
    u, v = np.meshgrid(np.arange(0.0, 40.0), np.arange(0.0, 30.0))
    plate = np.column_stack([u.ravel(), v.ravel(), 0.002 * (u.ravel() - 20) ** 2])
    xyz = "\n".join(f"{x} {y} {z}" for x, y, z in plate).encode()
    scan = scan_upload(
        actor=lost_recording.uploaded_by,
        machine=lost_recording.machine,
        scan_name="s.xyz",
        scan_data=xyz,
        reference_name="r.xyz",
        reference_data=xyz,
        tolerance=0.5,
    )
    queue = f"requeue-test-{uuid.uuid4().hex[:8]}"
    later = timezone.now() + timedelta(minutes=6)
    assert requeue_pending(now=later, queue=queue)["manufacturing.scan"] == 1
    assert ("manufacturing.register_scan", [scan.pk]) in _messages(queue)
    assert register_scan(scan.pk) == register_scan(scan.pk) == "done"  # the message twice: run once
    assert Event.objects.filter(action="scan.compare", resource_id=str(scan.pk)).count() == 1
    assert requeue_pending(now=later + timedelta(hours=1), queue=queue)["manufacturing.scan"] == 0


def test_every_registered_kind_of_pending_work_can_be_asked_for():
    assert {work.name for work in registered()} >= {
        "medical.preview",
        "manufacturing.analysis",
        "manufacturing.scan",
    }
    cutoff = timezone.now()
    for work in registered():
        assert work.pending(cutoff).count() == 0, work.name


def test_the_command_reports_counts_and_refuses_a_negative_period(lost_recording):
    from django.core.management import CommandError

    queue, out = f"requeue-test-{uuid.uuid4().hex[:8]}", StringIO()
    VibrationRecording.objects.filter(pk=lost_recording.pk).update(
        created_at=timezone.now() - timedelta(hours=1)
    )
    call_command("requeue_pending", "--older-than", "600", "--queue", queue, "--json", stdout=out)
    assert json.loads(out.getvalue())["manufacturing.analysis"] == 1
    assert _messages(queue) == [("manufacturing.analyse_recording", [lost_recording.pk])]
    with pytest.raises(CommandError, match="--older-than must be 0 or more"):
        call_command("requeue_pending", "--older-than", "-1")
