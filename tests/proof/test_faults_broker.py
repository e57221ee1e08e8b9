"""Fault: the task broker (Redis) stops while work is submitted.

A private redis-server on a free loopback port stands in for the production broker (the machine's
own Redis serves other test runs and is never touched); this process's Celery app and a real
worker process point at it. While it is down, work that needs the queue (a fine-tune job, a DICOM
upload whose previews a worker renders, a vibration recording the worker analyses) is refused with
503 and Retry-After before anything is written; a transaction batch, screened synchronously, does not need the queue and is stored whole.
Once Redis is back the same requests are accepted and the worker runs all of it.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import kombu.pools
import numpy as np
import pytest
from django.conf import settings as django_settings

from accounts.roles import Role
from audit.models import Event
from finance.models import Transaction
from inference.tuning.models import FineTuneJob
from manufacturing.models import Line, Machine, Site, VibrationRecording
from medical.models import Instance, Study
from tests.factories import api_key
from tests.proof.fuzzing import files_under
from tests.support import free_port, start_worker, stop_worker, wait_for
from tests.tuning.api_support import JOBS, call, job_body
from tests.tuning.conftest import fast_password_hashing, work_orders  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

REDIS_SERVER = shutil.which("redis-server")
UPLOAD = "/api/medical/studies/upload/"
BATCH = "/api/finance/transactions/batch/"
RECORDINGS = "/api/manufacturing/recordings/"


class PrivateRedis:
    """A redis-server of this test's own, started and stopped at will on one port."""

    def __init__(self, directory):
        self.port, self.directory, self.process = free_port(), directory, None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=20, message=f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def _drop_broker_connections(app) -> None:
    """Forget pooled broker connections (the connection and producer pools), as Celery does after a
    fork, so the next message goes to the broker the configuration names now. Not `app.close()`: that
    also deregisters the app, and tasks imported afterwards would then not be found."""
    # kombu keeps its pools in a process-wide registry keyed by connection: closing only the app's
    # pool left a closed one there, which the next publish to the original broker then got
    # ("Acquire on closed pool"). reset() closes every pool and empties the registry.
    kombu.pools.reset()
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@pytest.fixture
def private_broker(tmp_path, settings, monkeypatch):
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (Debian package redis-server; scripts/system-deps.sh)")
    from suite.celery import app

    redis = PrivateRedis(tmp_path)
    redis.start()
    options = {"visibility_timeout": 3600}
    saved = app.conf.get("broker_url"), app.conf.get("broker_transport_options")
    settings.CELERY_BROKER_URL = redis.url  # what /readyz and the 503 gate check
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = options
    monkeypatch.setenv("CELERY_BROKER_URL", redis.url)  # Celery prefers the variable (CI sets it) to its conf
    app.conf.broker_url, app.conf.broker_transport_options = redis.url, options
    _drop_broker_connections(app)
    try:
        yield redis
    finally:
        app.conf.broker_url, app.conf.broker_transport_options = saved
        _drop_broker_connections(app)
        redis.stop()


def _upload(client, user, name: str = "CT_small.dcm"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.medical.dicom_files import file_bytes

    upload = SimpleUploadedFile(name, file_bytes(name), content_type="application/octet-stream")
    return client.post(UPLOAD, {"files": [upload]}, HTTP_AUTHORIZATION=f"Token {api_key(user)}")


def _batch(client, user, prefix: str):
    rows = [
        {"tx_ref": f"{prefix}-{i}", "ts": 1_700_000_000 + 600 * i, "src_account": f"{prefix}-SRC",
         "dst_account": f"{prefix}-DST{i}", "amount_paid": 9500.0, "currency_paid": "USD", "payment_format": "Wire"}
        for i in range(5)
    ]  # fmt: skip
    return client.post(
        BATCH, json.dumps({"transactions": rows}), content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {api_key(user)}",
    )  # fmt: skip


def _record(client, user, machine):
    """One second of a 12 kHz vibration recording (a 30 Hz tone plus noise) as a .npy upload."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    t = np.arange(12_000) / 12_000
    samples = 0.2 * np.sin(2 * np.pi * 30 * t) + 0.01 * np.random.default_rng(0).standard_normal(t.size)
    buffer = io.BytesIO()
    np.save(buffer, samples)
    upload = SimpleUploadedFile("pump.npy", buffer.getvalue(), content_type="application/octet-stream")
    body = {"machine": machine.pk, "sample_rate": 12000, "rpm": 1797, "units": "g", "file": upload}
    return client.post(RECORDINGS, body, HTTP_AUTHORIZATION=f"Token {api_key(user)}")


def _counts() -> dict:
    return {
        "jobs": FineTuneJob.objects.count(),
        "studies": Study.objects.count(),
        "instances": Instance.objects.count(),
        "recordings": VibrationRecording.objects.count(),
        "job_events": Event.objects.filter(resource_type="fine_tune_job").count(),
        "recording_events": Event.objects.filter(action="recording.upload").count(),
        "media_files": len(files_under(Path(django_settings.MEDIA_ROOT))),
    }


def _refused_for_now(response) -> None:
    assert response.status_code == 503, response.content
    assert int(response["Retry-After"]) >= 1
    assert "task queue is unreachable" in response.json()["detail"]


@pytest.mark.usefixtures("work_orders")
def test_a_broker_outage_refuses_queued_work_with_503_and_it_all_runs_once_the_broker_is_back(
    client,
    private_broker,
    served_model,
    work_orders,  # noqa: F811  (the imported fixture)
    make_user,
):
    engineer = make_user(Role.ML_ENGINEER)
    radiologist = make_user(Role.RADIOLOGIST, department="radiology")
    officer = make_user(Role.COMPLIANCE_OFFICER, department="aml-eu")
    engineer_on_site = make_user(Role.MAINTENANCE_ENGINEER, site="site-a")
    site, _ = Site.objects.get_or_create(code="site-a", defaults={"name": "Site A"})
    machine = Machine.objects.create(
        line=Line.objects.create(site=site, name="Line 1"), tag="P-101", name="Pump"
    )
    assert client.get("/readyz").status_code == 200

    private_broker.stop()
    before = _counts()
    started = time.monotonic()
    _refused_for_now(call(client, "post", JOBS, engineer, job_body(adapter_name="after-outage")))
    _refused_for_now(_upload(client, radiologist))
    _refused_for_now(_record(client, engineer_on_site, machine))
    assert time.monotonic() - started < 15  # refused at once, not after minutes of connection retries
    assert _counts() == before  # nothing half-created: no job waiting for a message never sent
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["broker"]["ok"] is False
    # Screening is synchronous: a batch needs no queue and is stored whole during the outage.
    batch = _batch(client, officer, "OUTAGE")
    assert batch.status_code == 201, batch.content
    assert Transaction.objects.filter(tx_ref__startswith="OUTAGE-").count() == 5

    private_broker.start()
    wait_for(
        lambda: client.get("/readyz").status_code == 200, timeout=30, message="/readyz to see the broker"
    )
    created = call(client, "post", JOBS, engineer, job_body(adapter_name="after-outage"))
    assert created.status_code == 201, created.content
    uploaded = _upload(client, radiologist)
    assert uploaded.status_code == 200, uploaded.content
    assert uploaded.json()["counts"].get("stored") == 1, uploaded.json()
    instance = Instance.objects.get()
    assert instance.preview_status == Instance.PreviewStatus.PENDING  # queued for the worker
    recorded = _record(client, engineer_on_site, machine)
    assert recorded.status_code == 201, recorded.content
    recording = VibrationRecording.objects.get(pk=recorded.json()["id"])
    assert recording.status == VibrationRecording.Status.PENDING

    worker = start_worker(extra_env={"CELERY_BROKER_URL": private_broker.url})
    try:
        job = wait_for(
            lambda: FineTuneJob.objects.filter(
                pk=created.json()["id"], status__in=FineTuneJob.FINISHED
            ).first(),
            timeout=300,
            message="the job to finish on the worker",
        )
        assert job.status == FineTuneJob.Status.SUCCEEDED, f"{job.error}\n{job.log}"
        wait_for(
            lambda: Instance.objects.get(pk=instance.pk).preview_status != Instance.PreviewStatus.PENDING,
            timeout=120,
            message="the worker to render the preview",
        )
        assert Instance.objects.get(pk=instance.pk).preview_status == Instance.PreviewStatus.READY
        wait_for(
            lambda: (
                VibrationRecording.objects.get(pk=recording.pk).status != VibrationRecording.Status.PENDING
            ),
            timeout=120,
            message="the worker to analyse the recording",
        )
        recording.refresh_from_db()
        assert recording.status == VibrationRecording.Status.DONE, recording.error
    finally:
        stop_worker(worker)
    # each piece of work exactly once
    assert FineTuneJob.objects.count() == before["jobs"] + 1
    assert VibrationRecording.objects.count() == before["recordings"] + 1


@pytest.mark.usefixtures("work_orders")
def test_a_job_committed_as_the_broker_goes_away_is_resent_by_the_reaper_once_it_is_back(
    private_broker, served_model, make_user
):
    """The race the 503 gate cannot close: the broker stops between the check and the message.
    The job stays queued (no server error), and the reaper sends its message again later."""
    import redis as redis_client
    from django.utils import timezone

    from inference.tuning import conf, services
    from inference.tuning.lora_config import LoraSettings, TrainSettings

    engineer = make_user(Role.ML_ENGINEER)
    private_broker.stop()
    job = services.job_create(
        user=engineer, base_model="suite-demo", data_adapter="tests.work_orders", adapter_name="raced",
        filters={"limit": 60}, lora=LoraSettings(r=4, alpha=8),
        train=TrainSettings(batch_size=8, max_seq_len=96, checkpoint_every=4), dp=None,
    )  # fmt: skip
    job.refresh_from_db()
    assert job.status == FineTuneJob.Status.QUEUED and job.task_id

    private_broker.start()
    later = timezone.now() + conf.queued_resend_after() + timedelta(seconds=1)
    assert services.jobs_reap(now=later)["resent"] == [job.pk]
    waiting = redis_client.Redis(port=private_broker.port).lrange(conf.queue(), 0, -1)
    assert any(job.task_id.encode() in message for message in waiting)
